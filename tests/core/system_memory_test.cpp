#include "core/system_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace specula {
namespace {

// Linux always reports MemAvailable; it lies between a few MB and the
// machine's physical memory.
TEST(SystemMemory, AvailableIsBetweenAMegabyteAndThePhysicalMemory) {
  const std::optional<uint64_t> available = available_memory_bytes();
  ASSERT_TRUE(available.has_value());
  const uint64_t physical =
      static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  EXPECT_GT(*available, uint64_t{1} << 20);
  EXPECT_LE(*available, physical);
}

}  // namespace
}  // namespace specula
