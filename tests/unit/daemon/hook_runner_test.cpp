// The hook runner with a fake spawner and a fake clock: limits, queue, time limit per group.
#include "daemon/hook_runner.hpp"

#include <catch2/catch.hpp>

#include "fakes/fake_clock.hpp"
#include "fakes/fake_spawner.hpp"

using namespace relayban;
using testing::FakeClock;
using testing::FakeSpawner;

namespace {
struct Rig {
  FakeSpawner spawner;
  FakeClock clock;
  std::vector<std::string> logs;
  HookRunner runner;
  explicit Rig(HookRunner::Limits l)
      : runner(spawner, clock, l, [this](int, const std::string& m) { logs.push_back(m); }) {}
};
HookRunner::Limits Limits(size_t running, size_t queued, int seconds = 10) {
  return {running, queued, std::chrono::seconds(seconds)};
}
}  // namespace

TEST_CASE("at most max_running hooks run at once, the others wait their turn") {
  Rig r(Limits(2, 10));
  for (int i = 0; i < 5; ++i) r.runner.Run({"/usr/local/bin/notify", std::to_string(i)});
  CHECK(r.spawner.started.size() == 2);
  CHECK(r.runner.queued() == 3);
  r.spawner.Exit(1000, 0);
  r.runner.Poll();
  CHECK(r.spawner.started.size() == 3);
  CHECK(r.spawner.started[2][1] == "2");  // in order
  for (pid_t p : {1001, 1002}) r.spawner.Exit(p, 0);
  r.runner.Poll();
  CHECK(r.spawner.started.size() == 5);
  CHECK(r.runner.queued() == 0);
}

TEST_CASE("past the queue's cap hooks are dropped, counted and logged once") {
  Rig r(Limits(1, 3));
  for (int i = 0; i < 10; ++i) r.runner.Run({"/bin/true"});
  CHECK(r.spawner.started.size() == 1);
  CHECK(r.runner.queued() == 3);
  CHECK(r.runner.stats().dropped == 6);
  CHECK(std::count_if(r.logs.begin(), r.logs.end(), [](const std::string& l) { return l.find("dropped") != std::string::npos; }) == 1);
}

TEST_CASE("the time limit kills a hook's whole group, also what it left behind") {
  Rig r(Limits(4, 10, 10));
  r.runner.Run({"/hang"});
  r.runner.Run({"/leaves-children"});
  pid_t hang = 1000, leaver = 1001;
  r.spawner.Exit(leaver, 0, /*lingering=*/true);  // exits at once, its children stay
  r.runner.Poll();
  CHECK(r.runner.running() == 2);  // a group with members still holds its place
  r.clock.Advance(std::chrono::seconds(9));
  r.runner.Poll();
  CHECK(r.spawner.killed.empty());
  r.clock.Advance(std::chrono::seconds(2));
  r.runner.Poll();
  CHECK(r.spawner.killed == std::vector<pid_t>{hang, leaver});
  CHECK(r.runner.stats().killed == 2);
  r.runner.Poll();  // the killed leader is reaped
  CHECK(r.runner.running() == 0);
  CHECK(std::any_of(r.logs.begin(), r.logs.end(), [](const std::string& l) { return l.find("/hang overran its time limit") != std::string::npos; }));
}

TEST_CASE("a hook that fails is logged with its status, one that cannot start is counted") {
  Rig r(Limits(4, 10));
  r.runner.Run({"/bin/false"});
  r.spawner.Exit(1000, 1);
  r.runner.Poll();
  CHECK(r.runner.stats().failed == 1);
  CHECK(r.logs.back() == "hook /bin/false failed with exit status 1");
  r.spawner.fail = true;
  r.runner.Run({"/nonexistent"});
  CHECK(r.runner.stats().failed == 2);
  CHECK(r.logs.back() == "hook /nonexistent could not start: No such file or directory");
  CHECK(r.runner.running() == 0);
}
