// Mixed-precision matrix products for training through oneDNN (Debian's
// libdnnl): the float operands are rounded to bfloat16 (round to nearest,
// ties to even) and multiplied with float accumulation, on AMX tiles where
// the CPU has them (Sapphire Rapids and later), else on AVX-512 BF16
// instructions. Same semantics as the float gemm of train/gemm.h:
//
//   C[M,N] = (accumulate ? C : 0) + bf16(op(A))[M,K] * bf16(op(B))[K,N]
//
// Only the products are bf16: C, the master weights and the optimizer stay
// float. Error: each product of two rounded values is exact in float, and
// each rounded input carries a relative error of at most 2^-9, so an element
// of C differs from the exact sum by at most about 2^-8 * sum_k |a_ik b_kj|
// plus float accumulation rounding (tests/train/gemm_dnnl_test.cpp checks a
// bound of this form).
//
// Threads: C is cut into blocks whose size depends only on the shape (never
// on the pool), and each block is one single-threaded oneDNN matmul run by a
// thread of our own pool. So results are bit-identical for any thread
// count, given the same CPU and library (tested). oneDNN's own OpenMP
// threads are not used: on a loaded 2-core machine an OpenMP barrier waits
// for a preempted thread, while our pool lets the running threads take the
// blocks of a late one.
//
// oneDNN is optional at build time (CMake defines SPECULA_HAVE_DNNL when it
// finds it); without it, or on a CPU without bf16 arithmetic, the bf16
// backend is unavailable and resolve_gemm_backend falls back to float.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/thread_pool.h"
#include "learn/gemm.h"

namespace specula {

// What this build and this CPU offer for bf16 products.
struct Bf16GemmSupport {
  bool compiled_in = false;   // built with oneDNN
  bool cpu_has_bf16 = false;  // oneDNN reports AMX or AVX-512 BF16 usable
  std::string isa;            // oneDNN's effective ISA, e.g. "avx512_core_amx"
  std::string kernel;         // the implementation oneDNN picks, e.g. "brg:avx512_core_amx_bf16"
  bool usable() const { return compiled_in && cpu_has_bf16; }
};

// Detected once per process (initialises oneDNN, which asks the kernel for
// the AMX tile state) and cached.
const Bf16GemmSupport& bf16_gemm_support();

struct GemmBackendChoice {
  GemmBackend backend = GemmBackend::kF32;  // kF32 or kBf16, never kAuto
  std::string notice;  // one line for the user when `requested` could not be honoured
};

// kAuto: kBf16 when support.usable(), else kF32 (no notice). kBf16 when not
// usable: kF32 with a notice saying why. kF32: kF32.
GemmBackendChoice resolve_gemm_backend(GemmBackend requested, const Bf16GemmSupport& support);

// "auto", "f32", "bf16" (the --gemm flag); throws Error naming `flag` otherwise.
GemmBackend parse_gemm_backend(std::string_view name, std::string_view flag);
const char* gemm_backend_name(GemmBackend backend);

// One line for logs: which backend runs the large products, and with bf16
// oneDNN's version, ISA and kernel.
std::string describe_gemm_backend(GemmBackend resolved);

// The bf16 product itself, for any shape (the dispatch in gemm() only sends
// products of at least kBf16MinMacs). Throws Error when !usable(). pool may
// be null. Not reentrant on one pool.
void gemm_bf16(const GemmShape& shape, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, bool accumulate, ThreadPool* pool);

// Rounds n floats to bfloat16 bit patterns, to nearest with ties to even
// (NaN stays NaN, quiet). SIMD per target (bf16_round.cpp); exposed for
// its test.
void round_to_bf16(const float* in, int64_t n, uint16_t* out);

}  // namespace specula
