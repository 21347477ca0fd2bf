// GGUF reader: memory-maps a file, validates every field before use, and
// gives zero-copy views of metadata and tensor data.
//
// Any malformed input throws specula::Error with one message naming the
// file, the key or tensor at fault, and the problem. Nothing is allocated in
// proportion to a count read from the file before that count has been checked
// against the file size.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"

namespace specula {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint8", "string", "array", ...; "unknown" for ids outside the enum.
std::string_view gguf_type_name(GgufType type);
// Bytes of one value of a fixed-size type; 0 for kString and kArray.
uint64_t gguf_type_size(GgufType type);

// One metadata value. Scalars are decoded; strings and arrays point into the
// mapped file (valid while the GgufReader lives).
struct GgufValue {
  GgufType type = GgufType::kUint8;
  // Scalars, widened: integers and bool in `i` (uint64 values > INT64_MAX
  // are stored in `u`), floats in `f`. Integer values that fit are in both:
  // `i` holds every value <= INT64_MAX, `u` every value >= 0.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;  // kString
  // kArray: element type and count; elements are decoded on request.
  GgufType array_type = GgufType::kUint8;
  uint64_t array_size = 0;
  const uint8_t* array_data = nullptr;       // first element in the file
  std::vector<std::string_view> array_strs;  // kArray of kString, decoded at load
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] varies fastest
  DType type = DType::kF32;
  uint64_t offset = 0;            // from the start of the data section
  uint64_t n_elements = 0;        // product of dims
  uint64_t n_bytes = 0;           // size of the data
  const uint8_t* data = nullptr;  // into the mapping
};

// The path of the mapped GGUF file that holds `address`, or nullptr when no
// GgufReader maps it. Async-signal-safe: a SIGBUS handler names the file
// that was truncated while in use (replace model files by writing a new
// file and renaming it over the old one; never rewrite one in place).
const char* mapped_file_at(const void* address) noexcept;

class GgufReader {
 public:
  // Maps and validates `path`. Throws Error on any problem.
  static std::unique_ptr<GgufReader> open(const std::string& path);
  // The same over bytes in memory (copied into a 64-byte aligned buffer of
  // exactly bytes.size(), which the reader owns); `name` stands for the path
  // in messages. For tests and fuzzing: no file, and reads past the end are
  // caught by AddressSanitizer rather than hidden by page rounding.
  static std::unique_ptr<GgufReader> from_memory(std::string name, std::span<const uint8_t> bytes);
  ~GgufReader();
  GgufReader(const GgufReader&) = delete;
  GgufReader& operator=(const GgufReader&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<GgufKv>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters. nullopt when the key is absent; Error naming the key when
  // it is present with an incompatible type (integers of any width convert
  // when the value fits; floats accept integers).
  std::optional<std::string_view> get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  // Arrays: Error when the key holds something else or an element type that
  // does not convert.
  std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Like find_tensor, but throws Error naming the file and tensor when absent.
  const GgufTensorInfo& tensor(std::string_view name) const;

 private:
  GgufReader() = default;
  void finish_open();  // parses base_/size_ and builds the indexes
  std::string path_;
  uint32_t version_ = 0;
  uint64_t size_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  const uint8_t* base_ = nullptr;  // mapping of the whole file
  bool owns_copy_ = false;         // base_ is from_memory's buffer, not a mapping
  std::vector<GgufKv> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  // Name -> index, built after parsing (views into metadata_/tensors_).
  std::unordered_map<std::string_view, size_t> key_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
  friend class GgufParser;
};

}  // namespace specula
