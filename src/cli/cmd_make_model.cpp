// `specula make-model`: writes a random-weight Llama-family GGUF of any
// shape, or derives a draft from a target (`--from TARGET --layers K`: the
// target's first K layers, same embeddings, output and tokenizer).
// `--tokenizer-from FILE` gives a random model the tokenizer of a real one.
// `--pad-from TARGET --layers L --ff F [--type T]` writes a memory-bound
// copy of a trained target that computes the same function
// (model/pad_model.h: extra blocks and FFN units whose outputs are zero).
#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command_registry.h"
#include "cli/field_flags.h"
#include "cli/seed_flag.h"
#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "model/make_model.h"
#include "model/model.h"
#include "model/pad_model.h"
#include "tokenizer/tokenizer.h"

namespace specula::cli {
namespace {

// Above this many bytes of weights, progress goes to stderr.
constexpr uint64_t kProgressBytes = 64ull << 20;

// The flag of each RandomModelOptions field the library's errors name.
constexpr std::array<FieldFlag, 2> kMakeModelFlags = {{
    {"RandomModelOptions::n_vocab", "--vocab"},
    {"RandomModelOptions::tokenizer_from", "--tokenizer-from"},
}};

struct MakeModelFlags {
  RandomModelOptions model;
  std::string out;
  std::string type = "f32";
  std::string from;
  std::string pad_from;
};

// Prints "make-model: 40% (blk.3.ffn_up.weight)" at most every 5%.
MakeModelProgress progress_printer(bool enabled) {
  if (!enabled) return nullptr;
  auto last_percent = std::make_shared<int>(-1);
  return [last_percent](const std::string& tensor, size_t done, size_t total) {
    const int percent = static_cast<int>(100 * done / total);
    if (percent / 5 == *last_percent / 5 && done != total) return;
    *last_percent = percent;
    std::fprintf(stderr, "make-model: %3d%% (%s)\n", percent, tensor.c_str());
  };
}

// "gpt2 tokenizer (pre starcoder)", or why the file has none usable.
std::string describe_tokenizer(const GgufReader& file) {
  if (file.find("tokenizer.ggml.tokens") == nullptr) return "no tokenizer";
  try {
    const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(file);
    return str_cat(tokenizer->model_name(), " tokenizer (pre ", tokenizer->pre_tokenizer_name(),
                   ")");
  } catch (const Error& e) {
    return str_cat("tokenizer specula cannot use: ", e.what());
  }
}

// `tokenizer`: what describe_tokenizer said of the source, so that loading
// the copy does not repeat the source's warnings; empty: look at the file.
void describe(const std::string& path, std::string tokenizer = "") {
  const auto model = Model::load(path);  // also proves the file loads
  if (tokenizer.empty()) tokenizer = describe_tokenizer(model->file());
  const ModelConfig& c = model->config();
  uint64_t parameters = 0;
  for (const GgufTensorInfo& t : model->file().tensors()) parameters += t.n_elements;
  std::printf(
      "wrote %s: %s, %d layers, n_embd %d, %d heads (%d kv), n_ff %d, vocab %d, "
      "%.1fM parameters, %.1f MB, %s\n",
      path.c_str(), c.architecture.c_str(), c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_ff,
      c.n_vocab, parameters / 1e6, model->file().file_size() / 1e6, tokenizer.c_str());
}

// Refuses a tokenizer specula cannot run before any weights are written, so
// the error names the source file rather than the new model.
// Returns describe_tokenizer's words for it.
std::string check_tokenizer_source(const std::string& path) {
  const std::unique_ptr<GgufReader> file = GgufReader::open(path);
  try {
    const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
    return str_cat(tokenizer->model_name(), " tokenizer (pre ", tokenizer->pre_tokenizer_name(),
                   ") from ", path);
  } catch (const Error& e) {
    // The tokenizer's messages start with the file's path.
    fail("make-model: --tokenizer-from: ", e.what());
  }
}

// `--pad-from TARGET`: the target with more layers and a wider FFN, the
// same function; --type converts its matrices (default: types kept).
void run_pad(const MakeModelFlags& flags, const CLI::App& sub) {
  if (!flags.from.empty()) {
    fail(
        "make-model: --pad-from and --from cannot be combined: --from derives a smaller draft, "
        "--pad-from a larger copy of the same function");
  }
  for (const char* shape_flag : {"--arch", "--vocab", "--embd", "--heads", "--heads-kv", "--ctx",
                                 "--seed", "--rope-base", "--tied", "--name", "--tokenizer-from"}) {
    if (sub.count(shape_flag) > 0) {
      fail("make-model: ", shape_flag,
           " cannot be combined with --pad-from: a padded copy keeps the target's width, "
           "heads, vocabulary and tokenizer; give --layers L, --ff F and optionally --type");
    }
  }
  PadModelOptions options;
  if (sub.count("--layers") > 0) options.n_layer = flags.model.n_layer;
  if (sub.count("--ff") > 0) options.n_ff = flags.model.n_ff;
  if (sub.count("--type") > 0) {
    const auto type = dtype_from_name(flags.type);
    if (!type) {
      fail("make-model: --type ", flags.type,
           " is not a type; use f32, f16, bf16, q8_0, q4_0, q4_k, q5_k or q6_k");
    }
    options.type = *type;
  }
  if ((sub.count("--layers") > 0 && flags.model.n_layer <= 0) ||
      (sub.count("--ff") > 0 && flags.model.n_ff <= 0)) {
    fail("make-model: --layers and --ff must be positive (at least the target's)");
  }
  if (options.n_layer == 0 && options.n_ff == 0 && !options.type) {
    fail(
        "make-model: --pad-from needs --layers L and/or --ff F (at least the target's) or "
        "--type T; with none of them the copy would be the target itself");
  }
  const uint64_t bytes = padded_model_bytes(flags.pad_from, options);
  const bool show_progress = bytes > kProgressBytes;
  if (show_progress) {
    std::fprintf(stderr, "make-model: padding %s to %.1f MB of weights\n", flags.pad_from.c_str(),
                 bytes / 1e6);
  }
  const auto start = std::chrono::steady_clock::now();
  write_padded_model(flags.pad_from, options, flags.out, progress_printer(show_progress));
  if (show_progress) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "make-model: wrote %.1f MB in %.1f s\n", bytes / 1e6, seconds);
  }
  describe(flags.out);
}

void run(const MakeModelFlags& flags, const CLI::App& sub) {
  check_output_path(flags.out);
  if (!flags.pad_from.empty()) {
    run_pad(flags, sub);
    return;
  }
  if (!flags.from.empty()) {
    for (const char* shape_flag :
         {"--arch", "--vocab", "--embd", "--heads", "--heads-kv", "--ff", "--ctx", "--type",
          "--seed", "--rope-base", "--tied", "--name", "--tokenizer-from"}) {
      if (sub.count(shape_flag) > 0) {
        fail("make-model: ", shape_flag,
             " cannot be combined with --from: a draft keeps the "
             "target's shape and weights; give only --layers K and --out");
      }
    }
    if (sub.count("--layers") == 0) {
      fail("make-model: --from needs --layers K (how many of the target's layers the draft keeps)");
    }
    const auto target = GgufReader::open(flags.from);
    write_draft_model(flags.from, flags.model.n_layer, flags.out,
                      progress_printer(target->file_size() > kProgressBytes));
    describe(flags.out);
    return;
  }
  RandomModelOptions options = flags.model;
  const auto type = dtype_from_name(flags.type);
  if (!type || (*type != DType::kF32 && *type != DType::kF16 && *type != DType::kBF16)) {
    fail("make-model: --type ", flags.type, " is not supported; use f32, f16 or bf16");
  }
  options.type = *type;
  std::string tokenizer_description;
  if (!options.tokenizer_from.empty()) {
    tokenizer_description = check_tokenizer_source(options.tokenizer_from);
  }
  options = resolve_random_model_options(options);
  if (!options.tokenizer_from.empty() && sub.count("--vocab") > 0 &&
      flags.model.n_vocab != options.n_vocab) {
    fail("make-model: --vocab ", flags.model.n_vocab, " disagrees with the ", options.n_vocab,
         " tokens of ", options.tokenizer_from, " (--tokenizer-from); leave out --vocab");
  }
  const uint64_t bytes =
      random_model_parameter_count(options) * (options.type == DType::kF32 ? 4 : 2);
  const bool show_progress = bytes > kProgressBytes;
  const auto start = std::chrono::steady_clock::now();
  write_random_model(options, flags.out, progress_printer(show_progress));
  if (show_progress) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "make-model: wrote %.1f MB in %.1f s\n", bytes / 1e6, seconds);
  }
  describe(flags.out, tokenizer_description);
}

void add_flags(CLI::App& sub, MakeModelFlags& flags) {
  RandomModelOptions& m = flags.model;
  sub.add_option("--out,-o", flags.out, "GGUF file to write")->required();
  sub.add_option("--arch", m.architecture, "Architecture: llama or qwen2 (q/k/v biases)")
      ->capture_default_str();
  sub.add_option("--vocab", m.n_vocab,
                 "Vocabulary size; >= 258 writes the byte-level tokenizer (256 bytes, "
                 "<s>, </s>, then <|extra_N|> tokens)")
      ->capture_default_str();
  sub.add_option("--embd", m.n_embd, "Model width")->capture_default_str();
  sub.add_option("--layers", m.n_layer,
                 "Layers (with --from: layers the draft keeps; with --pad-from: layers of the "
                 "copy, at least the target's)")
      ->capture_default_str();
  sub.add_option("--heads", m.n_head, "Query heads")->capture_default_str();
  sub.add_option("--heads-kv", m.n_head_kv, "Key/value heads (default: --heads)");
  sub.add_option("--ff", m.n_ff,
                 "Feed-forward width (default: 8/3 embd rounded to 32; with --pad-from: at "
                 "least the target's, default the target's)");
  sub.add_option("--ctx", m.n_ctx, "Training context length written to the file")
      ->capture_default_str();
  sub.add_option("--type", flags.type,
                 "Matrix type: f32, f16 or bf16 (with --pad-from also q8_0, q4_0, q4_k, q5_k, "
                 "q6_k; default there: the target's types)")
      ->capture_default_str();
  sub.add_option("--seed", m.seed, "Random seed")->check(seed_value())->capture_default_str();
  sub.add_option("--rope-base", m.rope_freq_base, "RoPE frequency base")->capture_default_str();
  sub.add_flag("--tied", m.tied_output, "No output matrix: logits use the token embeddings");
  sub.add_option("--name", m.name, "general.name (default describes the shape)");
  sub.add_option("--tokenizer-from", m.tokenizer_from,
                 "Copy every tokenizer.* key of this GGUF (a model or vocab-only file) "
                 "instead of writing the byte-level tokenizer; the vocabulary size becomes "
                 "its token count");
  sub.add_option("--from", flags.from,
                 "Derive a draft from this target GGUF: its first --layers layers, same "
                 "embeddings, output and tokenizer");
  sub.add_option("--pad-from", flags.pad_from,
                 "Write a memory-bound copy of this trained target GGUF computing the same "
                 "function: --layers L (extra blocks whose attention output and FFN down "
                 "weights are zero) and --ff F (extra FFN units with zero down columns)");
}

const bool registered = register_command_with_flags<MakeModelFlags>(
    "make-model",
    "Write a random-weight llama/qwen2 GGUF of any shape, derive a draft from a target, or pad "
    "a target into a larger model computing the same function",
    add_flags, [](const MakeModelFlags& flags, const CLI::App& sub) {
      with_flag_names(kMakeModelFlags, [&] { run(flags, sub); });
    });

}  // namespace
}  // namespace specula::cli
