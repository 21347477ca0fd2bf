// GGUF layout (v2 and v3; all little-endian):
//   magic "GGUF", version u32, tensor count u64, metadata count u64,
//   metadata: key (string), value type u32, value,
//   tensor infos: name (string), rank u32, dims u64[rank], type u32,
//                 offset u64 (from the data section start),
//   padding to general.alignment, then the data section.
// A string is a u64 byte length and the bytes (no terminator); an array is an
// element type u32, a count u64 and the elements. Version 1 used u32 counts
// and lengths and is refused.
#include "gguf/gguf_parser.h"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "core/printable.h"

namespace specula {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
// Lower bounds on one entry's size, to check counts against the file size
// before trusting them: key length + non-empty key + type + smallest value;
// name length + non-empty name + rank + one dim + type + offset.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint32_t kMaxRank = 4;  // ggml's GGML_MAX_DIMS
constexpr uint32_t kLargestGgufType = static_cast<uint32_t>(GgufType::kFloat64);

bool is_power_of_two(uint64_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// The four magic bytes, printable when they are text.
std::string describe_magic(const uint8_t* bytes, uint64_t n) {
  std::string out = "'";
  for (uint64_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[bytes[i] >> 4];
      out += kHex[bytes[i] & 15];
    }
  }
  return out + "'";
}

}  // namespace

template <typename... Args>
[[noreturn]] void GgufParser::fail_here(Args&&... args) const {
  fail(reader_.path_, ": ", where_, ": ", std::forward<Args>(args)...);
}

void GgufParser::require(uint64_t n_bytes, std::string_view what) {
  if (n_bytes > remaining()) {
    fail_here(what, " needs ", n_bytes, " bytes at offset ", pos_, " but the file has only ",
              remaining(), " left (", reader_.size_,
              " bytes in all); the file is truncated or corrupt");
  }
}

std::string_view GgufParser::read_string(std::string_view what) {
  const auto length = read<uint64_t>(what);
  if (length > remaining()) {
    fail_here(what, " has length ", length, " at offset ", pos_ - 8, " but only ", remaining(),
              " bytes remain in the file; the file is truncated or corrupt");
  }
  std::string_view text(reinterpret_cast<const char*>(reader_.base_ + pos_), length);
  pos_ += length;
  return text;
}

GgufType GgufParser::read_type(std::string_view what) {
  const auto id = read<uint32_t>(what);
  if (id > kLargestGgufType) {
    fail_here(what, " is ", id, ", not a GGUF value type (0-", kLargestGgufType, ")");
  }
  return static_cast<GgufType>(id);
}

void GgufParser::parse() {
  parse_header();
  parse_metadata();
  parse_tensor_infos();
  place_tensor_data();
}

void GgufParser::parse_header() {
  where_ = "header";
  const uint64_t n_magic = std::min<uint64_t>(4, reader_.size_);
  uint32_t magic = 0;
  std::memcpy(&magic, reader_.base_, n_magic);
  if (n_magic < 4 || magic != kMagic) {
    fail_here("not a GGUF file (starts with ", describe_magic(reader_.base_, n_magic),
              ", expected 'GGUF')");
  }
  pos_ = 4;
  const auto version = read<uint32_t>("the version");
  if (version == 1) {
    fail_here(
        "GGUF version 1 is not supported (only versions 2 and 3); convert the model "
        "again with a current llama.cpp");
  }
  if (version == 0x02000000u || version == 0x03000000u) {
    fail_here("big-endian GGUF files are not supported; convert the model to little-endian");
  }
  if (version != 2 && version != 3) {
    fail_here("unsupported GGUF version ", version, " (supported: 2 and 3)");
  }
  reader_.version_ = version;
  n_tensors_ = read<uint64_t>("the tensor count");
  n_kv_ = read<uint64_t>("the metadata count");

  // Counts against the file size, before anything is sized from them.
  const uint64_t left = remaining();
  if (n_kv_ > left / kMinKvBytes) {
    fail_here("metadata count ", n_kv_, " is impossible for a file of ", reader_.size_,
              " bytes (each entry takes at least ", kMinKvBytes,
              " bytes); the file is truncated or corrupt");
  }
  if (n_tensors_ > left / kMinTensorInfoBytes ||
      n_tensors_ * kMinTensorInfoBytes > left - n_kv_ * kMinKvBytes) {
    fail_here("tensor count ", n_tensors_, " is impossible for a file of ", reader_.size_,
              " bytes with ", n_kv_, " metadata entries (each tensor takes at least ",
              kMinTensorInfoBytes, " bytes); the file is truncated or corrupt");
  }
}

void GgufParser::parse_metadata() {
  reader_.metadata_.reserve(std::min<uint64_t>(n_kv_, 4096));
  std::unordered_set<std::string_view> seen;
  for (uint64_t index = 0; index < n_kv_; ++index) {
    where_ = str_cat("metadata entry #", index);
    const std::string_view key = read_string("the key");
    if (key.empty()) fail_here("the key is empty");
    where_ = str_cat("key '", printable(key), "'");
    if (!seen.insert(key).second) fail_here("the key appears twice");

    GgufKv kv;
    kv.key = std::string(key);
    kv.value.type = read_type("the value type");
    read_value(kv.value.type, kv.value);
    if (key == "general.alignment") check_alignment_key(kv.value);
    reader_.metadata_.push_back(std::move(kv));
  }
}

void GgufParser::check_alignment_key(const GgufValue& value) {
  if (value.type != GgufType::kUint32) {
    fail_here("must be a uint32, but is a ", gguf_type_name(value.type));
  }
  if (!is_power_of_two(value.u)) {
    fail_here("alignment ", value.u, " is not a power of two");
  }
  reader_.alignment_ = value.u;
}

void GgufParser::read_value(GgufType type, GgufValue& value) {
  switch (type) {
    case GgufType::kUint8:
      value.u = read<uint8_t>("the uint8 value");
      break;
    case GgufType::kUint16:
      value.u = read<uint16_t>("the uint16 value");
      break;
    case GgufType::kUint32:
      value.u = read<uint32_t>("the uint32 value");
      break;
    case GgufType::kUint64:
      value.u = read<uint64_t>("the uint64 value");
      break;
    case GgufType::kInt8:
      value.i = read<int8_t>("the int8 value");
      break;
    case GgufType::kInt16:
      value.i = read<int16_t>("the int16 value");
      break;
    case GgufType::kInt32:
      value.i = read<int32_t>("the int32 value");
      break;
    case GgufType::kInt64:
      value.i = read<int64_t>("the int64 value");
      break;
    case GgufType::kFloat32:
      value.f = read<float>("the float32 value");
      break;
    case GgufType::kFloat64:
      value.f = read<double>("the float64 value");
      break;
    case GgufType::kBool: {
      const auto byte = read<uint8_t>("the bool value");
      if (byte > 1) fail_here("bool value is ", unsigned{byte}, " (must be 0 or 1)");
      value.u = byte;
      break;
    }
    case GgufType::kString:
      value.str = read_string("the string value");
      return;
    case GgufType::kArray:
      read_array(value);
      return;
  }
  // Integers that fit are visible through both i and u (see GgufValue).
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
    case GgufType::kBool:
      if (value.u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        value.i = static_cast<int64_t>(value.u);
      }
      break;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      if (value.i >= 0) value.u = static_cast<uint64_t>(value.i);
      break;
    default:
      break;
  }
}

void GgufParser::read_array(GgufValue& value) {
  value.array_type = read_type("the array element type");
  value.array_size = read<uint64_t>("the array length");
  const uint64_t count = value.array_size;
  if (value.array_type == GgufType::kArray) {
    // The spec allows nesting, but no model file uses it and ggml refuses it.
    fail_here("arrays of arrays are not supported");
  }
  value.array_data = reader_.base_ + pos_;
  if (value.array_type == GgufType::kString) {
    if (count > remaining() / 8) {
      fail_here(
          "array of ", count, " strings cannot fit in the ", remaining(),
          " bytes left in the file (each takes at least 8); the file is truncated or corrupt");
    }
    value.array_strs.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      value.array_strs.push_back(read_string(str_cat("string #", i, " of ", count)));
    }
    return;
  }
  const uint64_t element_bytes = gguf_type_size(value.array_type);
  if (count > remaining() / element_bytes) {
    fail_here("array of ", count, " ", gguf_type_name(value.array_type), " needs ", element_bytes,
              " bytes each, but only ", remaining(),
              " bytes are left in the file; the file is truncated or corrupt");
  }
  if (value.array_type == GgufType::kBool) {
    for (uint64_t i = 0; i < count; ++i) {
      if (value.array_data[i] > 1) {
        fail_here("bool element #", i, " is ", unsigned{value.array_data[i]}, " (must be 0 or 1)");
      }
    }
  }
  pos_ += count * element_bytes;
}

void GgufParser::parse_tensor_infos() {
  auto& tensors = reader_.tensors_;
  // Grown as entries parse: each takes >= kMinTensorInfoBytes of the file.
  tensors.reserve(std::min<uint64_t>(n_tensors_, 4096));
  std::unordered_set<std::string_view> seen;
  for (uint64_t index = 0; index < n_tensors_; ++index) {
    where_ = str_cat("tensor #", index);
    const std::string_view name = read_string("the name");
    if (name.empty()) fail_here("the name is empty");
    where_ = str_cat("tensor '", printable(name), "'");
    if (!seen.insert(name).second) fail_here("the name appears twice");

    GgufTensorInfo info;
    info.name = std::string(name);
    const auto rank = read<uint32_t>("the rank");
    if (rank == 0 || rank > kMaxRank) {
      fail_here("rank ", rank, " is not supported (must be 1 to ", kMaxRank, ")");
    }
    info.dims.resize(rank);
    for (uint32_t d = 0; d < rank; ++d) {
      info.dims[d] = read<uint64_t>(str_cat("dimension ", d));
      if (info.dims[d] == 0) fail_here("dimension ", d, " is 0");
    }
    // The product overflows as a whole: name every dimension, not the one
    // where the multiplication happened to pass the limit.
    uint64_t n_elements = 1;
    for (const uint64_t dim : info.dims) {
      constexpr auto kMaxElements = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (dim > kMaxElements / n_elements) {
        std::string dims;
        for (const uint64_t each : info.dims) dims += str_cat(dims.empty() ? "" : ", ", each);
        fail_here("dimensions [", dims, "] (ggml order) make more than 2^63 - 1 elements");
      }
      n_elements *= dim;
    }
    const auto type_id = read<uint32_t>("the type");
    const std::optional<DTypeInfo> type = dtype_info(type_id);
    if (!type) fail_here("unknown tensor type id ", type_id);
    info.type = type->type;
    if (info.dims[0] % type->block_size != 0) {
      fail_here("row length ", info.dims[0], " is not a multiple of the ", type->name,
                " block size ", type->block_size);
    }
    const uint64_t n_blocks = n_elements / type->block_size;
    if (n_blocks > std::numeric_limits<uint64_t>::max() / type->block_bytes) {
      fail_here("the byte size overflows (", n_elements, " elements of ", type->name, ")");
    }
    info.n_elements = n_elements;
    info.n_bytes = n_blocks * type->block_bytes;
    info.offset = read<uint64_t>("the data offset");
    tensors.push_back(std::move(info));
  }
}

void GgufParser::place_tensor_data() {
  const uint64_t alignment = reader_.alignment_;
  // pos_ <= file size and alignment <= 2^31, so this cannot overflow.
  const uint64_t data_offset = (pos_ + alignment - 1) / alignment * alignment;
  reader_.data_offset_ = data_offset;
  // Data may be absent (a vocabulary-only file ends after its metadata).
  const uint64_t data_bytes = reader_.size_ > data_offset ? reader_.size_ - data_offset : 0;

  uint64_t previous_end = 0;
  const GgufTensorInfo* previous = nullptr;
  for (GgufTensorInfo& info : reader_.tensors_) {
    where_ = str_cat("tensor '", printable(info.name), "'");
    if (info.offset % alignment != 0) {
      fail_here("data offset ", info.offset, " is not a multiple of the alignment ", alignment);
    }
    if (info.offset > data_bytes || info.n_bytes > data_bytes - info.offset) {
      fail_here("data [", info.offset, ", ", info.offset, " + ", info.n_bytes,
                ") runs past the end of the data section (", data_bytes,
                " bytes); the file is truncated or corrupt");
    }
    if (previous != nullptr && info.offset < previous_end) {
      fail_here("data at offset ", info.offset, " overlaps or precedes tensor '",
                printable(previous->name), "' (which ends at ", previous_end,
                "); tensor data must be stored in order without overlap");
    }
    info.data = reader_.base_ + data_offset + info.offset;
    previous_end = info.offset + info.n_bytes;
    previous = &info;
  }
}

}  // namespace specula
