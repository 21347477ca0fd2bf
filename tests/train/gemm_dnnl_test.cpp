// The bf16 (oneDNN) backend of the training products: rounding, products
// against a double reference within a bound derived from bf16 rounding,
// determinism across thread counts, the dispatch in gemm(), the choice of
// backend and its fall-backs, and training a tiny model with it.
#include "learn/gemm_dnnl.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "train/train_test_util.h"
#include "train/trainer.h"

namespace specula {
namespace {

// Skips the calling test when this build or CPU cannot run bf16 products.
#define SKIP_WITHOUT_BF16()                                                                       \
  do {                                                                                            \
    const Bf16GemmSupport& support = bf16_gemm_support();                                         \
    if (!support.compiled_in) GTEST_SKIP() << "built without oneDNN (libdnnl-dev)";               \
    if (!support.cpu_has_bf16) GTEST_SKIP() << "CPU has no bf16 (oneDNN: " << support.isa << ")"; \
  } while (0)

uint16_t bf16_bits(float value) {
  uint16_t out;
  round_to_bf16(&value, 1, &out);
  return out;
}

float bf16_value(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

TEST(RoundToBf16, NearestTiesToEven) {
  // bf16 keeps 8 significant bits: next to 1 the spacing is 2^-7.
  EXPECT_EQ(bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(bf16_bits(-1.5f), 0xbfc0);
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f), 0x3f80) << "tie, kept half even: down";
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-7f + 0x1p-8f), 0x3f82) << "tie, kept half odd: up";
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81) << "just above the tie: up";
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80) << "just below the tie: down";
  EXPECT_EQ(bf16_bits(-(1.0f + 0x1p-8f + 0x1p-20f)), 0xbf81);
  EXPECT_EQ(bf16_bits(0.0f), 0x0000);
  EXPECT_EQ(bf16_bits(-0.0f), 0x8000);
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::max()), 0x7f80) << "rounds past the top";
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  const uint16_t nan = bf16_bits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(bf16_value(nan)));
  // A signalling NaN whose payload sits only in the dropped bits must not
  // become infinity.
  const uint16_t snan = bf16_bits(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(bf16_value(snan)));
}

// The nearest bf16 by another route: the two bf16 values around x (by
// truncation towards zero and the next one away from zero), compared in
// double; ties go to the even bit pattern. For finite x only.
uint16_t nearest_bf16_reference(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const auto toward_zero = static_cast<uint16_t>(bits >> 16);
  const auto away = static_cast<uint16_t>(toward_zero + 1);  // next magnitude, same sign
  const double below = std::abs(static_cast<double>(bf16_value(toward_zero)) - x);
  const double above = std::abs(static_cast<double>(bf16_value(away)) - x);
  if (below < above) return toward_zero;
  if (above < below) return away;
  return (toward_zero & 1) == 0 ? toward_zero : away;
}

TEST(RoundToBf16, MatchesReferenceOnEveryTarget) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-100.0f, 100.0f);
  std::uniform_int_distribution<uint32_t> low_bits(0, 0xffff);
  std::vector<float> in(1000 + 37);  // not a multiple of any vector width
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = uniform(rng);
    // Every third value sits on or next to a tie (dropped half 0x8000 +- 1).
    if (i % 3 == 0) {
      const uint32_t tie = (std::bit_cast<uint32_t>(in[i]) & 0xffff0000u) | 0x8000u;
      in[i] = std::bit_cast<float>(tie + (low_bits(rng) % 3) - 1);
    }
  }
  in[5] = std::numeric_limits<float>::max();
  in[7] = -std::numeric_limits<float>::infinity();
  in[11] = std::numeric_limits<float>::quiet_NaN();
  in[13] = std::bit_cast<float>(0xff800001u);  // negative NaN, payload in the dropped bits
  in[17] = std::numeric_limits<float>::denorm_min();
  for (const SimdTarget& target : simd_targets()) {
    SCOPED_TRACE(target.name);
    const ScopedSimdTarget scoped(target.bit);
    std::vector<uint16_t> out(in.size());
    round_to_bf16(in.data(), static_cast<int64_t>(in.size()), out.data());
    for (size_t i = 0; i < in.size(); ++i) {
      const float x = in[i];
      if (std::isnan(x)) {
        ASSERT_TRUE(std::isnan(bf16_value(out[i]))) << i;
        ASSERT_EQ(out[i] >> 15, std::bit_cast<uint32_t>(x) >> 31) << "sign kept, " << i;
      } else if (std::isinf(x) || x == std::numeric_limits<float>::max()) {
        ASSERT_EQ(bf16_value(out[i]), x == std::numeric_limits<float>::max()
                                          ? std::numeric_limits<float>::infinity()
                                          : x)
            << i;
      } else {
        ASSERT_EQ(out[i], nearest_bf16_reference(x)) << "x = " << x << " at " << i;
        // 2^-8 relative is half the spacing of 8 significant bits (normal
        // numbers; denormals have fewer).
        if (std::abs(x) < std::numeric_limits<float>::min()) continue;
        ASSERT_LE(std::abs(static_cast<double>(bf16_value(out[i])) - x),
                  std::ldexp(std::abs(static_cast<double>(x)), -8));
      }
    }
  }
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> rounded_to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  round_to_bf16(v.data(), static_cast<int64_t>(v.size()), bits.data());
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_value(bits[i]);
  return out;
}

struct Case {
  Transpose ta, tb;
  int64_t m, n, k;
  bool accumulate;
};

// All transposes, sizes that are not multiples of anything, several blocks
// with edges (m or n above 512, or halved blocks), and k = 0.
const Case kCases[] = {
    {Transpose::kNo, Transpose::kYes, 1, 1, 1, false},
    {Transpose::kNo, Transpose::kYes, 7, 33, 19, false},
    {Transpose::kNo, Transpose::kNo, 13, 45, 300, true},
    {Transpose::kYes, Transpose::kNo, 101, 17, 529, true},
    {Transpose::kYes, Transpose::kYes, 9, 270, 31, false},
    {Transpose::kNo, Transpose::kYes, 197, 300, 257, false},
    {Transpose::kNo, Transpose::kYes, 600, 130, 70, true},
    {Transpose::kYes, Transpose::kNo, 130, 590, 101, false},
    {Transpose::kYes, Transpose::kYes, 333, 211, 45, true},
    {Transpose::kNo, Transpose::kNo, 5, 3, 0, false},
    {Transpose::kNo, Transpose::kNo, 5, 3, 0, true},
};

struct Operands {
  std::vector<float> a, b, c;
  int64_t lda, ldb, ldc;
};

// Padded operands (leading dimensions larger than the widths).
Operands make_operands(const Case& c) {
  const int64_t a_rows = c.ta == Transpose::kNo ? c.m : c.k;
  const int64_t a_cols = c.ta == Transpose::kNo ? c.k : c.m;
  const int64_t b_rows = c.tb == Transpose::kNo ? c.k : c.n;
  const int64_t b_cols = c.tb == Transpose::kNo ? c.n : c.k;
  Operands o;
  o.lda = a_cols + 3;
  o.ldb = b_cols + 5;
  o.ldc = c.n + 2;
  o.a = random_floats(static_cast<size_t>(a_rows * o.lda), 1);
  o.b = random_floats(static_cast<size_t>(b_rows * o.ldb), 2);
  o.c = random_floats(static_cast<size_t>(c.m * o.ldc), 3);
  return o;
}

double element(const std::vector<float>& matrix, int64_t ld, Transpose trans, int64_t row,
               int64_t col) {
  return trans == Transpose::kNo ? matrix[static_cast<size_t>(row * ld + col)]
                                 : matrix[static_cast<size_t>(col * ld + row)];
}

// Compares gemm_bf16 with two double references:
//  - the exact product of the float inputs: bf16 rounding changes each
//    input by at most 2^-9 relative, so each product a*b by at most
//    (2 * 2^-9 + 2^-18) |a b|; the float accumulation of k + 1 terms adds at
//    most (k + 1) * 2^-24 of the sum of magnitudes (a worst-case bound,
//    not a statistical one). Bound: (2^-8 + 2^-17 + (k + 1) 2^-24) * S with
//    S = |C0| + sum_k |a b|.
//  - the exact product of the bf16-rounded inputs: only the float
//    accumulation differs, (k + 1) 2^-24 S. This one pins down that the
//    rounding is to nearest even and that strides and transposes are right.
// Also checks that nothing outside C's columns is written, and returns the
// largest error against the float inputs relative to S (to show that the
// inputs were rounded at all).
double check_case(const Case& c, ThreadPool* pool) {
  const GemmShape shape{c.ta, c.tb, c.m, c.n, c.k};
  Operands o = make_operands(c);
  const std::vector<float> c0 = o.c;
  const std::vector<float> a16 = rounded_to_bf16(o.a);
  const std::vector<float> b16 = rounded_to_bf16(o.b);
  gemm_bf16(shape, o.a.data(), o.lda, o.b.data(), o.ldb, o.c.data(), o.ldc, c.accumulate, pool);
  double worst_relative = 0.0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < o.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * o.ldc + j);
      if (j >= c.n) {
        EXPECT_EQ(o.c[at], c0[at]) << "wrote outside C at " << i << "," << j;
        continue;
      }
      double exact = c.accumulate ? c0[at] : 0.0;
      double exact16 = exact;
      double magnitude = std::abs(exact);
      for (int64_t k = 0; k < c.k; ++k) {
        const double a = element(o.a, o.lda, c.ta, i, k);
        const double b = element(o.b, o.ldb, c.tb, k, j);
        exact += a * b;
        exact16 += element(a16, o.lda, c.ta, i, k) * element(b16, o.ldb, c.tb, k, j);
        magnitude += std::abs(a * b);
      }
      const double accumulation = static_cast<double>(c.k + 1) * 0x1p-24 * magnitude;
      const double bound = (0x1p-8 + 0x1p-17) * magnitude + accumulation;
      const double got = o.c[at];
      EXPECT_LE(std::abs(got - exact), bound)
          << "vs float inputs: m=" << c.m << " n=" << c.n << " k=" << c.k << " ta=" << int(c.ta)
          << " tb=" << int(c.tb) << " acc=" << c.accumulate << " at " << i << "," << j;
      EXPECT_LE(std::abs(got - exact16), accumulation + 1e-30)
          << "vs rounded inputs: m=" << c.m << " n=" << c.n << " k=" << c.k << " ta=" << int(c.ta)
          << " tb=" << int(c.tb) << " at " << i << "," << j;
      if (magnitude > 0.0)
        worst_relative = std::max(worst_relative, std::abs(got - exact) / magnitude);
      if (::testing::Test::HasFailure()) return worst_relative;
    }
  }
  return worst_relative;
}

TEST(GemmBf16, MatchesDoubleReferenceWithinBf16Rounding) {
  SKIP_WITHOUT_BF16();
  double worst = 0.0;
  for (const Case& c : kCases) worst = std::max(worst, check_case(c, nullptr));
  // Inputs in [-1, 1] rounded to 8 bits: some element must be off by more
  // than float rounding alone could explain, else bf16 was not used.
  EXPECT_GT(worst, 1e-4);
}

TEST(GemmBf16, MatchesDoubleReferenceWithThreads) {
  SKIP_WITHOUT_BF16();
  ThreadPool pool(3);
  for (const Case& c : kCases) check_case(c, &pool);
}

TEST(GemmBf16, BitIdenticalForAnyThreadCount) {
  SKIP_WITHOUT_BF16();
  // Many blocks, with edges, each transpose of A.
  for (const Transpose ta : {Transpose::kNo, Transpose::kYes}) {
    const GemmShape shape{ta, Transpose::kNo, 700, 650, 300};
    const std::vector<float> a = random_floats(700 * 300, 4);
    const std::vector<float> b = random_floats(300 * 650, 5);
    const int64_t lda = ta == Transpose::kNo ? 300 : 700;
    std::vector<float> one(700 * 650, 0.5f);
    std::vector<float> three = one;
    std::vector<float> again = one;
    gemm_bf16(shape, a.data(), lda, b.data(), 650, one.data(), 650, true, nullptr);
    ThreadPool pool(3);
    gemm_bf16(shape, a.data(), lda, b.data(), 650, three.data(), 650, true, &pool);
    gemm_bf16(shape, a.data(), lda, b.data(), 650, again.data(), 650, true, &pool);
    EXPECT_EQ(one, three);
    EXPECT_EQ(three, again);
  }
}

// gemm() switches to bf16 only inside a ScopedGemmBackend, only for large
// products, and only on the thread that opened the scope.
TEST(GemmBf16, DispatchFollowsScopeAndSize) {
  SKIP_WITHOUT_BF16();
  ThreadPool pool(2);
  const auto run = [&](int64_t m, int64_t n, int64_t k, bool bf16_kernel) {
    const std::vector<float> a = random_floats(static_cast<size_t>(m * k), 6);
    const std::vector<float> b = random_floats(static_cast<size_t>(n * k), 7);
    std::vector<float> c(static_cast<size_t>(m * n));
    const GemmShape shape{Transpose::kNo, Transpose::kYes, m, n, k};
    if (bf16_kernel) {
      gemm_bf16(shape, a.data(), k, b.data(), k, c.data(), n, false, &pool);
    } else {
      gemm(shape, a.data(), k, b.data(), k, c.data(), n, false, &pool);
    }
    return c;
  };
  const auto run_gemm = [&](int64_t m, int64_t n, int64_t k) { return run(m, n, k, false); };
  // 128 x 64 x 64 = 2^19 multiply-adds: large enough.
  ASSERT_GE(128 * 64 * 64, kBf16MinMacs);
  const std::vector<float> f32_large = run_gemm(128, 64, 64);
  const std::vector<float> bf16_large = run(128, 64, 64, true);
  ASSERT_NE(f32_large, bf16_large);
  // 64 x 64 x 32 = 2^17: too small; 2048 x 8 x 64: a dimension below 16.
  const std::vector<float> f32_small = run_gemm(64, 64, 32);
  const std::vector<float> f32_thin = run_gemm(2048, 8, 64);
  {
    const ScopedGemmBackend scope(GemmBackend::kBf16);
    EXPECT_EQ(run_gemm(128, 64, 64), bf16_large);
    EXPECT_EQ(run_gemm(64, 64, 32), f32_small);
    EXPECT_EQ(run_gemm(2048, 8, 64), f32_thin);
    {
      const ScopedGemmBackend inner(GemmBackend::kF32);
      EXPECT_EQ(run_gemm(128, 64, 64), f32_large);
    }
    EXPECT_EQ(run_gemm(128, 64, 64), bf16_large) << "the inner scope restored bf16";
  }
  EXPECT_EQ(run_gemm(128, 64, 64), f32_large) << "the scope ended";
}

TEST(GemmBackendChoice, ResolvesAndFallsBack) {
  Bf16GemmSupport none;  // a build without oneDNN
  Bf16GemmSupport old_cpu;
  old_cpu.compiled_in = true;
  old_cpu.isa = "avx2";
  Bf16GemmSupport amx;
  amx.compiled_in = true;
  amx.cpu_has_bf16 = true;
  amx.isa = "avx512_core_amx";

  EXPECT_EQ(resolve_gemm_backend(GemmBackend::kAuto, amx).backend, GemmBackend::kBf16);
  EXPECT_EQ(resolve_gemm_backend(GemmBackend::kBf16, amx).backend, GemmBackend::kBf16);
  EXPECT_EQ(resolve_gemm_backend(GemmBackend::kF32, amx).backend, GemmBackend::kF32);
  EXPECT_EQ(resolve_gemm_backend(GemmBackend::kBf16, amx).notice, "");
  for (const Bf16GemmSupport& support : {none, old_cpu}) {
    const GemmBackendChoice automatic = resolve_gemm_backend(GemmBackend::kAuto, support);
    EXPECT_EQ(automatic.backend, GemmBackend::kF32);
    EXPECT_EQ(automatic.notice, "") << "auto falls back silently";
    EXPECT_EQ(resolve_gemm_backend(GemmBackend::kF32, support).backend, GemmBackend::kF32);
  }
  const GemmBackendChoice no_library = resolve_gemm_backend(GemmBackend::kBf16, none);
  EXPECT_EQ(no_library.backend, GemmBackend::kF32);
  EXPECT_NE(no_library.notice.find("libdnnl-dev"), std::string::npos) << no_library.notice;
  const GemmBackendChoice no_bf16 = resolve_gemm_backend(GemmBackend::kBf16, old_cpu);
  EXPECT_EQ(no_bf16.backend, GemmBackend::kF32);
  EXPECT_NE(no_bf16.notice.find("avx2"), std::string::npos) << no_bf16.notice;
  EXPECT_EQ(no_bf16.notice.find('\n'), std::string::npos) << "one line";
}

TEST(GemmBackendChoice, ParsesTheFlag) {
  EXPECT_EQ(parse_gemm_backend("auto", "--gemm"), GemmBackend::kAuto);
  EXPECT_EQ(parse_gemm_backend("f32", "--gemm"), GemmBackend::kF32);
  EXPECT_EQ(parse_gemm_backend("bf16", "--gemm"), GemmBackend::kBf16);
  try {
    parse_gemm_backend("fp16", "--gemm");
    FAIL() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--gemm fp16"), std::string::npos) << e.what();
  }
  for (const GemmBackend b : {GemmBackend::kAuto, GemmBackend::kF32, GemmBackend::kBf16}) {
    EXPECT_EQ(parse_gemm_backend(gemm_backend_name(b), "--gemm"), b);
  }
}

TEST(GemmBackendChoice, ThisMachine) {
  const Bf16GemmSupport& support = bf16_gemm_support();
  const GemmBackend automatic = resolve_gemm_backend(GemmBackend::kAuto, support).backend;
  EXPECT_EQ(automatic, support.usable() ? GemmBackend::kBf16 : GemmBackend::kF32);
  EXPECT_FALSE(describe_gemm_backend(automatic).empty());
  if (!support.usable()) {
    EXPECT_THROW(gemm_bf16(GemmShape{Transpose::kNo, Transpose::kNo, 1, 1, 1}, nullptr, 1, nullptr,
                           1, nullptr, 1, false, nullptr),
                 Error);
  }
}

// The repeated 40-token sentence, learned by a model large enough that
// every linear product passes kBf16MinMacs: 256 rows x 64 x 64 and more.
using test::repeated_sentence_corpus;

TrainOptions bf16_sized_options(GemmBackend gemm) {
  TrainOptions o;
  o.shape.n_vocab = 32;
  o.shape.n_embd = 64;
  o.shape.n_layer = 2;
  o.shape.n_head = 4;
  o.shape.n_ff = 128;
  o.shape.n_ctx = 32;
  o.batch = 8;
  o.seq_len = 32;
  o.steps = 120;
  o.lr = 1e-2f;
  o.min_lr = 1e-3f;
  o.warmup = 10;
  o.eval_tokens = 128;
  o.gemm = gemm;
  return o;
}

TEST(GemmBf16Training, OverfitsLikeF32) {
  SKIP_WITHOUT_BF16();
  ThreadPool pool(2);
  Trainer f32(bf16_sized_options(GemmBackend::kF32), repeated_sentence_corpus(), &pool);
  Trainer bf16(bf16_sized_options(GemmBackend::kBf16), repeated_sentence_corpus(), &pool);
  ASSERT_EQ(f32.gemm_backend(), GemmBackend::kF32);
  ASSERT_EQ(bf16.gemm_backend(), GemmBackend::kBf16);
  StepResult f32_last, bf16_last;
  f32_last = f32.step();
  bf16_last = bf16.step();
  // Same initial weights and batch: the first losses differ only by bf16
  // rounding of the forward pass, and the steps are not bit-identical.
  EXPECT_NEAR(bf16_last.loss, f32_last.loss, 0.01 * f32_last.loss);
  EXPECT_NE(std::vector<float>(f32.parameters().begin(), f32.parameters().end()),
            std::vector<float>(bf16.parameters().begin(), bf16.parameters().end()))
      << "bf16 was not used";
  while (f32.steps_done() < f32.options().steps) f32_last = f32.step();
  while (bf16.steps_done() < bf16.options().steps) bf16_last = bf16.step();
  const double f32_eval = f32.evaluate();
  const double bf16_eval = bf16.evaluate();
  EXPECT_LT(f32_last.loss, 0.25);
  EXPECT_LT(bf16_last.loss, 0.25) << "f32 reached " << f32_last.loss;
  EXPECT_LT(bf16_eval, 0.25) << "f32 reached " << f32_eval;
  EXPECT_NEAR(bf16_eval, f32_eval, 0.1);
}

std::vector<float> bf16_run(int64_t steps, ThreadPool* pool) {
  TrainOptions o = bf16_sized_options(GemmBackend::kBf16);
  o.steps = 20;
  Trainer trainer(o, repeated_sentence_corpus(), pool);
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  return {trainer.parameters().begin(), trainer.parameters().end()};
}

TEST(GemmBf16Training, BitIdenticalForAnyThreadCount) {
  SKIP_WITHOUT_BF16();
  const std::vector<float> single = bf16_run(3, nullptr);
  ThreadPool three(3);
  EXPECT_EQ(single, bf16_run(3, &three));
}

TEST(GemmBf16Training, SwitchesBackendMidRun) {
  SKIP_WITHOUT_BF16();
  // What a resume on the other backend does: the same trainer continues
  // with the other kernel; the run goes on and learns.
  ThreadPool pool(2);
  Trainer trainer(bf16_sized_options(GemmBackend::kF32), repeated_sentence_corpus(), &pool);
  for (int i = 0; i < 60; ++i) trainer.step();
  EXPECT_EQ(trainer.set_gemm_backend(GemmBackend::kBf16), "");
  EXPECT_EQ(trainer.gemm_backend(), GemmBackend::kBf16);
  EXPECT_EQ(trainer.options().gemm, GemmBackend::kBf16);
  StepResult last;
  while (trainer.steps_done() < trainer.options().steps) last = trainer.step();
  EXPECT_LT(last.loss, 0.25);
}

}  // namespace
}  // namespace specula
