#include "train/data.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/input_file.h"

namespace specula {
namespace {

std::string read_file(const std::string& path) {
  return read_input_file(path, "the text file");
}

void append_file(const Tokenizer& tokenizer, const std::string& path, std::vector<int32_t>& out,
                 uint64_t& bytes) {
  const std::string text = read_file(path);
  bytes += text.size();
  const std::vector<int32_t> ids = tokenizer.encode(text, /*add_special=*/true,
                                                    /*parse_special=*/false);
  out.insert(out.end(), ids.begin(), ids.end());
  if (tokenizer.eos() >= 0) out.push_back(tokenizer.eos());
}

uint64_t fnv1a(uint64_t hash, std::span<const int32_t> values) {
  for (const int32_t v : values) {
    for (int shift = 0; shift < 32; shift += 8) {
      hash = (hash ^ ((static_cast<uint32_t>(v) >> shift) & 0xff)) * 0x100000001b3ull;
    }
  }
  return hash;
}

}  // namespace

uint64_t TokenCorpus::fingerprint() const {
  uint64_t hash = 0xcbf29ce484222325ull;
  hash = fnv1a(hash, train);
  const int32_t separator[] = {-1, static_cast<int32_t>(train.size())};
  hash = fnv1a(hash, separator);
  return fnv1a(hash, eval);
}

TokenCorpus tokenize_corpus(const Tokenizer& tokenizer, const CorpusOptions& options) {
  if (options.train_files.empty())
    fail("train: no training text given (CorpusOptions::train_files is empty)");
  if (!(options.eval_fraction >= 0.0 && options.eval_fraction < 1.0)) {
    fail("train: CorpusOptions::eval_fraction ", options.eval_fraction, " must be in [0, 1)");
  }
  TokenCorpus corpus;
  for (const std::string& path : options.train_files) {
    append_file(tokenizer, path, corpus.train, corpus.text_bytes);
  }
  if (!options.eval_files.empty()) {
    for (const std::string& path : options.eval_files) {
      append_file(tokenizer, path, corpus.eval, corpus.text_bytes);
    }
  } else {
    const auto held_out =
        static_cast<size_t>(static_cast<double>(corpus.train.size()) * options.eval_fraction);
    corpus.eval.assign(corpus.train.end() - static_cast<std::ptrdiff_t>(held_out),
                       corpus.train.end());
    corpus.train.resize(corpus.train.size() - held_out);
  }
  if (corpus.train.empty()) fail("train: the CorpusOptions::train_files hold no text to train on");
  return corpus;
}

void sample_windows(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len,
                    SplitMix64& rng, std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < seq_len + 1) {
    fail("train: the training text has ", n,
         " tokens, fewer than one window of TrainOptions::seq_len ", seq_len,
         " + 1; give more text or a shorter TrainOptions::seq_len");
  }
  inputs.resize(static_cast<size_t>(batch * seq_len));
  targets.resize(inputs.size());
  const auto starts = static_cast<uint64_t>(n - seq_len);  // positions 0 .. n - seq_len - 1
  for (int64_t b = 0; b < batch; ++b) {
    const auto start = static_cast<ptrdiff_t>(rng.below(starts));
    const auto out = static_cast<ptrdiff_t>(b * seq_len);
    std::copy_n(tokens.begin() + start, seq_len, inputs.begin() + out);
    std::copy_n(tokens.begin() + start + 1, seq_len, targets.begin() + out);
  }
}

int64_t evaluation_windows(std::span<const int32_t> tokens, int64_t seq_len, int64_t max_tokens) {
  const int64_t available = static_cast<int64_t>(tokens.size()) / (seq_len + 1);
  const int64_t wanted = std::max<int64_t>(1, max_tokens / seq_len);
  return std::min(available, wanted);
}

}  // namespace specula
