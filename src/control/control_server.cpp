#include "relayban/control/control_server.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "nonblocking_send.hpp"
#include "relayban/control/protocol.hpp"

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

Result<PeerPolicy> ResolvePeerPolicy(const std::string& group_name) {
  PeerPolicy p;
  p.group_name = group_name;
  if (group_name.empty()) return p;
  struct group* g = getgrnam(group_name.c_str());
  if (!g) return Fail(ErrorKind::kNotFound, "control_group '" + group_name + "' does not exist");
  p.group = g->gr_gid;
  std::vector<std::string> names;
  for (char** m = g->gr_mem; m && *m; ++m) names.emplace_back(*m);
  for (const auto& n : names)
    if (struct passwd* pw = getpwnam(n.c_str())) p.members.push_back(pw->pw_uid);
  return p;
}

Result<void> CheckPeerCredentials(uid_t uid, gid_t gid, const PeerPolicy& policy) {
  if (uid == 0) return {};
  if (policy.group && (gid == *policy.group ||
                       std::find(policy.members.begin(), policy.members.end(), uid) != policy.members.end()))
    return {};
  return Fail(ErrorKind::kPermission, "permission denied: uid " + std::to_string(uid) + " is not root" +
                                          (policy.group_name.empty() ? std::string() : " and not in group " + policy.group_name));
}

ControlServer::ControlServer(Poller& poller, const Clock& clock, Limits limits, Log log)
    : poller_(poller), clock_(clock), limits_(limits), log_(std::move(log)) {}

ControlServer::~ControlServer() { Shutdown(); }

Result<void> ControlServer::Listen(const std::string& path, const PeerPolicy& policy, OnRequest on_request) {
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
  if (rc != 0 || listen(fd, 64) != 0) {
    auto e = Errno("control socket " + path);
    close(fd);
    return Fail(e);
  }
  if (policy.group && (chown(path.c_str(), 0, *policy.group) != 0 || chmod(path.c_str(), 0660) != 0)) {
    auto e = Errno("control socket permissions");
    close(fd);
    return Fail(e);
  }
  if (!poller_.Watch(fd, Poller::kReadable, [this](uint32_t) { Accept(); })) {
    close(fd);
    return Fail("cannot watch the control socket");
  }
  listen_ = fd;
  path_ = path;
  policy_ = policy;
  on_request_ = std::move(on_request);
  return {};
}

void ControlServer::SetPolicy(const PeerPolicy& policy) { policy_ = policy; }

void ControlServer::Accept() {
  for (;;) {
    int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) break;
    ucred cred{};
    socklen_t len = sizeof cred;
    Result<void> ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                          ? CheckPeerCredentials(cred.uid, cred.gid, policy_)
                          : Result<void>(Fail(Errno("SO_PEERCRED")));
    if (ok && clients_.size() >= limits_.max_clients) {
      ++stats_.too_many;
      ok = Fail("too many control clients at once; try again");
    } else if (!ok) {
      ++stats_.refused;
      log_(LOG_WARNING, "control: refused a client: " + ok.error().message);
    }
    if (!ok) {
      // A best-effort answer on a fresh socket: its buffer has room for one short line.
      std::string answer = ErrorAnswer(ok.error().message) + "\n";
      (void)!send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    ClientId id = next_id_++;
    Client& c = clients_[id];
    c.fd = fd;
    c.since = clock_.Monotonic();
    c.uid = cred.uid;
    c.pid = cred.pid;
    ++stats_.accepted;
    if (!poller_.Watch(fd, Poller::kReadable, [this, id](uint32_t what) { OnClient(id, what); })) Drop(id);
  }
}

std::string ControlServer::Describe(ClientId client) const {
 auto it = clients_.find(client);
  if (it == clients_.end()) return "a local call";
  return "uid " + std::to_string(it->second.uid) + " pid " + std::to_string(it->second.pid);
}

void ControlServer::OnClient(ClientId id, uint32_t what) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (what & Poller::kWritable) {
    Flush(id);
    if (!clients_.count(id)) return;
  }
  if (c.requested) {
    // Nothing more is read. A peer that hung up while its answer was being prepared is
    // dropped (hang-ups are reported whatever the interest, and would wake us every turn).
    if (what & Poller::kHangup) Drop(id);
    return;
  }
  if (!(what & (Poller::kReadable | Poller::kHangup))) return;
  char buf[4096];
  ssize_t n = read(c.fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Drop(id);  // closed before a whole request
    return;
  }
  c.in.append(buf, static_cast<size_t>(n));
  size_t nl = c.in.find('\n');
  if (nl == std::string::npos) {
    if (c.in.size() > limits_.max_request) {
      Send(id, ErrorAnswer("the request is too long") + "\n");
      Finish(id);
    }
    return;
  }
  c.requested = true;
  std::string line = c.in.substr(0, nl);
  c.in.clear();
  c.since = clock_.Monotonic();
  poller_.Change(c.fd, 0);  // nothing more is read; writable is asked for when needed
  on_request_(id, line);
}

void ControlServer::Send(ClientId id, std::string_view data) {
  auto it = clients_.find(id);
  if (it == clients_.end() || data.empty()) return;
  it->second.out.append(data);
  Flush(id);
}

void ControlServer::Finish(ClientId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  it->second.finishing = true;
  Flush(id);
}

size_t ControlServer::Pending(ClientId id) const {
  auto it = clients_.find(id);
  return it == clients_.end() ? 0 : it->second.out.size();
}

void ControlServer::Flush(ClientId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  long sent = SendSome(c.fd, c.out);
  if (sent < 0) {
    Drop(id);  // the peer is gone
    return;
  }
  if (sent > 0) c.since = clock_.Monotonic();
  if (c.out.empty() && c.finishing) {
    Drop(id);
    return;
  }
  poller_.Change(c.fd, c.out.empty() ? 0u : uint32_t{Poller::kWritable});
}

void ControlServer::Drop(ClientId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  poller_.Unwatch(it->second.fd);
  close(it->second.fd);
  clients_.erase(it);
}

void ControlServer::Tick() {
  Clock::Steady now = clock_.Monotonic();
  std::vector<ClientId> late;
  for (const auto& [id, c] : clients_) {
    bool waiting_request = !c.requested && now - c.since > limits_.request_timeout;
    bool stalled = !c.out.empty() && now - c.since > limits_.stalled_timeout;
    bool overflowing = c.out.size() > limits_.max_pending * 2;
    if (waiting_request || stalled || overflowing) late.push_back(id);
  }
  for (ClientId id : late) {
    ++stats_.timed_out;
    Drop(id);
  }
}

void ControlServer::Shutdown() {
  while (!clients_.empty()) Drop(clients_.begin()->first);
  if (listen_ >= 0) {
    poller_.Unwatch(listen_);
    close(listen_);
    listen_ = -1;
    unlink(path_.c_str());
  }
}

}  // namespace relayban
