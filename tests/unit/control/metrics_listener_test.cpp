// The metrics listener: its answers (pure), and a real loopback socket turned by the real
// event loop with a fake clock for the timeout.
#include "relayban/control/metrics_listener.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/event_loop.hpp"
#include "fakes/fake_clock.hpp"

using namespace relayban;

namespace {

MetricsListener::Render Body() {
  return [] { return std::string("# TYPE relayban_up gauge\nrelayban_up 1\n"); };
}

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

}  // namespace

TEST_CASE("GET /metrics gets the exposition with its content type, and HEAD gets the headers only") {
  bool ok = false;
  std::string a = MetricsListener::Answer("GET /metrics HTTP/1.1\r\nHost: x", Body(), &ok);
  CHECK(ok);
  CHECK(a.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  CHECK(a.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(a.find("Content-Length: 39\r\n") != std::string::npos);
  CHECK(a.substr(a.size() - 15) == "\nrelayban_up 1\n");
  std::string h = MetricsListener::Answer("HEAD /metrics?x=1 HTTP/1.0", Body());
  CHECK(h.find("relayban_up") == std::string::npos);
  CHECK(h.find("Content-Length: 39") != std::string::npos);
}

TEST_CASE("other methods, paths and garbage get an error status and no metrics") {
  CHECK(MetricsListener::Answer("POST /metrics HTTP/1.0", Body()).rfind("HTTP/1.0 405", 0) == 0);
  CHECK(MetricsListener::Answer("GET /../../etc/passwd HTTP/1.0", Body()).rfind("HTTP/1.0 404", 0) == 0);
  CHECK(MetricsListener::Answer("GET /metrics", Body()).rfind("HTTP/1.0 400", 0) == 0);
  CHECK(MetricsListener::Answer("\x16\x03\x01 TLS hello", Body()).rfind("HTTP/1.0 400", 0) == 0);
  CHECK(MetricsListener::Answer("GET /metrics SMTP/1.0", Body()).rfind("HTTP/1.0 400", 0) == 0);
}

TEST_CASE("a real peer on loopback is answered and closed, and a silent one is dropped at the timeout") {
  EventLoop loop;
  REQUIRE(loop.Open());
  testing::FakeClock clock;
  MetricsListener l(loop, clock, MetricsListener::Limits{}, [](int, const std::string&) {});
  auto addr = IpAddress::Parse("127.0.0.1");
  REQUIRE(l.Listen(*addr, 0, Body()));
  REQUIRE(l.port() != 0);

  int fd = Connect(l.port());
  std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
  REQUIRE(write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
  std::string got;
  for (int i = 0; i < 200; ++i) {
    loop.Turn(10);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n == 0) break;  // closed after the answer
  }
  close(fd);
  CHECK(got.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(got.find("relayban_up 1") != std::string::npos);
  CHECK(l.stats().requests == 1);

  int silent = Connect(l.port());
  REQUIRE(write(silent, "GET /met", 8) == 8);
  for (int i = 0; i < 5; ++i) loop.Turn(10);
  clock.Advance(std::chrono::seconds(3));
  l.Tick();
  CHECK(l.stats().timed_out == 1);
  char c;
  CHECK(recv(silent, &c, 1, 0) == 0);  // closed
  close(silent);
}
