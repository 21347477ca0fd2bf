// Which instruction sets the SIMD kernels are compiled for. Include this
// before any Highway header in every translation unit that uses
// foreach_target, so that all of them agree on the target list (Highway
// computes the dispatch-table index from it per translation unit).
#pragma once

// AVX3_DL = AVX-512 with VNNI, VBMI2 and friends (Ice Lake and later): it
// is the target where int8 dot products (vpdpbusd) may be used.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

// The kernels keep small arrays of vectors in registers; the sizeless
// vector types of SVE and RVV cannot form arrays, so those targets are left
// out (Arm falls back to NEON, RISC-V to scalar).
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
