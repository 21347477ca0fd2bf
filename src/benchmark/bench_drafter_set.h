// The drafter sets of `specula bench --drafter-sets`: each a --drafter list
// ("lookup", "model,lookup,suffix") run through a SpeculationSession of its
// own (bench_decode_modes.h), with its suffix cache, adaptive policy and,
// when it names several drafters, bandit, all kept across the bench's
// repeats as an Engine keeps them across requests. So drafters and the
// bandit over them are compared inside one process, interleaved with plain
// decoding, like the fixed g's and the policies.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace specula {

// "a,b,c" -> {"a", "b", "c"}; throws Error for an empty list or name.
std::vector<std::string> split_drafter_set(const std::string& set);

// Throws Error, before anything is measured, when a name is unknown or
// needs what is missing (a draft model for "model", enough layers for
// "self:K").
void check_drafter_set(const std::string& set, const Model& target, const Model* draft);

}  // namespace specula
