// `specula <command> [options]`: the command-line front end.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "cli/command_registry.h"
#include "cli/fault_handlers.h"
#include "core/error.h"
#include "core/log.h"

namespace specula::cli {
namespace {

std::vector<Command>& commands() {
  static std::vector<Command> list;
  return list;
}

}  // namespace

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

const std::vector<Command>& registered_commands() {
  return commands();
}

}  // namespace specula::cli

int main(int argc, char** argv) {
  using specula::cli::Command;
  specula::cli::install_fault_handlers();
  CLI::App app{"specula: fast, lossless LLM inference by speculative decoding"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "specula 0.1.0");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log progress and details to stderr");

  std::vector<Command> sorted = specula::cli::registered_commands();
  std::sort(sorted.begin(), sorted.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const Command& command : sorted) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    command.setup(*sub);
  }
  // CLI11 reports an unknown command as "a subcommand is required"; name it.
  const bool known = argc > 1 && std::any_of(sorted.begin(), sorted.end(),
                                             [&](const Command& c) { return c.name == argv[1]; });
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::string names;
    for (const Command& command : sorted) names += (names.empty() ? "" : ", ") + command.name;
    std::fprintf(stderr, "specula: error: unknown command '%s'; the commands are: %s\n", argv[1],
                 names.c_str());
    return 2;
  }
  app.parse_complete_callback([&] {
    specula::set_log_level(verbose ? specula::LogLevel::kInfo : specula::LogLevel::kWarn);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; bad flags print one line and exit 2.
    if (e.get_exit_code() != 0) {
      std::fprintf(stderr,
                   "specula: error: %s\nRun 'specula --help' or 'specula <command> --help'.\n",
                   e.what());
      return 2;
    }
    return app.exit(e);
  } catch (const specula::Error& e) {
    std::fprintf(stderr, "specula: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "specula: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specula: internal error: %s\n", e.what());
    return 1;
  }
  // Output that could not be written (a full disk, a closed pipe, /dev/full)
  // is lost work: say so and fail, or a script takes the result as good.
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::fprintf(stderr, "specula: error: could not write the output: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}
