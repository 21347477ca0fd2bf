#include "model/kv_cache.h"

#include <cassert>

#include "core/error.h"

namespace specula {

KvCache::KvCache(int32_t n_layer, int32_t n_seq, int32_t n_ctx, int32_t kv_dim)
    : n_layer_(n_layer), n_seq_(n_seq), n_ctx_(n_ctx), kv_dim_(kv_dim) {
  if (n_layer <= 0 || n_seq <= 0 || n_ctx <= 0 || kv_dim <= 0) {
    fail("KV cache: n_layer (", n_layer, "), n_seq (", n_seq, "), n_ctx (", n_ctx, ") and kv_dim (",
         kv_dim, ") must all be positive");
  }
  lengths_.assign(static_cast<size_t>(n_seq), 0);
  const size_t count = static_cast<size_t>(n_layer) * static_cast<size_t>(n_seq) *
                       static_cast<size_t>(n_ctx) * static_cast<size_t>(kv_dim);
  keys_.resize(count);
  values_.resize(count);
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
  return ((static_cast<size_t>(layer) * n_seq_ + seq) * n_ctx_ + position) * kv_dim_;
}

float* KvCache::key(int32_t layer, int32_t seq, int32_t position) {
  return keys_.data() + offset(layer, seq, position);
}
float* KvCache::value(int32_t layer, int32_t seq, int32_t position) {
  return values_.data() + offset(layer, seq, position);
}
const float* KvCache::key(int32_t layer, int32_t seq, int32_t position) const {
  return keys_.data() + offset(layer, seq, position);
}
const float* KvCache::value(int32_t layer, int32_t seq, int32_t position) const {
  return values_.data() + offset(layer, seq, position);
}

}  // namespace specula
