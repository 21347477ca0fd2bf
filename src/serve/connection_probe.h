// Watching the TCP connection of the request a handler serves, for the
// handlers that wait without writing (a non-streaming completion).
//
// cpp-httplib 0.11 tells a handler that its client went away only when a
// write fails, and a non-streaming completion writes once, at the end: a
// client that gives up would keep its sequence busy until max_tokens. The
// handler knows both endpoints of its connection (httplib::Request's
// local_addr/port and remote_addr/port), which name one connected socket of
// this process; the probe finds it among the open file descriptors and
// peeks at it without blocking: 0 bytes readable means the peer closed its
// side (a client that only shut down its sending half looks closed too;
// HTTP clients waiting for an answer do not do that).
#pragma once

#include <string>

namespace specula {

class ConnectionProbe {
 public:
  // The connected TCP socket local_addr:local_port <-> remote_addr:remote_port
  // (numeric addresses as httplib writes them: "127.0.0.1", "::1"); a probe
  // that found nothing when no such socket is open.
  static ConnectionProbe find(const std::string& local_addr, int local_port,
                              const std::string& remote_addr, int remote_port);

  bool found() const { return fd_ >= 0; }
  // False once the peer has closed or reset the connection; true while it
  // is open, and always when nothing was found.
  bool peer_open() const;

 private:
  int fd_ = -1;
};

}  // namespace specula
