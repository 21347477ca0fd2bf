#include "model/make_model.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/f16.h"
#include "core/log.h"
#include "gguf/gguf_reader.h"
#include "model/model_config.h"

namespace specula {
namespace {

constexpr int32_t kByteTokens = 256;
constexpr int32_t kBosToken = 256;
constexpr int32_t kEosToken = 257;
constexpr int32_t kTokenizerVocab = 258;
constexpr int32_t kMaxDimension = 1 << 20;
constexpr int32_t kMaxVocab = 1 << 22;

// Reproducible normal draws that do not depend on the standard library's
// distribution implementation: splitmix64 bits, Box-Muller transform.
class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : state_(seed) {}

  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(next_bits() >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
    const double u2 = static_cast<double>(next_bits() >> 11) * 0x1.0p-53;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1));
    spare_ = radius * std::sin(2.0 * std::numbers::pi * u2);
    has_spare_ = true;
    return radius * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t next_bits() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Each tensor draws from its own stream (seed, name), so a tensor's values do
// not depend on which other tensors the file holds.
uint64_t tensor_seed(uint64_t seed, const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ull ^ seed;  // FNV-1a over the name
  for (const unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

// GPT-2's byte-to-unicode mapping: printable bytes stand for themselves,
// the others map to code points 256, 257, ... in byte order. UTF-8 encoded.
std::vector<std::string> byte_level_tokens() {
  std::vector<std::string> tokens(kByteTokens);
  int next_extra = 0;
  for (int b = 0; b < kByteTokens; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t code_point = printable ? static_cast<uint32_t>(b) : 256u + next_extra++;
    std::string utf8;
    if (code_point < 0x80) {
      utf8 += static_cast<char>(code_point);
    } else {  // all code points here are below 0x800: two bytes
      utf8 += static_cast<char>(0xC0 | (code_point >> 6));
      utf8 += static_cast<char>(0x80 | (code_point & 0x3F));
    }
    tokens[static_cast<size_t>(b)] = utf8;
  }
  return tokens;
}

void write_tokenizer(GgufWriter& writer, int32_t n_vocab) {
  std::vector<std::string> tokens = byte_level_tokens();
  std::vector<int32_t> types(kByteTokens, 1);  // normal
  tokens.push_back("<s>");
  tokens.push_back("</s>");
  types.push_back(3);  // control
  types.push_back(3);
  for (int32_t id = kTokenizerVocab; id < n_vocab; ++id) {
    tokens.push_back("<|extra_" + std::to_string(id - kTokenizerVocab) + "|>");
    types.push_back(4);  // user-defined
  }
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "default");
  writer.set_string_array("tokenizer.ggml.tokens", tokens);
  writer.set_int32_array("tokenizer.ggml.token_type", types);
  writer.set_string_array("tokenizer.ggml.merges", {});
  writer.set_uint32("tokenizer.ggml.bos_token_id", kBosToken);
  writer.set_uint32("tokenizer.ggml.eos_token_id", kEosToken);
  writer.set_bool("tokenizer.ggml.add_bos_token", true);
}

constexpr std::string_view kTokenizerPrefix = "tokenizer.";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";

// The number of tokens of the tokenizer in `file`, which --tokenizer-from
// names; Error when the file has no token list.
int64_t tokenizer_token_count(const GgufReader& file) {
  const GgufValue* tokens = file.find(kTokensKey);
  if (tokens == nullptr || tokens->type != GgufType::kArray ||
      tokens->array_type != GgufType::kString) {
    fail("make-model: ", file.path(), " has no ", kTokensKey,
         " string array, so it holds no tokenizer to copy; RandomModelOptions::tokenizer_from "
         "must be a model or vocab-only GGUF file with a tokenizer");
  }
  if (tokens->array_size == 0) {
    fail("make-model: ", file.path(), ": ", kTokensKey, " is empty; a model needs tokens");
  }
  return static_cast<int64_t>(tokens->array_size);
}

// Copies every tokenizer.* key of `source_path`, value types and arrays as
// they are, so the model tokenizes exactly as the source does.
void copy_tokenizer(const std::string& source_path, int32_t n_vocab, GgufWriter& writer) {
  const std::unique_ptr<GgufReader> source = GgufReader::open(source_path);
  if (tokenizer_token_count(*source) != n_vocab) {
    fail("make-model: ", source_path, " changed while the model was being made: it no longer has ",
         n_vocab, " tokens");
  }
  for (const GgufKv& kv : source->metadata()) {
    if (!std::string_view(kv.key).starts_with(kTokenizerPrefix)) continue;
    if (kv.value.type == GgufType::kArray && kv.value.array_type == GgufType::kArray) {
      fail("make-model: ", source_path, ": metadata key ", kv.key,
           " is an array of arrays, which the GGUF writer cannot copy");
    }
    writer.set_value(kv.key, kv.value);
  }
}

class TensorMaker {
 public:
  TensorMaker(GgufWriter& writer, const RandomModelOptions& options, size_t total,
              const MakeModelProgress& progress)
      : writer_(writer), options_(options), total_(total), progress_(progress) {}

  // N(0, std^2) values, in the options' matrix type when `matrix`, else F32.
  void normal(const std::string& name, std::vector<uint64_t> dims, double std, bool matrix) {
    uint64_t count = 1;
    for (const uint64_t d : dims) count *= d;
    NormalRng rng(tensor_seed(options_.seed, name));
    const DType type = matrix ? options_.type : DType::kF32;
    if (type == DType::kF32) {
      floats_.resize(count);
      for (float& v : floats_) v = static_cast<float>(rng.next() * std);
      writer_.add_tensor_f32(name, dims, floats_);
    } else {
      halves_.resize(count);
      for (uint16_t& v : halves_) {
        const float value = static_cast<float>(rng.next() * std);
        v = type == DType::kF16 ? f32_to_f16(value) : f32_to_bf16(value);
      }
      writer_.add_tensor(name, dims, type,
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(halves_.data()),
                                                  halves_.size() * sizeof(uint16_t)));
    }
    done(name);
  }

  void ones(const std::string& name, uint64_t n) {
    floats_.assign(n, 1.0f);
    writer_.add_tensor_f32(name, std::vector<uint64_t>{n}, floats_);
    done(name);
  }

 private:
  void done(const std::string& name) {
    ++done_;
    if (progress_) progress_(name, done_, total_);
  }
  GgufWriter& writer_;
  const RandomModelOptions& options_;
  size_t total_;
  size_t done_ = 0;
  const MakeModelProgress& progress_;
  std::vector<float> floats_;
  std::vector<uint16_t> halves_;
};

void check_range(const char* what, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) {
    fail("make-model: ", what, " = ", value, " is outside [", low, ", ", high, "]");
  }
}

// "blk.12.attn_q.weight" -> 12; -1 for tensors outside the blocks.
int64_t block_index(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int64_t index = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    index = index * 10 + (name[i] - '0');
    if (index > kMaxDimension) return -1;
  }
  return (i > 4 && i < name.size() && name[i] == '.') ? index : -1;
}

}  // namespace

RandomModelOptions resolve_random_model_options(RandomModelOptions o) {
  if (o.architecture != "llama" && o.architecture != "qwen2") {
    fail("make-model: architecture '", o.architecture, "' is not supported; use llama or qwen2");
  }
  if (!o.tokenizer_from.empty()) {
    const int64_t n_tokens = tokenizer_token_count(*GgufReader::open(o.tokenizer_from));
    if (o.n_vocab != RandomModelOptions{}.n_vocab && o.n_vocab != n_tokens) {
      fail("make-model: RandomModelOptions::n_vocab ", o.n_vocab, " disagrees with the ", n_tokens,
           " tokens of ", o.tokenizer_from,
           " (RandomModelOptions::tokenizer_from); leave RandomModelOptions::n_vocab at its "
           "default");
    }
    check_range("vocab (tokens of RandomModelOptions::tokenizer_from)", n_tokens, 1, kMaxVocab);
    o.n_vocab = static_cast<int32_t>(n_tokens);
  }
  if (o.n_head_kv == 0) o.n_head_kv = o.n_head;
  if (o.n_ff == 0) o.n_ff = (o.n_embd * 8 / 3 + 31) / 32 * 32;
  check_range("vocab", o.n_vocab, 1, kMaxVocab);
  check_range("embd", o.n_embd, 2, kMaxDimension);
  check_range("layers", o.n_layer, 1, 4096);
  check_range("heads", o.n_head, 1, o.n_embd);
  check_range("heads-kv", o.n_head_kv, 1, o.n_head);
  check_range("ff", o.n_ff, 1, kMaxDimension);
  check_range("ctx", o.n_ctx, 1, kMaxDimension);
  if (o.n_embd % o.n_head != 0 || (o.n_embd / o.n_head) % 2 != 0) {
    fail("make-model: embd = ", o.n_embd, " must be heads = ", o.n_head,
         " times an even head width");
  }
  if (o.n_head % o.n_head_kv != 0) {
    fail("make-model: heads = ", o.n_head, " must be a multiple of heads-kv = ", o.n_head_kv);
  }
  if (o.type != DType::kF32 && o.type != DType::kF16 && o.type != DType::kBF16) {
    fail("make-model: type ", dtype_name(o.type), " is not supported; use f32, f16 or bf16");
  }
  if (!(o.rope_freq_base > 0.0f) || !std::isfinite(o.rope_freq_base)) {
    fail("make-model: rope base ", o.rope_freq_base, " must be positive");
  }
  return o;
}

uint64_t random_model_parameter_count(const RandomModelOptions& o) {
  const uint64_t n_embd = static_cast<uint64_t>(o.n_embd);
  const uint64_t head_dim = n_embd / static_cast<uint64_t>(o.n_head);
  const uint64_t kv_dim = head_dim * static_cast<uint64_t>(o.n_head_kv);
  const uint64_t n_ff = static_cast<uint64_t>(o.n_ff);
  uint64_t per_layer = 2 * n_embd + 2 * n_embd * n_embd + 2 * n_embd * kv_dim + 3 * n_embd * n_ff;
  if (o.architecture == "qwen2") per_layer += n_embd + 2 * kv_dim;
  const uint64_t vocab = static_cast<uint64_t>(o.n_vocab);
  return vocab * n_embd * (o.tied_output ? 1 : 2) + n_embd +
         per_layer * static_cast<uint64_t>(o.n_layer);
}

GgufWriter build_random_model(const RandomModelOptions& requested,
                              const MakeModelProgress& progress) {
  const RandomModelOptions o = resolve_random_model_options(requested);
  const std::string& arch = o.architecture;
  const uint64_t n_embd = static_cast<uint64_t>(o.n_embd);
  const uint64_t head_dim = n_embd / static_cast<uint64_t>(o.n_head);
  const uint64_t kv_dim = head_dim * static_cast<uint64_t>(o.n_head_kv);
  const uint64_t n_ff = static_cast<uint64_t>(o.n_ff);
  const uint64_t n_vocab = static_cast<uint64_t>(o.n_vocab);
  const bool biases = arch == "qwen2";

  GgufWriter writer;
  writer.set_string("general.architecture", arch);
  writer.set_string(
      "general.name",
      o.name.empty() ? str_cat("specula random ", arch, " ", o.n_layer, "x", o.n_embd) : o.name);
  // llama.cpp's file types: 0 all F32, 1 mostly F16, 32 mostly BF16.
  writer.set_uint32("general.file_type",
                    o.type == DType::kF32 ? 0u : (o.type == DType::kF16 ? 1u : 32u));
  writer.set_uint32(arch + ".vocab_size", static_cast<uint32_t>(o.n_vocab));
  writer.set_uint32(arch + ".context_length", static_cast<uint32_t>(o.n_ctx));
  writer.set_uint32(arch + ".embedding_length", static_cast<uint32_t>(o.n_embd));
  writer.set_uint32(arch + ".block_count", static_cast<uint32_t>(o.n_layer));
  writer.set_uint32(arch + ".feed_forward_length", static_cast<uint32_t>(o.n_ff));
  writer.set_uint32(arch + ".attention.head_count", static_cast<uint32_t>(o.n_head));
  writer.set_uint32(arch + ".attention.head_count_kv", static_cast<uint32_t>(o.n_head_kv));
  writer.set_float32(arch + ".attention.layer_norm_rms_epsilon", arch == "qwen2" ? 1e-6f : 1e-5f);
  writer.set_float32(arch + ".rope.freq_base", o.rope_freq_base);
  writer.set_uint32(arch + ".rope.dimension_count", static_cast<uint32_t>(head_dim));
  if (!o.tokenizer_from.empty()) {
    copy_tokenizer(o.tokenizer_from, o.n_vocab, writer);
  } else if (o.n_vocab >= kTokenizerVocab) {
    write_tokenizer(writer, o.n_vocab);
  }

  // Scales: projections N(0, 1/fan_in) keep activations at unit size; the
  // projections back into the residual stream are shrunk by sqrt(2 n_layer)
  // (as GPT-2 initialises them) so that the stream stays dominated by the
  // embedding and early layers, which makes a first-k-layers draft agree
  // with its target part of the time. The output matrix's scale sets the
  // spread of the logits: a few nats of entropy, neither uniform nor one-hot.
  const double residual_shrink = 1.0 / std::sqrt(2.0 * o.n_layer);
  const double logit_scale = 3.0;
  const double embd_std = o.tied_output ? logit_scale / std::sqrt(double(n_embd)) : 1.0;
  const size_t per_layer = biases ? 12 : 9;
  TensorMaker make(writer, o, 2 + (o.tied_output ? 0 : 1) + per_layer * o.n_layer, progress);

  make.normal("token_embd.weight", {n_embd, n_vocab}, embd_std, true);
  for (int32_t l = 0; l < o.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const double in_std = 1.0 / std::sqrt(double(n_embd));
    make.ones(p + "attn_norm.weight", n_embd);
    make.normal(p + "attn_q.weight", {n_embd, n_embd}, in_std, true);
    make.normal(p + "attn_k.weight", {n_embd, kv_dim}, in_std, true);
    make.normal(p + "attn_v.weight", {n_embd, kv_dim}, in_std, true);
    if (biases) {
      make.normal(p + "attn_q.bias", {n_embd}, 0.5, false);
      make.normal(p + "attn_k.bias", {kv_dim}, 0.5, false);
      make.normal(p + "attn_v.bias", {kv_dim}, 0.5, false);
    }
    make.normal(p + "attn_output.weight", {n_embd, n_embd},
                residual_shrink / std::sqrt(double(n_embd)), true);
    make.ones(p + "ffn_norm.weight", n_embd);
    make.normal(p + "ffn_gate.weight", {n_embd, n_ff}, in_std, true);
    make.normal(p + "ffn_up.weight", {n_embd, n_ff}, in_std, true);
    make.normal(p + "ffn_down.weight", {n_ff, n_embd}, residual_shrink / std::sqrt(double(n_ff)),
                true);
  }
  make.ones("output_norm.weight", n_embd);
  if (!o.tied_output) {
    make.normal("output.weight", {n_embd, n_vocab}, logit_scale / std::sqrt(double(n_embd)), true);
  }
  return writer;
}

void write_random_model(const RandomModelOptions& options, const std::string& path,
                        const MakeModelProgress& progress) {
  build_random_model(options, progress).write(path);
}

void write_draft_model(const std::string& target_path, int32_t n_layer, const std::string& out_path,
                       const MakeModelProgress& progress) {
  const std::unique_ptr<GgufReader> target = GgufReader::open(target_path);
  const ModelConfig config = read_model_config(*target);
  if (n_layer < 1 || n_layer > config.n_layer) {
    fail("make-model: a draft of ", target_path, " keeps ", n_layer,
         " layers, which must be in [1, ", config.n_layer, "] (the target's layers)");
  }
  const std::string block_count_key = config.architecture + ".block_count";
  GgufWriter writer;
  for (const GgufKv& kv : target->metadata()) {
    if (kv.key == block_count_key) {
      writer.set_uint32(kv.key, static_cast<uint32_t>(n_layer));
    } else if (kv.key == "general.alignment") {
      writer.set_alignment(static_cast<uint32_t>(*target->get_uint(kv.key)));
    } else if (kv.key == "general.name") {
      writer.set_string(kv.key, str_cat(kv.value.str, " (draft: first ", n_layer, " layers)"));
    } else if (kv.value.type == GgufType::kArray && kv.value.array_type == GgufType::kArray) {
      log_warn("make-model: metadata key ", kv.key, " of ", target_path,
               " is an array of arrays, which the writer cannot reproduce; left out of the draft");
    } else {
      writer.set_value(kv.key, kv.value);  // the same value type, arrays included
    }
  }
  std::vector<const GgufTensorInfo*> kept;
  for (const GgufTensorInfo& tensor : target->tensors()) {
    if (block_index(tensor.name) < n_layer) kept.push_back(&tensor);
  }
  for (size_t i = 0; i < kept.size(); ++i) {
    const GgufTensorInfo& tensor = *kept[i];
    writer.add_tensor(tensor.name, tensor.dims, tensor.type,
                      std::span<const uint8_t>(tensor.data, tensor.n_bytes));
    if (progress) progress(tensor.name, i + 1, kept.size());
  }
  writer.write(out_path);
}

}  // namespace specula
