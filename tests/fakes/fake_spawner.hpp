// FakeSpawner: a Spawner for unit tests. Records every command, starts nothing; the test says
// when a "process" ends (Exit) and whether its group still has members (lingering).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "relayban/daemon/spawner.hpp"

namespace relayban::testing {

class FakeSpawner : public Spawner {
 public:
  std::vector<std::vector<std::string>> started;  // argv of every Spawn, in order
  std::set<pid_t> alive;                          // groups with members
  std::vector<pid_t> killed;                      // groups sent SIGKILL
  bool fail = false;

  Result<pid_t> Spawn(const std::vector<std::string>& argv) override {
    if (fail) return Fail(ErrorKind::kNotFound, "No such file or directory");
    started.push_back(argv);
    pid_t pid = next_++;
    alive.insert(pid);
    return pid;
  }
  std::vector<Exit> Reap() override {
    auto out = std::move(exits_);
    exits_.clear();
    return out;
  }
  bool GroupAlive(pid_t group) override { return alive.count(group) > 0; }
  void KillGroup(pid_t group) override {
    killed.push_back(group);
    if (alive.erase(group)) exits_.push_back({group, 9});  // SIGKILL, as waitpid reports it
  }
  // The leader of `group` exits with `code`; with `lingering` what it started stays behind.
  void Exit(pid_t group, int code, bool lingering = false) {
    exits_.push_back({group, code << 8});
    if (!lingering) alive.erase(group);
  }
  // What the leader left behind ends too.
  void EndGroup(pid_t group) { alive.erase(group); }
  pid_t last() const { return next_ - 1; }

 private:
  pid_t next_ = 1000;
  std::vector<Spawner::Exit> exits_;
};

}  // namespace relayban::testing
