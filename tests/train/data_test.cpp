// Corpus tokenizing, held-out splits and window sampling.
#include "train/data.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/bpe_trainer.h"
#include "train/train_test_util.h"

namespace specula {
namespace {

// A byte-level BPE vocabulary learned from `text`, loaded as a Tokenizer.
std::unique_ptr<Tokenizer> small_tokenizer(const std::string& text) {
  BpeTrainer trainer(BpeTrainerOptions{300, "default", 2});
  trainer.add_text(text);
  GgufWriter writer;
  trainer.train().add_to_gguf(writer);
  test::TempPath path("vocab.gguf");
  writer.write(path.str());
  return Tokenizer::from_gguf(*GgufReader::open(path.str()));
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(Corpus, FilesBecomeDocumentsWithBosAndEos) {
  const std::string a = "def add(a, b):\n    return a + b\n";
  const std::string b = "class Point:\n    pass\n";
  const auto tokenizer = small_tokenizer(a + b + a + b);
  test::TempPath file_a("a.py"), file_b("b.py");
  write_text(file_a.str(), a);
  write_text(file_b.str(), b);
  const TokenCorpus corpus = tokenize_corpus(*tokenizer, {{file_a.str(), file_b.str()}, {}, 0.0});
  std::vector<int32_t> expected = tokenizer->encode(a, true, false);
  expected.push_back(tokenizer->eos());
  const std::vector<int32_t> second = tokenizer->encode(b, true, false);
  expected.insert(expected.end(), second.begin(), second.end());
  expected.push_back(tokenizer->eos());
  EXPECT_EQ(corpus.train, expected);
  EXPECT_EQ(corpus.train.front(), tokenizer->bos());
  EXPECT_TRUE(corpus.eval.empty());
  EXPECT_EQ(corpus.text_bytes, a.size() + b.size());
}

TEST(Corpus, HoldsOutTheTailFractionOrNamedFiles) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "x = " + std::to_string(i) + "\n";
  const auto tokenizer = small_tokenizer(text);
  test::TempPath file("t.py"), held("held.py");
  write_text(file.str(), text);
  write_text(held.str(), "y = 1\n");
  const TokenCorpus all = tokenize_corpus(*tokenizer, {{file.str()}, {}, 0.0});
  const TokenCorpus split = tokenize_corpus(*tokenizer, {{file.str()}, {}, 0.25});
  const size_t held_out = all.train.size() / 4;
  ASSERT_EQ(split.eval.size(), held_out);
  ASSERT_EQ(split.train.size() + split.eval.size(), all.train.size());
  EXPECT_TRUE(std::equal(split.eval.begin(), split.eval.end(), all.train.end() - held_out));
  EXPECT_NE(split.fingerprint(), all.fingerprint());

  const TokenCorpus named = tokenize_corpus(*tokenizer, {{file.str()}, {held.str()}, 0.25});
  EXPECT_EQ(named.train, all.train) << "named held-out files leave the training text whole";
  EXPECT_EQ(named.eval.front(), tokenizer->bos());

  EXPECT_THROW(tokenize_corpus(*tokenizer, {{file.str() + ".missing"}, {}, 0.0}), Error);
  EXPECT_THROW(tokenize_corpus(*tokenizer, {{file.str()}, {}, 1.0}), Error);
}

TEST(Windows, TargetsAreInputsShiftedByOneAndStartsCoverTheText) {
  std::vector<int32_t> tokens(100);
  for (int32_t i = 0; i < 100; ++i) tokens[static_cast<size_t>(i)] = i;
  SplitMix64 rng(1);
  std::vector<int32_t> inputs, targets;
  std::set<int32_t> starts;
  for (int round = 0; round < 200; ++round) {
    sample_windows(tokens, 4, 10, rng, inputs, targets);
    ASSERT_EQ(inputs.size(), 40u);
    for (int b = 0; b < 4; ++b) {
      const int32_t start = inputs[b * 10];
      starts.insert(start);
      for (int t = 0; t < 10; ++t) {
        ASSERT_EQ(inputs[b * 10 + t], start + t);
        ASSERT_EQ(targets[b * 10 + t], start + t + 1);
      }
      ASSERT_LE(start + 10, 99) << "the last target must exist";
    }
  }
  EXPECT_EQ(starts.size(), 90u) << "every start 0..89 drawn in 800 windows";
  // The same seed gives the same windows.
  SplitMix64 again(1);
  std::vector<int32_t> first_inputs, first_targets;
  sample_windows(tokens, 4, 10, again, first_inputs, first_targets);
  SplitMix64 once_more(1);
  sample_windows(tokens, 4, 10, once_more, inputs, targets);
  EXPECT_EQ(inputs, first_inputs);
  EXPECT_THROW(sample_windows(tokens, 1, 100, rng, inputs, targets), Error);
}

TEST(Windows, EvaluationWindowsAreFixedAndBounded) {
  const std::vector<int32_t> tokens(1000, 1);
  EXPECT_EQ(evaluation_windows(tokens, 9, 50), 5);         // 50 tokens / 9 per window
  EXPECT_EQ(evaluation_windows(tokens, 9, 1000000), 100);  // all of 1000 / 10
  EXPECT_EQ(evaluation_windows(tokens, 9, 1), 1);          // at least one
  EXPECT_EQ(evaluation_windows(std::vector<int32_t>(5, 1), 9, 100), 0);
}

TEST(SplitMix64, KnownValuesAndBoundedDraws) {
  // splitmix64's published first outputs for seed 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ull);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(7), 7u);
}

}  // namespace
}  // namespace specula
