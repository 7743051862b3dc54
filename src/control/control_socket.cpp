#include "control_socket.hpp"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace relayban {
namespace {
std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return Fail("control socket path too long: " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}
}  // namespace

Result<int> ListenControl(const std::string& path, const std::string& group) {
  auto addr = Address(path);
  if (!addr) return Fail(addr.error());
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail(Errno("control socket"));
  // A socket file left by a killed daemon: remove it if nobody answers on it.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(probe, reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) == 0) {
    close(probe);
    close(fd);
    return Fail("another relayban daemon is listening on " + path);
  }
  close(probe);
  unlink(path.c_str());
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof *addr);
  umask(old);
  if (rc != 0 || listen(fd, 16) != 0) {
    auto e = Errno("control socket " + path);
    close(fd);
    return Fail(e);
  }
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (!g) {
      close(fd);
      return Fail("control_group '" + group + "' does not exist");
    }
    if (chown(path.c_str(), 0, g->gr_gid) != 0 || chmod(path.c_str(), 0660) != 0) {
      auto e = Errno("control socket permissions");
      close(fd);
      return Fail(e);
    }
  }
  return fd;
}

Result<void> CheckPeer(int fd, const std::string& group_name) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Fail(Errno("SO_PEERCRED"));
  if (cred.uid == 0) return {};
  if (!group_name.empty()) {
    if (struct group* g = getgrnam(group_name.c_str())) {
      if (cred.gid == g->gr_gid) return {};
      if (struct passwd* pw = getpwuid(cred.uid))
        for (char** m = g->gr_mem; m && *m; ++m)
          if (std::strcmp(*m, pw->pw_name) == 0) return {};
    }
  }
  return Fail("permission denied: uid " + std::to_string(cred.uid) + " is not root" +
              (group_name.empty() ? std::string() : " and not in group " + group_name));
}

Result<nlohmann::json> ControlRequest(const std::string& path, const nlohmann::json& request, int timeout_ms) {
  auto addr = Address(path);
  if (!addr) return Fail(addr.error());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(Errno("socket"));
  if (connect(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
    int e = errno;
    close(fd);
    if (e == ENOENT || e == ECONNREFUSED)
      return Fail("relayban daemon is not running (no one listens on " + path + ")");
    if (e == EACCES) return Fail("permission denied on " + path + " (run as root)");
    return Fail(std::string("cannot connect to ") + path + ": " + std::strerror(e));
  }
  std::string out = request.dump() + "\n";
  // A refused peer gets its answer before the daemon reads anything: a failed send (EPIPE)
  // is not the end, the answer may be waiting.
  (void)send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) {
      close(fd);
      return Fail("no answer from the daemon within " + std::to_string(timeout_ms / 1000) + " s");
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.find('\n') != std::string::npos) break;
  }
  close(fd);
  auto nl = in.find('\n');
  if (nl == std::string::npos) return Fail("the daemon closed the connection without an answer");
  auto j = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
  if (j.is_discarded()) return Fail("the daemon's answer is not JSON");
  return j;
}

}  // namespace relayban
