#include "drafters/prompt_lookup_drafter.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "drafters/token_hash.h"

namespace specula {

void validate(const PromptLookupOptions& options) {
  if (options.min_ngram < 1 || options.max_ngram < options.min_ngram || options.max_ngram > 64) {
    fail("prompt lookup n-gram sizes ", options.min_ngram, "..", options.max_ngram,
         " are invalid: give 1 <= min <= max <= 64 (e.g. lookup:1-3)");
  }
}

PromptLookupDrafter::PromptLookupDrafter(PromptLookupOptions options) : options_(options) {
  validate(options_);
  tables_.resize(static_cast<size_t>(options_.max_ngram - options_.min_ngram + 1));
}

std::string PromptLookupDrafter::name() const {
  const PromptLookupOptions defaults;
  if (options_.min_ngram == defaults.min_ngram && options_.max_ngram == defaults.max_ngram) {
    return "lookup";
  }
  return str_cat("lookup:", options_.min_ngram, "-", options_.max_ngram);
}

uint64_t PromptLookupDrafter::hash_ngram(const int32_t* first, int32_t n) const {
  uint64_t hash = kTokenHashSeed;
  for (int32_t i = 0; i < n; ++i) hash = hash_combine_token(hash, first[i]);
  return hash;
}

void PromptLookupDrafter::append(int32_t token) {
  // The n-grams ending just before `token` now have a following token: they
  // point here, which overwrites older occurrences (the latest one wins).
  const int32_t position = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  for (int32_t n = options_.min_ngram; n <= options_.max_ngram && n <= position; ++n) {
    tables_[static_cast<size_t>(n - options_.min_ngram)][hash_ngram(&tokens_[position - n], n)] =
        position;
  }
}

void PromptLookupDrafter::begin(std::span<const int32_t> context) {
  tokens_.clear();
  for (auto& table : tables_) table.clear();
  tokens_.reserve(context.size());
  for (int32_t token : context) append(token);
}

void PromptLookupDrafter::sync(std::span<const int32_t> context) {
  // The interface promises that `context` extends what we saw; checking the
  // last indexed token catches a caller that started over without begin().
  const size_t have = tokens_.size();
  if (context.size() < have || (have > 0 && context[have - 1] != tokens_.back())) {
    begin(context);
    return;
  }
  for (size_t i = have; i < context.size(); ++i) append(context[i]);
}

void PromptLookupDrafter::propose(std::span<const int32_t> context, int32_t g,
                                  const SamplingParams& /*params*/, Rng& /*rng*/,
                                  DraftProposal& out) {
  out.clear();
  sync(context);
  if (g <= 0) return;
  const int32_t length = static_cast<int32_t>(tokens_.size());
  const int32_t* suffix_end = tokens_.data() + length;
  for (int32_t n = std::min(options_.max_ngram, length); n >= options_.min_ngram; --n) {
    const auto& table = tables_[static_cast<size_t>(n - options_.min_ngram)];
    const auto found = table.find(hash_ngram(suffix_end - n, n));
    if (found == table.end()) continue;
    const int32_t follow = found->second;  // n <= follow < length
    // A hash collision would only cost acceptance, but check anyway.
    if (!std::equal(suffix_end - n, suffix_end, tokens_.data() + follow - n)) continue;
    out.tokens.reserve(static_cast<size_t>(g));
    for (int32_t i = 0; i < g; ++i) {
      const int32_t source = follow + i;
      out.tokens.push_back(source < length ? tokens_[source] : out.tokens[source - length]);
    }
    return;
  }
}

void PromptLookupDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  sync(context);
}

DrafterMemory PromptLookupDrafter::memory() const {
  // A hash-map entry costs about its pair, a node pointer and a bucket.
  constexpr uint64_t kEntryBytes = sizeof(std::pair<uint64_t, int32_t>) + 2 * sizeof(void*);
  DrafterMemory memory;
  memory.cache_bytes = tokens_.capacity() * sizeof(int32_t);
  for (const auto& table : tables_) memory.cache_bytes += table.size() * kEntryBytes;
  return memory;
}

}  // namespace specula
