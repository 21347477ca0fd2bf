#include "learn/gemm_dnnl.h"

#include <algorithm>
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

// One block shape: C block rows x cols over depth k. Every operand oneDNN
// sees is dense (oneDNN 2.6 picks its AMX kernel, brgemm, only for dense
// operands; a strided sub-view of a larger matrix gets a slower AVX-512
// kernel): the A block is row-major (rows x k) or, when A is transposed,
// column-major; the B block row-major (k x cols) or column-major; C goes
// to a dense per-thread buffer.
struct BlockKey {
  int64_t rows, cols, k;
  bool a_column_major, b_column_major;
  auto operator<=>(const BlockKey&) const = default;
};

struct BlockPrimitive {
  dnnl::matmul matmul;
  dnnl::memory::desc a, b, c, scratchpad;
  std::string kernel;  // oneDNN's implementation name
};

std::shared_ptr<const BlockPrimitive> make_block_primitive(const BlockKey& key) {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  const dnnl::memory::desc a({key.rows, key.k}, dt::bf16,
                             key.a_column_major ? dims{1, key.rows} : dims{key.k, 1});
  const dnnl::memory::desc b({key.k, key.cols}, dt::bf16,
                             key.b_column_major ? dims{1, key.k} : dims{key.cols, 1});
  const dnnl::memory::desc c({key.rows, key.cols}, dt::f32, dims{key.cols, 1});
  dnnl::primitive_attr attr;
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

// A 64-byte aligned buffer that grows and is reused.
template <typename T>
class AlignedBuffer {
 public:
  T* get(size_t count) {
    constexpr size_t kAlign = 64;
    const size_t bytes = count * sizeof(T) + kAlign;
    if (storage_.size() < bytes) storage_.resize(bytes);
    const auto address = reinterpret_cast<uintptr_t>(storage_.data());
    return reinterpret_cast<T*>(storage_.data() + (kAlign - address % kAlign) % kAlign);
  }

 private:
  std::vector<std::byte> storage_;
};

// Per-thread execution state: a stream, the scratchpad, the C block.
struct ThreadExecution {
  dnnl::stream stream{cpu_engine()};
  AlignedBuffer<std::byte> scratch;
  AlignedBuffer<float> c_block;
};

// C block (rows x cols at c, leading dimension ldc) = or += A block * B block.
void run_block(const BlockPrimitive& block, int64_t rows, int64_t cols, const uint16_t* a,
               const uint16_t* b, float* c, int64_t ldc, bool accumulate) {
  use_one_openmp_thread();
  thread_local ThreadExecution execution;
  dnnl::engine& engine = cpu_engine();
  float* product = execution.c_block.get(static_cast<size_t>(rows * cols));
  dnnl::memory a_memory(block.a, engine, const_cast<uint16_t*>(a));
  dnnl::memory b_memory(block.b, engine, const_cast<uint16_t*>(b));
  dnnl::memory c_memory(block.c, engine, product);
  dnnl::memory scratch_memory(block.scratchpad, engine,
                              execution.scratch.get(block.scratchpad.get_size()));
  block.matmul.execute(execution.stream, {{DNNL_ARG_SRC, a_memory},
                                          {DNNL_ARG_WEIGHTS, b_memory},
                                          {DNNL_ARG_DST, c_memory},
                                          {DNNL_ARG_SCRATCHPAD, scratch_memory}});
  execution.stream.wait();
  for (int64_t i = 0; i < rows; ++i) {
    float* out = c + i * ldc;
    const float* in = product + i * cols;
    if (accumulate) {
      for (int64_t j = 0; j < cols; ++j) out[j] += in[j];
    } else {
      std::copy_n(in, cols, out);
    }
  }
}

// Block sides of C, from the shape alone (never the pool, so that results do
// not depend on the thread count): at most 512 x 512, halved (in multiples
// of 32) until there are kMinBlocks blocks for the pool to share, but not
// below 64. Each block reads its whole slice of A and B, so blocks stay
// large.
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

// Rounds a stored rows x cols float matrix (leading dimension ld) to bf16
// panels of `width` columns (the last one narrower): panel p, columns
// [p width, p width + w_p), is a dense row-major rows x w_p matrix at
// out + rows * p * width. width = cols gives one dense copy. Split over
// the pool by (panel, rows).
void convert_to_panels(const float* in, int64_t rows, int64_t cols, int64_t ld, int64_t width,
                       uint16_t* out, ThreadPool* pool) {
  constexpr int64_t kElementsPerTask = 1 << 15;
  const int64_t panels = (cols + width - 1) / width;
  const int64_t rows_per_task = std::max<int64_t>(1, kElementsPerTask / width);
  const int64_t row_tasks = (rows + rows_per_task - 1) / rows_per_task;
  const auto convert = [&](int64_t task) {
    const int64_t panel = task / row_tasks;
    const int64_t first_row = (task % row_tasks) * rows_per_task;
    const int64_t end_row = std::min(rows, first_row + rows_per_task);
    const int64_t col0 = panel * width;
    const int64_t w = std::min(width, cols - col0);
    uint16_t* panel_out = out + rows * col0;
    for (int64_t r = first_row; r < end_row; ++r) {
      round_to_bf16(in + r * ld + col0, w, panel_out + r * w);
    }
  };
  const int64_t tasks = panels * row_tasks;
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
    const BlockKey probe{64, 64, 64, false, false};
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
  const Blocking blocking = choose_blocking(m, n);
  const int64_t blocks_m = (m + blocking.rows - 1) / blocking.rows;
  const int64_t blocks_n = (n + blocking.cols - 1) / blocking.cols;

  // bf16 copies from which every block is a dense matrix. op(A)'s row block
  // i starts at element i * rows * k in both layouts: A stored m x k is
  // copied whole (a row block is contiguous); A stored k x m (transposed)
  // is cut into column panels, each a column-major block of op(A).
  // Likewise op(B)'s column block j starts at j * cols * k: B stored n x k
  // (transposed) whole, B stored k x n in row-major panels. Kept per
  // calling thread between calls. (The pool tasks below must use the
  // pointers, not the thread_local names, which would name each task
  // thread's own copies.)
  thread_local AlignedBuffer<uint16_t> a_buffer, b_buffer;
  uint16_t* const a16 = a_buffer.get(static_cast<size_t>(m * k));
  uint16_t* const b16 = b_buffer.get(static_cast<size_t>(k * n));
  if (trans_a) {
    convert_to_panels(a, k, m, lda, blocking.rows, a16, pool);
  } else {
    convert_to_panels(a, m, k, lda, k, a16, pool);
  }
  if (trans_b) {
    convert_to_panels(b, n, k, ldb, k, b16, pool);
  } else {
    convert_to_panels(b, k, n, ldb, blocking.cols, b16, pool);
  }

  // At most four block shapes (interior and edges); compiled here, on the
  // calling thread, so that the tasks only execute.
  std::shared_ptr<const BlockPrimitive> primitives[2][2];
  const auto rows_of = [&](int64_t bi) { return std::min(blocking.rows, m - bi * blocking.rows); };
  const auto cols_of = [&](int64_t bj) { return std::min(blocking.cols, n - bj * blocking.cols); };
  try {
    for (int edge_m = 0; edge_m < 2; ++edge_m) {
      for (int edge_n = 0; edge_n < 2; ++edge_n) {
        const BlockKey key{rows_of(edge_m ? blocks_m - 1 : 0), cols_of(edge_n ? blocks_n - 1 : 0),
                           k, trans_a, trans_b};
        primitives[edge_m][edge_n] = block_primitive(key);
      }
    }
  } catch (const dnnl::error& e) {
    fail("train: oneDNN cannot make a bf16 matmul of ", m, " x ", n, " x ", k, ": ", e.what(),
         "; use the f32 products (TrainOptions::gemm f32)");
  }

  std::mutex error_mutex;
  std::string error;
  const auto run = [&](int64_t block) {
    const int64_t bi = block / blocks_n;
    const int64_t bj = block % blocks_n;
    const int64_t row0 = bi * blocking.rows;
    const int64_t col0 = bj * blocking.cols;
    const BlockPrimitive& primitive = *primitives[bi == blocks_m - 1][bj == blocks_n - 1];
    try {
      run_block(primitive, rows_of(bi), cols_of(bj), a16 + row0 * k, b16 + col0 * k,
                c + row0 * ldc + col0, ldc, accumulate);
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
  if (!error.empty()) {
    fail("train: a oneDNN bf16 matmul failed: ", error,
         "; use the f32 products (TrainOptions::gemm f32)");
  }
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
