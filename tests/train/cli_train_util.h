// Helpers of the `specula train` and `specula distill` end-to-end tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cli/cli_runner.h"

namespace specula::test {

// The CLI is a separate target: its tests skip when it has not been built.
inline bool cli_built() {
  return std::filesystem::exists(SPECULA_CLI_PATH);
}

// dir/corpus.py: `functions` small Python-like functions named f0 ..
// f<names - 1>; returns its path.
inline std::string write_python_corpus(const testing::TempDir& dir, int functions, int names) {
  const std::string path = dir.file("corpus.py");
  std::ofstream out(path);
  for (int i = 0; i < functions; ++i) {
    out << "def f" << i % names << "(x):\n    return x * " << i % 7 << " + " << i % 5 << "\n\n";
  }
  return path;
}

// `specula tokenizer train` on `corpus`: a 300-entry vocabulary, dir/vocab.gguf.
inline testing::CliResult train_vocabulary(const testing::TempDir& dir, const std::string& corpus) {
  return testing::run_cli("tokenizer train --input " + corpus + " --vocab-size 300 --out " +
                          dir.file("vocab.gguf"));
}

// The whole file (empty when it cannot be read).
inline std::string file_contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace specula::test
