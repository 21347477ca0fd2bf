// Runs the built `specula` executable in tests and captures what it prints.
#pragma once

#include <sys/wait.h>

#include <gtest/gtest.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace specula::testing {

struct CliResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `args` is appended to the executable's path as is (the caller quotes).
inline CliResult run_cli(const std::string& args) {
  const std::string command = std::string(SPECULA_CLI_PATH) + " " + args + " 2>&1 </dev/null";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// The same with standard input read from `input_path`.
inline CliResult run_cli_with_stdin(const std::string& input_path, const std::string& args) {
  return run_cli(args + " 2>&1 <'" + input_path + "' #");
}

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "specula-cli-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A tiny target (2 layers of width 32, with make-model's tokenizer) and a
// one-layer draft cut from it, written into `dir`: the pair most CLI tests
// run on.
struct TinyPair {
  std::string target, draft;
};
inline TinyPair make_tiny_pair(const TempDir& dir) {
  TinyPair pair{dir.file("target.gguf"), dir.file("draft.gguf")};
  const CliResult target =
      run_cli("make-model --out " + pair.target + " --embd 32 --layers 2 --heads 2 --ff 64");
  EXPECT_EQ(target.exit_code, 0) << target.output;
  const CliResult draft =
      run_cli("make-model --from " + pair.target + " --layers 1 --out " + pair.draft);
  EXPECT_EQ(draft.exit_code, 0) << draft.output;
  return pair;
}

}  // namespace specula::testing
