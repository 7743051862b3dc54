#include "relayban/control/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace relayban {

Result<void> ControlExchange(const std::string& path, std::string_view request,
                             const std::function<void(std::string_view line)>& on_line, int timeout_ms) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return Fail("control socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    if (e == ENOENT || e == ECONNREFUSED)
      return Fail(ErrorKind::kUnavailable, "relayban daemon is not running (no one listens on " + path + ")");
    if (e == EACCES) return Fail(ErrorKind::kPermission, "permission denied on " + path + " (run as root)");
    return Fail(std::string("cannot connect to ") + path + ": " + std::strerror(e));
  }
  std::string out(request);
  out += '\n';
  // A refused peer gets its answer before the daemon reads anything: a failed send (EPIPE)
  // is not the end, the answer may be waiting.
  (void)send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[65536];
  bool any = false;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      close(fd);
      return Fail("no answer from the daemon within " + std::to_string(timeout_ms / 1000) + " s");
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = in.find('\n', start)) != std::string::npos) {
      on_line(std::string_view(in).substr(start, nl - start));
      any = true;
      start = nl + 1;
    }
    in.erase(0, start);
  }
  close(fd);
  if (!in.empty()) {
    on_line(in);
    any = true;
  }
  if (!any) return Fail("the daemon closed the connection without an answer");
  return {};
}

}  // namespace relayban
