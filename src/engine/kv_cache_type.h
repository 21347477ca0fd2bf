// The public KvCacheType (specula/engine.h) as the element type the model's
// caches take.
#pragma once

#include "core/dtype.h"
#include "specula/engine.h"

namespace specula {

inline DType kv_dtype(KvCacheType type) {
  return type == KvCacheType::kF32 ? DType::kF32 : DType::kF16;
}

}  // namespace specula
