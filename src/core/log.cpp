#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <string>

namespace specula {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kWarn};
}  // namespace

void set_log_level(LogLevel level) {
  g_level.store(level);
}
LogLevel log_level() {
  return g_level.load(std::memory_order_relaxed);
}

void log_message(LogLevel level, std::string_view message) {
  static constexpr const char* kPrefix[] = {"debug: ", "", "warning: ", "error: ", ""};
  std::string line = std::string(kPrefix[static_cast<int>(level)]) + std::string(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace specula
