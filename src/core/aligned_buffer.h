// A fixed-size, 64-byte aligned, zero-initialised array for activations and
// caches. Move-only: copying megabytes should be an explicit decision.
// Storage comes from calloc, which takes large blocks straight from the
// kernel as untouched zero pages: a KV cache sized for a long context costs
// memory only as it fills (a user's -c 200000 is not gigabytes up front).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace specula {

template <typename T>
class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t count) { resize(count); }
  ~AlignedBuffer() { std::free(block_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    std::swap(block_, other.block_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }

  // Discards the contents; the new storage is zeroed.
  void resize(size_t count) {
    std::free(block_);
    block_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    if (count == 0) return;
    if (count > (SIZE_MAX - 2 * kAlignment) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = (count * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    // calloc zeroes (lazily for large blocks); the slack aligns the start.
    block_ = std::calloc(bytes + kAlignment, 1);
    if (block_ == nullptr) throw std::bad_alloc();
    const auto address = reinterpret_cast<uintptr_t>(block_);
    data_ = reinterpret_cast<T*>((address + kAlignment - 1) / kAlignment * kAlignment);
    size_ = count;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void* block_ = nullptr;  // from calloc; data_ is its first aligned address
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace specula
