// Helpers shared by the trainer's tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace specula::test {

// A path in the temp directory, unique to this process and `name`, removed
// by the destructor.
class TempPath {
 public:
  explicit TempPath(const std::string& name)
      : path_((std::filesystem::temp_directory_path() /
               ("specula_train_" + std::to_string(::getpid()) + "_" + name))
                  .string()) {}
  ~TempPath() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

}  // namespace specula::test
