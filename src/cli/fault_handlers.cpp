#include "cli/fault_handlers.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"

namespace specula::cli {
namespace {

// Only async-signal-safe calls below: write, unlink (inside
// remove_unfinished_writes), sigaction, raise, _exit.
void write_text(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<size_t>(n);
  }
}

extern "C" void remove_then_end(int number) {
  remove_unfinished_writes();
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(number, &action, nullptr);
  ::raise(number);  // delivered on return: the same exit status as without a handler
}

extern "C" void report_bus_error(int, siginfo_t* info, void*) {
  const char* path = info != nullptr ? mapped_file_at(info->si_addr) : nullptr;
  if (path != nullptr) {
    write_text("specula: error: the model file ");
    write_text(path);
    write_text(
        " changed while in use (it was truncated or rewritten in place): stop and run again. To "
        "replace a model file, write the new one under another name and rename it over the old "
        "one; never copy over a file in use\n");
  } else {
    write_text("specula: error: bus error reading mapped memory (a file in use was truncated?)\n");
  }
  remove_unfinished_writes();
  ::_exit(1);
}

void handle_unless_ignored(int number) {
  struct sigaction previous {};
  if (::sigaction(number, nullptr, &previous) != 0 || previous.sa_handler == SIG_IGN) return;
  struct sigaction action {};
  action.sa_handler = remove_then_end;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(number, &action, nullptr);
}

}  // namespace

void install_fault_handlers() {
  handle_unless_ignored(SIGINT);
  handle_unless_ignored(SIGTERM);
  struct sigaction action {};
  action.sa_sigaction = report_bus_error;
  action.sa_flags = SA_SIGINFO;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, nullptr);
}

}  // namespace specula::cli
