// Keys and values of every layer for each sequence, with O(1) truncation so
// that speculative steps can roll back rejected positions. Stored as F32 or
// as F16 (half the memory; each value rounded to nearest even when
// written, as llama.cpp's default cache does).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/dtype.h"
#include "kernels/attention.h"

namespace specula {

class KvCache {
 public:
  KvCache() = default;
  // kv_dim = n_head_kv * head_dim. Storage: per layer and sequence, the
  // keys of n_ctx positions as attention() reads them (channel by channel
  // in blocks of kKeyBlockPositions positions, kernels/attention.h; n_ctx
  // rounded up to whole blocks), and n_ctx rows of kv_dim values; all of
  // `type` (kF32 or kF16).
  KvCache(int32_t n_layer, int32_t n_seq, int32_t n_ctx, int32_t kv_dim, DType type = DType::kF32);

  int32_t n_layer() const { return n_layer_; }
  int32_t n_seq() const { return n_seq_; }
  int32_t n_ctx() const { return n_ctx_; }
  int32_t kv_dim() const { return kv_dim_; }
  DType type() const { return type_; }
  // Bytes of one position's keys (or values): kv_dim values of type().
  size_t row_bytes() const;
  // Bytes of one stored value of `type` (kF32 or kF16).
  static size_t value_bytes(DType type);

  // Positions held for `seq`.
  int32_t length(int32_t seq) const { return lengths_[seq]; }
  // Forgets positions >= n of `seq` (n <= length). O(1).
  void truncate(int32_t seq, int32_t n);
  void clear() { std::fill(lengths_.begin(), lengths_.end(), 0); }
  // Marks positions [0, n) of `seq` as held (the model calls this after
  // writing rows).
  void set_length(int32_t seq, int32_t n);

  // Stores the keys and values (kv_dim floats each) of (layer, seq,
  // position), converted to the cache's type.
  void write(int32_t layer, int32_t seq, int32_t position, const float* key, const float* value);

  // The key store of (layer, seq): key_store_elements(kv_dim, n_ctx)
  // values of type() in attention()'s layout.
  const void* keys(int32_t layer, int32_t seq) const;
  // Channel `channel` of the key at (layer, seq, position), as a float.
  float key_at(int32_t layer, int32_t seq, int32_t position, int32_t channel) const;
  // Row of values for (layer, seq, position): kv_dim values of type(); the
  // rows of a (layer, seq) follow each other.
  void* value(int32_t layer, int32_t seq, int32_t position);
  const void* value(int32_t layer, int32_t seq, int32_t position) const;

  uint64_t bytes() const { return keys_.size() + values_.size(); }

 private:
  // Byte offset of the value row.
  size_t offset(int32_t layer, int32_t seq, int32_t position) const;
  // Byte offset of the key store of (layer, seq).
  size_t key_store_offset(int32_t layer, int32_t seq) const;
  int32_t n_layer_ = 0, n_seq_ = 0, n_ctx_ = 0, kv_dim_ = 0;
  DType type_ = DType::kF32;
  std::vector<int32_t> lengths_;
  AlignedBuffer<uint8_t> keys_;
  AlignedBuffer<uint8_t> values_;
};

}  // namespace specula
