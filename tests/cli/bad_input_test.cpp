// Bad input and faults from issue 15, through the built `specula`: each
// gets one specific message and a plain exit status, never an internal
// error, a wrapped value or a bare signal.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/child_process.h"
#include "cli/cli_runner.h"
#include "core/dtype.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace specula {
namespace {

using testing::ChildProcess;
using testing::CliResult;
using testing::run_cli;
using testing::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The one error line, a status below 128 (no signal), no internal error.
void expect_clear_error(const CliResult& result, const std::string& words, int code = 1) {
  EXPECT_EQ(result.exit_code, code) << result.output;
  EXPECT_TRUE(contains(result.output, words)) << "expected \"" << words << "\" in:\n"
                                              << result.output;
  EXPECT_FALSE(contains(result.output, "internal error")) << result.output;
}

// `source` copied to `path` with tensor dims replaced (data zeroed) where
// `new_dims` names them, metadata values replaced by `set_metadata`, and a
// 2-value F32 tensor `extra_tensor` added when not empty.
void copy_gguf(const std::string& source, const std::string& path,
               const std::map<std::string, std::vector<uint64_t>>& new_dims,
               const std::function<bool(const GgufKv&, GgufWriter&)>& set_metadata = {},
               const std::string& extra_tensor = "") {
  const std::unique_ptr<GgufReader> file = GgufReader::open(source);
  GgufWriter writer;
  for (const GgufKv& kv : file->metadata()) {
    if (set_metadata && set_metadata(kv, writer)) continue;
    writer.set_value(kv.key, kv.value);
  }
  for (const GgufTensorInfo& tensor : file->tensors()) {
    const auto it = new_dims.find(tensor.name);
    if (it == new_dims.end()) {
      writer.add_tensor(tensor.name, tensor.dims, tensor.type,
                        std::span<const uint8_t>(tensor.data, tensor.n_bytes));
      continue;
    }
    uint64_t n = 1;
    for (uint64_t d : it->second) n *= d;
    writer.add_tensor_f32(tensor.name, it->second, std::vector<float>(n, 0.0f));
  }
  if (!extra_tensor.empty()) {
    writer.add_tensor_f32(extra_tensor, std::vector<uint64_t>{2}, std::vector<float>{1, 2});
  }
  writer.write(path);
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(SPECULA_CLI_PATH)) GTEST_SKIP() << "specula CLI not built";
    model_ = dir_.file("model.gguf");
    const CliResult made = run_cli("make-model --out " + model_ +
                                   " --embd 32 --layers 2 --heads 2 --ff 64 --ctx 1000000");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    folder_ = dir_.file("folder");
    std::filesystem::create_directory(folder_);
  }

  TempDir dir_;
  std::string model_;
  std::string folder_;
};

TEST_F(BadInput, AFolderAsAnInputFileIsNamed) {
  expect_clear_error(run_cli("tokenize -m " + model_ + " --file " + folder_),
                     "--file " + folder_ + " is a folder, not a file");
  expect_clear_error(run_cli("tokenizer train --vocab-size 300 --input " + folder_ + " --out " +
                             dir_.file("v.gguf")),
                     "--input " + folder_ + " is a folder, not a file");
  expect_clear_error(run_cli("generate -m " + model_ + " --prompt-file " + folder_),
                     "the prompt file " + folder_ + " is a folder, not a file");
  expect_clear_error(run_cli("inspect " + folder_), folder_ + " is a folder, not a GGUF file");
}

TEST_F(BadInput, AProcFileIsNotCalledEmpty) {
  const CliResult result = run_cli("inspect /proc/self/status");
  expect_clear_error(result, "reports size 0 but has content");
  EXPECT_FALSE(contains(result.output, "the file is empty")) << result.output;
}

TEST_F(BadInput, SeedsThatDoNotFitAreRefusedNotWrapped) {
  for (const std::string seed : {"-1", "18446744073709551616", "1e3", "0x10"}) {
    const CliResult result = run_cli("generate -m " + model_ + " -n 1 --seed " + seed + " hi");
    expect_clear_error(result, "is not a whole number from 0 to 18446744073709551615", 2);
  }
  const CliResult largest =
      run_cli("generate -m " + model_ + " -n 1 -q --seed 18446744073709551615 hi");
  EXPECT_EQ(largest.exit_code, 0) << largest.output;
}

TEST_F(BadInput, AnEmptyDrafterListIsRefused) {
  expect_clear_error(run_cli("generate -m " + model_ + " -n 1 --drafter '' hi"),
                     "--drafter is empty");
}

TEST_F(BadInput, ControlCharactersInNamesAreEscaped) {
  GgufWriter writer;
  writer.set_string("evil\x1b[2Jkey", "value");
  writer.add_tensor_f32("t\x07\n", std::vector<uint64_t>{2}, std::vector<float>{1.0f, 2.0f});
  const std::string path = dir_.file("names.gguf");
  writer.write(path);
  const CliResult result = run_cli("inspect " + path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "evil\\x1b[2Jkey")) << result.output;
  EXPECT_TRUE(contains(result.output, "t\\x07\\n")) << result.output;
  EXPECT_FALSE(contains(result.output, "\x1b")) << "a raw escape reached the terminal";
  EXPECT_FALSE(contains(result.output, "\x07")) << "a raw bell reached the terminal";
}

// make-model's tokenizer has 258 tokens; the embeddings get 300 rows.
TEST_F(BadInput, ATokenizerSmallerThanTheEmbeddingsIsRefusedAtLoad) {
  const std::string path = dir_.file("rows.gguf");
  copy_gguf(model_, path, {{"token_embd.weight", {32, 300}}, {"output.weight", {32, 300}}},
            [](const GgufKv& kv, GgufWriter& writer) {
              if (kv.key != "llama.vocab_size") return false;
              writer.set_uint32(kv.key, 300);
              return true;
            });
  const CliResult result = run_cli("generate -m " + path + " -n 50 --temp 1 --ignore-eos hi");
  expect_clear_error(result, "the tokenizer has 258 tokens");
  EXPECT_TRUE(contains(result.output, "token_embd.weight has 300 rows")) << result.output;
}

// A tensor the model does not use, in a model with its own output matrix:
// it loads, with a warning naming the tensor (issue 15).
TEST_F(BadInput, AnUnusedTensorIsAWarningNamingIt) {
  const std::string path = dir_.file("extra.gguf");
  copy_gguf(model_, path, {}, {}, "blk.0.attn_qkv.weight");
  const CliResult result = run_cli("generate -m " + path + " -n 2 -q hi");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(
      contains(result.output, "ignoring tensors no llama model uses: blk.0.attn_qkv.weight"))
      << result.output;
}

// -c far past the training context: a warning that states the KV size, and
// no gigabytes taken up front (the cache's pages fill as it does).
TEST_F(BadInput, AContextPastTrainingWarnsWithTheKvSizeAndAllocatesLazily) {
  const std::string small = dir_.file("small_ctx.gguf");
  const CliResult made =
      run_cli("make-model --out " + small + " --embd 32 --layers 2 --heads 2 --ff 64 --ctx 256");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // 2 layers x 32 kv values x (k, v) x 2 bytes (F16, the default) = 256
  // bytes a token: 1 GiB.
  const CliResult result =
      run_cli("generate -m " + small + " -c 4194304 -n 4 --temp 0 --json -q x");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "exceeds the 256 tokens the model was trained for"))
      << result.output;
  EXPECT_TRUE(contains(result.output, "KV cache grows to 1.00 GiB")) << result.output;
  const size_t brace = result.output.find('{');
  ASSERT_NE(brace, std::string::npos) << result.output;
  const nlohmann::json json =
      nlohmann::json::parse(result.output.substr(brace, result.output.rfind('}') + 1 - brace));
  EXPECT_LT(json["memory"]["peak_resident_bytes"].get<double>(), 512.0 * 1024 * 1024)
      << "the 1 GiB KV cache was filled up front";
}

// A model truncated while generate runs: a message naming the file and exit
// status 1, not a bare SIGBUS.
TEST_F(BadInput, AModelTruncatedWhileInUseIsNamed) {
  ChildProcess child({"generate", "-m", model_, "-n", "1000000", "--ignore-eos", "--temp", "1",
                      "-c", "1000000", "hello"});
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.wait_for_bytes(16, 60)) << child.output();
  ASSERT_EQ(::truncate(model_.c_str(), 0), 0);
  const int code = child.finish(60);
  EXPECT_EQ(code, 1) << child.output();
  EXPECT_TRUE(contains(child.output(), "the model file " + model_ + " changed while in use"))
      << child.output();
}

// SIGTERM while a GGUF file is being written: no NAME.tmp-PID left behind.
// The temporary name is made a FIFO before exec, so the writer blocks in it
// until the test has seen it write and signals it.
TEST_F(BadInput, AnInterruptedWriteLeavesNoTemporaryFile) {
  const std::string out = dir_.file("big.gguf");
  ChildProcess child(
      {"make-model", "--out", out, "--embd", "256", "--layers", "2", "--heads", "2", "--ff", "512"},
      [&] {
        const std::string fifo = out + ".tmp-" + std::to_string(::getpid());
        ::mkfifo(fifo.c_str(), 0600);
      });
  ASSERT_GT(child.pid(), 0);
  const std::string fifo = out + ".tmp-" + std::to_string(child.pid());
  int reader = -1;
  for (int i = 0; i < 600 && reader < 0; ++i) {
    reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    if (reader < 0) ::usleep(10000);
  }
  ASSERT_GE(reader, 0) << "the FIFO was not made: " << child.output();
  // Wait for the header: the writer is then inside GgufWriter::write.
  char magic[4] = {};
  size_t got = 0;
  for (int i = 0; i < 6000 && got < sizeof magic; ++i) {
    const ssize_t n = ::read(reader, magic + got, sizeof magic - got);
    if (n > 0) got += static_cast<size_t>(n);
    if (got < sizeof magic) ::usleep(10000);
  }
  ASSERT_EQ(got, sizeof magic) << child.output();
  EXPECT_EQ(std::string(magic, 4), "GGUF");
  child.signal(SIGTERM);
  const int code = child.finish(60);
  ::close(reader);
  EXPECT_EQ(code, 128 + SIGTERM) << child.output();
  EXPECT_FALSE(std::filesystem::exists(fifo)) << "the temporary file was left behind";
  EXPECT_FALSE(std::filesystem::exists(out));
}

// generate --online-distill --osd-save stopped by SIGINT or SIGTERM still
// saves the learned draft, says so, and exits 1.
TEST_F(BadInput, AnInterruptedOnlineDistillationSavesTheDraft) {
  const std::string draft = dir_.file("draft.gguf");
  const CliResult made = run_cli("make-model --from " + model_ + " --layers 1 --out " + draft);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  for (const int number : {SIGINT, SIGTERM}) {
    const std::string saved = dir_.file("learned" + std::to_string(number) + ".gguf");
    ChildProcess child({"generate", "-m", model_, "-d", draft, "--online-distill", "--osd-save",
                        saved, "-n", "1000000", "--ignore-eos", "--temp", "1", "-c", "1000000",
                        "hello"});
    ASSERT_GT(child.pid(), 0);
    ASSERT_TRUE(child.wait_for_bytes(16, 60)) << child.output();
    child.signal(number);
    const int code = child.finish(120);
    EXPECT_EQ(code, 1) << child.output();
    EXPECT_TRUE(contains(child.output(), "interrupted by a signal")) << child.output();
    EXPECT_TRUE(contains(child.output(), "the learned draft was saved to " + saved))
        << child.output();
    const CliResult loaded = run_cli("generate -m " + model_ + " -d " + saved + " -n 2 -q hi");
    EXPECT_EQ(loaded.exit_code, 0) << loaded.output;
  }
}

}  // namespace
}  // namespace specula
