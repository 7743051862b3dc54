#include "relayban/control/metrics_listener.hpp"

#include "nonblocking_send.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace relayban {
namespace {

std::string Status(int code, std::string_view reason, std::string_view body, std::string_view extra = {}) {
  std::string s = "HTTP/1.0 " + std::to_string(code) + " " + std::string(reason) +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n";
  s += extra;
  s += "\r\n";
  s += body;
  return s;
}

}  // namespace

MetricsListener::MetricsListener(Poller& poller, const Clock& clock, Limits limits, Log log)
    : poller_(poller), clock_(clock), limits_(limits), log_(std::move(log)) {}

MetricsListener::~MetricsListener() { Shutdown(); }

std::string MetricsListener::Answer(std::string_view head, const Render& render, bool* ok) {
  if (ok) *ok = false;
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Status(400, "Bad Request", "bad request\n");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return Status(400, "Bad Request", "bad request\n");
  if (method != "GET" && method != "HEAD") return Status(405, "Method Not Allowed", "GET only\n", "Allow: GET, HEAD\r\n");
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/") return Status(404, "Not Found", "see /metrics\n");
  if (path == "/")
    return Status(200, "OK", "relayban metrics: /metrics\n");
  std::string body = render();
  std::string s = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (method == "GET") s += body;
  if (ok) *ok = true;
  return s;
}

Result<void> MetricsListener::Listen(const IpAddress& address, uint16_t port, Render render) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (address.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    std::memcpy(&a->sin_addr, address.bytes().data(), 4);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, address.bytes().data(), 16);
    len = sizeof *a;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail(std::string("metrics listener: socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!address.is_v4()) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 16) != 0) {
    std::string e = std::string("metrics listener on ") + address.ToString() + " port " + std::to_string(port) + ": " +
                    std::strerror(errno);
    close(fd);
    return Fail(e);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
    port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (!poller_.Watch(fd, Poller::kReadable, [this](uint32_t) { Accept(); })) {
    close(fd);
    return Fail("cannot watch the metrics listener");
  }
  listen_ = fd;
  render_ = std::move(render);
  return {};
}

void MetricsListener::Accept() {
  for (;;) {
    int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) break;
    if (peers_.size() >= limits_.max_clients) {
      ++stats_.rejected;
      std::string a = Status(503, "Service Unavailable", "busy\n");
      (void)!send(fd, a.data(), a.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    uint64_t id = next_id_++;
    Peer& p = peers_[id];
    p.fd = fd;
    p.since = clock_.Monotonic();
    if (!poller_.Watch(fd, Poller::kReadable, [this, id](uint32_t what) { OnPeer(id, what); })) Drop(id);
  }
}

void MetricsListener::OnPeer(uint64_t id, uint32_t what) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  if (what & Poller::kWritable) {
    Flush(id);
    return;
  }
  if (p.answered) {
    if (what & Poller::kHangup) Drop(id);
    return;
  }
  char buf[2048];
  ssize_t n = read(p.fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Drop(id);
    return;
  }
  p.in.append(buf, static_cast<size_t>(n));
  size_t end = p.in.find("\r\n\r\n");
  if (end == std::string::npos) end = p.in.find("\n\n");
  if (end == std::string::npos) {
    if (p.in.size() <= limits_.max_request) return;
    ++stats_.rejected;
    p.out = Status(431, "Request Header Fields Too Large", "request too large\n");
  } else {
    bool ok = false;
    p.out = Answer(std::string_view(p.in).substr(0, end), render_, &ok);
    ++(ok ? stats_.requests : stats_.rejected);
  }
  p.answered = true;
  p.in.clear();
  p.since = clock_.Monotonic();
  poller_.Change(p.fd, Poller::kWritable);
  Flush(id);
}

void MetricsListener::Flush(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  long sent = SendSome(p.fd, p.out);
  if (sent < 0) {
    Drop(id);
    return;
  }
  if (sent > 0) p.since = clock_.Monotonic();
  if (p.out.empty()) {
    // Everything is sent: close our side; the peer reads to the end.
    shutdown(p.fd, SHUT_WR);
    Drop(id);
  }
}

void MetricsListener::Drop(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  poller_.Unwatch(it->second.fd);
  close(it->second.fd);
  peers_.erase(it);
}

void MetricsListener::Tick() {
  Clock::Steady now = clock_.Monotonic();
  std::vector<uint64_t> late;
  for (const auto& [id, p] : peers_)
    if (now - p.since > limits_.timeout) late.push_back(id);
  for (uint64_t id : late) {
    ++stats_.timed_out;
    Drop(id);
  }
}

void MetricsListener::Shutdown() {
  while (!peers_.empty()) Drop(peers_.begin()->first);
  if (listen_ >= 0) {
    poller_.Unwatch(listen_);
    close(listen_);
    listen_ = -1;
  }
}

}  // namespace relayban
