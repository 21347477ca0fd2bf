// The SIMD attention kernel for one row and a run of query heads sharing a
// KV head, compiled once per instruction set by Highway's foreach_target and
// chosen at run time. Per head, the algorithm is attend_one_head_scalar's
// (attention.cpp): blocks of keys, scores on the stack, an online softmax
// whose output slice is the accumulator. Vectorised: the scores (on
// AVX-512 with head_dim a multiple of 16, tiles of 4 heads x 4 keys whose
// lane sums one ReduceAdd16 finishes; elsewhere q.k per key), exp over a
// block of scores, and the weighted sum of V rows, which walks the block's
// V rows once for up to four heads at a time. An F16 store's block of
// keys and values is first widened to floats in per-thread scratch, once
// for all the heads of the run.
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

// q.k over n values: two accumulators, then the scalar tail.
template <class T>
HWY_INLINE float Dot(DF df, const float* q, const T* k, int64_t n) {
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  auto sum0 = hn::Zero(df);
  auto sum1 = hn::Zero(df);
  int64_t d = 0;
  for (; d + 2 * lanes <= n; d += 2 * lanes) {
    sum0 = hn::MulAdd(hn::LoadU(df, q + d), LoadKv(df, k + d), sum0);
    sum1 = hn::MulAdd(hn::LoadU(df, q + d + lanes), LoadKv(df, k + d + lanes), sum1);
  }
  if (d + lanes <= n) {
    sum0 = hn::MulAdd(hn::LoadU(df, q + d), LoadKv(df, k + d), sum0);
    d += lanes;
  }
  float dot = hn::GetLane(hn::SumOfLanes(df, hn::Add(sum0, sum1)));
  // fma, not q * k + dot: the compiler contracted that for float keys and
  // not for widened F16 ones, so the two paths' sums differed in the last bit.
  for (; d < n; ++d) dot = std::fma(q[d], KvScalar(k + d), dot);
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

// How far ahead of the key being scored its successors are fetched.
constexpr int64_t kKeysAhead = 16;

// Brings the cache lines of `bytes` bytes from p towards L1.
HWY_INLINE void PrefetchBytes(const void* p, int64_t bytes, bool valid) {
  if (!valid) return;
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(static_cast<const char*>(p) + b);
}

// One key block of a row and KV head: len keys and values from keys and
// values, rows kv_dim values (of T: float or F16 bits) apart; keys_left
// counts the row's keys from the block's first, so that fetching ahead
// stops at the last. fetch: whether the rows are worth fetching ahead (not
// when they were widened into scratch that is already in L1).
template <class T>
struct KeyBlock {
  const T* keys = nullptr;
  const T* values = nullptr;
  int64_t len = 0;
  int64_t kv_dim = 0;
  int64_t keys_left = 0;
  bool fetch = true;
};

// Fetches key row j + kKeysAhead and value row j of the block.
template <class T>
HWY_INLINE void PrefetchKey(const KeyBlock<T>& b, int64_t head_dim, int64_t j) {
  if (!b.fetch) return;
  const auto bytes = static_cast<int64_t>(head_dim * sizeof(T));
  PrefetchBytes(b.keys + (j + kKeysAhead) * b.kv_dim, bytes, j + kKeysAhead < b.keys_left);
  PrefetchBytes(b.values + j * b.kv_dim, bytes, true);
}

// Rows [0, len) of one KV head in an F16 store (from: its first row's
// slice, rows kv_dim values apart) widened to floats at to, head_dim
// apart; rows_left counts the store's rows from `from`, so that fetching
// ahead stops at the last.
HWY_INLINE void WidenRows(DF df, const uint16_t* from, int64_t kv_dim, int64_t head_dim,
                          int64_t len, int64_t rows_left, float* HWY_RESTRICT to) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto row_bytes = static_cast<int64_t>(head_dim * sizeof(uint16_t));
  for (int64_t j = 0; j < len; ++j) {
    const uint16_t* row = from + j * kv_dim;
    PrefetchBytes(row + kKeysAhead * kv_dim, row_bytes, j + kKeysAhead < rows_left);
    float* out = to + j * head_dim;
    int64_t d = 0;
    for (; d + lanes <= head_dim; d += lanes) {
      const auto half = hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row + d));
      hn::StoreU(hn::PromoteTo(df, half), df, out + d);
    }
    for (; d < head_dim; ++d) out[d] = f16_to_f32(row[d]);
  }
}

// scores[j] = scale * q.k_j for the block's keys, one key at a time. The
// first head of a group fetches ahead (prefetch = true); the others find
// the block's key and value rows in cache.
template <class T>
HWY_INLINE void ScoreKeys(DF df, const AttentionShape& shape, const KeyBlock<T>& b, const float* q,
                          bool prefetch, float* scores) {
  for (int64_t j = 0; j < b.len; ++j) {
    // Key and value rows are a KV row apart (kv_dim floats, often 1 KB or
    // more): the loads waited on memory. Fetch the key kKeysAhead rows on
    // and this row's values, which the weighted sum reads.
    if (prefetch) PrefetchKey(b, shape.head_dim, j);
    scores[j] = Dot(df, q, b.keys + j * b.kv_dim, shape.head_dim) * shape.scale;
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#include "kernels/reduce_add16-inl.h"

// The scores of a block for n_heads heads at once (head_dim a multiple of
// 16): tiles of 4 heads x 4 keys keep 16 (head, key) sums in registers,
// each over head_dim in lanes, and one ReduceAdd16 turns them into 16
// scores. Per score the vector loop takes 1 FMA per 16 values where a
// lone q.k took 1 plus its share of a horizontal sum per key. A (head,
// key) pair's sum takes the same operations whatever the tile around it,
// so a head's scores do not depend on the heads it runs with (the run
// split depends on the thread count): a run of heads that is not a
// multiple of 4, and a block that is not, fill the tile by repeating the
// last head and key (their sums go to scratch rows and padding).
// scores: rows of kScoreStride floats, one per head, plus 3 scratch rows.
template <class T>
HWY_INLINE void ScoreTiles(const AttentionShape& shape, const KeyBlock<T>& b,
                           const float* const* queries, int64_t n_heads, float* scores,
                           int64_t score_stride) {
  const int64_t vectors = shape.head_dim / 16;
  const __m512 scale = _mm512_set1_ps(shape.scale);
  for (int64_t h0 = 0; h0 < n_heads; h0 += 4) {
    const float* q[4];
    for (int t = 0; t < 4; ++t) q[t] = queries[std::min<int64_t>(h0 + t, n_heads - 1)];
    float* out = scores + h0 * score_stride;
    for (int64_t j0 = 0; j0 < b.len; j0 += 4) {
      const T* k[4];
      for (int e = 0; e < 4; ++e) k[e] = b.keys + std::min<int64_t>(j0 + e, b.len - 1) * b.kv_dim;
      if (h0 == 0) {
        for (int e = 0; e < 4; ++e)
          PrefetchKey(b, shape.head_dim, std::min<int64_t>(j0 + e, b.len - 1));
      }
      __m512 acc[16];  // acc[4 e + t] = (head h0 + t, key j0 + e): lane 4 t + e of the sums
      for (__m512& a : acc) a = _mm512_setzero_ps();
      for (int64_t v = 0; v < vectors; ++v) {
        __m512 key[4];
        for (int e = 0; e < 4; ++e) {
          if constexpr (std::is_same_v<T, float>) {
            key[e] = _mm512_loadu_ps(k[e] + 16 * v);
          } else {
            key[e] = _mm512_cvtph_ps(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k[e] + 16 * v)));
          }
        }
        for (int t = 0; t < 4; ++t) {
          const __m512 qv = _mm512_loadu_ps(q[t] + 16 * v);
          for (int e = 0; e < 4; ++e) acc[4 * e + t] = _mm512_fmadd_ps(qv, key[e], acc[4 * e + t]);
        }
      }
      const __m512 sums = _mm512_mul_ps(ReduceAdd16(acc), scale);
      _mm_storeu_ps(out + j0, _mm512_extractf32x4_ps(sums, 0));
      _mm_storeu_ps(out + score_stride + j0, _mm512_extractf32x4_ps(sums, 1));
      _mm_storeu_ps(out + 2 * score_stride + j0, _mm512_extractf32x4_ps(sums, 2));
      _mm_storeu_ps(out + 3 * score_stride + j0, _mm512_extractf32x4_ps(sums, 3));
    }
  }
}
#endif

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
    AccumulateValues<kHeads, 4>(df, weights, weight_stride, b.len, b.values, b.kv_dim, heads, d);
  }
  for (; d + lanes <= head_dim; d += lanes) {
    AccumulateValues<kHeads, 1>(df, weights, weight_stride, b.len, b.values, b.kv_dim, heads, d);
  }
  for (; d < head_dim; ++d) {
    for (int h = 0; h < kHeads; ++h) {
      float acc = heads[h].out[d];
      for (int64_t j = 0; j < b.len; ++j) {
        acc = std::fma(weights[h * weight_stride + j], KvScalar(b.values + j * b.kv_dim + d), acc);
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
  bool tiles;  // AVX-512 score tiles (head_dim a multiple of 16)
};

// One key block for every pair: scores, the masked softmax, then the V
// passes over pairs that see the same keys (kValueHeads at a time, else one
// by one).
template <class T>
HWY_INLINE void AttendBlock(DF df, const AttentionShape& shape, const KeyBlock<T>& block,
                            const BlockPairs& pairs) {
  const int64_t stride = pairs.score_stride;
  if (pairs.tiles) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    ScoreTiles(shape, block, pairs.queries, pairs.n, pairs.scores, stride);
#endif
  } else {
    for (int64_t p = 0; p < pairs.n; ++p) {
      ScoreKeys(df, shape, block, pairs.queries[p], p == 0, pairs.scores + p * stride);
    }
  }
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
  // Scores, one row per pair (and 3 scratch rows for the tiles' padding),
  // each with room to round a block up to whole vectors for the exp.
  constexpr int64_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
  constexpr int64_t kScoreStride = kAttentionKeysPerBlock + kMaxLanes;
  alignas(HWY_MAX_BYTES) float scores[(kMaxPairs + 3) * kScoreStride];
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const bool tiles = head_dim % 16 == 0;
#else
  const bool tiles = false;
#endif
  for (int64_t block_start = 0; block_start < n_keys; block_start += kAttentionKeysPerBlock) {
    const int64_t len = std::min(kAttentionKeysPerBlock, n_keys - block_start);
    const int64_t keys_left = n_keys - block_start;
    const int64_t first = block_start * kv_dim + kv_offset;
    // The keys of this block each pair sees: 0 (none: it ended before the
    // block) to len.
    int64_t seen[kMaxPairs];
    for (int64_t p = 0; p < n_pairs; ++p)
      seen[p] = std::clamp<int64_t>(limit[p] - block_start, 0, len);
    const BlockPairs pairs{queries, heads, seen, n_pairs, scores, kScoreStride, tiles};
    if (!half) {
      const auto* keys = static_cast<const float*>(first_row.keys) + first;
      const auto* values = static_cast<const float*>(first_row.values) + first;
      AttendBlock(df, shape, KeyBlock<float>{keys, values, len, kv_dim, keys_left}, pairs);
    } else if (widen) {
      float* keys = widened.data();
      float* values = keys + kAttentionKeysPerBlock * head_dim;
      WidenRows(df, static_cast<const uint16_t*>(first_row.keys) + first, kv_dim, head_dim, len,
                keys_left, keys);
      WidenRows(df, static_cast<const uint16_t*>(first_row.values) + first, kv_dim, head_dim, len,
                keys_left, values);
      AttendBlock(df, shape, KeyBlock<float>{keys, values, len, head_dim, keys_left, false}, pairs);
    } else {
      const auto* keys = static_cast<const uint16_t*>(first_row.keys) + first;
      const auto* values = static_cast<const uint16_t*>(first_row.values) + first;
      AttendBlock(df, shape, KeyBlock<uint16_t>{keys, values, len, kv_dim, keys_left}, pairs);
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
