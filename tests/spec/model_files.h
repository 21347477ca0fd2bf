// Tiny random target and draft GGUF files in a temporary folder, for the
// generator tests (tests make their models; nothing is downloaded).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include "model/make_model.h"
#include "model/model.h"

namespace specula::testing {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("specula_spec_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct ModelPair {
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
};

// A target of `n_layer` layers and a draft made of its first layer.
inline ModelPair make_target_and_derived_draft(const TempDir& dir, const std::string& name,
                                               RandomModelOptions options) {
  const std::string target_path = dir.file(name + "-target.gguf");
  const std::string draft_path = dir.file(name + "-draft.gguf");
  write_random_model(options, target_path);
  write_draft_model(target_path, 1, draft_path);
  return {Model::load(target_path), Model::load(draft_path)};
}

}  // namespace specula::testing
