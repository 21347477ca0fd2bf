#include "kernels/dispatch.h"

#include "kernels/simd_config.h"  // first: the same target list as the kernels

#include <hwy/highway.h>
#include <hwy/targets.h>

#include <cctype>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "kernels/matmul_kernels.h"

namespace specula {

std::vector<SimdTarget> simd_targets() {
  std::vector<SimdTarget> targets;
  // Ascending bit order is best-first in Highway's numbering.
  for (int64_t bits = hwy::SupportedTargets() & HWY_TARGETS; bits != 0; bits &= bits - 1) {
    const int64_t bit = bits & -bits;
    targets.push_back(SimdTarget{bit, hwy::TargetName(bit)});
  }
  return targets;
}

SimdTarget simd_active_target() {
  const int64_t bit = simd_dispatched_target();
  return SimdTarget{bit, hwy::TargetName(bit)};
}

void simd_restrict_targets(int64_t bits) {
  // Highway's mock replaces CPU detection rather than narrowing it, so
  // intersect with what the CPU really supports: forcing a target the CPU
  // lacks would fault on its first instruction. The scalar fall-back stays.
  static const int64_t cpu_targets = [] {
    hwy::SetSupportedTargetsForTest(0);
    return hwy::SupportedTargets();
  }();
  hwy::SetSupportedTargetsForTest(bits == 0 ? 0 : ((bits & cpu_targets) | HWY_SCALAR));
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

namespace {

bool cpu_is_intel() {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

int default_float_decode_rows() {
  return cpu_is_intel() ? 4 : 1;
}

int& float_decode_rows() {
  static int rows = default_float_decode_rows();
  return rows;
}

bool cpu_has_avx512_bf16() {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool cpu_has_gfni() {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("gfni");
#else
  return false;
#endif
}

bool& gfni_allowed() {
  static bool allowed = true;
  return allowed;
}

// SPECULA_BF16_DOT=0 in the environment keeps BF16 weights in F32
// arithmetic (full-precision activations).
bool& bf16_dot_allowed() {
  static bool allowed = [] {
    const char* env = std::getenv("SPECULA_BF16_DOT");
    return env == nullptr || std::string(env) != "0";
  }();
  return allowed;
}

bool& int_row_prefetch() {
  static bool on = cpu_is_intel();
  return on;
}

// SPECULA_BF16_DOT_FMA=0 or 1 overrides the vendor default.
bool& bf16_dot_fma_wanted() {
  static bool on = [] {
    const char* env = std::getenv("SPECULA_BF16_DOT_FMA");
    if (env != nullptr && std::string(env) == "0") return false;
    if (env != nullptr && std::string(env) == "1") return true;
    return cpu_is_intel();
  }();
  return on;
}

}  // namespace

void simd_set_float_decode_rows(int rows) {
  if (rows != 1 && rows != 4) fail("float decode rows is ", rows, ": use 1 or 4");
  float_decode_rows() = rows;
}

int simd_float_decode_rows() {
  return float_decode_rows();
}

namespace {
uint64_t& float_decode_blocked_min_bytes() {
  static uint64_t bytes = uint64_t{8} << 20;
  return bytes;
}
}  // namespace

void simd_set_float_decode_blocked_min_bytes(uint64_t bytes) {
  float_decode_blocked_min_bytes() = bytes;
}

uint64_t simd_float_decode_blocked_min_bytes() {
  return float_decode_blocked_min_bytes();
}

namespace {
uint64_t& int_tiles_min_bytes() {
  // SPECULA_INT_TILES_MIN_BYTES: a decimal byte count; anything else
  // keeps the default (as the other SPECULA_* switches do).
  static uint64_t bytes = [] {
    const char* env = std::getenv("SPECULA_INT_TILES_MIN_BYTES");
    if (env != nullptr && std::isdigit(static_cast<unsigned char>(env[0]))) {
      char* end = nullptr;
      const unsigned long long parsed = std::strtoull(env, &end, 10);
      if (*end == '\0') return static_cast<uint64_t>(parsed);
    }
    return cpu_is_intel() ? uint64_t{2} << 20 : UINT64_MAX;
  }();
  return bytes;
}
}  // namespace

void simd_set_int_tiles_min_bytes(uint64_t bytes) {
  int_tiles_min_bytes() = bytes;
}

uint64_t simd_int_tiles_min_bytes() {
  return int_tiles_min_bytes();
}

void simd_set_int_row_prefetch(bool on) {
  int_row_prefetch() = on;
}

bool simd_int_row_prefetch() {
  return int_row_prefetch();
}

bool simd_bf16_dot() {
  static const bool cpu = cpu_has_avx512_bf16();
  return cpu && bf16_dot_allowed() && simd_dispatched_target() == HWY_AVX3_DL;
}

void simd_set_bf16_dot(bool allowed) {
  bf16_dot_allowed() = allowed;
}

bool simd_bf16_dot_fma_exact() {
  // Probed on the BF16-dot target only (another would answer false), once.
  if (!simd_bf16_dot()) return false;
  static const bool exact = bf16_dot_fma_exact_simd();
  return exact;
}

bool simd_bf16_dot_fma() {
  return bf16_dot_fma_wanted() && simd_bf16_dot_fma_exact();
}

void simd_set_bf16_dot_fma(bool on) {
  bf16_dot_fma_wanted() = on;
}

bool simd_gfni() {
  static const bool cpu = cpu_has_gfni();
  return cpu && gfni_allowed();
}

void simd_set_gfni(bool allowed) {
  gfni_allowed() = allowed;
}

SimdTarget simd_target_by_name(const std::string& name) {
  std::string upper = name;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string available;
  for (const SimdTarget& target : simd_targets()) {
    if (target.name == upper) return target;
    available += (available.empty() ? "" : ", ") + target.name;
  }
  fail("unknown SIMD target '", name, "': this build and CPU offer ", available);
}

}  // namespace specula
