#include "model/model_config.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "core/error.h"

namespace specula {
namespace {

constexpr const char* kSupportedArchitectures = "llama, qwen2";

// Upper bound for any width or count: far above real models, low enough that
// products of two of them cannot overflow int64 and a typo is caught early.
constexpr uint64_t kMaxDimension = 1u << 24;

class ConfigReader {
 public:
  ConfigReader(const GgufReader& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

  std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

  int32_t required_count(std::string_view suffix, std::string_view meaning) const {
    const std::string name = key(suffix);
    const auto value = file_.get_uint(name);
    if (!value) {
      fail(file_.path(), ": metadata key ", name, " (", meaning, ") is missing; every ", arch_,
           " model file must have it");
    }
    return checked(name, *value, meaning);
  }

  std::optional<int32_t> optional_count(std::string_view suffix, std::string_view meaning) const {
    const std::string name = key(suffix);
    const auto value = file_.get_uint(name);
    if (!value) return std::nullopt;
    return checked(name, *value, meaning);
  }

  std::optional<float> optional_float(std::string_view suffix) const {
    const std::string name = key(suffix);
    const auto value = file_.get_float(name);
    if (!value) return std::nullopt;
    if (!std::isfinite(*value)) fail(file_.path(), ": metadata key ", name, " is not finite");
    return static_cast<float>(*value);
  }

  [[noreturn]] void inconsistent(const std::string& what) const {
    fail(file_.path(), ": inconsistent hyperparameters: ", what);
  }

 private:
  int32_t checked(const std::string& name, uint64_t value, std::string_view meaning) const {
    if (value > kMaxDimension) {
      fail(file_.path(), ": metadata key ", name, " (", meaning, ") is ", value,
           ", above the supported maximum ", kMaxDimension);
    }
    return static_cast<int32_t>(value);
  }

  const GgufReader& file_;
  std::string arch_;
};

void read_rope_scaling(const GgufReader& file, const ConfigReader& keys, ModelConfig& config) {
  const std::string type_key = keys.key("rope.scaling.type");
  const auto type = file.get_string(type_key);
  const auto factor = keys.optional_float("rope.scaling.factor");
  if (type && *type != "none" && *type != "linear") {
    fail(file.path(), ": rope scaling type '", *type, "' (key ", type_key,
         ") is not supported yet; supported: none, linear");
  }
  if (type && *type == "linear") {
    if (!factor || *factor <= 0.0f) {
      fail(file.path(), ": linear rope scaling needs a positive ", keys.key("rope.scaling.factor"));
    }
    config.rope_freq_scale = 1.0f / *factor;
  }
  // Older converters wrote linear scaling as a single key.
  if (const auto scale_linear = keys.optional_float("rope.scale_linear")) {
    if (*scale_linear <= 0.0f)
      fail(file.path(), ": ", keys.key("rope.scale_linear"), " must be positive");
    config.rope_freq_scale = 1.0f / *scale_linear;
  }
  if (file.find_tensor("rope_freqs.weight") != nullptr) {
    fail(file.path(),
         ": tensor rope_freqs.weight (per-dimension rope frequency factors, as in "
         "Llama 3.1) is not supported yet");
  }
}

// general.architecture, and what it fixes: the RoPE style and q/k/v biases.
void read_architecture(const GgufReader& file, ModelConfig& config) {
  const auto arch = file.get_string("general.architecture");
  if (!arch) {
    fail(file.path(), ": metadata key general.architecture is missing; supported architectures: ",
         kSupportedArchitectures);
  }
  config.architecture = std::string(*arch);
  if (config.architecture == "llama") {
    config.rope_style = RopeStyle::kNormal;
  } else if (config.architecture == "qwen2") {
    config.rope_style = RopeStyle::kNeox;
    config.qkv_bias = true;
  } else {
    fail(file.path(), ": architecture '", config.architecture,
         "' is not supported; supported architectures: ", kSupportedArchitectures);
  }
}

// The widths and counts, each checked to be present and positive, and the
// norm epsilon and RoPE base.
void read_sizes(const GgufReader& file, const ConfigReader& keys, ModelConfig& config) {
  config.n_ctx_train = keys.required_count("context_length", "training context length");
  config.n_embd = keys.required_count("embedding_length", "model width");
  config.n_layer = keys.required_count("block_count", "number of layers");
  config.n_ff = keys.required_count("feed_forward_length", "feed-forward width");
  config.n_head = keys.required_count("attention.head_count", "query heads");
  config.n_head_kv =
      keys.optional_count("attention.head_count_kv", "key/value heads").value_or(config.n_head);
  const auto eps = keys.optional_float("attention.layer_norm_rms_epsilon");
  if (!eps) {
    fail(file.path(), ": metadata key ", keys.key("attention.layer_norm_rms_epsilon"),
         " (RMSNorm epsilon) is missing; every ", config.architecture, " model file must have it");
  }
  if (*eps <= 0.0f) keys.inconsistent(str_cat("RMSNorm epsilon ", *eps, " must be positive"));
  config.rms_eps = *eps;
  config.rope_freq_base = keys.optional_float("rope.freq_base").value_or(10000.0f);
  if (config.rope_freq_base <= 0.0f) {
    keys.inconsistent(str_cat("rope.freq_base ", config.rope_freq_base, " must be positive"));
  }

  if (config.n_embd == 0) keys.inconsistent("embedding_length is 0");
  if (config.n_layer == 0) keys.inconsistent("block_count is 0; a model needs at least one layer");
  if (config.n_ff == 0) keys.inconsistent("feed_forward_length is 0");
  if (config.n_head == 0)
    keys.inconsistent(
        "attention.head_count (n_head) is 0; a model needs at least one attention head");
  if (config.n_head_kv == 0) keys.inconsistent("attention.head_count_kv (n_head_kv) is 0");
  if (config.n_head % config.n_head_kv != 0) {
    keys.inconsistent(str_cat("n_head = ", config.n_head,
                              " is not a multiple of n_head_kv = ", config.n_head_kv,
                              " (grouped-query attention shares each key/value "
                              "head among a whole number of query heads)"));
  }
}

// The head width (from the file, or n_embd / n_head), checked against the
// value heads and the rotated dimensions.
void read_head_width(const GgufReader& file, const ConfigReader& keys, ModelConfig& config) {
  const auto key_length = keys.optional_count("attention.key_length", "head width of keys");
  const auto value_length = keys.optional_count("attention.value_length", "head width of values");
  if (key_length) {
    config.head_dim = *key_length;
  } else {
    if (config.n_embd % config.n_head != 0) {
      keys.inconsistent(str_cat("n_embd = ", config.n_embd, " is not a multiple of n_head = ",
                                config.n_head, ", so heads would have unequal widths"));
    }
    config.head_dim = config.n_embd / config.n_head;
  }
  if (value_length && *value_length != config.head_dim) {
    keys.inconsistent(str_cat("attention.value_length ", *value_length,
                              " differs from the key head width ", config.head_dim,
                              "; this is not supported"));
  }
  if (config.head_dim == 0 || config.head_dim % 2 != 0) {
    keys.inconsistent(
        str_cat("head width ", config.head_dim, " must be positive and even for RoPE"));
  }
  if (const auto rope_dims = keys.optional_count("rope.dimension_count", "rotated dimensions")) {
    if (*rope_dims != config.head_dim) {
      fail(file.path(), ": rope.dimension_count ", *rope_dims, " differs from the head width ",
           config.head_dim, "; partial rotary embeddings are not supported yet");
    }
  }
}

// The vocabulary (the rows of the embedding matrix) and whether the output
// matrix is tied to the embeddings.
void read_vocabulary(const GgufReader& file, const ConfigReader& keys, ModelConfig& config) {
  // Vocabulary: the rows of the embedding matrix.
  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr) {
    fail(file.path(), ": tensor token_embd.weight is missing (the token embeddings)");
  }
  if (embd->dims.size() != 2 || embd->dims[0] != static_cast<uint64_t>(config.n_embd)) {
    fail(file.path(), ": tensor token_embd.weight must have shape [n_embd = ", config.n_embd,
         ", n_vocab] in ggml order");
  }
  if (embd->dims[1] == 0 ||
      embd->dims[1] > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    fail(file.path(), ": tensor token_embd.weight has ", embd->dims[1], " rows (vocabulary)");
  }
  config.n_vocab = static_cast<int32_t>(embd->dims[1]);
  if (const auto vocab_size = keys.optional_count("vocab_size", "vocabulary size")) {
    if (*vocab_size != config.n_vocab) {
      keys.inconsistent(str_cat(keys.key("vocab_size"), " = ", *vocab_size,
                                " but token_embd.weight has ", config.n_vocab, " rows"));
    }
  }
  const GgufTensorInfo* output = file.find_tensor("output.weight");
  config.tied_output = output == nullptr;
  if (output != nullptr && output->dims.size() == 2 &&
      output->dims[1] != static_cast<uint64_t>(config.n_vocab)) {
    keys.inconsistent(str_cat("vocab mismatch: output.weight has ", output->dims[1],
                              " rows but token_embd.weight has ", config.n_vocab,
                              " (the vocabulary size)"));
  }
}

}  // namespace

ModelConfig read_model_config(const GgufReader& file) {
  ModelConfig config;
  read_architecture(file, config);
  if (const auto name = file.get_string("general.name")) config.name = std::string(*name);
  const ConfigReader keys(file, config.architecture);
  read_sizes(file, keys, config);
  read_head_width(file, keys, config);
  read_rope_scaling(file, keys, config);
  read_vocabulary(file, keys, config);
  if (!config.qkv_bias && file.find_tensor("blk.0.attn_q.bias") != nullptr) config.qkv_bias = true;
  return config;
}

}  // namespace specula
