// Helpers for the model tests: temporary files, tiny random models, and
// rewriting a GGUF file with edits (metadata changed or removed, tensors
// dropped, reshaped, retyped or converted to F32) to make broken inputs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "model/make_model.h"

namespace specula::test {

// A path in a per-process temporary directory.
std::string temp_path(const std::string& name);

// Writes a random model to a temporary file and returns its path.
std::string write_temp_model(const RandomModelOptions& options, const std::string& name);

struct RemoveKey {};
using MetadataEdit = std::variant<RemoveKey, uint32_t, float, std::string>;

struct GgufEdits {
  std::map<std::string, MetadataEdit> metadata;  // replaced in place, or added at the end
  std::set<std::string> drop_tensors;
  std::map<std::string, std::string> rename_tensors;  // old name -> new name
  // New ggml dims for a tensor; its data becomes zeros of the new size.
  std::map<std::string, std::vector<uint64_t>> reshape_tensors;
  // New type for a tensor; its data becomes zero bytes of the new size.
  std::map<std::string, DType> retype_tensors;
  bool convert_to_f32 = false;  // F16/BF16 tensors become F32 of exactly the same values
};

// Copies `source` with `edits` applied to a new temporary file `name`.
std::string rewrite_gguf(const std::string& source, const GgufEdits& edits,
                         const std::string& name);

// max |a - b| / max |b| (b is the reference).
double relative_error(const std::vector<float>& a, const std::vector<double>& b);
double relative_error(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace specula::test
