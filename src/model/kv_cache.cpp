#include "model/kv_cache.h"

#include <cassert>
#include <cstring>

#include "core/error.h"
#include "core/f16.h"

namespace specula {

KvCache::KvCache(int32_t n_layer, int32_t n_seq, int32_t n_ctx, int32_t kv_dim, DType type)
    : n_layer_(n_layer), n_seq_(n_seq), n_ctx_(n_ctx), kv_dim_(kv_dim), type_(type) {
  if (n_layer <= 0 || n_seq <= 0 || n_ctx <= 0 || kv_dim <= 0) {
    fail("KV cache: n_layer (", n_layer, "), n_seq (", n_seq, "), n_ctx (", n_ctx, ") and kv_dim (",
         kv_dim, ") must all be positive");
  }
  if (type != DType::kF32 && type != DType::kF16) {
    fail("KV cache: type ", dtype_name(type), " is not supported; use f32 or f16");
  }
  lengths_.assign(static_cast<size_t>(n_seq), 0);
  const size_t bytes = static_cast<size_t>(n_layer) * static_cast<size_t>(n_seq) *
                       static_cast<size_t>(n_ctx) * static_cast<size_t>(kv_dim) * value_bytes(type);
  keys_.resize(bytes);
  values_.resize(bytes);
}

size_t KvCache::value_bytes(DType type) {
  return type == DType::kF16 ? sizeof(uint16_t) : sizeof(float);
}

size_t KvCache::row_bytes() const {
  return static_cast<size_t>(kv_dim_) * value_bytes(type_);
}

void KvCache::truncate(int32_t seq, int32_t n) {
  if (seq < 0 || seq >= n_seq_)
    fail("KV cache: truncate of sequence ", seq, ", cache holds ", n_seq_);
  if (n < 0 || n > lengths_[seq]) {
    fail("KV cache: cannot truncate sequence ", seq, " to ", n, " positions: it holds ",
         lengths_[seq]);
  }
  // Rows past the new length are simply overwritten by later forwards.
  lengths_[seq] = n;
}

void KvCache::set_length(int32_t seq, int32_t n) {
  if (seq < 0 || seq >= n_seq_)
    fail("KV cache: set_length of sequence ", seq, ", cache holds ", n_seq_);
  if (n < 0 || n > n_ctx_) fail("KV cache: length ", n, " outside [0, n_ctx = ", n_ctx_, "]");
  lengths_[seq] = n;
}

size_t KvCache::offset(int32_t layer, int32_t seq, int32_t position) const {
  assert(layer >= 0 && layer < n_layer_ && seq >= 0 && seq < n_seq_ && position >= 0 &&
         position < n_ctx_);
  return ((static_cast<size_t>(layer) * n_seq_ + seq) * n_ctx_ + position) * row_bytes();
}

void KvCache::write(int32_t layer, int32_t seq, int32_t position, const float* key,
                    const float* value) {
  const size_t at = offset(layer, seq, position);
  if (type_ == DType::kF32) {
    std::memcpy(keys_.data() + at, key, static_cast<size_t>(kv_dim_) * sizeof(float));
    std::memcpy(values_.data() + at, value, static_cast<size_t>(kv_dim_) * sizeof(float));
    return;
  }
  // A few hundred to a few thousand values per row and layer: scalar
  // rounding costs well under 1% of a forward pass.
  auto* keys = reinterpret_cast<uint16_t*>(keys_.data() + at);
  auto* values = reinterpret_cast<uint16_t*>(values_.data() + at);
  for (int32_t i = 0; i < kv_dim_; ++i) {
    keys[i] = f32_to_f16(key[i]);
    values[i] = f32_to_f16(value[i]);
  }
}

void* KvCache::key(int32_t layer, int32_t seq, int32_t position) {
  return keys_.data() + offset(layer, seq, position);
}
void* KvCache::value(int32_t layer, int32_t seq, int32_t position) {
  return values_.data() + offset(layer, seq, position);
}
const void* KvCache::key(int32_t layer, int32_t seq, int32_t position) const {
  return keys_.data() + offset(layer, seq, position);
}
const void* KvCache::value(int32_t layer, int32_t seq, int32_t position) const {
  return values_.data() + offset(layer, seq, position);
}

}  // namespace specula
