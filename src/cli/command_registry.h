// Each `specula <command>` lives in its own cmd_*.cpp and registers itself
// here at static-initialisation time, so adding a command touches no other
// file. The CLI's sources are linked into the executable directly, so these
// registrations are never dropped by the linker.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace specula::cli {

struct Command {
  std::string name;
  std::string description;
  // Adds the command's options to `sub` and sets its callback. The callback
  // throws specula::Error for bad input; main turns that into one line on
  // stderr and exit code 1.
  std::function<void(CLI::App& sub)> setup;
};

bool register_command(Command command);
const std::vector<Command>& registered_commands();

}  // namespace specula::cli
