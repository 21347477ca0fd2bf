// The SIMD attention kernel for one row and a run of query heads sharing a
// KV head, compiled once per instruction set by Highway's foreach_target and
// chosen at run time. Per head, the algorithm is attend_one_head_scalar's
// (attention.cpp): blocks of keys, scores on the stack, an online softmax
// whose output slice is the accumulator. Vectorised: the scores (keys are
// stored channel by channel in blocks of 16 positions, attention.h, so a
// vector holds one channel of consecutive keys: tiles of up to 4 pairs x
// 4 key vectors, one FMA per channel, pair and vector, and no horizontal
// sums), exp over a block of scores, and the weighted sum of V rows, which
// walks the block's V rows once for up to four heads at a time. An F16
// store's block of keys and values is first widened to floats in
// per-thread scratch, once for all the heads of the run.
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
#include <type_traits>

#include "core/aligned_buffer.h"
#include "core/f16.h"
#include "kernels/attention_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// A vector of stored keys or values (T: float, or uint16_t holding F16)
// from p, as floats; and one of them. Widening F16 is exact, so every path
// that reads a value gets the same float.
template <class T>
HWY_INLINE hn::Vec<DF> LoadKv(DF df, const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, p);
  } else {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
}
template <class T>
HWY_INLINE float KvScalar(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return *p;
  } else {
    return f16_to_f32(*p);
  }
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

// How far ahead of the value row being widened its successors are fetched.
constexpr int64_t kRowsAhead = 16;

// Brings the cache lines of `bytes` bytes from p towards L1.
HWY_INLINE void PrefetchBytes(const void* p, int64_t bytes, bool valid) {
  if (!valid) return;
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(static_cast<const char*>(p) + b);
}

// One key block of a row and KV head, len keys from the block's first.
// keys: the block's first sub-block of kKeyBlockPositions keys at this
// head's channel 0 (channel d at + d kKeyBlockPositions), sub-blocks
// key_stride elements apart; values: rows value_stride elements apart.
// Of T: float, or uint16_t holding F16.
template <class T>
struct KeyBlock {
  const T* keys = nullptr;
  int64_t key_stride = 0;
  const T* values = nullptr;
  int64_t value_stride = 0;
  int64_t len = 0;
};

// Cache lines fetched while a block is scored, spread over the channel
// steps of its first score tile: the next block's key sub-blocks for this
// head (n_keys of them, key_stride bytes apart; channel d's 16 values at +
// d channel_bytes) and this block's value rows (n_values rows of
// value_bytes, value_stride bytes apart). Without it the key and value
// loads of a long context wait on memory: a head's sub-blocks are 2-4 KB
// runs 8-16 KB apart, and its value rows 128-256 B pieces a KV row apart,
// which the hardware prefetchers do not follow.
struct BlockFetch {
  const char* keys = nullptr;
  int64_t key_stride = 0, channel_bytes = 0, n_keys = 0;
  const char* values = nullptr;
  int64_t value_stride = 0, value_bytes = 0, n_values = 0;

  // What channel step d of head_dim fetches: channel d of every next key
  // sub-block, and its share of the value rows.
  HWY_INLINE void fetch(int64_t d, int64_t head_dim) const {
    for (int64_t s = 0; s < n_keys; ++s) {
      __builtin_prefetch(keys + s * key_stride + d * channel_bytes);
    }
    const int64_t per_step = (n_values + head_dim - 1) / head_dim;
    for (int64_t j = d * per_step; j < std::min(n_values, (d + 1) * per_step); ++j) {
      for (int64_t b = 0; b < value_bytes; b += 64) {
        __builtin_prefetch(values + j * value_stride + b);
      }
    }
  }
};

// Rows [0, len) of one KV head in an F16 value store (from: its first
// row's slice, rows kv_dim values apart) widened to floats at to,
// head_dim apart; rows_left counts the store's rows from `from`, so that
// fetching ahead stops at the last.
HWY_INLINE void WidenRows(DF df, const uint16_t* from, int64_t kv_dim, int64_t head_dim,
                          int64_t len, int64_t rows_left, float* HWY_RESTRICT to) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto row_bytes = static_cast<int64_t>(head_dim * sizeof(uint16_t));
  for (int64_t j = 0; j < len; ++j) {
    const uint16_t* row = from + j * kv_dim;
    PrefetchBytes(row + kRowsAhead * kv_dim, row_bytes, j + kRowsAhead < rows_left);
    float* out = to + j * head_dim;
    int64_t d = 0;
    for (; d + lanes <= head_dim; d += lanes) {
      const auto half = hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row + d));
      hn::StoreU(hn::PromoteTo(df, half), df, out + d);
    }
    for (; d < head_dim; ++d) out[d] = f16_to_f32(row[d]);
  }
}

// n_sub key sub-blocks of one KV head in an F16 key store (from: the
// first one at the head's channel 0, sub-blocks stride elements apart)
// widened to floats at to, head_dim kKeyBlockPositions apart.
HWY_INLINE void WidenKeys(DF df, const uint16_t* from, int64_t stride, int64_t head_dim,
                          int64_t n_sub, float* HWY_RESTRICT to) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n = head_dim * kKeyBlockPositions;  // a multiple of lanes
  for (int64_t s = 0; s < n_sub; ++s) {
    const auto* sub = reinterpret_cast<const hwy::float16_t*>(from + s * stride);
    for (int64_t i = 0; i < n; i += lanes) {
      hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, sub + i)), df, to + s * n + i);
    }
  }
}

// The scores of kPairs pairs (queries q[0, kPairs)) for kVectors vectors
// of the block's keys from vector u0 (vector u: keys [u lanes, (u + 1)
// lanes)), scaled, at scores + p stride + u lanes. Each lane is a chain of
// FMAs over the channels in order (the scalar twin's), so a score is the
// same whatever tile, pairs or batch it is computed in. kFetch: issue
// fetch's lines along the way (the block's first tile).
template <int kPairs, int kVectors, bool kFetch, class T>
HWY_INLINE void ScoreTile(DF df, const KeyBlock<T>& b, int64_t head_dim, const float* const* q,
                          int64_t u0, float scale, float* scores, int64_t stride,
                          const BlockFetch& fetch) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const T* k[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const int64_t first = (u0 + v) * lanes;
    k[v] = b.keys + first / kKeyBlockPositions * b.key_stride + first % kKeyBlockPositions;
  }
  const float* qp[kPairs];
  for (int p = 0; p < kPairs; ++p) qp[p] = q[p];
  hn::Vec<DF> acc[kPairs][kVectors];
  for (int p = 0; p < kPairs; ++p) {
    for (int v = 0; v < kVectors; ++v) acc[p][v] = hn::Zero(df);
  }
  for (int64_t d = 0; d < head_dim; ++d) {
    if constexpr (kFetch) fetch.fetch(d, head_dim);
    hn::Vec<DF> key[kVectors];
    for (int v = 0; v < kVectors; ++v) key[v] = LoadKv(df, k[v] + d * kKeyBlockPositions);
    for (int p = 0; p < kPairs; ++p) {
      const auto qd = hn::Set(df, qp[p][d]);
      for (int v = 0; v < kVectors; ++v) acc[p][v] = hn::MulAdd(qd, key[v], acc[p][v]);
    }
  }
  const auto vscale = hn::Set(df, scale);
  for (int p = 0; p < kPairs; ++p) {
    for (int v = 0; v < kVectors; ++v) {
      hn::StoreU(hn::Mul(acc[p][v], vscale), df, scores + p * stride + (u0 + v) * lanes);
    }
  }
}

#include "kernels/with_count-inl.h"

// Pairs and key vectors of a score tile: 4 x 4 accumulators fit AVX-512's
// 32 registers; 16-register targets take 2 x 4.
constexpr int kScorePairs = HWY_MAX_BYTES >= 64 ? 4 : 2;
constexpr int kScoreVectors = 4;
static_assert(kAttentionKeysPerBlock % kKeyBlockPositions == 0, "blocks of whole sub-blocks");

// scores + p stride = the block's scores for pair p (queries[p]), whole
// vectors (up to len rounded up to lanes; the lanes past len hold
// whatever the store's unwritten positions give, and are masked later).
template <class T>
HWY_INLINE void ScoreBlock(DF df, const AttentionShape& shape, const KeyBlock<T>& b,
                           const float* const* queries, int64_t n_pairs, float* scores,
                           int64_t stride, const BlockFetch& fetch) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  static_assert(kKeyBlockPositions % (HWY_MAX_BYTES / sizeof(float)) == 0,
                "a vector of keys lies within one sub-block");
  const int64_t vectors = (b.len + lanes - 1) / lanes;
  for (int64_t p0 = 0; p0 < n_pairs; p0 += kScorePairs) {
    WithCount<kScorePairs>(std::min<int64_t>(kScorePairs, n_pairs - p0), [&](auto pairs) {
      for (int64_t u0 = 0; u0 < vectors; u0 += kScoreVectors) {
        WithCount<kScoreVectors>(std::min<int64_t>(kScoreVectors, vectors - u0), [&](auto n) {
          constexpr int kPairs = decltype(pairs)::value, kVectors = decltype(n)::value;
          if (p0 == 0 && u0 == 0) {
            ScoreTile<kPairs, kVectors, true>(df, b, shape.head_dim, queries + p0, u0, shape.scale,
                                              scores + p0 * stride, stride, fetch);
          } else {
            ScoreTile<kPairs, kVectors, false>(df, b, shape.head_dim, queries + p0, u0, shape.scale,
                                               scores + p0 * stride, stride, fetch);
          }
        });
      }
    });
  }
}

// One query head's online-softmax state across the key blocks.
struct HeadState {
  float* out = nullptr;  // head_dim floats: the accumulator, then the result
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;
};

// Turns a block's scores (scores[0, block_len)) into softmax weights
// against the head's running maximum, in place, rescaling what the head
// accumulated if the block raises that maximum. scores has room for
// block_len rounded up to whole vectors.
HWY_INLINE void SoftmaxBlock(DF df, int64_t head_dim, int64_t block_len, float* scores,
                             HeadState& h) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const float lowest = -std::numeric_limits<float>::infinity();
  // Padding lanes give exp(-inf) = 0.
  const int64_t padded = (block_len + lanes - 1) / lanes * lanes;
  for (int64_t j = block_len; j < padded; ++j) scores[j] = lowest;
  auto vmax = hn::Set(df, lowest);
  for (int64_t j = 0; j < padded; j += lanes) vmax = hn::Max(vmax, hn::Load(df, scores + j));
  const float block_max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  if (block_max > h.running_max) {
    // Rescale what was accumulated against the old maximum.
    const float correction = std::exp(h.running_max - block_max);
    h.running_sum *= correction;
    Scale(df, correction, h.out, head_dim);
    h.running_max = block_max;
  }
  vmax = hn::Set(df, h.running_max);
  auto sum = hn::Zero(df);
  for (int64_t j = 0; j < padded; j += lanes) {
    const auto weight = hn::Exp(df, hn::Sub(hn::Load(df, scores + j), vmax));
    sum = hn::Add(sum, weight);
    hn::Store(weight, df, scores + j);
  }
  h.running_sum += hn::GetLane(hn::SumOfLanes(df, sum));
}

// out_i[d] += sum_j weights_i[j] * v_j[d] for kHeads heads (weights_i =
// weights + i * stride, out_i = heads[i].out + d0) over the block's V rows
// (v_j = v + j * kv_dim), for d in [d0, d0 + kVectors * lanes). The heads
// share each loaded V vector; each head's sums see the keys in order, as
// alone.
template <int kHeads, int kVectors, class T>
HWY_INLINE void AccumulateValues(DF df, const float* weights, int64_t weight_stride,
                                 int64_t block_len, const T* v, int64_t kv_dim, HeadState* heads,
                                 int64_t d0) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<DF> acc[kHeads][kVectors];
  for (int h = 0; h < kHeads; ++h) {
    for (int i = 0; i < kVectors; ++i) acc[h][i] = hn::LoadU(df, heads[h].out + d0 + i * lanes);
  }
  for (int64_t j = 0; j < block_len; ++j) {
    const T* vj = v + j * kv_dim + d0;
    hn::Vec<DF> value[kVectors];
    for (int i = 0; i < kVectors; ++i) value[i] = LoadKv(df, vj + i * lanes);
    for (int h = 0; h < kHeads; ++h) {
      const auto w = hn::Set(df, weights[h * weight_stride + j]);
      for (int i = 0; i < kVectors; ++i) acc[h][i] = hn::MulAdd(w, value[i], acc[h][i]);
    }
  }
  for (int h = 0; h < kHeads; ++h) {
    for (int i = 0; i < kVectors; ++i) hn::StoreU(acc[h][i], df, heads[h].out + d0 + i * lanes);
  }
}

// The block's weighted V rows into kHeads heads' outputs, over head_dim:
// four vectors at a time, then one, then a scalar tail.
template <int kHeads, class T>
HWY_INLINE void AccumulateBlock(DF df, int64_t head_dim, const KeyBlock<T>& b, const float* weights,
                                int64_t weight_stride, HeadState* heads) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t d = 0;
  for (; d + 4 * lanes <= head_dim; d += 4 * lanes) {
    AccumulateValues<kHeads, 4>(df, weights, weight_stride, b.len, b.values, b.value_stride, heads,
                                d);
  }
  for (; d + lanes <= head_dim; d += lanes) {
    AccumulateValues<kHeads, 1>(df, weights, weight_stride, b.len, b.values, b.value_stride, heads,
                                d);
  }
  for (; d < head_dim; ++d) {
    for (int h = 0; h < kHeads; ++h) {
      float acc = heads[h].out[d];
      for (int64_t j = 0; j < b.len; ++j) {
        acc = std::fma(weights[h * weight_stride + j], KvScalar(b.values + j * b.value_stride + d),
                       acc);
      }
      heads[h].out[d] = acc;
    }
  }
}

// Heads a V pass serves at once: 4 x 4 accumulators fit AVX-512's 32
// registers; 16-register targets take 2.
constexpr int kValueHeads = HWY_MAX_BYTES >= 64 ? 4 : 2;

// From this many pairs an F16 block is widened into scratch once; below
// it each pair converts the keys and values it loads (widening converts
// once but then stores and reloads). kernels_bench AttentionF16/4x2x32
// (the shipped draft's heads: 2 pairs at 1 row), 512-2048 keys: converting
// on load 0.81x the time of widening, level with an F32 cache.
constexpr int64_t kWidenMinPairs = 4;

// The (row, head) pairs of a task, as AttendBlock sees them: pair p's
// query, softmax state and the keys of the block it sees (seen[p]); its
// scores at scores + p * score_stride.
struct BlockPairs {
  const float* const* queries;
  HeadState* heads;
  const int64_t* seen;
  int64_t n;
  float* scores;
  int64_t score_stride;
};

// One key block for every pair: scores, the masked softmax, then the V
// passes over pairs that see the same keys (kValueHeads at a time, else one
// by one). fetch: lines to fetch while scoring.
template <class T>
HWY_INLINE void AttendBlock(DF df, const AttentionShape& shape, const KeyBlock<T>& block,
                            const BlockPairs& pairs, const BlockFetch& fetch) {
  const int64_t stride = pairs.score_stride;
  ScoreBlock(df, shape, block, pairs.queries, pairs.n, pairs.scores, stride, fetch);
  for (int64_t p = 0; p < pairs.n; ++p) {
    if (pairs.seen[p] == 0) continue;
    float* row_scores = pairs.scores + p * stride;
    std::fill(row_scores + pairs.seen[p], row_scores + block.len,
              -std::numeric_limits<float>::infinity());
    SoftmaxBlock(df, shape.head_dim, block.len, row_scores, pairs.heads[p]);
  }
  const int64_t* seen = pairs.seen;
  int64_t p = 0;
  while (p < pairs.n) {
    if (seen[p] == 0) {
      ++p;
      continue;
    }
    KeyBlock<T> seen_block = block;
    seen_block.len = seen[p];
    const bool together =
        p + kValueHeads <= pairs.n &&
        std::all_of(seen + p, seen + p + kValueHeads, [&](int64_t s) { return s == seen[p]; });
    if (together) {
      AccumulateBlock<kValueHeads>(df, shape.head_dim, seen_block, pairs.scores + p * stride,
                                   stride, pairs.heads + p);
      p += kValueHeads;
    } else {
      AccumulateBlock<1>(df, shape.head_dim, seen_block, pairs.scores + p * stride, stride,
                         pairs.heads + p);
      ++p;
    }
  }
}

// Query heads [head_begin, head_end), which share one KV head, of every
// row in `rows` (rows over the same keys and values), block by block: each
// block of keys and values is read from memory once for all the (row,
// head) pairs (a GQA model has 4-8 query heads per KV head, a verification
// 2-17 rows, and a long context's keys do not stay in cache from one
// pass to the next). A pair's arithmetic is the same whichever pairs run
// beside it, so its result does not depend on how the pool split the
// rows and heads: blocks run to the longest row's keys, and a row's keys
// past its own are scored but masked (score -inf before the softmax,
// whose sums then add exact zeros) and never enter its V sums (a pass over
// V rows takes only pairs that see the same number of the block's keys).
HWY_NOINLINE void AttendHeads(const AttentionShape& shape, std::span<const AttentionRow> rows,
                              int64_t head_begin, int64_t head_end) {
  const DF df;
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_dim = shape.n_head_kv * head_dim;
  const int64_t kv_head = head_begin / (shape.n_head / shape.n_head_kv);
  const int64_t kv_offset = kv_head * head_dim;
  const bool half = shape.kv_type == DType::kF16;
  const int64_t n_pairs = (head_end - head_begin) * static_cast<int64_t>(rows.size());
  // An F16 block is widened once into scratch when enough pairs read it;
  // with fewer, each pair converts what it loads (widening is exact: the
  // same floats either way).
  const bool widen = half && n_pairs >= kWidenMinPairs;
  // Widened F16 blocks: keys, then values.
  thread_local AlignedBuffer<float> widened;
  if (widen) {
    const auto need = static_cast<size_t>(2 * kAttentionKeysPerBlock * head_dim);
    if (widened.size() < need) widened.resize(need);
  }
  // (row, head) pairs, row by row: pair p has query queries[p], state
  // heads[p] and sees limit[p] keys.
  constexpr int64_t kMaxPairs = kMaxAttentionHeadRun;
  HeadState heads[kMaxPairs];
  const float* queries[kMaxPairs];
  int64_t limit[kMaxPairs];
  const int64_t heads_per_row = head_end - head_begin;
  assert(n_pairs <= kMaxPairs);
  int64_t n_keys = 0;  // the longest row's
  for (int64_t p = 0; p < n_pairs; ++p) {
    const AttentionRow& row = rows[static_cast<size_t>(p / heads_per_row)];
    const int64_t head = head_begin + p % heads_per_row;
    assert(row.n_keys >= 1);
    queries[p] = row.query + head * head_dim;
    heads[p].out = row.out + head * head_dim;
    std::fill(heads[p].out, heads[p].out + head_dim, 0.0f);
    limit[p] = row.n_keys;
    n_keys = std::max(n_keys, row.n_keys);
  }
  const AttentionRow& first_row = rows.front();
  // Scores, one row per pair, each with room to round a block up to whole
  // vectors for the exp.
  constexpr int64_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
  constexpr int64_t kScoreStride = kAttentionKeysPerBlock + kMaxLanes;
  alignas(HWY_MAX_BYTES) float scores[kMaxPairs * kScoreStride];
  // The key store: sub-blocks of kKeyBlockPositions keys, key_stride
  // elements apart; a head's channels from kv_offset within each.
  const int64_t key_stride = kKeyBlockPositions * kv_dim;
  const int64_t value_size = half ? sizeof(uint16_t) : sizeof(float);
  const auto sub_blocks = [](int64_t keys) {
    return (keys + kKeyBlockPositions - 1) / kKeyBlockPositions;
  };
  const auto* key_bytes = static_cast<const char*>(first_row.keys);
  const auto* value_bytes = static_cast<const char*>(first_row.values);
  for (int64_t block_start = 0; block_start < n_keys; block_start += kAttentionKeysPerBlock) {
    const int64_t len = std::min(kAttentionKeysPerBlock, n_keys - block_start);
    const int64_t next_len = std::min(kAttentionKeysPerBlock, n_keys - block_start - len);
    const int64_t key_first =
        block_start / kKeyBlockPositions * key_stride + kv_offset * kKeyBlockPositions;
    const int64_t next_key_first =
        key_first + kAttentionKeysPerBlock / kKeyBlockPositions * key_stride;
    const int64_t value_first = block_start * kv_dim + kv_offset;
    // The keys of this block each pair sees: 0 (none: it ended before the
    // block) to len.
    int64_t seen[kMaxPairs];
    for (int64_t p = 0; p < n_pairs; ++p)
      seen[p] = std::clamp<int64_t>(limit[p] - block_start, 0, len);
    const BlockPairs pairs{queries, heads, seen, n_pairs, scores, kScoreStride};
    // While this block is scored: the next block's keys, and this block's
    // values (the next block's when these were just widened).
    BlockFetch fetch{key_bytes + next_key_first * value_size,
                     key_stride * value_size,
                     kKeyBlockPositions * value_size,
                     sub_blocks(next_len),
                     value_bytes + value_first * value_size,
                     kv_dim * value_size,
                     head_dim * value_size,
                     len};
    if (!half) {
      const auto* keys = static_cast<const float*>(first_row.keys) + key_first;
      const auto* values = static_cast<const float*>(first_row.values) + value_first;
      AttendBlock(df, shape, KeyBlock<float>{keys, key_stride, values, kv_dim, len}, pairs, fetch);
    } else if (widen) {
      float* keys = widened.data();
      float* values = keys + kAttentionKeysPerBlock * head_dim;
      WidenKeys(df, static_cast<const uint16_t*>(first_row.keys) + key_first, key_stride, head_dim,
                sub_blocks(len), keys);
      WidenRows(df, static_cast<const uint16_t*>(first_row.values) + value_first, kv_dim, head_dim,
                len, n_keys - block_start, values);
      // This block's values were just read: fetch the next block's.
      fetch.values += len * kv_dim * value_size;
      fetch.n_values = next_len;
      AttendBlock(df, shape,
                  KeyBlock<float>{keys, head_dim * kKeyBlockPositions, values, head_dim, len},
                  pairs, fetch);
    } else {
      const auto* keys = static_cast<const uint16_t*>(first_row.keys) + key_first;
      const auto* values = static_cast<const uint16_t*>(first_row.values) + value_first;
      AttendBlock(df, shape, KeyBlock<uint16_t>{keys, key_stride, values, kv_dim, len}, pairs,
                  fetch);
    }
  }
  for (int64_t p = 0; p < n_pairs; ++p) {
    Scale(df, 1.0f / heads[p].running_sum, heads[p].out, head_dim);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(AttendHeads);

void attend_heads_simd(const AttentionShape& shape, std::span<const AttentionRow> rows,
                       int64_t head_begin, int64_t head_end) {
  assert(!rows.empty());
  assert((head_end - head_begin) * static_cast<int64_t>(rows.size()) <= kMaxAttentionHeadRun);
  HWY_DYNAMIC_DISPATCH(AttendHeads)(shape, rows, head_begin, head_end);
}

}  // namespace specula
#endif  // HWY_ONCE
