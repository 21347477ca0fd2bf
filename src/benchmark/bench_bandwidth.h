// The machine's read bandwidth, measured the way decoding uses memory: every
// thread of the pool streams its own contiguous share of a buffer much
// larger than the last-level cache, once per sample.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"

namespace specula {

// Allocates `bytes` (rounded down to whole 64-byte lines, at least 1 MiB),
// writes it once from the pool's threads (so pages are mapped and, on NUMA
// machines, local to the thread that reads them), then reads it `samples`
// times. Returns one figure per sample in GB/s (1e9 bytes per second).
// Throws Error when bytes < 1 MiB or samples < 1, std::bad_alloc when the
// buffer cannot be allocated.
std::vector<double> measure_read_bandwidth(uint64_t bytes, int32_t samples, ThreadPool& pool);

}  // namespace specula
