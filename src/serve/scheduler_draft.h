// The draft model run batched across the scheduler's slots (issue 13, item
// 2): one KV cache holds every slot's sequence, and the drafts of all
// sequences that draft with the model in a step are proposed together, one
// draft forward per draft position over all of them (the first pass also
// catches each sequence's cache up with the tokens it lacks: its prompt
// after a join, the accepted tokens and the target's token after a step).
// A draft pass over n sequences reads the draft's weights once instead of n
// times, so drafting costs about what it costs one sequence while the draft
// is memory-bound.
//
// Each slot drafts through a SlotModelDrafter (the Drafter its policy and
// statistics see). What it proposes is what ModelDrafter proposes for the
// same context and random stream: the same rows, the same transform, the
// same draws in the same order (each sequence draws from its own Rng), and
// a row's logits do not depend on the other rows of its pass. So batching
// changes the time drafting takes, never the drafts.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "speculative/drafter.h"

namespace specula {

class SharedDraftModel;

// One slot's view of the shared draft: its sequence's cached tokens.
class SlotModelDrafter : public Drafter {
 public:
  SlotModelDrafter(SharedDraftModel& shared, int32_t seq);
  // "draft model PATH", as ModelDrafter.
  std::string name() const override;
  // Forgets the slot's cached rows; the first proposal catches up.
  void begin(std::span<const int32_t> context) override;
  // A batch of one (SharedDraftModel::propose).
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Rolls the slot's rows back to the longest prefix shared with `context`.
  void accept(std::span<const int32_t> context, int32_t n_accepted) override;
  // The draft file, and this slot's share of the cache.
  DrafterMemory memory() const override;
  // Rows a proposal after `context` runs before its first drafted token:
  // the tokens the slot's cache lacks, and the last one again (>= 1).
  int32_t rows_to_catch_up(std::span<const int32_t> context) const;

 private:
  friend class SharedDraftModel;
  void roll_back(std::span<const int32_t> context, size_t max_length);

  SharedDraftModel& shared_;
  int32_t seq_;
  std::vector<int32_t> cached_tokens_;  // the tokens whose rows the cache holds
};

class SharedDraftModel {
 public:
  // `draft` and `pool` (may be null) must outlive it; n_seq sequences of up
  // to n_ctx positions.
  SharedDraftModel(const Model& draft, int32_t n_ctx, int32_t n_seq, ThreadPool* pool);

  // The drafter of slot `seq` (0 <= seq < n_seq), made once per slot.
  std::unique_ptr<SlotModelDrafter> make_drafter(int32_t seq);

  // One sequence's proposal: as Drafter::propose's arguments.
  struct Job {
    SlotModelDrafter* drafter = nullptr;
    std::span<const int32_t> context;
    int32_t g = 0;
    const SamplingParams* params = nullptr;
    Rng* rng = nullptr;
    DraftProposal* out = nullptr;  // out->stop_confidence is an input
  };
  // Proposes for every job (each drafter at most once), with as many draft
  // passes as the longest draft needs. Each job's result is what
  // ModelDrafter::propose gives for it alone.
  void propose(std::span<Job> jobs);

  const Model& model() const { return model_; }
  const KvCache& cache() const { return cache_; }
  int64_t passes() const { return passes_; }  // draft forwards run
  int64_t rows() const { return rows_run_; }  // rows in them

 private:
  friend class SlotModelDrafter;
  struct Active {
    Job* job = nullptr;
    int32_t g = 0;  // what fits in the cache
    int32_t drafted = 0;
  };

  const Model& model_;
  ThreadPool* pool_;
  KvCache cache_;
  std::vector<BatchRow> rows_;
  std::vector<float> logits_;
  std::vector<Active> active_, next_;
  int64_t passes_ = 0;
  int64_t rows_run_ = 0;
};

}  // namespace specula
