#include "model/model_weights.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>

#include "core/cpu_count.h"
#include "core/error.h"
#include "core/log.h"
#include "core/printable.h"
#include "core/system_memory.h"
#include "kernels/weight_packing.h"

namespace specula {
namespace {

// The weight types matmul runs, as "F32, F16, ..., Q6_K": from the kernels'
// own test, so the list never goes stale.
std::string supported_weight_types() {
  std::string list;
  for (uint32_t id = 0; id < 64; ++id) {
    const std::optional<DTypeInfo> info = dtype_info(id);
    if (!info || !matmul_supports(info->type)) continue;
    list += (list.empty() ? "" : ", ") + std::string(info->name);
  }
  return list;
}

std::string shape_string(const std::vector<uint64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

class Binder {
 public:
  Binder(const GgufReader& file) : file_(file) {}

  // A tensor that must exist with exactly `dims` (ggml order).
  const GgufTensorInfo& require(const std::string& name, std::vector<uint64_t> dims) {
    bound_.insert(name);
    const GgufTensorInfo* info = file_.find_tensor(name);
    if (info == nullptr) {
      fail(file_.path(), ": tensor ", name, " is missing (expected shape ", shape_string(dims),
           "); the file is incomplete or not a llama-family model");
    }
    if (info->dims != dims) {
      fail(file_.path(), ": tensor ", name, " has wrong shape ", shape_string(info->dims),
           ", expected ", shape_string(dims), " (ggml order) from the model's hyperparameters");
    }
    return *info;
  }

  WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out, bool counted = true) {
    const GgufTensorInfo& info =
        require(name, {static_cast<uint64_t>(n_in), static_cast<uint64_t>(n_out)});
    if (!matmul_supports(info.type)) {
      fail(file_.path(), ": tensor ", name, " has type ", dtype_name(info.type),
           ", which is not supported yet (supported: ", supported_weight_types(),
           "); quantize the original F16/F32 model to one of them with `specula quantize`");
    }
    if (!dtype_row_bytes(info.type, static_cast<uint64_t>(n_in))) {
      fail(file_.path(), ": tensor ", name, " has rows of ", n_in,
           " values, not a whole number of ", dtype_name(info.type), " blocks");
    }
    if (counted) bytes_ += info.n_bytes;
    return make_weight_matrix(info.data, info.type, n_in, n_out);
  }

  // Norm weights and biases: F32 vectors used in place.
  const float* vector(const std::string& name, int64_t n) {
    const GgufTensorInfo& info = require(name, {static_cast<uint64_t>(n)});
    if (info.type != DType::kF32) {
      fail(file_.path(), ": tensor ", name, " has type ", dtype_name(info.type),
           "; norm weights and biases must be F32");
    }
    if (reinterpret_cast<uintptr_t>(info.data) % alignof(float) != 0) {
      fail(file_.path(), ": tensor ", name, " data is not 4-byte aligned");
    }
    bytes_ += info.n_bytes;
    return reinterpret_cast<const float*>(info.data);
  }

  uint64_t bytes() const { return bytes_; }

  // Tensors of the file that nothing bound, as "a, b, c" (names escaped).
  std::string unbound() const {
    std::string list;
    for (const GgufTensorInfo& tensor : file_.tensors()) {
      if (bound_.count(tensor.name) == 0) {
        list += (list.empty() ? "" : ", ") + printable(tensor.name);
      }
    }
    return list;
  }

 private:
  const GgufReader& file_;
  uint64_t bytes_ = 0;
  std::unordered_set<std::string> bound_;
};

// A tensor no llama-family model has is most likely a misnamed one: when
// output.weight is missing, tying the output to the embeddings would then
// silently compute another function, so that is an error; otherwise the
// tensor is unused and a warning names it.
void check_unbound_tensors(const GgufReader& file, const ModelConfig& config, const Binder& bind) {
  const std::string unbound = bind.unbound();
  if (unbound.empty()) return;
  if (config.tied_output) {
    fail(file.path(),
         ": tensor output.weight is missing, which would tie the output to "
         "token_embd.weight, but the file has tensors no ",
         config.architecture, " model uses: ", unbound,
         "; if one of them is the output matrix, rename it output.weight");
  }
  log_warn(file.path(), ": ignoring tensors no ", config.architecture, " model uses: ", unbound);
}

}  // namespace

ModelWeights bind_model_weights(const GgufReader& file, const ModelConfig& config) {
  Binder bind(file);
  ModelWeights weights;
  const int64_t n_embd = config.n_embd;
  const int64_t q_dim = static_cast<int64_t>(config.n_head) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.n_head_kv) * config.head_dim;
  const int64_t n_ff = config.n_ff;

  // Only the looked-up rows of the embeddings are read, unless tied.
  weights.token_embd = bind.matrix("token_embd.weight", n_embd, config.n_vocab, config.tied_output);
  // Each layer has kTensorsPerLayer tensors: a block_count the file cannot
  // back is refused before the per-layer table is sized by it (a fuzzed
  // file claimed 2^31 layers: 5 GB for the table alone).
  constexpr size_t kTensorsPerLayer = 9;
  const size_t layers_backed = file.tensors().size() / kTensorsPerLayer;
  if (static_cast<size_t>(config.n_layer) > layers_backed) {
    fail(file.path(), ": block_count is ", config.n_layer, " but the file has only ",
         file.tensors().size(), " tensors, enough for at most ", layers_backed,
         " layers; the file is truncated or its metadata is wrong");
  }
  weights.layers.resize(static_cast<size_t>(config.n_layer));
  for (int32_t l = 0; l < config.n_layer; ++l) {
    const std::string prefix = "blk." + std::to_string(l) + ".";
    LayerWeights& layer = weights.layers[static_cast<size_t>(l)];
    layer.attn_norm = bind.vector(prefix + "attn_norm.weight", n_embd);
    layer.attn_q = bind.matrix(prefix + "attn_q.weight", n_embd, q_dim);
    layer.attn_k = bind.matrix(prefix + "attn_k.weight", n_embd, kv_dim);
    layer.attn_v = bind.matrix(prefix + "attn_v.weight", n_embd, kv_dim);
    if (config.qkv_bias) {
      layer.attn_q_bias = bind.vector(prefix + "attn_q.bias", q_dim);
      layer.attn_k_bias = bind.vector(prefix + "attn_k.bias", kv_dim);
      layer.attn_v_bias = bind.vector(prefix + "attn_v.bias", kv_dim);
    }
    layer.attn_output = bind.matrix(prefix + "attn_output.weight", q_dim, n_embd);
    layer.ffn_norm = bind.vector(prefix + "ffn_norm.weight", n_embd);
    layer.ffn_gate = bind.matrix(prefix + "ffn_gate.weight", n_embd, n_ff);
    layer.ffn_up = bind.matrix(prefix + "ffn_up.weight", n_embd, n_ff);
    layer.ffn_down = bind.matrix(prefix + "ffn_down.weight", n_ff, n_embd);
  }
  weights.output_norm = bind.vector("output_norm.weight", n_embd);
  weights.output = config.tied_output ? weights.token_embd
                                      : bind.matrix("output.weight", n_embd, config.n_vocab);
  weights.bytes_per_forward = bind.bytes();
  check_unbound_tensors(file, config, bind);
  return weights;
}

uint64_t pack_model_weights(ModelWeights* weights, std::optional<uint64_t> available_memory) {
  const char* env = std::getenv("SPECULA_PACKED_WEIGHTS");
  if (!packed_rows_used() || (env != nullptr && std::string(env) == "0")) return 0;
  std::vector<WeightMatrix*> matrices;
  for (LayerWeights& layer : weights->layers) {
    for (WeightMatrix* w : {&layer.attn_q, &layer.attn_k, &layer.attn_v, &layer.attn_output,
                            &layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) {
      matrices.push_back(w);
    }
  }
  matrices.push_back(&weights->output);
  std::erase_if(matrices, [](const WeightMatrix* w) { return !packable_type(w->type); });
  uint64_t wanted = 0;
  for (const WeightMatrix* w : matrices) wanted += w->row_bytes * static_cast<uint64_t>(w->n_out);
  // The copy is anonymous memory: a model near the size of the memory would
  // run from the mapped file (its pages can be dropped and read again) but
  // not beside a second copy of itself.
  if (!available_memory) available_memory = available_memory_bytes();
  if (wanted > 0 && available_memory && wanted > *available_memory / 10 * 6) {
    log_info("not packing the integer weights (", wanted / 1e9, " GB): only ",
             *available_memory / 1e9,
             " GB of memory is available; decoding reads the file's layout (slower on AVX-512)");
    return 0;
  }
  // One buffer per matrix, made before the threads start (the vector must
  // not move under them); packing reads and writes memory at about 1 GB/s
  // per core, so the matrices are shared out over the cores.
  weights->packed_storage.resize(matrices.size());
  for (size_t i = 0; i < matrices.size(); ++i) {  // here, so that running out of memory throws here
    const WeightMatrix& w = *matrices[i];
    weights->packed_storage[i].resize(
        static_cast<size_t>(w.row_bytes * static_cast<uint64_t>(w.n_out)));
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < matrices.size(); i = next++) {
      *matrices[i] = pack_weight_matrix(*matrices[i], &weights->packed_storage[i]);
    }
  };
  const size_t n_threads =
      std::min<size_t>(matrices.size(), static_cast<size_t>(default_thread_count()));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  uint64_t bytes = 0;
  for (const AlignedBuffer<uint8_t>& storage : weights->packed_storage) bytes += storage.size();
  return bytes;
}

}  // namespace specula
