#include "serve/connection_probe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace specula {
namespace {

// An endpoint in httplib's form: the numeric address and the port.
struct Endpoint {
  std::string addr;
  int port = -1;
};

bool endpoint_of(const sockaddr_storage& ss, Endpoint& out) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    if (inet_ntop(AF_INET, &in.sin_addr, text, sizeof text) == nullptr) return false;
    out = {text, ntohs(in.sin_port)};
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    if (inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text) == nullptr) return false;
    out = {text, ntohs(in6.sin6_port)};
    return true;
  }
  return false;
}

bool matches(int fd, const Endpoint& local, const Endpoint& remote) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  Endpoint e;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || !endpoint_of(ss, e) ||
      e.port != remote.port || e.addr != remote.addr) {
    return false;
  }
  len = sizeof ss;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && endpoint_of(ss, e) &&
         e.port == local.port && e.addr == local.addr;
}

}  // namespace

ConnectionProbe ConnectionProbe::find(const std::string& local_addr, int local_port,
                                      const std::string& remote_addr, int remote_port) {
  ConnectionProbe probe;
  if (local_port <= 0 || remote_port <= 0) return probe;
  const Endpoint local{local_addr, local_port};
  const Endpoint remote{remote_addr, remote_port};
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return probe;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    if (matches(static_cast<int>(fd), local, remote)) {
      probe.fd_ = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return probe;
}

bool ConnectionProbe::peer_open() const {
  if (fd_ < 0) return true;
  char byte;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;  // a pipelined request waiting: still there
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

}  // namespace specula
