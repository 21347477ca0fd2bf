#include "benchmark/bench_drafter_set.h"

#include "core/error.h"
#include "engine/drafter_factory.h"

namespace specula {

std::vector<std::string> split_drafter_set(const std::string& set) {
  std::vector<std::string> names;
  std::string name;
  for (char c : set + ",") {
    if (c != ',') {
      name += c;
      continue;
    }
    if (name.empty()) {
      fail("drafter set '", set, "' has an empty name: write names separated by commas, e.g. ",
           "model,lookup,suffix (", drafter_spec_help(), ")");
    }
    names.push_back(name);
    name.clear();
  }
  return names;
}

void check_drafter_set(const std::string& set, const Model& target, const Model* draft) {
  SuffixCache cache(SuffixCacheOptions{.max_tokens = 1});
  DrafterResources resources;
  resources.target = &target;
  resources.draft = draft;
  resources.suffix_cache = &cache;
  for (const std::string& name : split_drafter_set(set)) check_drafter_spec(name, resources);
}

BenchDrafterSet::BenchDrafterSet(const std::string& set, const Model& target, const Model* draft,
                                 int32_t n_ctx, ThreadPool* pool)
    : set_(set), suffix_cache_(std::make_unique<SuffixCache>()) {
  DrafterResources resources;
  resources.target = &target;
  resources.draft = draft;
  resources.suffix_cache = suffix_cache_.get();
  resources.n_ctx = n_ctx;
  resources.pool = pool;
  for (const std::string& name : split_drafter_set(set)) {
    drafters_.push_back(make_drafter(name, resources));
  }
  policy_ = make_policy(PolicyOptions{});  // adaptive, the default
  if (drafters_.size() > 1) {
    bandit_ = std::make_unique<DrafterBandit>(static_cast<int32_t>(drafters_.size()));
  }
}

Speculation BenchDrafterSet::speculation() const {
  Speculation speculation;
  for (const std::unique_ptr<Drafter>& d : drafters_) speculation.drafters.push_back(d.get());
  speculation.policy = policy_.get();
  speculation.bandit = bandit_.get();
  return speculation;
}

}  // namespace specula
