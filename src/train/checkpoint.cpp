#include "train/checkpoint.h"

#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "learn/model_io.h"

namespace specula {
namespace {

constexpr uint32_t kCheckpointVersion = 1;
constexpr std::string_view kMomentM = "adam_m.";
constexpr std::string_view kMomentV = "adam_v.";

class KeyReader {
 public:
  explicit KeyReader(const GgufReader& file) : file_(file) {}
  uint64_t u64(std::string_view key) const {
    const auto value = file_.get_uint(key);
    if (!value) missing(key);
    return *value;
  }
  int64_t i64(std::string_view key) const { return static_cast<int64_t>(u64(key)); }
  float f32(std::string_view key) const {
    const auto value = file_.get_float(key);
    if (!value) missing(key);
    return static_cast<float>(*value);
  }
  std::string str(std::string_view key) const {
    const auto value = file_.get_string(key);
    if (!value) missing(key);
    return std::string(*value);
  }

 private:
  [[noreturn]] void missing(std::string_view key) const {
    fail(file_.path(), " is not a specula training checkpoint (no ", key,
         "); resuming needs a file written by Trainer::save_checkpoint");
  }
  const GgufReader& file_;
};

}  // namespace

void write_checkpoint(const std::string& path, const ParameterLayout& layout, const TrainOptions& o,
                      const TrainState& state, std::span<const float> params,
                      std::span<const float> m, std::span<const float> v,
                      const GgufReader* tokenizer) {
  GgufWriter writer;
  add_model_to_gguf(writer, layout, params, DType::kF32, tokenizer,
                    str_cat("specula train checkpoint, step ", state.step));
  writer.set_uint32("train.checkpoint_version", kCheckpointVersion);
  writer.set_uint64("train.step", static_cast<uint64_t>(state.step));
  writer.set_uint64("train.rng_state", state.rng_state);
  writer.set_uint64("train.tokens_seen", state.tokens_seen);
  writer.set_uint64("train.corpus_fingerprint", state.corpus_fingerprint);
  writer.set_string("train.loss", state.loss_name);
  writer.set_uint64("train.batch", static_cast<uint64_t>(o.batch));
  writer.set_uint64("train.seq_len", static_cast<uint64_t>(o.seq_len));
  writer.set_uint64("train.steps", static_cast<uint64_t>(o.steps));
  writer.set_float32("train.lr", o.lr);
  writer.set_float32("train.min_lr", o.min_lr);
  writer.set_uint64("train.warmup", static_cast<uint64_t>(o.warmup));
  writer.set_float32("train.adam.beta1", o.adam.beta1);
  writer.set_float32("train.adam.beta2", o.adam.beta2);
  writer.set_float32("train.adam.epsilon", o.adam.epsilon);
  writer.set_float32("train.adam.weight_decay", o.adam.weight_decay);
  writer.set_float32("train.clip", o.clip);
  writer.set_uint64("train.seed", o.seed);
  writer.set_uint64("train.eval_every", static_cast<uint64_t>(o.eval_every));
  writer.set_uint64("train.eval_tokens", static_cast<uint64_t>(o.eval_tokens));
  add_tensors_to_gguf(writer, layout, m, kMomentM);
  add_tensors_to_gguf(writer, layout, v, kMomentV);
  writer.write(path);
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint c;
  c.file = GgufReader::open(path);
  const KeyReader keys(*c.file);
  if (keys.u64("train.checkpoint_version") != kCheckpointVersion) {
    fail(path, " is a checkpoint of version ", keys.u64("train.checkpoint_version"),
         "; this specula reads version ", kCheckpointVersion);
  }
  TrainOptions& o = c.options;
  o.shape = read_transformer_shape(*c.file);
  o.batch = keys.i64("train.batch");
  o.seq_len = keys.i64("train.seq_len");
  o.steps = keys.i64("train.steps");
  o.lr = keys.f32("train.lr");
  o.min_lr = keys.f32("train.min_lr");
  o.warmup = keys.i64("train.warmup");
  o.adam.beta1 = keys.f32("train.adam.beta1");
  o.adam.beta2 = keys.f32("train.adam.beta2");
  o.adam.epsilon = keys.f32("train.adam.epsilon");
  o.adam.weight_decay = keys.f32("train.adam.weight_decay");
  o.clip = keys.f32("train.clip");
  o.seed = keys.u64("train.seed");
  o.eval_every = keys.i64("train.eval_every");
  o.eval_tokens = keys.i64("train.eval_tokens");
  c.state.step = keys.i64("train.step");
  c.state.rng_state = keys.u64("train.rng_state");
  c.state.tokens_seen = keys.u64("train.tokens_seen");
  c.state.corpus_fingerprint = keys.u64("train.corpus_fingerprint");
  c.state.loss_name = keys.str("train.loss");
  return c;
}

void read_checkpoint_tensors(const Checkpoint& checkpoint, const ParameterLayout& layout,
                             std::span<float> params, std::span<float> m, std::span<float> v) {
  read_tensors_from_gguf(*checkpoint.file, layout, "", params);
  read_tensors_from_gguf(*checkpoint.file, layout, kMomentM, m);
  read_tensors_from_gguf(*checkpoint.file, layout, kMomentV, v);
}

}  // namespace specula
