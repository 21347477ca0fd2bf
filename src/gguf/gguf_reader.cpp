// GgufReader: mapping the file, lookups. Parsing and validation live in
// gguf_parser.cpp, typed value access in gguf_values.cpp.
#include "gguf/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "core/error.h"
#include "gguf/gguf_parser.h"

namespace specula {

static_assert(std::endian::native == std::endian::little,
              "GGUF files are little-endian and are read in place");

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
      return "uint8";
    case GgufType::kInt8:
      return "int8";
    case GgufType::kUint16:
      return "uint16";
    case GgufType::kInt16:
      return "int16";
    case GgufType::kUint32:
      return "uint32";
    case GgufType::kInt32:
      return "int32";
    case GgufType::kFloat32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kUint64:
      return "uint64";
    case GgufType::kInt64:
      return "int64";
    case GgufType::kFloat64:
      return "float64";
  }
  return "unknown";
}

uint64_t gguf_type_size(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

namespace {

constexpr std::align_val_t kCopyAlignment{64};

// Closes a file descriptor on every path out of open().
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The mappings that exist, for mapped_file_at() in a signal handler: fixed
// storage and lock-free flags only. A file mapped when every slot is taken
// works; a fault in it is just reported without its name.
struct MappedFile {
  std::atomic<int> state{0};  // 0 free, 1 being filled or emptied, 2 in use
  uintptr_t begin = 0, end = 0;
  char path[1024];
};
MappedFile g_mapped_files[32];

void register_mapping(const void* base, uint64_t size, const std::string& path) {
  for (MappedFile& slot : g_mapped_files) {
    int expected = 0;
    if (!slot.state.compare_exchange_strong(expected, 1)) continue;
    slot.begin = reinterpret_cast<uintptr_t>(base);
    slot.end = slot.begin + size;
    const size_t n = std::min(path.size(), sizeof slot.path - 1);
    std::memcpy(slot.path, path.data(), n);
    slot.path[n] = '\0';
    slot.state.store(2);
    return;
  }
}

void unregister_mapping(const void* base) {
  for (MappedFile& slot : g_mapped_files) {
    if (slot.state.load() == 2 && slot.begin == reinterpret_cast<uintptr_t>(base)) {
      slot.state.store(0);
      return;
    }
  }
}

}  // namespace

const char* mapped_file_at(const void* address) noexcept {
  const auto at = reinterpret_cast<uintptr_t>(address);
  for (const MappedFile& slot : g_mapped_files) {
    if (slot.state.load() == 2 && at >= slot.begin && at < slot.end) return slot.path;
  }
  return nullptr;
}

std::unique_ptr<GgufReader> GgufReader::open(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    fail(path, ": cannot open: ", std::strerror(errno));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    fail(path, ": cannot stat: ", std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    fail(path, S_ISDIR(info.st_mode) ? " is a folder" : " is not a regular file",
         ", not a GGUF file: give the path of a .gguf model file");
  }
  if (info.st_size == 0) {
    // /proc and /sys files report size 0 yet have content; they cannot be
    // mapped, so say what they are rather than "empty".
    char byte = 0;
    if (::read(fd.get(), &byte, 1) == 1) {
      fail(path,
           ": the file reports size 0 but has content (a /proc or /sys file?); it cannot be "
           "memory-mapped, so it is not a GGUF model: give the path of a .gguf file");
    }
    fail(path, ": the file is empty, not a GGUF file");
  }

  std::unique_ptr<GgufReader> reader(new GgufReader());
  reader->path_ = path;
  const auto size = static_cast<uint64_t>(info.st_size);
  // Read-only private mapping: tensor data is used in place, never copied.
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (mapping == MAP_FAILED) {
    fail(path, ": cannot memory-map ", size, " bytes: ", std::strerror(errno));
  }
  reader->base_ = static_cast<const uint8_t*>(mapping);
  reader->size_ = size;
  register_mapping(mapping, size, path);
  reader->finish_open();
  return reader;
}

std::unique_ptr<GgufReader> GgufReader::from_memory(std::string name,
                                                    std::span<const uint8_t> bytes) {
  if (bytes.empty()) {
    fail(name, ": the file is empty, not a GGUF file");
  }
  std::unique_ptr<GgufReader> reader(new GgufReader());
  reader->path_ = std::move(name);
  auto* copy = static_cast<uint8_t*>(::operator new(bytes.size(), kCopyAlignment));
  std::memcpy(copy, bytes.data(), bytes.size());
  reader->base_ = copy;
  reader->owns_copy_ = true;
  reader->size_ = bytes.size();
  reader->finish_open();
  return reader;
}

void GgufReader::finish_open() {
  GgufParser(*this).parse();
  for (size_t i = 0; i < metadata_.size(); ++i) {
    key_index_.emplace(metadata_[i].key, i);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    tensor_index_.emplace(tensors_[i].name, i);
  }
}

GgufReader::~GgufReader() {
  if (base_ == nullptr) return;
  if (owns_copy_) {
    ::operator delete(const_cast<uint8_t*>(base_), kCopyAlignment);
  } else {
    unregister_mapping(base_);
    ::munmap(const_cast<uint8_t*>(base_), size_);
  }
}

const GgufValue* GgufReader::find(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensorInfo* GgufReader::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufReader::tensor(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (info == nullptr) {
    fail(path_, ": tensor '", name, "' is missing (the file has ", tensors_.size(), " tensors)");
  }
  return *info;
}

}  // namespace specula
