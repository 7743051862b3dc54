// The control server on a real Unix socket, turned by the real event loop, timed by a fake
// clock: answers, slow and silent peers, limits, and who may connect.
#include "relayban/control/control_server.hpp"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "daemon/event_loop.hpp"
#include "fakes/fake_clock.hpp"

using namespace relayban;

namespace {

struct Rig {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("relayban-ctl-" + std::to_string(getpid()));
  std::string path = (dir / "control.sock").string();
  EventLoop loop;
  testing::FakeClock clock;
  ControlServer::Limits limits;
  std::unique_ptr<ControlServer> server;
  std::vector<std::pair<ControlServer::ClientId, std::string>> requests;

  explicit Rig(ControlServer::Limits l = {}) : limits(l) {
    std::filesystem::remove_all(dir);
    REQUIRE(loop.Open());
    server = std::make_unique<ControlServer>(loop, clock, limits, [](int, const std::string&) {});
    auto r = server->Listen(path, PeerPolicy{}, [this](ControlServer::ClientId id, std::string_view line) {
      requests.emplace_back(id, std::string(line));
    });
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
  }
  ~Rig() {
    server.reset();
    std::filesystem::remove_all(dir);
  }
  int Connect() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  }
  // Turns the loop until `done` (a generous bound; no timing is asserted).
  template <class F>
  bool TurnUntil(F done) {
    for (int i = 0; i < 2000 && !done(); ++i) loop.Turn(5);
    return done();
  }
  static std::string ReadAll(int fd) {
    std::string s;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }
};

}  // namespace

TEST_CASE("a request is handed over, answered, and the connection closed") {
  Rig r;
  int fd = r.Connect();
  REQUIRE(write(fd, "{\"cmd\":\"status\"}\n", 17) == 17);
  REQUIRE(r.TurnUntil([&] { return !r.requests.empty(); }));
  CHECK(r.requests[0].second == R"({"cmd":"status"})");
  r.server->Send(r.requests[0].first, "{\"ok\":true}\n");
  r.server->Finish(r.requests[0].first);
  CHECK(Rig::ReadAll(fd) == "{\"ok\":true}\n");
  close(fd);
  CHECK(r.server->clients() == 0);
}

TEST_CASE("a peer that never reads its answer holds nothing up, and is dropped when it stalls") {
  Rig r;
  int fd = r.Connect();
  REQUIRE(write(fd, "{\"cmd\":\"list\"}\n", 15) == 15);
  REQUIRE(r.TurnUntil([&] { return !r.requests.empty(); }));
  auto id = r.requests[0].first;
  // Far more than the socket buffer: Send returns at once, the rest waits in the server.
  std::string big(8 << 20, 'x');
  r.server->Send(id, big);
  CHECK(r.server->Pending(id) > 0);
  CHECK(r.server->Connected(id));
  // The loop keeps turning (this would hang if a write blocked).
  int other = r.Connect();
  REQUIRE(write(other, "{\"cmd\":\"status\"}\n", 17) == 17);
  REQUIRE(r.TurnUntil([&] { return r.requests.size() == 2; }));
  r.clock.Advance(std::chrono::seconds(61));
  r.server->Tick();
  CHECK_FALSE(r.server->Connected(id));
  CHECK(r.server->stats().timed_out == 1);
  close(fd);
  close(other);
}

TEST_CASE("a peer that sends no whole request is dropped after the request timeout") {
  Rig r;
  int fd = r.Connect();
  REQUIRE(write(fd, "{\"cmd\":", 7) == 7);
  REQUIRE(r.TurnUntil([&] { return r.server->clients() == 1; }));
  r.clock.Advance(std::chrono::seconds(5));
  r.server->Tick();
  CHECK(r.server->clients() == 1);
  r.clock.Advance(std::chrono::seconds(6));
  r.server->Tick();
  CHECK(r.server->clients() == 0);
  CHECK(Rig::ReadAll(fd).empty());
  close(fd);
}

TEST_CASE("an overlong request and one client too many are refused with an answer") {
  ControlServer::Limits l;
  l.max_clients = 2;
  l.max_request = 1000;
  Rig r(l);
  int fd = r.Connect();
  std::string junk(5000, 'a');
  REQUIRE(write(fd, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
  REQUIRE(r.TurnUntil([&] { return r.server->stats().accepted == 1 && r.server->clients() == 0; }));
  CHECK(Rig::ReadAll(fd).find("the request is too long") != std::string::npos);
  close(fd);
  int a = r.Connect(), b = r.Connect();
  REQUIRE(r.TurnUntil([&] { return r.server->clients() == 2; }));
  int c = r.Connect();
  REQUIRE(r.TurnUntil([&] { return r.server->stats().too_many == 1; }));
  CHECK(Rig::ReadAll(c).find("too many control clients") != std::string::npos);
  for (int x : {a, b, c}) close(x);
}

TEST_CASE("root and the control group's members may send commands, no one else") {
  CHECK(CheckPeerCredentials(0, 0, PeerPolicy{}));
  auto refused = CheckPeerCredentials(65534, 65534, PeerPolicy{});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::kPermission);
  CHECK(refused.error().message == "permission denied: uid 65534 is not root");
  PeerPolicy group{"relayban", 4242, {1001}};
  CHECK(CheckPeerCredentials(1000, 4242, group));   // primary group
  CHECK(CheckPeerCredentials(1001, 100, group));    // listed member
  auto other = CheckPeerCredentials(1002, 100, group);
  REQUIRE_FALSE(other);
  CHECK(other.error().message == "permission denied: uid 1002 is not root and not in group relayban");
  auto missing = ResolvePeerPolicy("no-such-group-here");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == "control_group 'no-such-group-here' does not exist");
}

TEST_CASE("a stale socket file is replaced, a live daemon's is not") {
  Rig r;
  EventLoop loop2;
  REQUIRE(loop2.Open());
  ControlServer second(loop2, r.clock, {}, [](int, const std::string&) {});
  auto busy = second.Listen(r.path, PeerPolicy{}, [](ControlServer::ClientId, std::string_view) {});
  REQUIRE_FALSE(busy);
  CHECK(busy.error().message == "another relayban daemon is listening on " + r.path);
  r.server->Shutdown();
  // A file left behind by a killed daemon: nobody answers on it.
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, r.path.c_str());
  REQUIRE(bind(stale, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  close(stale);
  CHECK(second.Listen(r.path, PeerPolicy{}, [](ControlServer::ClientId, std::string_view) {}));
}
