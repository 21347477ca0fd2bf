// A `specula serve` child process for the process tests: it listens on
// 127.0.0.1 at a port it picks itself (--port 0), its stdout and stderr go
// to a temporary file, and it is killed at the end unless it exited.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace specula::testing {

using ServeClock = std::chrono::steady_clock;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A `specula serve` child process; its stderr goes to a file.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) {
    signal(SIGPIPE, SIG_IGN);
    char pattern[] = "/tmp/specula-serve-XXXXXX";
    const int fd = mkstemp(pattern);
    log_ = pattern;
    args.insert(args.begin(), {SPECULA_CLI_PATH, "serve", "--port", "0", "--host", "127.0.0.1"});
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fd);
  }
  ~ServeProcess() {
    if (pid_ > 0 && exit_code_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(log_.c_str());
  }
  // Waits for the "ready" line; returns the port (0 on failure).
  int wait_ready(double seconds = 60) {
    const auto deadline = ServeClock::now() + std::chrono::duration<double>(seconds);
    const std::regex ready("ready on http://127\\.0\\.0\\.1:([0-9]+)");
    while (ServeClock::now() < deadline) {
      std::smatch m;
      const std::string log = read_file(log_);
      if (std::regex_search(log, m, ready)) return port_ = std::stoi(m[1]);
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }
  // Waits for the exit; its code, or -1 after `seconds`.
  int wait_exit(double seconds) {
    const auto deadline = ServeClock::now() + std::chrono::duration<double>(seconds);
    while (ServeClock::now() < deadline) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void signal_term() { kill(pid_, SIGTERM); }
  std::string log() const { return read_file(log_); }
  int port() const { return port_; }
  // POSTs `body` to `path`; the answer's JSON (discarded on a parse error)
  // and its status (-1 when there was no answer).
  nlohmann::json post(const std::string& path, const nlohmann::json& body, int* status) const {
    auto res = client().Post(path, body.dump(), "application/json");
    *status = res ? res->status : -1;
    return res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    c.set_connection_timeout(5, 0);
    return c;
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
  int port_ = 0;
  int status_ = 0;
  int exit_code_ = -1;
};

}  // namespace specula::testing
