// For the HTTP tests: a fake scheduler (tokens from a script, on a thread
// of its own, with slots and a bounded queue like the real one), a
// byte-level fake tokenizer, and a raw-socket client that can read a
// stream part way and hang up.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serve/http_server.h"

namespace specula::testing {

// Ids 0..255 are the bytes; 256 is end-of-text.
class ByteTokenizer final : public Tokenizer {
 public:
  int32_t n_vocab() const override { return 257; }
  int32_t bos() const override { return -1; }
  int32_t eos() const override { return 256; }
  bool add_bos() const override { return false; }
  bool is_end_of_generation(int32_t id) const override { return id == 256; }
  std::vector<int32_t> encode(std::string_view text, bool, bool) const override {
    std::vector<int32_t> ids;
    for (char c : text) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  }
  std::string token_to_piece(int32_t id) const override {
    return id < 256 ? std::string(1, static_cast<char>(id)) : std::string();
  }
};

// Each step (step_seconds) every running request gets its next token: the
// prompt repeated, so the completion of "abc" is "abcabc...".
class FakeBackend final : public CompletionBackend {
 public:
  FakeBackend(int slots, int queue_max, double step_seconds)
      : slots_(slots), queue_max_(queue_max), step_(step_seconds) {
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeBackend() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  std::optional<uint64_t> submit(CompletionRequest request, OnToken on_token,
                                 OnDone on_done) override {
    std::lock_guard lock(mutex_);
    if (static_cast<int>(waiting_.size()) >= queue_max_ &&
        static_cast<int>(running_.size()) >= slots_) {
      return std::nullopt;
    }
    const uint64_t id = next_id_++;
    waiting_.push_back({id, std::move(request), std::move(on_token), std::move(on_done)});
    wake_.notify_all();
    return id;
  }
  void cancel(uint64_t id) override {
    std::lock_guard lock(mutex_);
    cancelled_.push_back(id);
    ++cancels_;
  }
  SchedulerMetrics metrics() const override {
    std::lock_guard lock(mutex_);
    SchedulerMetrics m;
    m.running = static_cast<int32_t>(running_.size());
    m.waiting = static_cast<int32_t>(waiting_.size());
    m.generated_tokens = generated_;
    return m;
  }
  int cancels() const {
    std::lock_guard lock(mutex_);
    return cancels_;
  }

 private:
  struct Job {
    uint64_t id;
    CompletionRequest request;
    OnToken on_token;
    OnDone on_done;
    std::vector<int32_t> out = {};
  };

  void loop() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      while (!waiting_.empty() && static_cast<int>(running_.size()) < slots_) {
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      if (running_.empty()) {
        wake_.wait(lock);
        continue;
      }
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::duration<double>(step_));
      lock.lock();
      std::vector<Job> finished;
      std::vector<FinishReason> reasons;
      for (size_t i = 0; i < running_.size();) {
        Job& job = running_[i];
        std::optional<FinishReason> end;
        if (std::find(cancelled_.begin(), cancelled_.end(), job.id) != cancelled_.end()) {
          end = FinishReason::kCancelled;
        } else {
          const int32_t token = job.request.prompt[job.out.size() % job.request.prompt.size()];
          if (token == 256 && !job.request.ignore_eos) {
            end = FinishReason::kStop;
          } else {
            job.out.push_back(token);
            ++generated_;
            lock.unlock();
            const bool go_on = job.on_token(token);
            lock.lock();
            if (!go_on)
              end = FinishReason::kStop;
            else if (static_cast<int32_t>(job.out.size()) >= job.request.max_tokens)
              end = FinishReason::kLength;
          }
        }
        if (end) {
          finished.push_back(std::move(job));
          reasons.push_back(*end);
          running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
      lock.unlock();
      for (size_t i = 0; i < finished.size(); ++i) {
        CompletionResult result;
        result.tokens = finished[i].out;
        result.finish = reasons[i];
        result.prompt_tokens = static_cast<int32_t>(finished[i].request.prompt.size());
        result.speculation.drafted = 4;
        result.speculation.accepted = 3;
        finished[i].on_done(std::move(result));
      }
      lock.lock();
    }
    // Unfinished requests end cancelled, as the real scheduler's do.
    for (auto* list : {&running_}) {
      for (Job& job : *list) {
        CompletionResult result;
        result.finish = FinishReason::kCancelled;
        job.on_done(result);
      }
    }
    for (Job& job : waiting_) {
      CompletionResult result;
      result.finish = FinishReason::kCancelled;
      job.on_done(result);
    }
  }

  const int slots_, queue_max_;
  const double step_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> waiting_;
  std::vector<Job> running_;
  std::vector<uint64_t> cancelled_;
  uint64_t next_id_ = 1;
  int64_t generated_ = 0;
  int cancels_ = 0;
  bool quit_ = false;
  std::thread thread_;
};

// A bare HTTP/1.1 connection: send one request, read the answer's bytes.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~RawConnection() { close(); }
  bool connected() const { return connected_; }
  void post(const std::string& path, const std::string& body) {
    const std::string request = "POST " + path +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Content-Length: " +
                                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                body;
    (void)::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  // Reads until `needle` has arrived (true) or the connection ends (false).
  bool read_until(const std::string& needle) {
    char buffer[4096];
    while (received_.find(needle) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      received_.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  void read_all() { read_until(std::string(1, '\0') + "never"); }
  const std::string& received() const { return received_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

// The `data:` payloads of an SSE answer, chunked transfer encoding undone.
inline std::vector<std::string> sse_data(const std::string& raw) {
  const size_t head = raw.find("\r\n\r\n");
  if (head == std::string::npos) return {};
  std::string body;
  for (size_t at = head + 4; at < raw.size();) {
    const size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) break;
    const size_t size = std::stoul(raw.substr(at, line_end - at), nullptr, 16);
    if (size == 0) break;
    body += raw.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  std::vector<std::string> data;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    const size_t end = body.find("\n\n", at);
    data.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return data;
}

}  // namespace specula::testing
