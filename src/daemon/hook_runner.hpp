// HookRunner: runs hook commands (on_ban, on_account) with posix_spawn - an argv array,
// never a shell - with stdin and stdout on /dev/null, and kills those that overrun their
// time limit. A failing hook is logged, never fatal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace relayban {

class HookRunner {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  HookRunner(std::chrono::seconds limit, Log log) : limit_(limit), log_(std::move(log)) {}
  ~HookRunner();

  void Run(const std::vector<std::string>& argv);
  // Reaps finished hooks and kills overdue ones; call on SIGCHLD and on every tick.
  void Reap();
  size_t running() const { return running_.size(); }

 private:
  struct Child {
    std::string name;
    std::chrono::steady_clock::time_point deadline;
    bool killed = false;
  };
  std::chrono::seconds limit_;
  Log log_;
  std::map<pid_t, Child> running_;
};

}  // namespace relayban
