#include "cli/cmd_chat_input.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/error.h"

namespace specula::cli {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

int g_pipe[2] = {-1, -1};  // the handler writes to [1]; LineReader polls [0]
struct sigaction g_previous;

extern "C" void on_sigint(int) {
  const int saved = errno;
  g_interrupted.store(true);
  if (g_pipe[1] >= 0) {
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(g_pipe[1], &byte, 1);  // full: already signalled
  }
  errno = saved;
}

}  // namespace

ChatInterrupts::ChatInterrupts() {
  g_interrupted.store(false);
  if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    fail("chat: cannot create the pipe that carries Ctrl-C: ", std::strerror(errno));
  }
  struct sigaction action = {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // the pipe wakes the wait for a line
  sigaction(SIGINT, &action, &g_previous);
}

ChatInterrupts::~ChatInterrupts() {
  sigaction(SIGINT, &g_previous, nullptr);
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

std::atomic<bool>& ChatInterrupts::flag() {
  return g_interrupted;
}

void ChatInterrupts::reset() {
  g_interrupted.store(false);
  char bytes[64];
  while (g_pipe[0] >= 0 && ::read(g_pipe[0], bytes, sizeof bytes) > 0) {
  }
}

LineStatus LineReader::read(std::string& line) {
  for (;;) {
    const size_t newline = buffer_.find('\n', start_);
    if (newline != std::string::npos || (at_end_ && start_ < buffer_.size())) {
      const size_t end = newline == std::string::npos ? buffer_.size() : newline;
      line.assign(buffer_, start_, end - start_);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      start_ = newline == std::string::npos ? buffer_.size() : newline + 1;
      return LineStatus::kLine;
    }
    if (at_end_) return LineStatus::kEnd;
    if (start_ > 0) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_pipe[0], POLLIN, 0}};
    const nfds_t count = g_pipe[0] >= 0 ? 2 : 1;
    if (::poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      at_end_ = true;  // an unpollable input ends the chat like its end
      continue;
    }
    if (count == 2 && (fds[1].revents & POLLIN) != 0) {
      buffer_.clear();
      return LineStatus::kInterrupted;
    }
    if (fds[0].revents == 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      at_end_ = true;  // the end, or an unreadable input
    }
  }
}

}  // namespace specula::cli
