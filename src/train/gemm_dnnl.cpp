#include "train/gemm_dnnl.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"

#if SPECULA_HAVE_DNNL
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace specula {

void round_to_bf16(const float* in, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, in + i, sizeof bits);
    // Adding 0x7fff plus the lowest kept bit carries into the kept half
    // exactly when the dropped half is above one half, or equal to it with
    // an odd kept half (ties to even); overflow rounds to infinity, as it
    // should. NaN would round to infinity, so it keeps its sign and top
    // payload bits and is made quiet instead.
    const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    const bool is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
    out[i] = static_cast<uint16_t>(is_nan ? ((bits >> 16) | 0x40u) : rounded);
  }
}

GemmBackendChoice resolve_gemm_backend(GemmBackend requested, const Bf16GemmSupport& support) {
  if (requested == GemmBackend::kF32) return {GemmBackend::kF32, ""};
  if (support.usable()) return {GemmBackend::kBf16, ""};
  if (requested == GemmBackend::kAuto) return {GemmBackend::kF32, ""};
  if (!support.compiled_in) {
    return {GemmBackend::kF32,
            "bf16 matrix products need oneDNN, and this build has none (install libdnnl-dev "
            "and rebuild); using f32"};
  }
  return {GemmBackend::kF32, str_cat("bf16 matrix products need AMX or AVX-512 BF16, and oneDNN "
                                     "reports this CPU as ",
                                     support.isa.empty() ? "unknown" : support.isa, "; using f32")};
}

GemmBackend parse_gemm_backend(std::string_view name, std::string_view flag) {
  if (name == "auto") return GemmBackend::kAuto;
  if (name == "f32") return GemmBackend::kF32;
  if (name == "bf16") return GemmBackend::kBf16;
  fail(flag, " ", name, " is not a matrix-product backend; use auto, f32 or bf16");
}

const char* gemm_backend_name(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::kAuto:
      return "auto";
    case GemmBackend::kF32:
      return "f32";
    case GemmBackend::kBf16:
      return "bf16";
  }
  return "?";
}

#if SPECULA_HAVE_DNNL
namespace {

// oneDNN runs each block on the thread that calls it: its OpenMP team must
// be one thread on every thread of ours that calls it (the setting is per
// thread). Also primitives are created for the thread count in force.
void use_one_openmp_thread() {
  thread_local bool done = false;
  if (!done) {
    omp_set_num_threads(1);
    done = true;
  }
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

// One block shape of one product: the operands as oneDNN sees them (bf16,
// with the strides of the converted copies) and the compiled primitive.
struct BlockKey {
  int64_t m, n, k;
  int64_t a_row_stride, a_col_stride, b_row_stride, b_col_stride, ldc;
  bool accumulate;
  auto operator<=>(const BlockKey&) const = default;
};

struct BlockPrimitive {
  dnnl::matmul matmul;
  dnnl::memory::desc a, b, c, scratchpad;
  std::string kernel;  // oneDNN's implementation name
};

std::shared_ptr<const BlockPrimitive> make_block_primitive(const BlockKey& key) {
  using dt = dnnl::memory::data_type;
  const dnnl::memory::desc a({key.m, key.k}, dt::bf16, {key.a_row_stride, key.a_col_stride});
  const dnnl::memory::desc b({key.k, key.n}, dt::bf16, {key.b_row_stride, key.b_col_stride});
  const dnnl::memory::desc c({key.m, key.n}, dt::f32, {key.ldc, 1});
  dnnl::primitive_attr attr;
  if (key.accumulate) {
    dnnl::post_ops post_ops;
    post_ops.append_sum(1.0f);  // C = 1 * C + A B
    attr.set_post_ops(post_ops);
  }
  // Our own scratch buffer per thread, so that blocks run concurrently.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
  return std::make_shared<const BlockPrimitive>(
      BlockPrimitive{dnnl::matmul(pd), a, b, c, pd.scratchpad_desc(), pd.impl_info_str()});
}

// Products of the same shapes recur every training step: keep their
// primitives (a few per linear layer). Bounded: cleared when full.
std::shared_ptr<const BlockPrimitive> block_primitive(const BlockKey& key) {
  constexpr size_t kMaxEntries = 512;
  static std::mutex mutex;
  static std::map<BlockKey, std::shared_ptr<const BlockPrimitive>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  if (cache.size() >= kMaxEntries) cache.clear();
  use_one_openmp_thread();
  auto made = make_block_primitive(key);
  cache.emplace(key, made);
  return made;
}

// Per-thread execution state: a stream and a 64-byte aligned scratchpad.
struct ThreadExecution {
  dnnl::stream stream{cpu_engine()};
  std::vector<std::byte> scratch;
  void* scratch_for(size_t bytes) {
    constexpr size_t kAlign = 64;
    if (scratch.size() < bytes + kAlign) scratch.resize(bytes + kAlign);
    auto address = reinterpret_cast<uintptr_t>(scratch.data());
    return scratch.data() + ((kAlign - address % kAlign) % kAlign);
  }
};

void run_block(const BlockPrimitive& block, const uint16_t* a, const uint16_t* b, float* c) {
  use_one_openmp_thread();
  thread_local ThreadExecution execution;
  dnnl::engine& engine = cpu_engine();
  dnnl::memory a_memory(block.a, engine, const_cast<uint16_t*>(a));
  dnnl::memory b_memory(block.b, engine, const_cast<uint16_t*>(b));
  dnnl::memory c_memory(block.c, engine, c);
  dnnl::memory scratch_memory(block.scratchpad, engine,
                              execution.scratch_for(block.scratchpad.get_size()));
  block.matmul.execute(execution.stream, {{DNNL_ARG_SRC, a_memory},
                                          {DNNL_ARG_WEIGHTS, b_memory},
                                          {DNNL_ARG_DST, c_memory},
                                          {DNNL_ARG_SCRATCHPAD, scratch_memory}});
  execution.stream.wait();
}

// Block sides of C, from the shape alone (never the pool, so that results do
// not depend on the thread count): at most 512 x 512, halved (in multiples
// of 32) until there are kMinBlocks blocks for the pool to share, but not
// below 64. Each block repacks its slice of B, so blocks stay large.
struct Blocking {
  int64_t rows, cols;
};
Blocking choose_blocking(int64_t m, int64_t n) {
  constexpr int64_t kMinBlocks = 16;
  constexpr int64_t kMaxSide = 512;
  const auto halve = [](int64_t side) { return ((side + 1) / 2 + 31) / 32 * 32; };
  Blocking b{std::min(m, kMaxSide), std::min(n, kMaxSide)};
  while (((m + b.rows - 1) / b.rows) * ((n + b.cols - 1) / b.cols) < kMinBlocks) {
    if (b.rows >= b.cols && b.rows >= 128) {
      b.rows = halve(b.rows);
    } else if (b.cols >= 128) {
      b.cols = halve(b.cols);
    } else {
      break;
    }
  }
  return b;
}

// Copies a stored rows x cols matrix (leading dimension ld) to a dense bf16
// one (leading dimension cols), split over the pool by rows.
void convert_matrix(const float* in, int64_t rows, int64_t cols, int64_t ld,
                    std::vector<uint16_t>& out, ThreadPool* pool) {
  out.resize(static_cast<size_t>(rows * cols));
  constexpr int64_t kElementsPerTask = 1 << 15;
  const int64_t rows_per_task = std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(cols, 1));
  const int64_t tasks = (rows + rows_per_task - 1) / rows_per_task;
  const auto convert = [&](int64_t task) {
    const int64_t end = std::min(rows, (task + 1) * rows_per_task);
    for (int64_t r = task * rows_per_task; r < end; ++r) {
      round_to_bf16(in + r * ld, cols, out.data() + r * cols);
    }
  };
  if (pool == nullptr || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) convert(t);
  } else {
    pool->parallel_for(tasks, convert);
  }
}

Bf16GemmSupport detect_support() {
  Bf16GemmSupport support;
  support.compiled_in = true;
  try {
    use_one_openmp_thread();
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    support.isa = isa_name(isa);
    if (isa != dnnl::cpu_isa::avx512_core_bf16 && isa != dnnl::cpu_isa::avx512_core_amx) {
      return support;
    }
    // What oneDNN would really run: a reference (scalar) kernel would be
    // slower than our float one.
    const BlockKey probe{64, 64, 64, 64, 1, 64, 1, 64, false};
    support.kernel = make_block_primitive(probe)->kernel;
    support.cpu_has_bf16 = support.kernel.rfind("ref", 0) != 0;
  } catch (const dnnl::error& e) {
    support.isa = str_cat("unusable (", e.what(), ")");
    support.cpu_has_bf16 = false;
  }
  return support;
}

}  // namespace

const Bf16GemmSupport& bf16_gemm_support() {
  static const Bf16GemmSupport support = detect_support();
  return support;
}

std::string describe_gemm_backend(GemmBackend resolved) {
  if (resolved != GemmBackend::kBf16) return "matrix products: f32 (Highway kernel)";
  const Bf16GemmSupport& s = bf16_gemm_support();
  const dnnl_version_t* v = dnnl::version();
  return str_cat("matrix products: bf16 inputs, f32 accumulation, on oneDNN ", v->major, ".",
                 v->minor, ".", v->patch, " (isa ", s.isa, ", kernel ", s.kernel,
                 ") for the linear layers; f32 for attention and small products");
}

void gemm_bf16(const GemmShape& shape, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, bool accumulate, ThreadPool* pool) {
  if (!bf16_gemm_support().usable()) {
    fail(resolve_gemm_backend(GemmBackend::kBf16, bf16_gemm_support()).notice);
  }
  const int64_t m = shape.m, n = shape.n, k = shape.k;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // oneDNN refuses empty operands; the product is zero
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
    }
    return;
  }
  const bool trans_a = shape.trans_a == Transpose::kYes;
  const bool trans_b = shape.trans_b == Transpose::kYes;
  // Dense bf16 copies in the stored layout: A is m x k, or k x m when
  // transposed; B is k x n, or n x k. Kept per calling thread between calls.
  // (The pool tasks below must use these pointers, not the thread_local
  // names, which would name each task thread's own copies.)
  thread_local std::vector<uint16_t> a16, b16;
  const int64_t a_cols = trans_a ? m : k;
  const int64_t b_cols = trans_b ? k : n;
  convert_matrix(a, trans_a ? k : m, a_cols, lda, a16, pool);
  convert_matrix(b, trans_b ? n : k, b_cols, ldb, b16, pool);
  const uint16_t* a_converted = a16.data();
  const uint16_t* b_converted = b16.data();

  const Blocking blocking = choose_blocking(m, n);
  const int64_t blocks_m = (m + blocking.rows - 1) / blocking.rows;
  const int64_t blocks_n = (n + blocking.cols - 1) / blocking.cols;
  // At most four block shapes (interior and edges); compiled here, on the
  // calling thread, so that the tasks only execute.
  std::shared_ptr<const BlockPrimitive> primitives[2][2];
  const auto rows_of = [&](int64_t bi) { return std::min(blocking.rows, m - bi * blocking.rows); };
  const auto cols_of = [&](int64_t bj) { return std::min(blocking.cols, n - bj * blocking.cols); };
  try {
    for (int edge_m = 0; edge_m < 2; ++edge_m) {
      for (int edge_n = 0; edge_n < 2; ++edge_n) {
        const int64_t bi = edge_m ? blocks_m - 1 : 0;
        const int64_t bj = edge_n ? blocks_n - 1 : 0;
        const BlockKey key{rows_of(bi),
                           cols_of(bj),
                           k,
                           trans_a ? 1 : a_cols,
                           trans_a ? a_cols : 1,
                           trans_b ? 1 : b_cols,
                           trans_b ? b_cols : 1,
                           ldc,
                           accumulate};
        primitives[edge_m][edge_n] = block_primitive(key);
      }
    }
  } catch (const dnnl::error& e) {
    fail("train: oneDNN cannot make a bf16 matmul of ", m, " x ", n, " x ", k, ": ", e.what(),
         "; run with --gemm f32");
  }

  std::mutex error_mutex;
  std::string error;
  const auto run = [&](int64_t block) {
    const int64_t bi = block / blocks_n;
    const int64_t bj = block % blocks_n;
    const int64_t row0 = bi * blocking.rows;
    const int64_t col0 = bj * blocking.cols;
    const BlockPrimitive& primitive = *primitives[bi == blocks_m - 1][bj == blocks_n - 1];
    const uint16_t* a_block = a_converted + (trans_a ? row0 : row0 * a_cols);
    const uint16_t* b_block = b_converted + (trans_b ? col0 * b_cols : col0);
    try {
      run_block(primitive, a_block, b_block, c + row0 * ldc + col0);
    } catch (const dnnl::error& e) {  // must not leave a pool task
      const std::lock_guard<std::mutex> lock(error_mutex);
      error = e.what();
    }
  };
  const int64_t n_blocks = blocks_m * blocks_n;
  if (pool == nullptr || n_blocks == 1) {
    for (int64_t block = 0; block < n_blocks; ++block) run(block);
  } else {
    pool->parallel_for(n_blocks, run);
  }
  if (!error.empty()) fail("train: a oneDNN bf16 matmul failed: ", error, "; run with --gemm f32");
}

#else  // !SPECULA_HAVE_DNNL

const Bf16GemmSupport& bf16_gemm_support() {
  static const Bf16GemmSupport support{};
  return support;
}

std::string describe_gemm_backend(GemmBackend) {
  return "matrix products: f32 (Highway kernel)";
}

void gemm_bf16(const GemmShape&, const float*, int64_t, const float*, int64_t, float*, int64_t,
               bool, ThreadPool*) {
  fail(resolve_gemm_backend(GemmBackend::kBf16, bf16_gemm_support()).notice);
}

#endif  // SPECULA_HAVE_DNNL

}  // namespace specula
