// Tensor element types as numbered in GGUF files (ggml's type ids), with
// their block layout. Quantized types store values in blocks: `block_size`
// values take `block_bytes` bytes, and a row's length must be a multiple of
// block_size.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace specula {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

struct DTypeInfo {
  DType type;
  std::string_view name;  // as ggml prints it: "F16", "Q4_K", ...
  uint32_t block_size;    // values per block
  uint32_t block_bytes;   // bytes per block
};

// The layout of a GGUF type id, or nullopt for ids no ggml version defined.
std::optional<DTypeInfo> dtype_info(uint32_t type_id);
const DTypeInfo& dtype_info(DType type);
std::string_view dtype_name(DType type);
// The type named `name` (case-insensitive: "f16", "Q8_0"), or nullopt.
std::optional<DType> dtype_from_name(std::string_view name);

// Bytes taken by `n_values` consecutive values of `type`, or nullopt when
// n_values is not a multiple of the block size.
std::optional<uint64_t> dtype_row_bytes(DType type, uint64_t n_values);

}  // namespace specula
