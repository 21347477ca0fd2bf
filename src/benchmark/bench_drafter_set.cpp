#include "benchmark/bench_drafter_set.h"

#include "core/split_list.h"
#include "engine/drafter_factory.h"

namespace specula {

std::vector<std::string> split_drafter_set(const std::string& set) {
  return split_list(set, "the drafter set");
}

void check_drafter_set(const std::string& set, const Model& target, const Model* draft) {
  SuffixCache cache(SuffixCacheOptions{.max_tokens = 1});
  DrafterResources resources;
  resources.target = &target;
  resources.draft = draft;
  resources.suffix_cache = &cache;
  for (const std::string& name : split_drafter_set(set)) check_drafter_spec(name, resources);
}

}  // namespace specula
