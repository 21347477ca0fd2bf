#include "core/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace specula {
namespace {

// Closes the descriptor on every path out.
struct Descriptor {
  int fd;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

void check_input_file(const std::string& path, std::string_view what) {
  if (path.empty()) fail(what, ": no file given");
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode) && !S_ISFIFO(info.st_mode)) {
    fail(what, " ", path, " is ", kind_of(info.st_mode), ", not a file: give the path of a file");
  }
  if (::access(path.c_str(), R_OK) != 0) {
    fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
  }
}

std::string read_input_file(const std::string& path, std::string_view what) {
  check_input_file(path, what);
  const Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(file.fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace specula
