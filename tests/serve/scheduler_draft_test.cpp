// The batched draft model (scheduler_draft.h): several sequences proposed
// together give exactly what ModelDrafter gives each alone (tokens, draft
// distributions, confidences, random draws), step after step with rollbacks,
// early stops, greedy and sampled drafts; and the batch takes as many draft
// passes as its longest draft, not the sum.
#include <gtest/gtest.h>

#include "drafters/model_drafter.h"
#include "serve/scheduler_draft.h"
#include "spec/model_files.h"

namespace specula {
namespace {

class SharedDraft : public testing::SuiteModelPair<SharedDraft, testing::small_model> {};

constexpr int32_t kCtx = 96;
constexpr int kSequences = 3;

TEST_F(SharedDraft, BatchedProposalsEqualEachSequenceAlone) {
  SharedDraftModel shared(draft(), kCtx, kSequences, nullptr);
  std::vector<std::unique_ptr<SlotModelDrafter>> batched;
  std::vector<std::unique_ptr<ModelDrafter>> alone;
  std::vector<std::vector<int32_t>> contexts;
  std::vector<Rng> batched_rngs, alone_rngs;
  for (int i = 0; i < kSequences; ++i) {
    batched.push_back(shared.make_drafter(i));
    alone.push_back(std::make_unique<ModelDrafter>(draft(), kCtx, nullptr));
    contexts.push_back(testing::random_tokens(target(), 40 + i, 3 + 7 * i));
    batched[i]->begin(contexts[i]);
    alone[i]->begin(contexts[i]);
    batched_rngs.emplace_back(100 + i);
    alone_rngs.emplace_back(100 + i);
  }
  EXPECT_EQ(batched[0]->name(), alone[0]->name());
  Rng script(9);
  for (int round = 0; round < 12; ++round) {
    SamplingParams params;
    params.temperature = round % 3 == 0 ? 0.0f : 0.9f;
    params.top_k = 0;
    params.top_p = round % 2 == 0 ? 1.0f : 0.9f;
    params.min_p = 0.0f;
    std::vector<DraftProposal> got(kSequences), want(kSequences);
    std::vector<SharedDraftModel::Job> jobs;
    int32_t longest = 0;
    for (int i = 0; i < kSequences; ++i) {
      const int32_t g = 1 + static_cast<int32_t>((round + 2 * i) % 4);
      const float stop = round % 4 == 1 ? 0.3f : 0.0f;
      got[i].stop_confidence = stop;
      want[i].stop_confidence = stop;
      jobs.push_back({batched[i].get(), contexts[i], g, &params, &batched_rngs[i], &got[i]});
      alone[i]->propose(contexts[i], g, params, alone_rngs[i], want[i]);
      longest = std::max(longest, g);
    }
    const int64_t passes_before = shared.passes();
    shared.propose(jobs);
    EXPECT_LE(shared.passes() - passes_before, longest) << "round " << round;
    for (int i = 0; i < kSequences; ++i) {
      EXPECT_EQ(got[i].tokens, want[i].tokens) << "round " << round << ", sequence " << i;
      EXPECT_EQ(got[i].probs, want[i].probs) << "round " << round << ", sequence " << i;
      EXPECT_EQ(got[i].confidence, want[i].confidence) << "round " << round << ", sequence " << i;
      // The verifier kept some of the draft and added a token of its own.
      const size_t kept = want[i].tokens.empty() ? 0 : script.next_u64() % want[i].tokens.size();
      contexts[i].insert(contexts[i].end(), want[i].tokens.begin(),
                         want[i].tokens.begin() + static_cast<ptrdiff_t>(kept));
      contexts[i].push_back(static_cast<int32_t>(script.next_u64() % 32));
      batched[i]->accept(contexts[i], static_cast<int32_t>(kept));
      alone[i]->accept(contexts[i], static_cast<int32_t>(kept));
    }
    // Same random streams consumed.
    for (int i = 0; i < kSequences; ++i) {
      EXPECT_EQ(batched_rngs[i].next_u64(), alone_rngs[i].next_u64()) << "round " << round;
    }
  }
  // A sequence restarted in its slot drafts as a fresh ModelDrafter does.
  const std::vector<int32_t> fresh = testing::random_tokens(target(), 77, 9);
  batched[1]->begin(fresh);
  ModelDrafter reference(draft(), kCtx, nullptr);
  reference.begin(fresh);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Rng a(1), b(1);
  DraftProposal got, want;
  batched[1]->propose(fresh, 4, greedy, a, got);
  reference.propose(fresh, 4, greedy, b, want);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(batched[1]->memory().file_bytes, reference.memory().file_bytes);
}

TEST_F(SharedDraft, NothingToDraftRunsNoPass) {
  SharedDraftModel shared(draft(), 8, 2, nullptr);
  std::unique_ptr<SlotModelDrafter> d = shared.make_drafter(0);
  const std::vector<int32_t> context = {1, 2, 3};
  d->begin(context);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Rng rng(1);
  DraftProposal out;
  d->propose(context, 0, greedy, rng, out);
  EXPECT_TRUE(out.tokens.empty());
  // A context longer than the cache drafts nothing.
  const std::vector<int32_t> long_context(9, 1);
  d->propose(long_context, 3, greedy, rng, out);
  EXPECT_TRUE(out.tokens.empty());
  EXPECT_EQ(shared.passes(), 0);
  // Near the end of the cache the draft shrinks to what fits.
  const std::vector<int32_t> near_end(7, 2);
  d->propose(near_end, 4, greedy, rng, out);
  EXPECT_EQ(out.tokens.size(), 2u);
}

}  // namespace
}  // namespace specula
