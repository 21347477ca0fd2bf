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

}  // namespace specula
