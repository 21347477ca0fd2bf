// Which SIMD instruction set the kernels run on, and a way to choose it.
//
// The kernels are compiled for several targets (kernels/simd_config.h) and
// Highway picks the best one this CPU supports at the first call. Tests
// (and `--simd` style flags) can restrict the choice to check every target
// against the scalar reference, or to see that dispatch falls back when the
// best target is unavailable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specula {

struct SimdTarget {
  int64_t bit = 0;   // Highway's target bit (HWY_AVX2, ...)
  std::string name;  // "AVX3", "AVX2", "SSE4", "SCALAR", ...
};

// Targets compiled into the kernels that this CPU supports, best first.
std::vector<SimdTarget> simd_targets();

// The target the kernels dispatch to now.
SimdTarget simd_active_target();

// Restricts dispatch to targets in `bits` (a mask of Highway target bits;
// the scalar fall-back is always allowed). 0 lifts the restriction. Not
// thread-safe: call while no matmul runs.
void simd_restrict_targets(int64_t bits);

// The target whose name is `name` (case-insensitive), among simd_targets();
// throws Error listing the available ones otherwise.
SimdTarget simd_target_by_name(const std::string& name);

// How decode (m = 1) walks F32/F16/BF16 weight rows: 1 = sequential
// streams, two rows at a time from the two halves of a thread's rows (two
// FMA chains; AMD Zen 4: its prefetchers lose pace over several
// interleaved streams that end at every 4 KB page, measured 1.3-1.4x more
// bytes per second than four adjacent rows there); 4 = four rows
// side by side (the kernel measured at the read-bandwidth limit on Intel
// Sapphire Rapids). With 1, a batch of 2 activation rows of up to 2048
// values also streams one weight row at a time for both (not the blocked
// tiles of larger batches).
// Default: 4 on Intel CPUs, 1 on others. Outputs are
// bit-identical either way. Not thread-safe: set while no matmul runs.
void simd_set_float_decode_rows(int rows);  // 1 or 4; throws Error otherwise
int simd_float_decode_rows();

// With four rows side by side (decode rows 4), float matrices of at least
// this many bytes decode with the blocked tiles of m >= 2 and one
// activation row: four rows at a time, chunk by chunk, prefetching the
// next row block into L2. Intel Emerald Rapids, kernels_bench F16 and BF16
// FFN shapes: from a 1 GB set 0.77-0.80x the time of plain four-row tiles,
// in cache 1.05-1.22x; so smaller matrices (a draft-sized model's, which
// stay in cache) keep the plain rows. Default 8 MiB; 0 sends every matrix
// to the tiles. Outputs are bit-identical either way. Not thread-safe.
void simd_set_float_decode_blocked_min_bytes(uint64_t bytes);
uint64_t simd_float_decode_blocked_min_bytes();

// Whether integer-weight decode (m = 1 on AVX-512 VNNI) prefetches the
// next weight row while on the current one. It was added for Intel, whose
// streamer stops at 4 KB pages; on Zen 4 decode reads 10-40% more bytes
// per second without it (kernels_bench, Q4_0 and Q8_0, 1 and 2 threads),
// while m = 8 gains from it (so m > 1 always prefetches). Default: on for
// Intel CPUs, off for others. Outputs do not change.
void simd_set_int_row_prefetch(bool on);
bool simd_int_row_prefetch();

// Integer matrices of at least this many bytes run the VNNI tiles
// (register-blocked over four weight rows, the next row block prefetched
// into L2 group by group) at every m, decode (m = 1) included; smaller
// ones from m = 4 (Q6_K: 5), with the fused-row paths below. On Intel
// Emerald Rapids the tiles read DRAM faster than those paths (kernels_bench
// 1 GB set, FFN shapes of the 0.8B model, m = 1: Q4_0 0.88x the time, Q4_K
// 0.8x, Q6_K 0.8-0.9x, Q8_0 the same; m = 2: 0.75-0.9x), but in cache they
// are slower at m = 1 (Q4_0 1.3x), so matrices a draft-sized model has
// keep the old paths. Default: 2 MiB on Intel CPUs, never elsewhere (AMD
// Zen 4, the same shapes from a 1 GB set, 2 rounds: the tiles took 1.0-1.22x
// the time at m = 1 and 2 for Q8_0, Q4_K and Q6_K; Q4_0 0.9x on rows of 5632,
// 1.5-1.9x on rows of 2048); SPECULA_INT_TILES_MIN_BYTES in the environment
// overrides it. Outputs do not change. Not thread-safe: set while no matmul runs.
void simd_set_int_tiles_min_bytes(uint64_t bytes);
uint64_t simd_int_tiles_min_bytes();

// Whether BF16 weights take BF16 activations and BF16 dot products
// (vdpbf16ps: two multiply-adds per F32 lane and instruction, where F32
// FMAs do one). True when the kernels run AVX3_DL on a CPU with
// AVX512_BF16 (AMD Zen 4, Intel Sapphire Rapids and later) and it is not
// turned off. Activations are then rounded to BF16 (8 significant bits)
// on every path, for any m, so results stay batch-invariant. Otherwise
// BF16 weights are multiplied in F32. SPECULA_BF16_DOT=0 in the
// environment turns it off. Not thread-safe: set while no matmul runs.
bool simd_bf16_dot();
void simd_set_bf16_dot(bool allowed);

// Whether BF16 dot products over m >= 2 activation rows (prefill,
// verification) run as F32 FMAs, two per lane and step in vdpbf16ps's
// order (the odd pair's product, then the even's; denormals read as zero
// and flushed, as it does) instead of vdpbf16ps itself: the same bits
// (decode keeps vdpbf16ps), in less time where vdpbf16ps issues at half
// the rate of FMAs per multiply-add (Intel Emerald Rapids: kernels_bench
// BF16 FFN shapes in cache at m = 8 0.68x the time, m = 64 0.57-0.77x;
// AMD Zen 4 runs it at twice the FMA rate). Only under simd_bf16_dot()
// and where a probe at the first call found this CPU's vdpbf16ps
// computing in that order (simd_bf16_dot_fma_exact). Default: on for Intel CPUs, off for others;
// SPECULA_BF16_DOT_FMA=0 or 1 in the environment overrides it. Not
// thread-safe: set while no matmul runs.
bool simd_bf16_dot_fma();
void simd_set_bf16_dot_fma(bool on);  // takes effect where the probe passed
bool simd_bf16_dot_fma_exact();

// Whether the AVX-512 VNNI tiles (m >= 4) split the high nibbles of
// packed Q4_0 / Q4_K weights with one GF2P8AFFINEQB (GFNI: a bit matrix
// per byte, here x >> 4) instead of a shift and a mask: one vector
// instruction less per 64 weights on the two ports that also run the dot
// products (Intel Emerald Rapids, kernels_bench MatmulL2 Q4_0 / Q4_K at
// m = 8: ~5% less time). True where the CPU has GFNI (Ice Lake and later,
// Zen 4) and it is not turned off; the decoded bytes, hence the outputs,
// are the same either way. Not thread-safe: set while no matmul runs.
bool simd_gfni();
void simd_set_gfni(bool allowed);

// Restricts dispatch for its lifetime (tests).
class ScopedSimdTarget {
 public:
  explicit ScopedSimdTarget(int64_t bits) { simd_restrict_targets(bits); }
  ~ScopedSimdTarget() { simd_restrict_targets(0); }
  ScopedSimdTarget(const ScopedSimdTarget&) = delete;
  ScopedSimdTarget& operator=(const ScopedSimdTarget&) = delete;
};

}  // namespace specula
