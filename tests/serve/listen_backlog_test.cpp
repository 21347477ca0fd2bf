// raise_listen_backlog: a listener with a backlog of 1 completes only a
// couple of connections nobody accepts; raised, it completes them all.
#include "serve/listen_backlog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace specula {
namespace {

// Starts `n` non-blocking connections to 127.0.0.1:port and returns how
// many completed within `wait_ms` (none is accepted: they wait in the
// listener's queue, whose length the backlog bounds).
int connections_completed(int port, int n, int wait_ms) {
  std::vector<int> fds;
  int completed = 0;
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in.sin_port = htons(static_cast<uint16_t>(port));
    connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in);
    fds.push_back(fd);
  }
  for (int fd : fds) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, wait_ms) == 1) {
      int error = 0;
      socklen_t len = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      if (error == 0) ++completed;
    }
    wait_ms = 0;  // the others had the same time to complete
  }
  for (int fd : fds) close(fd);
  return completed;
}

int listener(int backlog, int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
  EXPECT_EQ(listen(fd, backlog), 0);
  socklen_t len = sizeof in;
  getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
  *port = ntohs(in.sin_port);
  return fd;
}

TEST(ListenBacklog, RaisedBacklogQueuesABurstOfClients) {
  int port = 0;
  const int small = listener(1, &port);
  EXPECT_LE(connections_completed(port, 20, 300), 4);  // the kernel queues backlog + 1
  close(small);

  const int raised = listener(1, &port);
  ASSERT_TRUE(raise_listen_backlog(port, 128));
  EXPECT_EQ(connections_completed(port, 20, 1000), 20);
  close(raised);
}

TEST(ListenBacklog, NoListenerOnThePortIsFalse) {
  int port = 0;
  const int fd = listener(1, &port);
  close(fd);
  EXPECT_FALSE(raise_listen_backlog(port, 128));
  EXPECT_FALSE(raise_listen_backlog(-1, 128));
}

}  // namespace
}  // namespace specula
