// `specula chat`'s input and Ctrl-C: lines from standard input, read with
// read(2) so that a SIGINT interrupts a wait for the next line, and a
// SIGINT handler that only sets a flag, checked between tokens (an answer
// stops cleanly, never mid-write).
#pragma once

#include <atomic>
#include <optional>
#include <string>

namespace specula::cli {

// Installs a SIGINT handler for its lifetime, then restores the previous
// one. The handler sets flag() and writes a byte to a pipe that LineReader
// polls beside standard input, so a Ctrl-C that comes just before the wait
// for a line still ends the wait (no race between checking and reading).
class ChatInterrupts {
 public:
  ChatInterrupts();
  ~ChatInterrupts();
  ChatInterrupts(const ChatInterrupts&) = delete;
  ChatInterrupts& operator=(const ChatInterrupts&) = delete;

  // Set by each SIGINT until reset().
  static std::atomic<bool>& flag();
  // Forgets the Ctrl-Cs so far (the flag and the pipe's bytes).
  static void reset();
};

enum class LineStatus { kLine, kEnd, kInterrupted };

// Reads standard input a line at a time (the newline and a trailing "\r"
// removed). kEnd at the end of input (a last line without a newline is
// still returned first); kInterrupted when a SIGINT came since the last
// ChatInterrupts::reset() (with ChatInterrupts installed), with whatever
// was read of the line dropped.
class LineReader {
 public:
  LineStatus read(std::string& line);

 private:
  std::string buffer_;
  size_t start_ = 0;
  bool at_end_ = false;
};

}  // namespace specula::cli
