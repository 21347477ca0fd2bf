// Trained parameters <-> GGUF: the model file `specula generate` runs
// (llama metadata, tokenizer keys copied from the vocabulary file, tensors
// named and shaped as make-model writes them), and reading parameters back
// (checkpoints, fine-tuning a model file).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "learn/transformer.h"

namespace specula {

// Adds the llama.* keys, general.name and file_type, every tokenizer.* key
// of `tokenizer_source` (may be null: no tokenizer, for tiny test models)
// and every parameter tensor. Matrices are written as `type` (F32 or F16);
// norms stay F32. Throws Error when the tokenizer's token count is not the
// shape's vocabulary size.
void add_model_to_gguf(GgufWriter& writer, const ParameterLayout& layout,
                       std::span<const float> params, DType type,
                       const GgufReader* tokenizer_source, std::string_view name);

// The tensors of `layout`, each named `prefix` + its GGUF name, as F32.
void add_tensors_to_gguf(GgufWriter& writer, const ParameterLayout& layout,
                         std::span<const float> values, std::string_view prefix);

// Reads the shape a model file's llama.* keys describe.
TransformerShape read_transformer_shape(const GgufReader& file);

// Reads tensors `prefix` + name of `layout` into `out` (layout.total()
// floats), converting F16/BF16 to float. Throws Error naming the file and
// the missing or misshapen tensor.
void read_tensors_from_gguf(const GgufReader& file, const ParameterLayout& layout,
                            std::string_view prefix, std::span<float> out);

}  // namespace specula
