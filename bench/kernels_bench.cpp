// Matmul weight-streaming benchmarks: GB/s of weights read per type for
// M = 1 (decode) and the cost of M > 1 rows (verification), against the
// machine's measured read bandwidth; and one layer's attention over a
// context (Attention/...).
//
//   kernels_bench [--benchmark_filter=...]     threads: SPECULA_BENCH_THREADS (default 2)
//
// Each type's 4096 x 4096 matrix is replicated into a set of about
// SPECULA_BENCH_SET_MB (default 1024) MB that the benchmark cycles
// through, so the weights come from DRAM and not from the (here 300 MB) L3.
//   SPECULA_BENCH_DECODE_ROWS=1|4 picks the float decode row order.
//   SPECULA_BENCH_PACKED=0 reads integer weights as GGUF stores them
//   rather than packed as the model loader does (weight_packing.h).
// Counters: GB/s = weight bytes read per second; GB/cpu-s the same per
// second of CPU time per thread (see cpu_rate); for ReadBandwidth the
// bytes of a plain parallel sum over a buffer of the same size.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/f16.h"
#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "kernels/weight_packing.h"

namespace specula {
namespace {

constexpr int64_t kDim = 4096;

int bench_threads() {
  const char* env = std::getenv("SPECULA_BENCH_THREADS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 2;
}

size_t set_bytes() {
  const char* env = std::getenv("SPECULA_BENCH_SET_MB");
  return static_cast<size_t>(env != nullptr ? std::atol(env) : 1024) << 20;
}

ThreadPool& pool() {
  static ThreadPool p(bench_threads());
  return p;
}

// CPU seconds of the whole process (all threads) so far.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// GB per second of CPU time per thread: what the threads would read with a
// core each to themselves. On a machine shared with other work the wall
// clock rate (GB/s) mostly measures the time slices; this one does not
// (it still counts waiting for memory, and the pool's spinning).
double cpu_rate(double bytes, double cpu_start) {
  const double cpu = process_cpu_seconds() - cpu_start;
  return cpu > 0.0 ? bytes / 1e9 * pool().n_threads() / cpu : 0.0;
}

// Whether integer matrices are packed as the model loader packs them
// (weight_packing.h): SPECULA_BENCH_PACKED=0 benchmarks the GGUF rows.
bool bench_packed() {
  const char* env = std::getenv("SPECULA_BENCH_PACKED");
  return packed_rows_used() && (env == nullptr || std::atoi(env) != 0);
}

// The set of identical matrices for one type, built on first use.
struct MatrixSet {
  AlignedBuffer<uint8_t> data;
  AlignedBuffer<uint8_t> packed;  // the same copies packed, when the kernels read packed rows
  uint64_t matrix_bytes = 0;
  int64_t count = 0;
};

const MatrixSet& matrix_set(DType type, int64_t n_in, int64_t n_out) {
  static std::map<std::tuple<DType, int64_t, int64_t>, std::unique_ptr<MatrixSet>> sets;
  auto& slot = sets[{type, n_in, n_out}];
  if (!slot) {
    // One set at a time: the sets of earlier benchmarks are freed.
    for (auto& [key, set] : sets) {
      if (set.get() != slot.get()) set.reset();
    }
    slot = std::make_unique<MatrixSet>();
    const uint64_t row_bytes = *dtype_row_bytes(type, static_cast<uint64_t>(n_in));
    slot->matrix_bytes = row_bytes * static_cast<uint64_t>(n_out);
    slot->count = std::max<int64_t>(1, static_cast<int64_t>(set_bytes() / slot->matrix_bytes));
    slot->data.resize(slot->matrix_bytes * static_cast<uint64_t>(slot->count));
    std::vector<float> row(static_cast<size_t>(n_in));
    uint32_t state = 12345;
    for (int64_t r = 0; r < n_out; ++r) {
      for (float& v : row) {
        state = state * 1664525u + 1013904223u;
        v = static_cast<float>(static_cast<int32_t>(state >> 8) - (1 << 23)) /
            static_cast<float>(1 << 23);
      }
      quantize_row(type, row.data(), n_in, slot->data.data() + r * row_bytes);
    }
    for (int64_t c = 1; c < slot->count; ++c) {
      std::memcpy(slot->data.data() + c * slot->matrix_bytes, slot->data.data(),
                  slot->matrix_bytes);
    }
    if (bench_packed() && packable_type(type)) {
      slot->packed.resize(slot->data.size());
      for (int64_t r = 0; r < n_out * slot->count; ++r) {
        pack_row(type, n_in, slot->data.data() + r * row_bytes,
                 slot->packed.data() + r * row_bytes);
      }
    }
  }
  return *slot;
}

void BM_Matmul(benchmark::State& state, DType type, int64_t n_in, int64_t n_out) {
  const int64_t m = state.range(0);
  const MatrixSet& set = matrix_set(type, n_in, n_out);
  std::vector<float> x(static_cast<size_t>(m * n_in), 0.5f), y(static_cast<size_t>(m * n_out));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) * 0.1f - 0.8f;
  int64_t next = 0;
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    WeightMatrix w = make_weight_matrix(
        set.data.data() + static_cast<uint64_t>(next) * set.matrix_bytes, type, n_in, n_out);
    if (set.packed.size() > 0) w.packed = set.packed.data() + next * set.matrix_bytes;
    matmul(w, x.data(), m, y.data(), &pool());
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % set.count;
  }
  const double bytes =
      static_cast<double>(set.matrix_bytes) * static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/cpu-s"] = cpu_rate(bytes, cpu_start);
  state.SetLabel(std::string(dtype_name(type)) + " " + simd_active_target().name +
                 (set.packed.size() > 0 ? " packed" : ""));
}

// The read bandwidth the same threads reach on a plain sum over set_bytes().
void BM_ReadBandwidth(benchmark::State& state) {
  static AlignedBuffer<uint64_t> buffer(set_bytes() / sizeof(uint64_t));
  static bool filled = [] {
    for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = i;
    return true;
  }();
  benchmark::DoNotOptimize(filled);
  const int64_t n = static_cast<int64_t>(buffer.size());
  const int threads = pool().n_threads();
  std::vector<uint64_t> sums(static_cast<size_t>(threads) * 8);
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    pool().parallel_for(threads, [&](int64_t t) {
      const uint64_t* p = buffer.data() + n * t / threads;
      const int64_t len = n * (t + 1) / threads - n * t / threads;
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = 0; i + 4 <= len; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
      }
      sums[static_cast<size_t>(t) * 8] = s0 + s1 + s2 + s3;
    });
    benchmark::DoNotOptimize(sums.data());
  }
  const double bytes =
      static_cast<double>(n) * sizeof(uint64_t) * static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["GB/cpu-s"] = cpu_rate(bytes, cpu_start);
}

// attention() for `rows` query rows that end a context of `context` keys
// (row i sees context - rows + i + 1 of them, as in verification), over
// one layer's key/value cache of kv_type (F32 or F16). Counter: keys/s =
// (row, head, key) triples scored and summed per second.
void BM_Attention(benchmark::State& state, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                  DType kv_type) {
  const int64_t context = state.range(0);
  const int64_t rows = state.range(1);
  const AttentionShape shape{n_head, n_head_kv, head_dim,
                             1.0f / std::sqrt(static_cast<float>(head_dim)), kv_type};
  const int64_t kv_dim = n_head_kv * head_dim;
  const int64_t q_dim = n_head * head_dim;
  // Keys in attention()'s store layout (blocks of 16 positions), values in rows.
  std::vector<float> keys(static_cast<size_t>(key_store_elements(kv_dim, context)));
  std::vector<float> values(static_cast<size_t>(context * kv_dim));
  std::vector<uint16_t> half_keys(keys.size()), half_values(values.size());
  std::vector<float> queries(static_cast<size_t>(rows * q_dim));
  std::vector<float> out(queries.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = static_cast<float>(i % 23) * 0.05f - 0.5f;
    half_keys[i] = f32_to_f16(keys[i]);
  }
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<float>(i % 19) * 0.05f - 0.45f;
    half_values[i] = f32_to_f16(values[i]);
  }
  const bool half = kv_type == DType::kF16;
  const void* k = half ? static_cast<const void*>(half_keys.data()) : keys.data();
  const void* v = half ? static_cast<const void*>(half_values.data()) : values.data();
  for (size_t i = 0; i < queries.size(); ++i)
    queries[i] = static_cast<float>(i % 29) * 0.04f - 0.5f;
  std::vector<AttentionRow> batch;
  int64_t triples = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n_keys = context - rows + i + 1;
    batch.push_back(AttentionRow{queries.data() + i * q_dim, k, v, n_keys, out.data() + i * q_dim});
    triples += n_keys * n_head;
  }
  for (auto _ : state) {
    attention(shape, batch, &pool());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["keys/s"] =
      benchmark::Counter(static_cast<double>(triples) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetLabel(simd_active_target().name);
}

void register_all() {
  benchmark::RegisterBenchmark("ReadBandwidth", BM_ReadBandwidth)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                     DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    benchmark::RegisterBenchmark((std::string("Matmul/") + std::string(dtype_name(type))).c_str(),
                                 BM_Matmul, type, kDim, kDim)
        ->ArgName("M")
        ->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->Arg(16)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  // One benchmark per type and (n_in, n_out) shape, over the batch sizes
  // `ms`, named PREFIX/TYPE/N_INxN_OUT/M:m.
  const auto register_shapes = [](const char* prefix, std::initializer_list<DType> types,
                                  std::initializer_list<std::pair<int64_t, int64_t>> shapes,
                                  std::initializer_list<int64_t> ms) {
    for (DType type : types) {
      for (auto [n_in, n_out] : shapes) {
        const std::string name = std::string(prefix) + "/" + std::string(dtype_name(type)) + "/" +
                                 std::to_string(n_in) + "x" + std::to_string(n_out);
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, n_in, n_out);
        b->ArgName("M");
        for (int64_t m : ms) b->Arg(m);
        b->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
    }
  };
  // The FFN shapes of a ~1B Llama (embd 2048, ff 5632): up/gate read rows
  // of 2048 values, down rows of 5632 (F16 activations for F16 / BF16).
  // M = 9: a verification of 8 drafted tokens; 64: a prefill.
  register_shapes("MatmulFfn",
                  {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K,
                   DType::kQ5_K, DType::kQ6_K},
                  {{2048, 5632}, {5632, 2048}}, {1, 2, 4, 8, 9, 16, 64});
  // The FFN of the padded benchmark target (embd 384, ff 16384:
  // scripts/bench-vs-llamacpp.sh): rows of only 384 values for up/gate.
  register_shapes("MatmulPadded", {DType::kF16, DType::kBF16}, {{384, 16384}, {16384, 384}},
                  {1, 3, 4, 8});
  // A matrix whose half per thread (0.3-0.6 MB) stays in a core's L2 with
  // SPECULA_BENCH_SET_MB=1: the tiles' arithmetic without the stream from
  // L3 or DRAM.
  register_shapes("MatmulL2", {DType::kF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K},
                  {{2048, 1024}}, {1, 4, 5, 8, 9, 16});
  // Rows that end in a partial 512-value group: the padded benchmark
  // target's up/gate (384 wide) and a Qwen2.5-0.5B-like FFN (896 wide).
  register_shapes("MatmulPartial", {DType::kQ8_0, DType::kQ4_0}, {{384, 32768}, {896, 4864}},
                  {1, 2, 4, 8});
  // K-quant rows of 256 x an odd number of values, which end in half a
  // 512-value group: Gemma-2-2B's up/gate (2304 wide), Qwen2.5-0.5B's and
  // -1.5B's down (4864, 8960); beside them whole-group rows of about the
  // same size (2048, 4608, 8704) to compare GB/s with.
  // One layer's attention: the 0.8B test model's heads (32 query heads
  // over 4 KV heads of 64 values), a Llama-3-8B-like layer (32 over 8
  // of 128), a Phi-3-mini-like one without grouping (32 over 32 of 96:
  // one query head per KV head) and the shipped draft's (4 over 2 of 32);
  // a decoded token (1 row) and a verification (9 rows), at 64 to 4096
  // keys of context; an F32 cache (Attention/) and an F16 one
  // (AttentionF16/).
  for (DType kv_type : {DType::kF32, DType::kF16}) {
    for (auto [n_head, n_head_kv, head_dim] : {std::tuple<int64_t, int64_t, int64_t>{32, 4, 64},
                                               {32, 8, 128},
                                               {32, 32, 96},
                                               {4, 2, 32}}) {
      const std::string name =
          std::string(kv_type == DType::kF16 ? "AttentionF16/" : "Attention/") +
          std::to_string(n_head) + "x" + std::to_string(n_head_kv) + "x" + std::to_string(head_dim);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Attention, n_head, n_head_kv,
                                             head_dim, kv_type);
      b->ArgNames({"ctx", "rows"});
      for (int64_t context : {64, 512, 2048, 4096}) {
        for (int64_t rows : {1, 9}) b->Args({context, rows});
      }
      b->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  register_shapes(
      "MatmulPartialK", {DType::kQ4_K, DType::kQ6_K},
      {{2304, 9216}, {2048, 9216}, {4864, 896}, {4608, 896}, {8960, 1536}, {8704, 1536}},
      {1, 4, 8});
}

}  // namespace
}  // namespace specula

int main(int argc, char** argv) {
  // SPECULA_BENCH_DECODE_ROWS=1 or 4: how float decode walks weight rows
  // (simd_set_float_decode_rows; default by CPU vendor).
  if (const char* rows = std::getenv("SPECULA_BENCH_DECODE_ROWS")) {
    specula::simd_set_float_decode_rows(std::atoi(rows));
  }
  // SPECULA_BENCH_INT_PREFETCH=0 or 1: simd_set_int_row_prefetch.
  if (const char* on = std::getenv("SPECULA_BENCH_INT_PREFETCH")) {
    specula::simd_set_int_row_prefetch(std::atoi(on) != 0);
  }
  // SPECULA_BENCH_BF16_DOT=0: BF16 weights multiplied in F32 (simd_set_bf16_dot).
  if (const char* on = std::getenv("SPECULA_BENCH_BF16_DOT")) {
    specula::simd_set_bf16_dot(std::atoi(on) != 0);
  }
  specula::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
