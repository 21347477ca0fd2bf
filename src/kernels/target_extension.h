// Turns on one more instruction-set extension inside a Highway target's
// code (a foreach_target file, between HWY_BEFORE_NAMESPACE and
// HWY_AFTER_NAMESPACE), for intrinsics the target's compile flags do not
// include: AVX3_DL requires VNNI at run time but does not name it, and
// AVX512_BF16 is not part of it at all (check the CPU before calling).
//   SPECULA_BEGIN_EXTENSION("avx512vnni") ... SPECULA_END_EXTENSION
// GCC: a pushed target pragma. Clang ignores that pragma and uses only the
// first target attribute, so Highway's attribute region is replaced by the
// same list plus the extension, then restored.
#pragma once

#include <hwy/highway.h>

#define SPECULA_STRINGIFY(x) #x
#if defined(__clang__)
#define SPECULA_BEGIN_EXTENSION(ext) \
  HWY_POP_ATTRIBUTES                 \
  HWY_PUSH_ATTRIBUTES(HWY_TARGET_STR "," ext)
#define SPECULA_END_EXTENSION \
  HWY_POP_ATTRIBUTES          \
  HWY_PUSH_ATTRIBUTES(HWY_TARGET_STR)
#else
#define SPECULA_BEGIN_EXTENSION(ext) \
  _Pragma("GCC push_options") _Pragma(SPECULA_STRINGIFY(GCC target(ext)))
#define SPECULA_END_EXTENSION _Pragma("GCC pop_options")
#endif
