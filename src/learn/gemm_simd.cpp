// The packed float GEMM micro-kernel of train/gemm.h, compiled once per SIMD
// target by Highway's foreach_target and chosen at run time.
//
// One call computes one block of C (kBlockM x kBlockN). For each depth
// block of kBlockK, op(A) and op(B) are packed into panels (MR rows of A,
// NR columns of B, each k contiguous, zero-padded at the edges), then an
// MR x NR register tile of C is accumulated over the depth block by
// broadcast-A x vector-B fused multiply-adds. The per-element order of the
// sums depends only on the shape, never on the thread that runs the block.
//
// hot: MicroTile is where training spends most of its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "learn/gemm_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "learn/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using gemm_detail::GemmJob;
using gemm_detail::kBlockK;
using gemm_detail::kBlockM;
using gemm_detail::kBlockN;

using DF = hn::ScalableTag<float>;
constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(DF()));
// Two vectors of columns per tile; rows as many as the registers allow
// (AVX-512 has 32 vector registers: 16 accumulators; others 16: 12).
constexpr int64_t kNr = 2 * kLanes;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int64_t kMr = 8;
#else
constexpr int64_t kMr = 6;
#endif
static_assert(kBlockM % kMr == 0 && kBlockN % kNr == 0, "blocks must hold whole tiles");

// packed[p][k][0..kMr) = op(A)[row0 + p*kMr + r][k0 + k], zero past the edge.
void PackA(const GemmJob& job, int64_t row0, int64_t rows, int64_t k0, int64_t depth,
           float* packed) {
  const bool trans = job.shape.trans_a == Transpose::kYes;
  for (int64_t p = 0; p * kMr < rows; ++p) {
    float* panel = packed + p * kMr * depth;
    const int64_t valid = std::min(kMr, rows - p * kMr);
    for (int64_t k = 0; k < depth; ++k) {
      float* out = panel + k * kMr;
      for (int64_t r = 0; r < valid; ++r) {
        const int64_t i = row0 + p * kMr + r;
        out[r] = trans ? job.a[(k0 + k) * job.lda + i] : job.a[i * job.lda + k0 + k];
      }
      for (int64_t r = valid; r < kMr; ++r) out[r] = 0.0f;
    }
  }
}

// packed[q][k][0..kNr) = op(B)[k0 + k][col0 + q*kNr + c], zero past the edge.
void PackB(const GemmJob& job, int64_t col0, int64_t cols, int64_t k0, int64_t depth,
           float* packed) {
  const bool trans = job.shape.trans_b == Transpose::kYes;
  for (int64_t q = 0; q * kNr < cols; ++q) {
    float* panel = packed + q * kNr * depth;
    const int64_t valid = std::min(kNr, cols - q * kNr);
    if (!trans) {
      for (int64_t k = 0; k < depth; ++k) {
        const float* row = job.b + (k0 + k) * job.ldb + col0 + q * kNr;
        float* out = panel + k * kNr;
        std::memcpy(out, row, static_cast<size_t>(valid) * sizeof(float));
        for (int64_t c = valid; c < kNr; ++c) out[c] = 0.0f;
      }
    } else {
      for (int64_t c = 0; c < kNr; ++c) {
        const int64_t j = col0 + q * kNr + c;
        const float* row = job.b + j * job.ldb + k0;
        for (int64_t k = 0; k < depth; ++k) panel[k * kNr + c] = c < valid ? row[k] : 0.0f;
      }
    }
  }
}

// tile[r][c] = sum_k a_panel[k][r] * b_panel[k][c], k ascending.
HWY_NOINLINE void MicroTile(int64_t depth, const float* HWY_RESTRICT a_panel,
                            const float* HWY_RESTRICT b_panel, float* HWY_RESTRICT tile) {
  const DF d;
  using V = hn::Vec<DF>;
  V acc0[kMr];
  V acc1[kMr];
  for (int64_t r = 0; r < kMr; ++r) {
    acc0[r] = hn::Zero(d);
    acc1[r] = hn::Zero(d);
  }
  for (int64_t k = 0; k < depth; ++k) {
    const V b0 = hn::LoadU(d, b_panel + k * kNr);
    const V b1 = hn::LoadU(d, b_panel + k * kNr + kLanes);
    const float* a = a_panel + k * kMr;
    for (int64_t r = 0; r < kMr; ++r) {
      const V a_r = hn::Set(d, a[r]);
      acc0[r] = hn::MulAdd(a_r, b0, acc0[r]);
      acc1[r] = hn::MulAdd(a_r, b1, acc1[r]);
    }
  }
  for (int64_t r = 0; r < kMr; ++r) {
    hn::StoreU(acc0[r], d, tile + r * kNr);
    hn::StoreU(acc1[r], d, tile + r * kNr + kLanes);
  }
}

void GemmBlock(const GemmJob& job, int64_t row0, int64_t col0) {
  const int64_t rows = std::min(kBlockM, job.shape.m - row0);
  const int64_t cols = std::min(kBlockN, job.shape.n - col0);
  const int64_t padded_rows = (rows + kMr - 1) / kMr * kMr;
  const int64_t padded_cols = (cols + kNr - 1) / kNr * kNr;
  // Per-thread packing buffers: grown once, then reused by every block.
  thread_local std::vector<float> packed_a;
  thread_local std::vector<float> packed_b;
  packed_a.resize(static_cast<size_t>(kBlockM * kBlockK));
  packed_b.resize(static_cast<size_t>(kBlockN * kBlockK));
  HWY_ALIGN float tile[kMr * kNr];

  if (job.shape.k == 0 && !job.accumulate) {
    for (int64_t i = 0; i < rows; ++i) {
      std::fill_n(job.c + (row0 + i) * job.ldc + col0, cols, 0.0f);
    }
    return;
  }
  for (int64_t k0 = 0; k0 < job.shape.k; k0 += kBlockK) {
    const int64_t depth = std::min(kBlockK, job.shape.k - k0);
    const bool overwrite = k0 == 0 && !job.accumulate;
    PackA(job, row0, rows, k0, depth, packed_a.data());
    PackB(job, col0, cols, k0, depth, packed_b.data());
    for (int64_t q = 0; q < padded_cols; q += kNr) {
      const float* b_panel = packed_b.data() + q * depth;
      const int64_t valid_cols = std::min(kNr, cols - q);
      for (int64_t p = 0; p < padded_rows; p += kMr) {
        MicroTile(depth, packed_a.data() + p * depth, b_panel, tile);
        const int64_t valid_rows = std::min(kMr, rows - p);
        for (int64_t r = 0; r < valid_rows; ++r) {
          float* c = job.c + (row0 + p + r) * job.ldc + col0 + q;
          const float* t = tile + r * kNr;
          if (overwrite) {
            std::memcpy(c, t, static_cast<size_t>(valid_cols) * sizeof(float));
          } else {
            for (int64_t j = 0; j < valid_cols; ++j) c[j] += t[j];
          }
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::gemm_detail {

HWY_EXPORT(GemmBlock);

void gemm_block_simd(const GemmJob& job, int64_t row0, int64_t col0) {
  HWY_DYNAMIC_DISPATCH(GemmBlock)(job, row0, col0);
}

}  // namespace specula::gemm_detail
#endif  // HWY_ONCE
