// `specula tokenizer train --input FILES... --vocab-size N --out FILE.gguf`:
// learns a byte-level BPE vocabulary (see tokenizer/bpe_trainer.h) and
// writes it as GGUF tokenizer metadata (tokenizer.ggml.model = "gpt2").
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/input_file.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/bpe_trainer.h"

namespace specula::cli {
namespace {

struct TrainOptions {
  std::vector<std::string> inputs;
  size_t vocab_size = 8192;
  std::string out;
  std::string pre = "default";
  uint64_t min_count = 2;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Feeds a file in chunks cut after a newline, so no word spans two chunks.
void count_file(BpeTrainer& trainer, const std::string& path) {
  check_input_file(path, "--input");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read --input ", path, ": ", std::strerror(errno));
  constexpr size_t kChunk = 4 << 20;
  std::string buffer;
  std::string carry;
  std::vector<char> block(kChunk);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    buffer = std::move(carry);
    carry.clear();
    buffer.append(block.data(), got);
    const size_t cut = buffer.rfind('\n');
    if (cut != std::string::npos && in) {
      carry = buffer.substr(cut + 1);
      buffer.resize(cut + 1);
    }
    trainer.add_text(buffer);
  }
  if (!carry.empty()) trainer.add_text(carry);
}

void run_train(const TrainOptions& options) {
  check_output_path(options.out);
  BpeTrainerOptions trainer_options;
  trainer_options.vocab_size = options.vocab_size;
  trainer_options.pre = options.pre;
  trainer_options.min_pair_count = options.min_count;
  BpeTrainer trainer(trainer_options);

  const auto start = std::chrono::steady_clock::now();
  for (const std::string& path : options.inputs) {
    count_file(trainer, path);
    std::fprintf(stderr, "read %s: %.1f MB so far, %zu distinct words (%.1f s)\n", path.c_str(),
                 static_cast<double>(trainer.total_bytes()) / 1e6, trainer.distinct_words(),
                 seconds_since(start));
  }
  if (trainer.total_bytes() == 0) fail("the --input files are empty: nothing to learn from");

  size_t last_decile = 0;
  const TrainedBpe bpe = trainer.train([&](size_t done, size_t wanted) {
    const size_t decile = wanted == 0 ? 10 : done * 10 / wanted;
    if (decile > last_decile) {
      last_decile = decile;
      std::fprintf(stderr, "merges: %zu / %zu (%.1f s)\n", done, wanted, seconds_since(start));
    }
  });
  GgufWriter writer;
  writer.set_string("general.name", "specula-bpe");
  bpe.add_to_gguf(writer);
  writer.write(options.out);
  std::fprintf(stderr, "wrote %s: %zu tokens, %zu merges, pre-tokenizer \"%s\" (%.1f s total)\n",
               options.out.c_str(), bpe.tokens.size(), bpe.merges.size(), bpe.pre.c_str(),
               seconds_since(start));
  if (bpe.tokens.size() < options.vocab_size) {
    if (options.min_count <= 1) {
      std::fprintf(stderr, "note: stopped at %zu tokens: every word of this text is one token\n",
                   bpe.tokens.size());
    } else {
      std::fprintf(stderr,
                   "note: stopped at %zu tokens: no pair occurs %llu times or more in this text\n",
                   bpe.tokens.size(), static_cast<unsigned long long>(options.min_count));
    }
  }
}

const bool registered = register_command({
    "tokenizer",
    "Tokenizer tools: 'train' learns a byte-level BPE vocabulary from text",
    [](CLI::App& sub) {
      sub.require_subcommand(1);
      CLI::App* train =
          sub.add_subcommand("train", "Learn a byte-level BPE vocabulary and write it as GGUF");
      auto options = std::make_shared<TrainOptions>();
      train->add_option("--input", options->inputs, "Text files to learn from")->required();
      train
          ->add_option("--vocab-size", options->vocab_size,
                       "Tokens in the vocabulary (bytes and <s>, </s> included)")
          ->required()
          ->check(CLI::Range(size_t{258}, size_t{1} << 30));
      train->add_option("--out", options->out, "GGUF file to write")->required();
      train
          ->add_option("--pre", options->pre,
                       "Pre-tokenizer (tokenizer.ggml.pre), e.g. default, gpt-2, llama3")
          ->capture_default_str();
      train
          ->add_option("--min-count", options->min_count,
                       "Stop when the best pair occurs fewer times")
          ->capture_default_str()
          ->check(CLI::Range(uint64_t{1}, std::numeric_limits<uint64_t>::max()));
      train->callback([options] { run_train(*options); });
    },
});

}  // namespace
}  // namespace specula::cli
