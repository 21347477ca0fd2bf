#include "core/system_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace specula {

std::optional<uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    uint64_t kib = 0;
    if (fields >> key >> kib >> unit && key == "MemAvailable:" && unit == "kB") {
      return kib * 1024;
    }
  }
  return std::nullopt;
}

}  // namespace specula
