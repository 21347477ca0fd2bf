// ConnectionProbe finds a connected socket by its two endpoints and sees
// the peer close it; a real connection over loopback.
#include "serve/connection_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace specula {
namespace {

int port_of(int fd, bool peer) {
  sockaddr_in in{};
  socklen_t len = sizeof in;
  auto* addr = reinterpret_cast<sockaddr*>(&in);
  EXPECT_EQ(peer ? getpeername(fd, addr, &len) : getsockname(fd, addr, &len), 0);
  return ntohs(in.sin_port);
}

// A listening socket on 127.0.0.1, a client connected to it, the accepted end.
struct Loopback {
  int listener = -1, client = -1, accepted = -1;
  Loopback() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    EXPECT_EQ(listen(listener, 4), 0);
    in.sin_port = htons(static_cast<uint16_t>(port_of(listener, false)));
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
    accepted = accept(listener, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
  }
  ~Loopback() {
    for (int fd : {listener, client, accepted}) {
      if (fd >= 0) close(fd);
    }
  }
  // The probe the server side's handler would make.
  ConnectionProbe probe() const {
    return ConnectionProbe::find("127.0.0.1", port_of(accepted, false), "127.0.0.1",
                                 port_of(accepted, true));
  }
};

bool closed_within(const ConnectionProbe& probe, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!probe.peer_open()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST(ConnectionProbe, SeesThePeerClose) {
  Loopback link;
  const ConnectionProbe probe = link.probe();
  ASSERT_TRUE(probe.found());
  EXPECT_TRUE(probe.peer_open());
  // Data waiting to be read (a pipelined request) is not a close.
  ASSERT_EQ(write(link.client, "x", 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(probe.peer_open());
  char byte;
  ASSERT_EQ(read(link.accepted, &byte, 1), 1);
  close(link.client);
  link.client = -1;
  EXPECT_TRUE(closed_within(probe, std::chrono::milliseconds(2000)));
}

TEST(ConnectionProbe, FindsTheServerEndNotTheClientEnd) {
  Loopback link;
  const ConnectionProbe probe = link.probe();
  ASSERT_TRUE(probe.found());
  // The server end stops sending: from the client end that reads as a
  // close, from the server end the client is still there. A probe that had
  // picked the client end (the same two endpoints, swapped) would say
  // closed.
  ASSERT_EQ(shutdown(link.accepted, SHUT_WR), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(probe.peer_open());
  const ConnectionProbe client_end = ConnectionProbe::find("127.0.0.1", port_of(link.client, false),
                                                           "127.0.0.1", port_of(link.client, true));
  ASSERT_TRUE(client_end.found());
  EXPECT_TRUE(closed_within(client_end, std::chrono::milliseconds(2000)));
}

TEST(ConnectionProbe, NothingFoundIsAlwaysOpen) {
  Loopback link;
  const ConnectionProbe none = ConnectionProbe::find("127.0.0.1", 1, "127.0.0.1", 2);
  EXPECT_FALSE(none.found());
  EXPECT_TRUE(none.peer_open());
  EXPECT_FALSE(ConnectionProbe::find("127.0.0.1", -1, "127.0.0.1", -1).found());
  // The right ports but a wrong address.
  const ConnectionProbe wrong = ConnectionProbe::find("127.0.0.2", port_of(link.accepted, false),
                                                      "127.0.0.1", port_of(link.accepted, true));
  EXPECT_FALSE(wrong.found());
}

}  // namespace
}  // namespace specula
