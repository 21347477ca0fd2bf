// Helpers shared by the trainer's tests.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "train/data.h"

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

// A fixed random "sentence" of 40 tokens over 32 ids, repeated (60 times
// for training, 4 held out): after a couple of tokens of context the next
// token is determined, so a model that learns the corpus drives the loss
// towards zero.
inline TokenCorpus repeated_sentence_corpus() {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(0, 31);
  std::vector<int32_t> sentence(40);
  for (int32_t& t : sentence) t = token(rng);
  TokenCorpus corpus;
  for (int r = 0; r < 60; ++r)
    corpus.train.insert(corpus.train.end(), sentence.begin(), sentence.end());
  for (int r = 0; r < 4; ++r)
    corpus.eval.insert(corpus.eval.end(), sentence.begin(), sentence.end());
  return corpus;
}

}  // namespace specula::test
