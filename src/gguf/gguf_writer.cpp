// GgufWriter: serializes metadata as it is added, tensors at write time, in
// the GGUF v3 layout ggml reads (see gguf_parser.cpp for the format).
#include "gguf/gguf_writer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/f16.h"

namespace specula {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr size_t kMaxTensorName = 63;  // ggml's GGML_MAX_NAME (64) less the terminator
constexpr uint32_t kMaxRank = 4;
constexpr const char* kAlignmentKey = "general.alignment";

template <typename T>
void put(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof value);
  std::memcpy(out.data() + at, &value, sizeof value);
}

void put_string(std::vector<uint8_t>& out, std::string_view text) {
  put<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

uint64_t align_up(uint64_t offset, uint64_t alignment) {
  return (offset + alignment - 1) / alignment * alignment;
}

struct VectorSink {
  std::vector<uint8_t>& out;
  void write(const uint8_t* data, size_t n) { out.insert(out.end(), data, data + n); }
};

struct FileSink {
  std::FILE* file;
  bool ok = true;
  void write(const uint8_t* data, size_t n) {
    if (ok && n > 0 && std::fwrite(data, 1, n, file) != n) ok = false;
  }
};

}  // namespace

void GgufWriter::check_new_key(std::string_view key) const {
  if (key.empty()) fail("GGUF writer: a metadata key is empty");
  if (key == kAlignmentKey) {
    fail("GGUF writer: set '", kAlignmentKey, "' with set_alignment()");
  }
  for (const std::string& existing : keys_) {
    if (existing == key) fail("GGUF writer: key '", key, "' is set twice");
  }
}

void GgufWriter::begin_key(std::string_view key, GgufType type) {
  check_new_key(key);
  keys_.emplace_back(key);
  put_string(header_, key);
  put<uint32_t>(header_, static_cast<uint32_t>(type));
}

void GgufWriter::set_uint8(std::string_view key, uint8_t value) {
  begin_key(key, GgufType::kUint8);
  put(header_, value);
}
void GgufWriter::set_int8(std::string_view key, int8_t value) {
  begin_key(key, GgufType::kInt8);
  put(header_, value);
}
void GgufWriter::set_uint16(std::string_view key, uint16_t value) {
  begin_key(key, GgufType::kUint16);
  put(header_, value);
}
void GgufWriter::set_int16(std::string_view key, int16_t value) {
  begin_key(key, GgufType::kInt16);
  put(header_, value);
}
void GgufWriter::set_uint32(std::string_view key, uint32_t value) {
  begin_key(key, GgufType::kUint32);
  put(header_, value);
}
void GgufWriter::set_int32(std::string_view key, int32_t value) {
  begin_key(key, GgufType::kInt32);
  put(header_, value);
}
void GgufWriter::set_uint64(std::string_view key, uint64_t value) {
  begin_key(key, GgufType::kUint64);
  put(header_, value);
}
void GgufWriter::set_int64(std::string_view key, int64_t value) {
  begin_key(key, GgufType::kInt64);
  put(header_, value);
}
void GgufWriter::set_float32(std::string_view key, float value) {
  begin_key(key, GgufType::kFloat32);
  put(header_, value);
}
void GgufWriter::set_float64(std::string_view key, double value) {
  begin_key(key, GgufType::kFloat64);
  put(header_, value);
}
void GgufWriter::set_bool(std::string_view key, bool value) {
  begin_key(key, GgufType::kBool);
  put<uint8_t>(header_, value ? 1 : 0);
}
void GgufWriter::set_string(std::string_view key, std::string_view value) {
  begin_key(key, GgufType::kString);
  put_string(header_, value);
}

void GgufWriter::set_string_array(std::string_view key, const std::vector<std::string>& values) {
  begin_key(key, GgufType::kArray);
  put<uint32_t>(header_, static_cast<uint32_t>(GgufType::kString));
  put<uint64_t>(header_, values.size());
  for (const std::string& value : values) put_string(header_, value);
}

void GgufWriter::set_float32_array(std::string_view key, std::span<const float> values) {
  set_array(key, GgufType::kFloat32,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                     values.size_bytes()));
}

void GgufWriter::set_int32_array(std::string_view key, std::span<const int32_t> values) {
  set_array(key, GgufType::kInt32,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                     values.size_bytes()));
}

void GgufWriter::set_array(std::string_view key, GgufType element_type,
                           std::span<const uint8_t> element_bytes) {
  const uint64_t element_size = gguf_type_size(element_type);
  if (element_size == 0) {
    fail("GGUF writer: key '", key, "': set_array takes fixed-size elements, not ",
         gguf_type_name(element_type));
  }
  if (element_bytes.size() % element_size != 0) {
    fail("GGUF writer: key '", key, "': ", element_bytes.size(), " bytes is not a whole number of ",
         gguf_type_name(element_type), " elements");
  }
  if (element_type == GgufType::kBool) {
    for (uint8_t byte : element_bytes) {
      if (byte > 1) fail("GGUF writer: key '", key, "': a bool element is ", unsigned{byte});
    }
  }
  begin_key(key, GgufType::kArray);
  put<uint32_t>(header_, static_cast<uint32_t>(element_type));
  put<uint64_t>(header_, element_bytes.size() / element_size);
  header_.insert(header_.end(), element_bytes.begin(), element_bytes.end());
}

void GgufWriter::set_value(std::string_view key, const GgufValue& value) {
  if (key == kAlignmentKey) {
    if (value.type != GgufType::kUint32) {
      fail("GGUF writer: '", kAlignmentKey, "' must be a uint32");
    }
    set_alignment(static_cast<uint32_t>(value.u));
    return;
  }
  switch (value.type) {
    case GgufType::kUint8:
      set_uint8(key, static_cast<uint8_t>(value.u));
      return;
    case GgufType::kInt8:
      set_int8(key, static_cast<int8_t>(value.i));
      return;
    case GgufType::kUint16:
      set_uint16(key, static_cast<uint16_t>(value.u));
      return;
    case GgufType::kInt16:
      set_int16(key, static_cast<int16_t>(value.i));
      return;
    case GgufType::kUint32:
      set_uint32(key, static_cast<uint32_t>(value.u));
      return;
    case GgufType::kInt32:
      set_int32(key, static_cast<int32_t>(value.i));
      return;
    case GgufType::kUint64:
      set_uint64(key, value.u);
      return;
    case GgufType::kInt64:
      set_int64(key, value.i);
      return;
    case GgufType::kFloat32:
      set_float32(key, static_cast<float>(value.f));
      return;
    case GgufType::kFloat64:
      set_float64(key, value.f);
      return;
    case GgufType::kBool:
      set_bool(key, value.u != 0);
      return;
    case GgufType::kString:
      set_string(key, value.str);
      return;
    case GgufType::kArray:
      break;
  }
  if (value.array_type == GgufType::kString) {
    begin_key(key, GgufType::kArray);
    put<uint32_t>(header_, static_cast<uint32_t>(GgufType::kString));
    put<uint64_t>(header_, value.array_strs.size());
    for (std::string_view text : value.array_strs) put_string(header_, text);
    return;
  }
  const uint64_t n_bytes = value.array_size * gguf_type_size(value.array_type);
  set_array(key, value.array_type,
            n_bytes == 0 ? std::span<const uint8_t>()
                         : std::span<const uint8_t>(value.array_data, n_bytes));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    fail("GGUF writer: alignment ", alignment, " is not a power of two");
  }
  alignment_ = alignment;
}

void GgufWriter::check_new_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                                  uint64_t n_bytes) const {
  if (name.empty()) fail("GGUF writer: a tensor name is empty");
  if (name.size() > kMaxTensorName) {
    fail("GGUF writer: tensor '", name, "': the name is longer than ", kMaxTensorName,
         " bytes, which ggml cannot read");
  }
  for (const PendingTensor& tensor : tensors_) {
    if (tensor.name == name) fail("GGUF writer: tensor '", name, "' is added twice");
  }
  if (dims.empty() || dims.size() > kMaxRank) {
    fail("GGUF writer: tensor '", name, "': rank ", dims.size(), " (must be 1 to ", kMaxRank, ")");
  }
  uint64_t n_elements = 1;
  for (uint64_t dim : dims) {
    if (dim == 0) fail("GGUF writer: tensor '", name, "': a dimension is 0");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n_elements) {
      fail("GGUF writer: tensor '", name, "': the element count overflows");
    }
    n_elements *= dim;
  }
  const DTypeInfo& info = dtype_info(type);
  if (dims[0] % info.block_size != 0) {
    fail("GGUF writer: tensor '", name, "': row length ", dims[0], " is not a multiple of the ",
         info.name, " block size ", info.block_size);
  }
  const uint64_t expected = n_elements / info.block_size * info.block_bytes;
  if (n_bytes != expected) {
    fail("GGUF writer: tensor '", name, "': ", n_bytes, " bytes given, ", info.name, " of ",
         n_elements, " elements takes ", expected);
  }
}

void GgufWriter::add_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                            std::span<const uint8_t> bytes) {
  check_new_tensor(name, dims, type, bytes.size());
  tensors_.push_back({std::string(name), std::vector<uint64_t>(dims.begin(), dims.end()), type,
                      std::vector<uint8_t>(bytes.begin(), bytes.end())});
}

void GgufWriter::add_tensor(std::string_view name, std::span<const uint64_t> dims, DType type,
                            std::vector<uint8_t>&& bytes) {
  check_new_tensor(name, dims, type, bytes.size());
  tensors_.push_back(
      {std::string(name), std::vector<uint64_t>(dims.begin(), dims.end()), type, std::move(bytes)});
}

void GgufWriter::add_tensor_f32(std::string_view name, std::span<const uint64_t> dims,
                                std::span<const float> values) {
  std::vector<uint8_t> bytes(values.size_bytes());
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  add_tensor(name, dims, DType::kF32, std::move(bytes));
}

void GgufWriter::add_tensor_f16(std::string_view name, std::span<const uint64_t> dims,
                                std::span<const float> values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(uint16_t));
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t half = f32_to_f16(values[i]);
    std::memcpy(bytes.data() + i * sizeof half, &half, sizeof half);
  }
  add_tensor(name, dims, DType::kF16, std::move(bytes));
}

template <typename Sink>
void GgufWriter::serialize(Sink& sink) const {
  const bool write_alignment = alignment_ != kDefaultAlignment;
  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(head, kVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, keys_.size() + (write_alignment ? 1 : 0));
  head.insert(head.end(), header_.begin(), header_.end());
  if (write_alignment) {
    put_string(head, kAlignmentKey);
    put<uint32_t>(head, static_cast<uint32_t>(GgufType::kUint32));
    put<uint32_t>(head, alignment_);
  }
  uint64_t offset = 0;  // from the start of the data section
  for (const PendingTensor& tensor : tensors_) {
    put_string(head, tensor.name);
    put<uint32_t>(head, static_cast<uint32_t>(tensor.dims.size()));
    for (uint64_t dim : tensor.dims) put<uint64_t>(head, dim);
    put<uint32_t>(head, static_cast<uint32_t>(tensor.type));
    put<uint64_t>(head, offset);
    offset = align_up(offset + tensor.bytes.size(), alignment_);
  }
  head.resize(align_up(head.size(), alignment_), 0);
  sink.write(head.data(), head.size());

  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const PendingTensor& tensor : tensors_) {
    sink.write(tensor.bytes.data(), tensor.bytes.size());
    const uint64_t padding = align_up(tensor.bytes.size(), alignment_) - tensor.bytes.size();
    sink.write(zeros.data(), padding);
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  VectorSink sink{out};
  serialize(sink);
  return out;
}

namespace {

const char* kind_of(std::filesystem::file_type type) {
  switch (type) {
    case std::filesystem::file_type::directory:
      return "a folder";
    case std::filesystem::file_type::character:
    case std::filesystem::file_type::block:
      return "a device";
    case std::filesystem::file_type::fifo:
      return "a pipe";
    case std::filesystem::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

// The file to replace: `path`, or what it links to. Throws Error for a
// target that is not a regular file, or a folder that is missing or not
// writable.
std::string resolve_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) fail("no output file given: pass the path of the GGUF file to write");
  std::error_code error;
  fs::path target = path;
  // Follow links by hand: a link to a file not there yet is written through too.
  for (int hops = 0; fs::is_symlink(fs::symlink_status(target, error)); ++hops) {
    if (hops == 40) fail(path, ": too many levels of symbolic links");
    const fs::path next = fs::read_symlink(target, error);
    if (error) fail(path, ": cannot follow the symbolic link: ", error.message());
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  const fs::file_status status = fs::status(target, error);
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    fail(path, " is ", kind_of(status.type()),
         ", not a file: give the path of a GGUF file to write (it is never replaced)");
  }
  fs::path folder = target.parent_path();
  if (folder.empty()) folder = ".";
  if (!fs::is_directory(folder, error)) {
    fail(path, ": the folder ", folder.string(), " does not exist: create it first");
  }
  if (::access(folder.c_str(), W_OK) != 0) {
    fail(path, ": cannot write in the folder ", folder.string(), ": ", std::strerror(errno));
  }
  return target.string();
}

// The temporary files being written, for remove_unfinished_writes() in a
// signal handler: fixed storage and lock-free flags only. A write that finds
// every slot taken still works; only its cleanup on a signal is lost.
struct PendingWrite {
  std::atomic<int> state{0};  // 0 free, 1 being filled or emptied, 2 path set
  char path[4096];
};
PendingWrite g_pending_writes[8];
static_assert(std::atomic<int>::is_always_lock_free, "signal handlers need lock-free flags");

// Registers `temporary` for the lifetime of a write.
class PendingWriteSlot {
 public:
  explicit PendingWriteSlot(const std::string& temporary) {
    if (temporary.size() >= sizeof g_pending_writes[0].path) return;
    for (PendingWrite& slot : g_pending_writes) {
      int expected = 0;
      if (!slot.state.compare_exchange_strong(expected, 1)) continue;
      std::memcpy(slot.path, temporary.c_str(), temporary.size() + 1);
      slot.state.store(2);
      slot_ = &slot;
      return;
    }
  }
  ~PendingWriteSlot() {
    if (slot_ != nullptr) slot_->state.store(0);
  }
  PendingWriteSlot(const PendingWriteSlot&) = delete;
  PendingWriteSlot& operator=(const PendingWriteSlot&) = delete;

 private:
  PendingWrite* slot_ = nullptr;
};

}  // namespace

void remove_unfinished_writes() noexcept {
  for (PendingWrite& slot : g_pending_writes) {
    if (slot.state.load() == 2) ::unlink(slot.path);
  }
}

void check_output_path(const std::string& path) {
  resolve_output_path(path);
}

void GgufWriter::write(const std::string& requested_path) const {
  const std::string path = resolve_output_path(requested_path);
  const std::string temporary = str_cat(path, ".tmp-", ::getpid());
  // Registered before the file exists: a signal in between unlinks nothing.
  const PendingWriteSlot pending(temporary);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) {
    fail(path, ": cannot create '", temporary, "': ", std::strerror(errno));
  }
  FileSink sink{file};
  try {
    serialize(sink);
  } catch (...) {  // out of memory for the header: no temporary file left behind
    std::fclose(file);
    std::remove(temporary.c_str());
    throw;
  }
  const bool flushed = std::fflush(file) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!sink.ok || !flushed || !closed) {
    std::remove(temporary.c_str());
    fail(path, ": cannot write '", temporary, "': ", std::strerror(saved_errno));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(temporary.c_str());
    fail(path, ": cannot rename '", temporary, "' to it: ", std::strerror(rename_errno));
  }
}

}  // namespace specula
