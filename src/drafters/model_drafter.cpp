#include "drafters/model_drafter.h"

#include "core/error.h"

namespace specula {

void check_same_vocabulary(const Model& target, const Model& draft) {
  const std::string& target_path = target.file().path();
  const std::string& draft_path = draft.file().path();
  const int32_t target_vocab = target.config().n_vocab;
  const int32_t draft_vocab = draft.config().n_vocab;
  if (target_vocab != draft_vocab) {
    fail("the draft model ", draft_path, " has ", draft_vocab, " tokens but the target ",
         target_path, " has ", target_vocab,
         ": a draft must share the target's vocabulary; use a draft made for this target");
  }
  const char* key = "tokenizer.ggml.tokens";
  const auto target_tokens = target.file().get_string_array(key);
  const auto draft_tokens = draft.file().get_string_array(key);
  if (!target_tokens || !draft_tokens) return;
  if (target_tokens->size() != draft_tokens->size()) {
    fail("the draft model ", draft_path, " lists ", draft_tokens->size(), " tokens in ", key,
         " but the target ", target_path, " lists ", target_tokens->size(),
         ": a draft must share the target's vocabulary");
  }
  for (size_t id = 0; id < target_tokens->size(); ++id) {
    if ((*target_tokens)[id] != (*draft_tokens)[id]) {
      fail("the draft model ", draft_path, " and the target ", target_path,
           " have different tokens at id ", id,
           ": a draft must share the target's vocabulary; use a draft made for this target");
    }
  }
}

ModelDrafter::ModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool)
    : model_(draft), pool_(pool) {
  replace_cache(draft.make_cache(n_ctx, 1));
}

std::string ModelDrafter::name() const {
  return "draft model " + model_.file().path();
}

DrafterMemory ModelDrafter::memory() const {
  DrafterMemory memory = ForwardDrafter::memory();
  memory.file_bytes = model_.file().file_size();
  return memory;
}

void ModelDrafter::run_forward(std::span<const BatchRow> rows, KvCache& cache,
                               std::vector<float>& logits) {
  model_.forward(rows, cache, logits, pool_);
}

}  // namespace specula
