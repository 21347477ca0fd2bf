// Random-weight Llama-family GGUF models of any shape, and drafts derived
// from a target (its first k layers with the same embeddings, final norm,
// output matrix and tokenizer). Tests, benchmarks and the default run use
// these; `specula make-model` is the command-line front end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/dtype.h"
#include "gguf/gguf_writer.h"

namespace specula {

struct RandomModelOptions {
  std::string architecture = "llama";  // "llama" or "qwen2" (q/k/v biases)
  int32_t n_vocab = 258;               // >= 258 gets the byte-level tokenizer
  int32_t n_embd = 256;
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_head_kv = 0;  // 0: same as n_head
  int32_t n_ff = 0;       // 0: about 8/3 n_embd, rounded up to a multiple of 32
  int32_t n_ctx = 2048;
  DType type = DType::kF32;  // of the matrices (F32 or F16); norms and biases stay F32
  uint64_t seed = 1;
  float rope_freq_base = 10000.0f;
  bool tied_output = false;  // no output.weight: logits use token_embd
  std::string name;          // general.name; a default describes the shape
  // A GGUF file (a model or a vocab-only file) whose `tokenizer.*` metadata
  // is copied, every key and value type as is, instead of the byte-level
  // tokenizer. n_vocab becomes its number of tokens: resolve sets it when
  // n_vocab is left at the default, and refuses any other disagreeing value.
  std::string tokenizer_from;
};

// Called after each tensor: its name, tensors done, tensors in all.
using MakeModelProgress = std::function<void(const std::string& tensor, size_t done, size_t total)>;

// Fills in the defaults (n_head_kv, n_ff, n_vocab from tokenizer_from) and
// checks the options; throws Error naming the bad option or file.
RandomModelOptions resolve_random_model_options(RandomModelOptions options);

// The whole file in a writer (tests take its bytes; write() saves it).
GgufWriter build_random_model(const RandomModelOptions& options,
                              const MakeModelProgress& progress = nullptr);
void write_random_model(const RandomModelOptions& options, const std::string& path,
                        const MakeModelProgress& progress = nullptr);

// Writes a draft of `target_path` holding its first `n_layer` layers and
// everything else (embeddings, output norm and matrix, tokenizer and other
// metadata) unchanged.
void write_draft_model(const std::string& target_path, int32_t n_layer, const std::string& out_path,
                       const MakeModelProgress& progress = nullptr);

// Parameters of a model of this shape (what build_random_model writes).
uint64_t random_model_parameter_count(const RandomModelOptions& resolved);

}  // namespace specula
