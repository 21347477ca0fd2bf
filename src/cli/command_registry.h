// Each `specula <command>` lives in its own cmd_*.cpp and registers itself
// here at static-initialisation time, so adding a command touches no other
// file. The CLI's sources are linked into the executable directly, so these
// registrations are never dropped by the linker.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
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

// The usual command: `add_flags` declares its flags into a `Flags` struct,
// and `run` reads the parsed struct and `sub` (to ask whether a flag was
// given) once parsing is done.
//   const bool registered = register_command_with_flags<TrainFlags>(
//       "train", "Train a llama model", add_train_flags, run);
template <typename Flags>
bool register_command_with_flags(std::string name, std::string description,
                                 void (*add_flags)(CLI::App& sub, Flags& flags),
                                 void (*run)(const Flags& flags, const CLI::App& sub)) {
  return register_command(
      {std::move(name), std::move(description), [add_flags, run](CLI::App& sub) {
         auto flags = std::make_shared<Flags>();
         add_flags(sub, *flags);
         sub.callback([flags, run, &sub] { run(*flags, sub); });
       }});
}

}  // namespace specula::cli
