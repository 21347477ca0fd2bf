#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/f16.h"
#include "kernels/quant_blocks.h"

namespace specula {
namespace {

// The f16 bit pattern of the smallest f16 value >= v (v >= 0, finite).
// Scales are rounded up so that no value ends up outside the integer range.
uint16_t f16_at_least(float v) {
  uint16_t bits = f32_to_f16(v);
  if (f16_to_f32(bits) < v && bits < 0x7bffu) ++bits;
  return bits;
}

int round_to_int(float v) {
  return static_cast<int>(std::nearbyint(v));
}

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* blocks) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    blocks[b].d = f16_at_least(amax / 127.0f);
    const float d = f16_to_f32(blocks[b].d);
    const float inverse = d > 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; ++i) {
      blocks[b].qs[i] = static_cast<int8_t>(std::clamp(round_to_int(xb[i] * inverse), -127, 127));
    }
  }
}

void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* blocks) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float extreme = 0.0f;  // the value of largest magnitude, sign kept
    for (int i = 0; i < 32; ++i) {
      if (std::fabs(xb[i]) > std::fabs(extreme)) extreme = xb[i];
    }
    // d = extreme / -8 maps the extreme exactly to nibble 0 (value -8 * d).
    const uint16_t magnitude = f16_at_least(std::fabs(extreme) / 8.0f);
    blocks[b].d = static_cast<uint16_t>(extreme > 0.0f ? (magnitude | 0x8000u) : magnitude);
    const float d = f16_to_f32(blocks[b].d);
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    int q[32];
    for (int i = 0; i < 32; ++i) q[i] = std::clamp(round_to_int(xb[i] * inverse) + 8, 0, 15);
    for (int i = 0; i < 16; ++i) blocks[b].qs[i] = static_cast<uint8_t>(q[i] | (q[i + 16] << 4));
  }
}

// Q4_K (levels = 15) and Q5_K (levels = 31): per 32-value sub-block j,
// x ~= d * sc_j * q - dmin * m_j with 6-bit sc_j, m_j.
template <typename Block>
void quantize_k_min(const float* x, int64_t n, Block* blocks, int levels) {
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
    const float* xb = x + b * kSuperBlockSize;
    Block& block = blocks[b];
    std::memset(&block, 0, sizeof block);
    float top[8], neg_min[8];
    float max_neg_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      float lo = 0.0f, hi = -INFINITY;
      for (int i = 0; i < 32; ++i) {
        lo = std::min(lo, xb[32 * j + i]);
        hi = std::max(hi, xb[32 * j + i]);
      }
      neg_min[j] = -lo;
      top[j] = hi;
      max_neg_min = std::max(max_neg_min, neg_min[j]);
    }
    block.dmin = f16_at_least(max_neg_min / 63.0f);
    const float dmin = f16_to_f32(block.dmin);
    uint8_t m[8], sc[8];
    float offset[8];
    float max_span = 0.0f;  // largest (top + offset): what levels steps must reach
    for (int j = 0; j < 8; ++j) {
      m[j] = dmin > 0.0f ? static_cast<uint8_t>(std::min(63.0f, std::ceil(neg_min[j] / dmin))) : 0;
      offset[j] = dmin * m[j];
      max_span = std::max(max_span, top[j] + offset[j]);
    }
    block.d = f16_at_least(max_span / (63.0f * static_cast<float>(levels)));
    const float d = f16_to_f32(block.d);
    for (int j = 0; j < 8; ++j) {
      const float span = top[j] + offset[j];
      sc[j] = d > 0.0f ? static_cast<uint8_t>(
                             std::min(63.0f, std::ceil(span / (d * static_cast<float>(levels)))))
                       : 0;
    }
    pack_k_scales_mins(sc, m, block.scales);
    uint8_t q[kSuperBlockSize];
    for (int j = 0; j < 8; ++j) {
      const float step = d * sc[j];
      const float inverse = step > 0.0f ? 1.0f / step : 0.0f;
      for (int i = 0; i < 32; ++i) {
        q[32 * j + i] = static_cast<uint8_t>(
            std::clamp(round_to_int((xb[32 * j + i] + offset[j]) * inverse), 0, levels));
      }
    }
    uint8_t* qs = nullptr;
    uint8_t* qh = nullptr;
    if constexpr (sizeof(Block) == sizeof(BlockQ5_K)) {
      qs = block.qs;
      qh = block.qh;
    } else {
      qs = block.qs;
    }
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
        qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        if (qh != nullptr) {
          qh[l] = static_cast<uint8_t>(qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        }
      }
    }
  }
}

void quantize_q6_k(const float* x, int64_t n, BlockQ6_K* blocks) {
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
    const float* xb = x + b * kSuperBlockSize;
    BlockQ6_K& block = blocks[b];
    float step[16];
    float max_step = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f;
      for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(xb[16 * j + i]));
      step[j] = amax / 31.0f;
      max_step = std::max(max_step, step[j]);
    }
    block.d = f16_at_least(max_step / 127.0f);
    const float d = f16_to_f32(block.d);
    uint8_t q[kSuperBlockSize];  // q + 32, in 0..63
    for (int j = 0; j < 16; ++j) {
      const int sc = d > 0.0f ? static_cast<int>(std::min(127.0f, std::ceil(step[j] / d))) : 0;
      block.scales[j] = static_cast<int8_t>(sc);
      const float inverse = sc > 0 ? 1.0f / (d * static_cast<float>(sc)) : 0.0f;
      for (int i = 0; i < 16; ++i) {
        q[16 * j + i] =
            static_cast<uint8_t>(std::clamp(round_to_int(xb[16 * j + i] * inverse), -32, 31) + 32);
      }
    }
    for (int half = 0; half < 2; ++half) {
      const uint8_t* qq = q + 128 * half;
      uint8_t* ql = block.ql + 64 * half;
      uint8_t* qh = block.qh + 32 * half;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((qq[l] & 0xF) | ((qq[l + 64] & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((qq[l + 32] & 0xF) | ((qq[l + 96] & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                     ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

// Dequantization follows ggml's formulas directly (not the kernels' int16
// decode), so the tests compare two independent readings of each layout.
void dequantize_k_min(const uint8_t* data, int64_t n, float* out, bool five_bits) {
  const int64_t block_bytes = five_bits ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
    const uint8_t* raw = data + b * block_bytes;
    BlockQ5_K b5{};
    BlockQ4_K b4{};
    const uint8_t* scales;
    const uint8_t* qs;
    const uint8_t* qh = nullptr;
    float d, dmin;
    if (five_bits) {
      std::memcpy(&b5, raw, sizeof b5);
      d = f16_to_f32(b5.d);
      dmin = f16_to_f32(b5.dmin);
      scales = b5.scales;
      qs = b5.qs;
      qh = b5.qh;
    } else {
      std::memcpy(&b4, raw, sizeof b4);
      d = f16_to_f32(b4.d);
      dmin = f16_to_f32(b4.dmin);
      scales = b4.scales;
      qs = b4.qs;
    }
    float* y = out + b * kSuperBlockSize;
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        uint8_t sc, m;
        unpack_k_scale_min(scales, 2 * c + half, &sc, &m);
        for (int l = 0; l < 32; ++l) {
          int q = half == 0 ? (qs[32 * c + l] & 0xF) : (qs[32 * c + l] >> 4);
          if (qh != nullptr && (qh[l] & (1u << (2 * c + half)))) q += 16;
          *y++ = d * sc * static_cast<float>(q) - dmin * m;
        }
      }
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
    const BlockQ6_K& block = blocks[b];
    const float d = f16_to_f32(block.d);
    float* y = out + b * kSuperBlockSize;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = block.ql + 64 * half;
      const uint8_t* qh = block.qh + 32 * half;
      const int8_t* sc = block.scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int s = l / 16;
        y[l] = d * sc[s] * static_cast<float>(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
        y[l + 32] = d * sc[s + 2] *
                    static_cast<float>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        y[l + 64] =
            d * sc[s + 4] * static_cast<float>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        y[l + 96] = d * sc[s + 6] *
                    static_cast<float>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      y += 128;
    }
  }
}

void check_length(DType type, int64_t n) {
  if (n < 0 || !dtype_row_bytes(type, static_cast<uint64_t>(n))) {
    fail("cannot convert ", n, " values to ", dtype_name(type),
         ": the count must be a multiple of ", dtype_info(type).block_size);
  }
}

}  // namespace

bool quantize_supports(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType type, const float* x, int64_t n, void* out) {
  if (!quantize_supports(type)) fail("quantizing to ", dtype_name(type), " is not supported");
  check_length(type, n);
  switch (type) {
    case DType::kF32:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::kF16: {
      auto* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(x[i]);
      break;
    }
    case DType::kBF16: {
      auto* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(x[i]);
      break;
    }
    case DType::kQ8_0:
      quantize_q8_0(x, n, static_cast<BlockQ8_0*>(out));
      break;
    case DType::kQ4_0:
      quantize_q4_0(x, n, static_cast<BlockQ4_0*>(out));
      break;
    case DType::kQ4_K:
      quantize_k_min(x, n, static_cast<BlockQ4_K*>(out), 15);
      break;
    case DType::kQ5_K:
      quantize_k_min(x, n, static_cast<BlockQ5_K*>(out), 31);
      break;
    case DType::kQ6_K:
      quantize_q6_k(x, n, static_cast<BlockQ6_K*>(out));
      break;
    default:
      break;
  }
}

void dequantize_values(DType type, const void* in, int64_t n, float* out) {
  if (!quantize_supports(type)) fail("dequantizing ", dtype_name(type), " is not supported");
  check_length(type, n);
  const auto* bytes = static_cast<const uint8_t*>(in);
  switch (type) {
    case DType::kF32:
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      break;
    case DType::kQ8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        BlockQ8_0 block;
        std::memcpy(&block, bytes + b * sizeof block, sizeof block);
        const float d = f16_to_f32(block.d);
        for (int i = 0; i < 32; ++i) out[32 * b + i] = d * block.qs[i];
      }
      break;
    case DType::kQ4_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        BlockQ4_0 block;
        std::memcpy(&block, bytes + b * sizeof block, sizeof block);
        const float d = f16_to_f32(block.d);
        for (int i = 0; i < 16; ++i) {
          out[32 * b + i] = d * static_cast<float>((block.qs[i] & 0xF) - 8);
          out[32 * b + i + 16] = d * static_cast<float>((block.qs[i] >> 4) - 8);
        }
      }
      break;
    case DType::kQ4_K:
      dequantize_k_min(bytes, n, out, false);
      break;
    case DType::kQ5_K:
      dequantize_k_min(bytes, n, out, true);
      break;
    case DType::kQ6_K:
      for (int64_t b = 0; b < n / kSuperBlockSize; ++b) {
        BlockQ6_K block;
        std::memcpy(&block, bytes + b * sizeof block, sizeof block);
        dequantize_q6_k(&block, kSuperBlockSize, out + b * kSuperBlockSize);
      }
      break;
    default:
      break;
  }
}

}  // namespace specula
