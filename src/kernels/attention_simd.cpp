// The SIMD attention kernel for one row and a run of query heads sharing a
// KV head, compiled once per instruction set by Highway's foreach_target and
// chosen at run time. Per head, the algorithm is attend_one_head_scalar's
// (attention.cpp): blocks of keys, scores on the stack, an online softmax
// whose output slice is the accumulator. Vectorised: q.k over head_dim, exp over a block of scores,
// and the weighted sum of V rows, which keeps up to four vectors of the
// output in registers while it walks the block's V rows.
//
// hot: AttendHeads is where decode attention spends its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "kernels/attention_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// q.k over n values: two accumulators, then the scalar tail.
HWY_INLINE float Dot(DF df, const float* q, const float* k, int64_t n) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  auto sum0 = hn::Zero(df);
  auto sum1 = hn::Zero(df);
  int64_t d = 0;
  for (; d + 2 * lanes <= n; d += 2 * lanes) {
    sum0 = hn::MulAdd(hn::LoadU(df, q + d), hn::LoadU(df, k + d), sum0);
    sum1 = hn::MulAdd(hn::LoadU(df, q + d + lanes), hn::LoadU(df, k + d + lanes), sum1);
  }
  if (d + lanes <= n) {
    sum0 = hn::MulAdd(hn::LoadU(df, q + d), hn::LoadU(df, k + d), sum0);
    d += lanes;
  }
  float dot = hn::GetLane(hn::SumOfLanes(df, hn::Add(sum0, sum1)));
  for (; d < n; ++d) dot += q[d] * k[d];
  return dot;
}

// out[0, n) *= factor.
HWY_INLINE void Scale(DF df, float factor, float* out, int64_t n) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto vfactor = hn::Set(df, factor);
  int64_t d = 0;
  for (; d + lanes <= n; d += lanes)
    hn::StoreU(hn::Mul(hn::LoadU(df, out + d), vfactor), df, out + d);
  for (; d < n; ++d) out[d] *= factor;
}

// out[d] += sum_j weights[j] * v_j[d] for the block's V rows (v_j = v + j *
// stride), for d in [d0, d0 + kVectors * lanes).
template <int kVectors>
HWY_INLINE void AccumulateValues(DF df, const float* weights, int64_t block_len, const float* v,
                                 int64_t stride, float* out) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<DF> acc[kVectors];
  for (int i = 0; i < kVectors; ++i) acc[i] = hn::LoadU(df, out + i * lanes);
  for (int64_t j = 0; j < block_len; ++j) {
    const auto w = hn::Set(df, weights[j]);
    const float* vj = v + j * stride;
    for (int i = 0; i < kVectors; ++i)
      acc[i] = hn::MulAdd(w, hn::LoadU(df, vj + i * lanes), acc[i]);
  }
  for (int i = 0; i < kVectors; ++i) hn::StoreU(acc[i], df, out + i * lanes);
}

// How far ahead of the key being scored its successors are fetched.
constexpr int64_t kKeysAhead = 16;

// Brings the cache lines of one head's row of n floats towards L1.
HWY_INLINE void PrefetchRow(const float* p, int64_t n, bool valid) {
  if (!valid) return;
  constexpr int64_t kFloatsPerLine = 64 / sizeof(float);
  for (int64_t d = 0; d < n; d += kFloatsPerLine) __builtin_prefetch(p + d);
}

// One query head's online-softmax state across the key blocks.
struct HeadState {
  const float* q = nullptr;
  float* out = nullptr;  // head_dim floats: the accumulator, then the result
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;
};

// Folds keys [block_start, block_start + block_len) into one head's state.
// The first head of a group fetches ahead (prefetch = true); the others
// find the block's key and value rows in cache.
HWY_INLINE void AttendBlock(DF df, const AttentionShape& shape, const AttentionRow& row,
                            const float* keys, const float* values, int64_t block_start,
                            int64_t block_len, bool prefetch, float* scores, HeadState& h) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_dim = shape.n_head_kv * head_dim;
  const float lowest = -std::numeric_limits<float>::infinity();
  const float* block_keys = keys + block_start * kv_dim;
  const float* block_values = values + block_start * kv_dim;
  float block_max = lowest;
  for (int64_t j = 0; j < block_len; ++j) {
    if (prefetch) {
      // Key and value rows are a KV row apart (kv_dim floats, often 1 KB
      // or more): the loads waited on memory. Fetch the key kKeysAhead
      // rows on and this row's values, which the weighted sum reads.
      PrefetchRow(keys + (block_start + j + kKeysAhead) * kv_dim, head_dim,
                  block_start + j + kKeysAhead < row.n_keys);
      PrefetchRow(block_values + j * kv_dim, head_dim, true);
    }
    scores[j] = Dot(df, h.q, block_keys + j * kv_dim, head_dim) * shape.scale;
    block_max = std::max(block_max, scores[j]);
  }
  if (block_max > h.running_max) {
    // Rescale what was accumulated against the old maximum.
    const float correction = std::exp(h.running_max - block_max);
    h.running_sum *= correction;
    Scale(df, correction, h.out, head_dim);
    h.running_max = block_max;
  }
  // Scores -> weights in place; padding lanes give exp(-inf) = 0.
  const int64_t padded = (block_len + lanes - 1) / lanes * lanes;
  for (int64_t j = block_len; j < padded; ++j) scores[j] = lowest;
  const auto vmax = hn::Set(df, h.running_max);
  auto sum = hn::Zero(df);
  for (int64_t j = 0; j < padded; j += lanes) {
    const auto weight = hn::Exp(df, hn::Sub(hn::Load(df, scores + j), vmax));
    sum = hn::Add(sum, weight);
    hn::Store(weight, df, scores + j);
  }
  h.running_sum += hn::GetLane(hn::SumOfLanes(df, sum));

  float* out = h.out;
  int64_t d = 0;
  for (; d + 4 * lanes <= head_dim; d += 4 * lanes)
    AccumulateValues<4>(df, scores, block_len, block_values + d, kv_dim, out + d);
  for (; d + lanes <= head_dim; d += lanes)
    AccumulateValues<1>(df, scores, block_len, block_values + d, kv_dim, out + d);
  for (; d < head_dim; ++d) {
    float acc = out[d];
    for (int64_t j = 0; j < block_len; ++j) acc += scores[j] * block_values[j * kv_dim + d];
    out[d] = acc;
  }
}

// Query heads [head_begin, head_end), which share one KV head, block by
// block: each block of keys and values is read from memory once for all of
// them (a GQA model has 4-8 query heads per KV head, and a long context's
// keys do not stay in cache from one head's whole pass to the next). Each
// head's arithmetic is the same as alone, so its result is too.
HWY_NOINLINE void AttendHeads(const AttentionShape& shape, const AttentionRow& row,
                              int64_t head_begin, int64_t head_end) {
  const DF df;
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_head = head_begin / (shape.n_head / shape.n_head_kv);
  const float* keys = row.keys + kv_head * head_dim;
  const float* values = row.values + kv_head * head_dim;
  constexpr int64_t kMaxHeads = 64;
  HeadState heads[kMaxHeads];
  const int64_t n_heads = head_end - head_begin;
  for (int64_t i = 0; i < n_heads; ++i) {
    heads[i].q = row.query + (head_begin + i) * head_dim;
    heads[i].out = row.out + (head_begin + i) * head_dim;
    std::fill(heads[i].out, heads[i].out + head_dim, 0.0f);
  }
  // Room to round a block up to whole vectors for the exp.
  constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
  alignas(HWY_MAX_BYTES) float scores[kAttentionKeysPerBlock + kMaxLanes];
  for (int64_t block_start = 0; block_start < row.n_keys; block_start += kAttentionKeysPerBlock) {
    const int64_t block_len = std::min(kAttentionKeysPerBlock, row.n_keys - block_start);
    for (int64_t i = 0; i < n_heads; ++i) {
      AttendBlock(df, shape, row, keys, values, block_start, block_len, i == 0, scores, heads[i]);
    }
  }
  for (int64_t i = 0; i < n_heads; ++i)
    Scale(df, 1.0f / heads[i].running_sum, heads[i].out, head_dim);
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(AttendHeads);

void attend_heads_simd(const AttentionShape& shape, const AttentionRow& row, int64_t head_begin,
                       int64_t head_end) {
  assert(head_end - head_begin <= 64);
  HWY_DYNAMIC_DISPATCH(AttendHeads)(shape, row, head_begin, head_end);
}

}  // namespace specula
#endif  // HWY_ONCE
