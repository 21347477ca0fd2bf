// The Generator and ModelDrafter on tiny random models: greedy speculative
// output equals plain greedy output token for token, the draft model's
// proposals equal its own fresh greedy continuation (so its cache rollback
// and catch-up are right), stopping at -n, at the context size and at
// end-of-generation tokens, reproducibility, statistics and bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "drafters/model_drafter.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "speculative/generator.h"

namespace specula {
namespace {

class GeneratorTest : public testing::SuiteModelPair<GeneratorTest, testing::small_model> {
 protected:
  static std::vector<int32_t> random_prompt(uint64_t seed, size_t length) {
    return testing::random_tokens(target(), seed, length);
  }

  static GeneratorOptions options(float temperature, int32_t n, int32_t g, uint64_t seed = 0) {
    return testing::generation_options(temperature, n, g, seed);
  }

  // Greedy continuation of `model` computed with a fresh cache and whole-
  // sequence forwards: independent of the generator's incremental caches.
  static std::vector<int32_t> fresh_greedy(const Model& model, std::vector<int32_t> sequence,
                                           int32_t n) {
    std::vector<int32_t> out;
    for (int32_t step = 0; step < n; ++step) {
      out.push_back(argmax(testing::fresh_last_logits(model, sequence)));
      sequence.push_back(out.back());
    }
    return out;
  }
};

TEST_F(GeneratorTest, PlainGreedyIsTheArgmaxChain) {
  Generator generator(target(), 64, nullptr);
  for (uint64_t seed = 0; seed < 3; ++seed) {
    const std::vector<int32_t> prompt = random_prompt(seed, 5);
    const GenerationOutput out = generator.generate(prompt, nullptr, options(0.0f, 12, 0));
    EXPECT_EQ(out.tokens, fresh_greedy(target(), prompt, 12)) << "seed " << seed;
  }
}

TEST_F(GeneratorTest, GreedySpeculativeEqualsPlainGreedy) {
  const int32_t n_ctx = 64;
  Generator generator(target(), n_ctx, nullptr);
  ModelDrafter drafter(draft(), n_ctx, nullptr);
  int64_t drafted = 0, accepted = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::vector<int32_t> prompt = random_prompt(100 + seed, 1 + seed % 7);
    const GenerationOutput plain = generator.generate(prompt, nullptr, options(0.0f, 32, 0));
    ASSERT_EQ(plain.tokens.size(), 32u);
    for (int32_t g : {1, 2, 4, 8}) {
      const GenerationOutput spec = generator.generate(prompt, &drafter, options(0.0f, 32, g));
      EXPECT_EQ(spec.tokens, plain.tokens) << "seed " << seed << ", g = " << g;
      drafted += spec.stats.drafted_tokens;
      accepted += spec.stats.accepted_tokens;
    }
  }
  // The identity only means something if the draft both agreed and disagreed.
  EXPECT_GT(accepted, drafted / 10) << accepted << " of " << drafted;
  EXPECT_LT(accepted, drafted * 9 / 10) << accepted << " of " << drafted;
}

// Wraps a drafter and records what it was asked and what it proposed.
class RecordingDrafter : public Drafter {
 public:
  explicit RecordingDrafter(Drafter& inner) : inner_(inner) {}
  std::string name() const override { return inner_.name(); }
  void begin(std::span<const int32_t> context) override { inner_.begin(context); }
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override {
    inner_.propose(context, g, params, rng, out);
    contexts.emplace_back(context.begin(), context.end());
    proposals.push_back(out.tokens);
  }
  void accept(std::span<const int32_t> context, int32_t n_accepted) override {
    inner_.accept(context, n_accepted);
  }
  std::vector<std::vector<int32_t>> contexts, proposals;

 private:
  Drafter& inner_;
};

TEST_F(GeneratorTest, DraftProposalsAreTheDraftModelsOwnGreedyContinuation) {
  Generator generator(target(), 64, nullptr);
  ModelDrafter model_drafter(draft(), 64, nullptr);
  RecordingDrafter drafter(model_drafter);
  for (int32_t g : {1, 3, 5}) {
    drafter.contexts.clear();
    drafter.proposals.clear();
    generator.generate(random_prompt(7 + g, 4), &drafter, options(0.0f, 24, g));
    ASSERT_FALSE(drafter.proposals.empty());
    for (size_t call = 0; call < drafter.proposals.size(); ++call) {
      const std::vector<int32_t>& proposal = drafter.proposals[call];
      EXPECT_EQ(proposal, fresh_greedy(draft(), drafter.contexts[call],
                                       static_cast<int32_t>(proposal.size())))
          << "g = " << g << ", call " << call;
    }
  }
}

TEST_F(GeneratorTest, StopsAtMaxNewTokens) {
  Generator generator(target(), 64, nullptr);
  ModelDrafter drafter(draft(), 64, nullptr);
  for (int32_t g : {0, 1, 3, 8}) {
    for (int32_t n : {0, 1, 2, 5, 17}) {
      const GenerationOutput out =
          generator.generate(random_prompt(3, 4), g ? &drafter : nullptr, options(1.0f, n, g, 5));
      EXPECT_EQ(out.tokens.size(), static_cast<size_t>(n)) << "g = " << g;
      EXPECT_EQ(out.stats.generated_tokens, n);
      EXPECT_EQ(out.stats.stop_reason, StopReason::kMaxTokens);
    }
  }
}

TEST_F(GeneratorTest, StopsAtTheContextSizeWithoutWritingPastIt) {
  const int32_t n_ctx = 10;
  Generator generator(target(), n_ctx, nullptr);
  ModelDrafter drafter(draft(), n_ctx, nullptr);
  for (int32_t g : {0, 1, 2, 4, 8, 20}) {
    for (float temperature : {0.0f, 1.0f}) {
      for (size_t prompt_length : {1u, 3u, 9u}) {
        const GenerationOutput out =
            generator.generate(random_prompt(prompt_length, prompt_length), g ? &drafter : nullptr,
                               options(temperature, 100, g, 9));
        EXPECT_EQ(out.tokens.size(), n_ctx - prompt_length) << "g = " << g;
        EXPECT_EQ(out.stats.stop_reason, StopReason::kContextFull);
        EXPECT_LE(generator.cache().length(0), n_ctx);
        EXPECT_LE(drafter.cache().length(0), n_ctx);
      }
    }
  }
  // A prompt that fills the context leaves no room; a longer one is an error.
  const GenerationOutput full =
      generator.generate(random_prompt(1, 10), &drafter, options(1.0f, 5, 4));
  EXPECT_TRUE(full.tokens.empty());
  EXPECT_EQ(full.stats.stop_reason, StopReason::kContextFull);
  EXPECT_THROW(generator.generate(random_prompt(1, 11), &drafter, options(1.0f, 5, 4)), Error);
}

TEST_F(GeneratorTest, StopsAtAnEndOfGenerationTokenWithoutEmittingIt) {
  Generator generator(target(), 64, nullptr);
  ModelDrafter drafter(draft(), 64, nullptr);
  const std::vector<int32_t> prompt = random_prompt(21, 3);
  const GenerationOutput free_run = generator.generate(prompt, nullptr, options(0.0f, 20, 0));
  // The first token not seen before position 3 plays the end-of-text token.
  size_t stop_at = 3;
  while (std::find(free_run.tokens.begin(), free_run.tokens.begin() + stop_at,
                   free_run.tokens[stop_at]) != free_run.tokens.begin() + stop_at) {
    ++stop_at;
    ASSERT_LT(stop_at, free_run.tokens.size());
  }
  for (int32_t g : {0, 2, 8}) {
    GeneratorOptions o = options(0.0f, 20, g);
    o.stop_tokens = {free_run.tokens[stop_at]};
    const GenerationOutput out = generator.generate(prompt, g ? &drafter : nullptr, o);
    EXPECT_EQ(out.tokens,
              std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + stop_at));
    EXPECT_EQ(out.stats.stop_reason, StopReason::kEndOfGeneration);
  }
}

TEST_F(GeneratorTest, CallbackSeesEachTokenAndCanStop) {
  Generator generator(target(), 64, nullptr);
  ModelDrafter drafter(draft(), 64, nullptr);
  std::vector<int32_t> seen;
  const GenerationOutput out =
      generator.generate(random_prompt(2, 3), &drafter, options(1.0f, 20, 4, 3), [&](int32_t t) {
        seen.push_back(t);
        return seen.size() < 5;
      });
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(out.tokens, seen);
  EXPECT_EQ(out.stats.stop_reason, StopReason::kCancelled);
}

TEST_F(GeneratorTest, ReproducibleForASeed) {
  Generator generator(target(), 64, nullptr);
  ModelDrafter drafter(draft(), 64, nullptr);
  const std::vector<int32_t> prompt = random_prompt(4, 4);
  for (Drafter* d : {static_cast<Drafter*>(nullptr), static_cast<Drafter*>(&drafter)}) {
    const auto a = generator.generate(prompt, d, options(1.0f, 24, 4, 7));
    const auto b = generator.generate(prompt, d, options(1.0f, 24, 4, 7));
    const auto c = generator.generate(prompt, d, options(1.0f, 24, 4, 8));
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_NE(a.tokens, c.tokens);
  }
}

TEST_F(GeneratorTest, StatisticsAddUp) {
  Generator generator(target(), 128, nullptr);
  ModelDrafter drafter(draft(), 128, nullptr);
  const std::vector<int32_t> prompt = random_prompt(6, 5);

  const GenerationOutput plain = generator.generate(prompt, nullptr, options(1.0f, 40, 4, 1));
  EXPECT_EQ(plain.stats.prompt_tokens, 5);
  EXPECT_EQ(plain.stats.generated_tokens, 40);
  EXPECT_EQ(plain.stats.target_passes, 40);
  EXPECT_EQ(plain.stats.drafted_tokens, 0);
  EXPECT_EQ(plain.stats.tokens_per_pass(), 1.0);

  const int32_t g = 4;
  const GenerationOutput spec = generator.generate(prompt, &drafter, options(1.0f, 40, g, 1));
  const GenerationStats& s = spec.stats;
  EXPECT_EQ(s.generated_tokens, 40);
  // Each pass emits its accepted tokens and one more.
  EXPECT_EQ(s.generated_tokens, s.accepted_tokens + s.target_passes);
  ASSERT_EQ(s.drafted_at.size(), static_cast<size_t>(g));
  EXPECT_EQ(std::accumulate(s.drafted_at.begin(), s.drafted_at.end(), int64_t{0}),
            s.drafted_tokens);
  EXPECT_EQ(std::accumulate(s.accepted_at.begin(), s.accepted_at.end(), int64_t{0}),
            s.accepted_tokens);
  for (int32_t i = 0; i < g; ++i) {
    EXPECT_LE(s.accepted_at[i], s.drafted_at[i]);
    if (i > 0) {
      EXPECT_LE(s.accepted_at[i], s.accepted_at[i - 1]);  // a prefix is accepted
    }
  }
  EXPECT_GT(s.tokens_per_pass(), 1.0);
  EXPECT_NEAR(s.acceptance_rate(), double(s.accepted_tokens) / double(s.drafted_tokens), 1e-12);
  EXPECT_GE(s.total_seconds, s.prefill_seconds);

  const nlohmann::json json = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(json["generated_tokens"], s.generated_tokens);
  EXPECT_EQ(json["target_passes"], s.target_passes);
  EXPECT_EQ(json["drafted_tokens"], s.drafted_tokens);
  EXPECT_EQ(json["accepted_tokens"], s.accepted_tokens);
  EXPECT_EQ(json["accepted_at"].get<std::vector<int64_t>>(), s.accepted_at);
  EXPECT_NEAR(json["acceptance_rate"].get<double>(), s.acceptance_rate(), 1e-8);
  EXPECT_NEAR(json["tokens_per_pass"].get<double>(), s.tokens_per_pass(), 1e-8);
  EXPECT_EQ(json["stop_reason"], "max_tokens");
  for (const char* key :
       {"prefill_seconds", "draft_seconds", "target_seconds", "sampling_seconds", "total_seconds",
        "decode_tokens_per_second", "acceptance_at", "prompt_tokens", "draft_max"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST_F(GeneratorTest, BadInputIsAnError) {
  Generator generator(target(), 64, nullptr);
  auto message = [&](std::vector<int32_t> prompt, GeneratorOptions o) {
    try {
      generator.generate(prompt, nullptr, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message({}, options(1.0f, 5, 0)).find("empty"), std::string::npos);
  EXPECT_NE(message({1, 32}, options(1.0f, 5, 0)).find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(message({1, -1}, options(1.0f, 5, 0)).find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(message({1}, options(1.0f, -1, 0)).find("max_new_tokens"), std::string::npos);
  EXPECT_NE(message({1}, options(1.0f, 5, -2)).find("draft_max"), std::string::npos);
  EXPECT_NE(message({1}, options(-1.0f, 5, 0)).find("temperature"), std::string::npos);
  EXPECT_THROW(Generator(target(), 0, nullptr), Error);
}

// A copy of `path` whose token `id` is renamed.
void write_with_renamed_token(const std::string& path, int32_t id, const std::string& out_path) {
  const auto file = GgufReader::open(path);
  GgufWriter writer;
  for (const GgufKv& kv : file->metadata()) {
    if (kv.key == "general.alignment") continue;
    if (kv.key == "tokenizer.ggml.tokens") {
      std::vector<std::string> tokens(kv.value.array_strs.begin(), kv.value.array_strs.end());
      tokens[id] = "renamed";
      writer.set_string_array(kv.key, tokens);
    } else {
      writer.set_value(kv.key, kv.value);
    }
  }
  for (const GgufTensorInfo& t : file->tensors()) {
    writer.add_tensor(t.name, t.dims, t.type, std::span<const uint8_t>(t.data, t.n_bytes));
  }
  writer.write(out_path);
}

TEST(ModelDrafterVocabulary, ADraftWithAnotherVocabularyIsRefused) {
  testing::TempDir dir;
  RandomModelOptions o = testing::small_model();
  o.n_layer = 1;
  write_random_model(o, dir.file("a.gguf"));
  o.n_vocab = 33;
  write_random_model(o, dir.file("b.gguf"));
  const auto a = Model::load(dir.file("a.gguf"));
  const auto b = Model::load(dir.file("b.gguf"));
  try {
    check_same_vocabulary(*a, *b);
    FAIL() << "a 33-token draft was accepted for a 32-token target";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("a.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("b.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("33"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(check_same_vocabulary(*a, *a));
}

TEST(ModelDrafterVocabulary, ADraftWithOtherTokenStringsIsRefused) {
  testing::TempDir dir;
  RandomModelOptions o = testing::small_model();
  o.n_vocab = 260;  // gets the byte-level tokenizer and its token list
  o.n_layer = 1;
  write_random_model(o, dir.file("target.gguf"));
  write_with_renamed_token(dir.file("target.gguf"), 100, dir.file("draft.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  const auto same = Model::load(dir.file("target.gguf"));
  const auto draft = Model::load(dir.file("draft.gguf"));
  EXPECT_NO_THROW(check_same_vocabulary(*target, *same));
  try {
    check_same_vocabulary(*target, *draft);
    FAIL() << "a draft with a renamed token was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("draft.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("target.gguf"), std::string::npos) << message;
    EXPECT_NE(message.find("id 100"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace specula
