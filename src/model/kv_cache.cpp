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
  const size_t stores = static_cast<size_t>(n_layer) * static_cast<size_t>(n_seq);
  keys_.resize(stores * static_cast<size_t>(key_store_elements(kv_dim, n_ctx)) * value_bytes(type));
  values_.resize(stores * static_cast<size_t>(n_ctx) * static_cast<size_t>(kv_dim) *
                 value_bytes(type));
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

size_t KvCache::key_store_offset(int32_t layer, int32_t seq) const {
  assert(layer >= 0 && layer < n_layer_ && seq >= 0 && seq < n_seq_);
  return (static_cast<size_t>(layer) * n_seq_ + seq) *
         static_cast<size_t>(key_store_elements(kv_dim_, n_ctx_)) * value_bytes(type_);
}

void KvCache::write(int32_t layer, int32_t seq, int32_t position, const float* key,
                    const float* value) {
  assert(position >= 0 && position < n_ctx_);
  const size_t at = offset(layer, seq, position);
  uint8_t* store = keys_.data() + key_store_offset(layer, seq);
  // A key's channels are kKeyBlockPositions values apart in its block.
  const int64_t first = key_store_index(kv_dim_, position, 0);
  if (type_ == DType::kF32) {
    auto* keys = reinterpret_cast<float*>(store) + first;
    for (int32_t c = 0; c < kv_dim_; ++c) keys[c * kKeyBlockPositions] = key[c];
    std::memcpy(values_.data() + at, value, static_cast<size_t>(kv_dim_) * sizeof(float));
    return;
  }
  // A few hundred to a few thousand values per row and layer: scalar
  // rounding costs well under 1% of a forward pass.
  auto* keys = reinterpret_cast<uint16_t*>(store) + first;
  auto* values = reinterpret_cast<uint16_t*>(values_.data() + at);
  for (int32_t c = 0; c < kv_dim_; ++c) {
    keys[c * kKeyBlockPositions] = f32_to_f16(key[c]);
    values[c] = f32_to_f16(value[c]);
  }
}

const void* KvCache::keys(int32_t layer, int32_t seq) const {
  return keys_.data() + key_store_offset(layer, seq);
}

float KvCache::key_at(int32_t layer, int32_t seq, int32_t position, int32_t channel) const {
  assert(position >= 0 && position < n_ctx_ && channel >= 0 && channel < kv_dim_);
  const uint8_t* store = keys_.data() + key_store_offset(layer, seq);
  const int64_t i = key_store_index(kv_dim_, position, channel);
  if (type_ == DType::kF16) return f16_to_f32(reinterpret_cast<const uint16_t*>(store)[i]);
  return reinterpret_cast<const float*>(store)[i];
}

void* KvCache::value(int32_t layer, int32_t seq, int32_t position) {
  return values_.data() + offset(layer, seq, position);
}
const void* KvCache::value(int32_t layer, int32_t seq, int32_t position) const {
  return values_.data() + offset(layer, seq, position);
}

}  // namespace specula
