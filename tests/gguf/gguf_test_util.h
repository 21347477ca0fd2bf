// Helpers shared by the GGUF tests: temporary files that clean up after
// themselves.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace specula::testing {

// A unique path under the system temporary directory, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& stem = "gguf") {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".gguf"))
                .string();
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

  void write(const std::vector<uint8_t>& bytes, size_t n_bytes) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n_bytes));
  }
  void write(const std::vector<uint8_t>& bytes) const { write(bytes, bytes.size()); }

 private:
  std::string path_;
};

}  // namespace specula::testing
