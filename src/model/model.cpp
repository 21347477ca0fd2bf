#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "model/model_weights.h"

namespace specula {
namespace {

// Activations of one forward pass, kept between calls so that the steady
// state allocates nothing. Buffers only grow. Shapes per row in comments.
struct ForwardScratch {
  std::vector<float> hidden;     // n x n_embd: the residual stream
  std::vector<float> normed;     // n x n_embd
  std::vector<float> query;      // n x n_head * head_dim
  std::vector<float> key;        // n x kv_dim
  std::vector<float> value;      // n x kv_dim
  std::vector<float> attended;   // n x n_head * head_dim
  std::vector<float> projected;  // n x n_embd
  std::vector<float> gate;       // n x n_ff
  std::vector<float> up;         // n x n_ff
  std::vector<float> rope_cos;   // n x head_dim / 2: each row's RoPE angles,
  std::vector<float> rope_sin;   // shared by every layer and by q and k
  std::vector<AttentionRow> attention_rows;
  std::vector<int32_t> rows_per_seq;  // n_seq: rows of each sequence seen so far
};

void ensure_size(std::vector<float>& buffer, size_t size) {
  if (buffer.size() < size) buffer.resize(size);
}

// Below this many floats touched, a row or element-wise step runs inline:
// a few microseconds of work, about what a pool wake-up and join cost. So
// decode (one row) never wakes the pool for them; prefill and verify
// batches do.
constexpr int64_t kMinParallelValues = int64_t{1} << 15;

// The most rows one pass through the layers takes (forward_first_layers).
// A pass reads every weight once, but past ~128 rows the matrix products'
// activations (128 x 5632 int8 = 0.7 MB for an FFN down projection) no
// longer stay in a core's L2 while the weight rows stream past them:
// `specula bench -P 2048` on the 0.8B Q4_0 model, 2 threads, prefilled
// 115-133 tokens/s in one pass, 190-208 in passes of 512 rows and 228-259
// in passes of 128 (64: no better at -P 1024).
constexpr int64_t kMaxRowsPerPass = 128;

// Calls fn(begin, end) on consecutive ranges covering [0, n_items), each
// range a multiple of `align` items (but the last); spread over the pool's
// threads when n_items * values_per_item reaches kMinParallelValues. Each
// item is computed by exactly one call, so the results do not depend on
// the split.
template <typename Fn>
void for_ranges(ThreadPool* pool, int64_t n_items, int64_t values_per_item, int64_t align,
                const Fn& fn) {
  if (pool == nullptr || pool->n_threads() == 1 || n_items * values_per_item < kMinParallelValues) {
    fn(int64_t{0}, n_items);
    return;
  }
  // A few ranges per thread, so a thread the OS preempts holds up little.
  const int64_t n_units = (n_items + align - 1) / align;
  const int64_t n_ranges = std::min<int64_t>(n_units, 4 * pool->n_threads());
  pool->parallel_for(n_ranges, [&](int64_t r) {
    const int64_t begin = std::min(n_items, n_units * r / n_ranges * align);
    const int64_t end = std::min(n_items, n_units * (r + 1) / n_ranges * align);
    if (begin < end) fn(begin, end);
  });
}

// out row i = rms_norm(in row i) * weight, for rows [0, n_rows) of `width`.
void rms_norm_rows(const float* in, const float* weight, int64_t n_rows, int64_t width, float eps,
                   float* out, ThreadPool* pool) {
  for_ranges(pool, n_rows, width, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      rms_norm(in + i * width, weight, width, eps, out + i * width);
  });
}

// Element ranges start on 64-byte boundaries: no two threads share a cache
// line, and each range but the last is whole vectors.
constexpr int64_t kElementAlign = 16;

void add_rows(float* y, const float* x, int64_t n, ThreadPool* pool) {
  for_ranges(pool, n, 1, kElementAlign,
             [&](int64_t begin, int64_t end) { add_in_place(y + begin, x + begin, end - begin); });
}

void silu_mul_rows(float* gate, const float* up, int64_t n, ThreadPool* pool) {
  for_ranges(pool, n, 4, kElementAlign,
             [&](int64_t begin, int64_t end) { silu_mul(gate + begin, up + begin, end - begin); });
}

void add_bias(float* rows, const float* bias, int64_t n_rows, int64_t width) {
  for (int64_t i = 0; i < n_rows; ++i) add_in_place(rows + i * width, bias, width);
}

}  // namespace

struct Model::Impl {
  std::shared_ptr<const GgufReader> file;
  ModelConfig config;
  ModelWeights weights;
  RopeAngles rope_angles;          // the inverse frequencies, computed once
  DType kv_type = kDefaultKvType;  // of the caches make_cache makes

  // Scratch for concurrent forwards on different caches: each call takes one
  // from the free list (creating it the first time) and returns it after.
  std::mutex scratch_mutex;
  std::vector<std::unique_ptr<ForwardScratch>> free_scratch;

  std::unique_ptr<ForwardScratch> acquire_scratch() {
    std::lock_guard<std::mutex> lock(scratch_mutex);
    if (free_scratch.empty()) return std::make_unique<ForwardScratch>();
    std::unique_ptr<ForwardScratch> scratch = std::move(free_scratch.back());
    free_scratch.pop_back();
    return scratch;
  }
  void release_scratch(std::unique_ptr<ForwardScratch> scratch) {
    std::lock_guard<std::mutex> lock(scratch_mutex);
    free_scratch.push_back(std::move(scratch));
  }

  void validate(std::span<const BatchRow> rows, int32_t n_layers, const KvCache& cache,
                std::vector<int32_t>& rows_per_seq) const;
  void run_layer(int32_t layer_index, std::span<const BatchRow> rows, KvCache& cache,
                 ForwardScratch& s, ThreadPool* pool) const;
  void run_rows(std::span<const BatchRow> rows, int32_t n_layers, KvCache& cache, ForwardScratch& s,
                float* logits, ThreadPool* pool) const;
};

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, DType kv_type) {
  return from_gguf(std::shared_ptr<const GgufReader>(GgufReader::open(path)), kv_type);
}

std::unique_ptr<Model> Model::from_gguf(std::shared_ptr<const GgufReader> file, DType kv_type) {
  if (kv_type != DType::kF32 && kv_type != DType::kF16) {
    fail("KV cache type ", dtype_name(kv_type), " is not supported; use f32 or f16");
  }
  std::unique_ptr<Model> model(new Model());
  model->impl_->kv_type = kv_type;
  model->impl_->config = read_model_config(*file);
  model->impl_->weights = bind_model_weights(*file, model->impl_->config);
  pack_model_weights(&model->impl_->weights);
  const ModelConfig& c = model->impl_->config;
  model->impl_->rope_angles = RopeAngles(c.head_dim, c.rope_freq_base, c.rope_freq_scale);
  model->impl_->file = std::move(file);
  return model;
}

const ModelConfig& Model::config() const {
  return impl_->config;
}
const GgufReader& Model::file() const {
  return *impl_->file;
}
uint64_t Model::weight_bytes() const {
  return impl_->weights.bytes_per_forward;
}

KvCache Model::make_cache(int32_t n_ctx, int32_t n_seq) const {
  if (n_ctx <= 0) fail("context size ", n_ctx, " must be positive");
  if (n_seq <= 0) fail("number of sequences ", n_seq, " must be positive");
  const ModelConfig& c = impl_->config;
  return KvCache(c.n_layer, n_seq, n_ctx, c.n_head_kv * c.head_dim, impl_->kv_type);
}

DType Model::kv_type() const {
  return impl_->kv_type;
}

void Model::Impl::validate(std::span<const BatchRow> rows, int32_t n_layers, const KvCache& cache,
                           std::vector<int32_t>& rows_per_seq) const {
  const int32_t kv_dim = config.n_head_kv * config.head_dim;
  if (n_layers < 1 || n_layers > config.n_layer) {
    fail("forward: asked to run the first ", n_layers, " layers of a model with ", config.n_layer,
         "; give 1..", config.n_layer);
  }
  // A full cache, or (self-drafting) one holding just the layers that run.
  if ((cache.n_layer() != config.n_layer && cache.n_layer() != n_layers) ||
      cache.kv_dim() != kv_dim) {
    fail("forward: the KV cache has ", cache.n_layer(), " layers of width ", cache.kv_dim(),
         " but the model needs ", config.n_layer, " of width ", kv_dim,
         "; make the cache with this model's make_cache");
  }
  rows_per_seq.assign(static_cast<size_t>(cache.n_seq()), 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const BatchRow& row = rows[i];
    if (row.seq < 0 || row.seq >= cache.n_seq()) {
      fail("forward: row ", i, " has sequence ", row.seq, " but the cache holds sequences 0..",
           cache.n_seq() - 1);
    }
    if (row.token < 0 || row.token >= config.n_vocab) {
      fail("forward: row ", i, " has token id ", row.token, ", outside the vocabulary [0, ",
           config.n_vocab, ")");
    }
    int32_t& earlier = rows_per_seq[static_cast<size_t>(row.seq)];
    const int32_t expected = cache.length(row.seq) + earlier;
    if (row.position != expected) {
      fail("forward: row ", i, " has position ", row.position, " but sequence ", row.seq, " holds ",
           cache.length(row.seq), " positions and has ", earlier,
           " earlier rows in this batch, so its next position is ", expected);
    }
    if (row.position >= cache.n_ctx()) {
      fail("forward: row ", i, " at position ", row.position, " of sequence ", row.seq,
           " would exceed the context size n_ctx = ", cache.n_ctx());
    }
    ++earlier;
  }
}

// One transformer block over all rows: every weight matrix is read once.
void Model::Impl::run_layer(int32_t layer_index, std::span<const BatchRow> rows, KvCache& cache,
                            ForwardScratch& s, ThreadPool* pool) const {
  const LayerWeights& layer = weights.layers[static_cast<size_t>(layer_index)];
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t n_embd = config.n_embd;
  const int64_t q_dim = static_cast<int64_t>(config.n_head) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.n_head_kv) * config.head_dim;
  const int64_t n_ff = config.n_ff;

  // Attention.
  rms_norm_rows(s.hidden.data(), layer.attn_norm, n, n_embd, config.rms_eps, s.normed.data(), pool);
  {
    const WeightMatrix* qkv[] = {&layer.attn_q, &layer.attn_k, &layer.attn_v};
    float* out[] = {s.query.data(), s.key.data(), s.value.data()};
    matmul_shared_input(qkv, s.normed.data(), n, out, pool);
  }
  if (config.qkv_bias) {
    add_bias(s.query.data(), layer.attn_q_bias, n, q_dim);
    add_bias(s.key.data(), layer.attn_k_bias, n, kv_dim);
    add_bias(s.value.data(), layer.attn_v_bias, n, kv_dim);
  }
  for (int64_t i = 0; i < n; ++i) {
    const BatchRow& row = rows[static_cast<size_t>(i)];
    float* q = s.query.data() + i * q_dim;
    float* k = s.key.data() + i * kv_dim;
    const float* cos = s.rope_cos.data() + i * (config.head_dim / 2);
    const float* sin = s.rope_sin.data() + i * (config.head_dim / 2);
    rope_rotate(q, config.n_head, config.head_dim, cos, sin, config.rope_style);
    rope_rotate(k, config.n_head_kv, config.head_dim, cos, sin, config.rope_style);
    cache.write(layer_index, row.seq, row.position, k, s.value.data() + i * kv_dim);
  }
  // All rows' keys are in the cache now, so a row sees the earlier rows of
  // its own sequence in this batch; n_keys = position + 1 masks later ones.
  for (int64_t i = 0; i < n; ++i) {
    const BatchRow& row = rows[static_cast<size_t>(i)];
    s.attention_rows[static_cast<size_t>(i)] = AttentionRow{
        s.query.data() + i * q_dim, cache.keys(layer_index, row.seq),
        cache.value(layer_index, row.seq, 0), row.position + 1, s.attended.data() + i * q_dim};
  }
  const AttentionShape shape{config.n_head, config.n_head_kv, config.head_dim,
                             1.0f / std::sqrt(static_cast<float>(config.head_dim)), cache.type()};
  attention(shape, std::span<const AttentionRow>(s.attention_rows.data(), rows.size()), pool);
  matmul(layer.attn_output, s.attended.data(), n, s.projected.data(), pool);
  add_rows(s.hidden.data(), s.projected.data(), n * n_embd, pool);

  // SwiGLU feed-forward.
  rms_norm_rows(s.hidden.data(), layer.ffn_norm, n, n_embd, config.rms_eps, s.normed.data(), pool);
  {
    const WeightMatrix* gate_up[] = {&layer.ffn_gate, &layer.ffn_up};
    float* out[] = {s.gate.data(), s.up.data()};
    matmul_shared_input(gate_up, s.normed.data(), n, out, pool);
  }
  silu_mul_rows(s.gate.data(), s.up.data(), n * n_ff, pool);
  matmul(layer.ffn_down, s.gate.data(), n, s.projected.data(), pool);
  add_rows(s.hidden.data(), s.projected.data(), n * n_embd, pool);
}

// Rows [0, n) of one pass through the first n_layers blocks, their keys
// and values written to the cache at their positions, and the logits of
// those that want them to logits (in row order).
void Model::Impl::run_rows(std::span<const BatchRow> rows, int32_t n_layers, KvCache& cache,
                           ForwardScratch& s, float* logits, ThreadPool* pool) const {
  const ModelConfig& c = config;
  const auto n = static_cast<int64_t>(rows.size());
  const size_t un = static_cast<size_t>(n);
  const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  ensure_size(s.hidden, un * c.n_embd);
  ensure_size(s.normed, un * c.n_embd);
  ensure_size(s.query, un * q_dim);
  ensure_size(s.key, un * kv_dim);
  ensure_size(s.value, un * kv_dim);
  ensure_size(s.attended, un * q_dim);
  ensure_size(s.projected, un * c.n_embd);
  ensure_size(s.gate, un * c.n_ff);
  ensure_size(s.up, un * c.n_ff);
  ensure_size(s.rope_cos, un * static_cast<size_t>(c.head_dim / 2));
  ensure_size(s.rope_sin, un * static_cast<size_t>(c.head_dim / 2));
  if (s.attention_rows.size() < un) s.attention_rows.resize(un);

  for (int64_t i = 0; i < n; ++i) {
    rope_angles.cos_sin(rows[static_cast<size_t>(i)].position,
                        s.rope_cos.data() + i * (c.head_dim / 2),
                        s.rope_sin.data() + i * (c.head_dim / 2));
  }

  for (int64_t i = 0; i < n; ++i) {
    dequantize_row(weights.token_embd, rows[static_cast<size_t>(i)].token,
                   s.hidden.data() + i * c.n_embd);
  }
  for (int32_t l = 0; l < n_layers; ++l) run_layer(l, rows, cache, s, pool);

  // The output projection, the largest matrix of small models, only for the
  // rows whose logits are wanted: gather their normed states first.
  int64_t gathered = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!rows[static_cast<size_t>(i)].want_logits) continue;
    rms_norm(s.hidden.data() + i * c.n_embd, weights.output_norm, c.n_embd, c.rms_eps,
             s.normed.data() + gathered * c.n_embd);
    ++gathered;
  }
  if (gathered > 0) matmul(weights.output, s.normed.data(), gathered, logits, pool);
}

void Model::forward(std::span<const BatchRow> rows, KvCache& cache, std::vector<float>& logits,
                    ThreadPool* pool) const {
  forward_first_layers(rows, impl_->config.n_layer, cache, logits, pool);
}

void Model::forward_first_layers(std::span<const BatchRow> rows, int32_t n_layers, KvCache& cache,
                                 std::vector<float>& logits, ThreadPool* pool) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.config;
  std::unique_ptr<ForwardScratch> scratch = impl_->acquire_scratch();
  struct Release {
    Impl& impl;
    std::unique_ptr<ForwardScratch>& scratch;
    ~Release() { impl.release_scratch(std::move(scratch)); }
  } release{*impl_, scratch};
  ForwardScratch& s = *scratch;

  // Everything is checked before the cache is touched.
  m.validate(rows, n_layers, cache, s.rows_per_seq);
  const auto n = static_cast<int64_t>(rows.size());
  int64_t n_wanted = 0;
  for (const BatchRow& row : rows) n_wanted += row.want_logits ? 1 : 0;
  logits.resize(static_cast<size_t>(n_wanted * c.n_vocab));

  // Long batches (a prompt) run in passes of at most kMaxRowsPerPass rows,
  // one after the other: a pass writes its keys and values to the cache
  // before the next one's rows attend to them, and a row's result does not
  // depend on the rows beside it, so the logits are the same as in one
  // pass.
  int64_t wanted_before = 0;
  for (int64_t first = 0; first < n; first += kMaxRowsPerPass) {
    const auto pass = rows.subspan(static_cast<size_t>(first),
                                   static_cast<size_t>(std::min(kMaxRowsPerPass, n - first)));
    m.run_rows(pass, n_layers, cache, s, logits.data() + wanted_before * c.n_vocab, pool);
    for (const BatchRow& row : pass) wanted_before += row.want_logits ? 1 : 0;
  }

  for (size_t seq = 0; seq < s.rows_per_seq.size(); ++seq) {
    const int32_t added = s.rows_per_seq[seq];
    if (added > 0) {
      cache.set_length(static_cast<int32_t>(seq), cache.length(static_cast<int32_t>(seq)) + added);
    }
  }
}

}  // namespace specula
