// GGUF v3 writer: metadata of any type and tensors of any DType whose bytes
// the caller provides (F32/F16 helpers included). Writes the layout ggml
// expects: header, key/values, tensor infos, padding to general.alignment,
// then each tensor's data aligned.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "gguf/gguf_reader.h"

namespace specula {

class GgufWriter {
 public:
  GgufWriter() = default;

  // Metadata, written in the order added. Adding a key twice is an Error.
  void set_uint8(std::string_view key, uint8_t value);
  void set_int8(std::string_view key, int8_t value);
  void set_uint16(std::string_view key, uint16_t value);
  void set_int16(std::string_view key, int16_t value);
  void set_uint32(std::string_view key, uint32_t value);
  void set_int32(std::string_view key, int32_t value);
  void set_uint64(std::string_view key, uint64_t value);
  void set_int64(std::string_view key, int64_t value);
  void set_float32(std::string_view key, float value);
  void set_float64(std::string_view key, double value);
  void set_bool(std::string_view key, bool value);
  void set_string(std::string_view key, std::string_view value);
  void set_string_array(std::string_view key, const std::vector<std::string>& values);
  void set_float32_array(std::string_view key, std::span<const float> values);
  void set_int32_array(std::string_view key, std::span<const int32_t> values);
  // An array of any fixed-size element type (not string, not array), given
  // as its little-endian bytes; their count must be a multiple of the
  // element size.
  void set_array(std::string_view key, GgufType element_type,
                 std::span<const uint8_t> element_bytes);
  // A copy of a value read by GgufReader (e.g. to carry a target's metadata
  // into a derived draft). "general.alignment" goes to set_alignment.
  void set_value(std::string_view key, const GgufValue& value);
  // The alignment of tensor data (default 32). Also writes general.alignment
  // when not 32.
  void set_alignment(uint32_t alignment);

  // Tensors. dims in ggml order (dims[0] varies fastest); `bytes` must hold
  // exactly the tensor's size for `type`. The bytes are copied.
  void add_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                  std::span<const uint8_t> bytes);
  // The same, taking the bytes without a copy.
  void add_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                  std::vector<uint8_t>&& bytes);
  void add_tensor_f32(std::string_view name, std::span<const uint64_t> dims,
                      std::span<const float> values);
  // Converts values to F16 (round to nearest even).
  void add_tensor_f16(std::string_view name, std::span<const uint64_t> dims,
                      std::span<const float> values);

  size_t tensor_count() const { return tensors_.size(); }

  // Writes the file (to a temporary name, then renamed, so a failed write
  // never leaves a truncated file behind). A symlink is written through:
  // the file it points to is replaced, as cp does. Throws Error naming the
  // path, also when it names a device, a folder or a pipe (never replaced).
  void write(const std::string& path) const;
  // The same bytes, in memory (tests).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> dims;
    DType type;
    std::vector<uint8_t> bytes;
  };
  void check_new_key(std::string_view key) const;
  void begin_key(std::string_view key, GgufType type);
  void check_new_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                        uint64_t n_bytes) const;
  // Emits the whole file through sink.write(const uint8_t*, size_t).
  template <typename Sink>
  void serialize(Sink& sink) const;
  std::vector<uint8_t> header_;  // serialized key/values
  std::vector<std::string> keys_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = 32;
};

// Deletes the temporary file of every GgufWriter::write in progress.
// Async-signal-safe: a SIGINT/SIGTERM handler calls it before the process
// ends, so that an interrupted save leaves no NAME.tmp-PID behind.
void remove_unfinished_writes() noexcept;

// Checks, before any long work, that GgufWriter::write(path) can succeed:
// the folder exists and is writable, and `path` is a regular file or not
// there yet (a symlink counts as what it points to). Throws Error naming
// the path and what to do, so that no run computes for hours and then
// fails to save.
void check_output_path(const std::string& path);

}  // namespace specula
