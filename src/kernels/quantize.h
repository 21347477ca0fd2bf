// Conversion between float rows and the weight types specula computes with
// (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), in ggml's block layouts
// (kernels/quant_blocks.h), so files written here load in llama.cpp and
// its files load here.
//
// Worst-case absolute error of quantize then dequantize, per block, with
// amax the block's largest |x| (the tests check these):
//   F16:  |x| * 2^-11 (round to nearest; normal range)
//   BF16: |x| * 2^-8
//   Q8_0: d / 2 with d = amax / 127 (d is rounded up to f16 first, so no
//         value falls outside -127..127 and every error is a rounding error)
//   Q4_0: |d| with d = amax / 8 (ggml's choice: the value of largest
//         magnitude maps exactly to -8, so the opposite end can clamp at +7)
//   Q4_K, Q5_K: s_j / 2 for sub-block j, where s_j = d * sc_j is its step;
//         scales and mins are rounded up so every value lies in range.
//         s_j <= (range_j + dmin) / L + d, L = 15 (Q4_K) or 31 (Q5_K),
//         range_j = max_j - min(0, min_j), dmin = max_j(-min(0, min_j)) / 63,
//         d = max_j (range_j + dmin) / (63 L)
//   Q6_K: s_j / 2 for 16-value sub-block j, s_j <= amax_j / 31 + d,
//         d = max_j (amax_j / 31) / 127
// These quantizers are simple min/max ones: they bound the worst case but
// do not search for the lowest mean error as llama.cpp's do.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace specula {

// True for the types quantize_row / dequantize_values handle.
bool quantize_supports(DType type);

// Writes n values of x (n a multiple of the type's block size) to `out` in
// the type's layout: dtype_row_bytes(type, n) bytes. Throws Error for an
// unsupported type or a bad n.
void quantize_row(DType type, const float* x, int64_t n, void* out);

// Reads n values of `type` from `in` into floats.
void dequantize_values(DType type, const void* in, int64_t n, float* out);

}  // namespace specula
