// HookRunner: runs hook commands (on_ban, on_account) through a Spawner - an argv array,
// never a shell. A bounded number run at once; the rest wait in a bounded queue, and past
// it are dropped and counted, so a flood of bans cannot become a fork bomb. Each hook runs
// in a process group of its own: its time limit ends the hook and everything it started.
// A hook holds its place until its whole group is gone. A failing hook is logged, never fatal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "relayban/core/clock.hpp"
#include "relayban/daemon/spawner.hpp"

namespace relayban {

class HookRunner {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  struct Limits {
    size_t max_running = 16;
    size_t max_queued = 1000;
    std::chrono::seconds time_limit{10};
  };
  struct Stats {
    uint64_t started = 0;
    uint64_t failed = 0;   // exited with a status other than 0, or could not start
    uint64_t killed = 0;   // overran the time limit
    uint64_t dropped = 0;  // the queue was full
    uint64_t total_ms = 0;  // run time of the hooks that ended, summed
    uint64_t ended = 0;     // hooks whose leader ended
    // Run times of the hooks that ended, per kDurationBounds (seconds) and above the last.
    std::vector<uint64_t> duration_buckets = std::vector<uint64_t>(std::size(kDurationBounds) + 1, 0);
  };
  static constexpr double kDurationBounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  // `spawner` and `clock` must outlive the runner.
  HookRunner(Spawner& spawner, const Clock& clock, Limits limits, Log log);
  // Kills every group still running.
  ~HookRunner();

  // Runs `argv` now, or when a place is free.
  void Run(std::vector<std::string> argv);
  // Reaps ended hooks, kills overdue groups, starts queued hooks. Call on SIGCHLD and on
  // every tick.
  void Poll();

  size_t running() const { return running_.size(); }
  size_t queued() const { return queue_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Hook {
    std::string name;
    Clock::Steady started;
    Clock::Steady deadline;
    bool exited = false;  // the leader ended; the group may still hold what it started
    bool killed = false;
  };
  void Start(std::vector<std::string> argv);

  Spawner& spawner_;
  const Clock& clock_;
  Limits limits_;
  Log log_;
  std::map<pid_t, Hook> running_;  // by process group (= the leader's pid)
  std::deque<std::vector<std::string>> queue_;
  Stats stats_;
};

}  // namespace relayban
