// How much memory this machine can still give the process.
#pragma once

#include <cstdint>
#include <optional>

namespace specula {

// Bytes of memory available without swapping (Linux: MemAvailable of
// /proc/meminfo, which counts the page cache that can be dropped), or
// nullopt where that cannot be read.
std::optional<uint64_t> available_memory_bytes();

}  // namespace specula
