#include "hook_runner.hpp"

#include <sys/wait.h>
#include <syslog.h>

namespace relayban {

HookRunner::HookRunner(Spawner& spawner, const Clock& clock, Limits limits, Log log)
    : spawner_(spawner), clock_(clock), limits_(limits), log_(std::move(log)) {}

HookRunner::~HookRunner() {
  for (auto& [group, h] : running_) spawner_.KillGroup(group);
}

void HookRunner::Run(std::vector<std::string> argv) {
  if (argv.empty()) return;
  if (running_.size() < limits_.max_running && queue_.empty()) {
    Start(std::move(argv));
    return;
  }
  if (queue_.size() >= limits_.max_queued) {
    if (stats_.dropped++ % 1000 == 0)
      log_(LOG_WARNING, "hook " + argv[0] + " dropped: " + std::to_string(limits_.max_queued) +
                            " hooks are waiting already (dropped so far: " + std::to_string(stats_.dropped) + ")");
    return;
  }
  queue_.push_back(std::move(argv));
}

void HookRunner::Start(std::vector<std::string> argv) {
  auto pid = spawner_.Spawn(argv);
  if (!pid) {
    ++stats_.failed;
    log_(LOG_WARNING, "hook " + argv[0] + " could not start: " + pid.error().message);
    return;
  }
  ++stats_.started;
  Clock::Steady now = clock_.Monotonic();
  running_[*pid] = Hook{argv[0], now, now + limits_.time_limit};
}

void HookRunner::Poll() {
  Clock::Steady now = clock_.Monotonic();
  for (const auto& e : spawner_.Reap()) {
    auto it = running_.find(e.pid);
    if (it == running_.end()) continue;  // something a hook started, reparented to us
    Hook& h = it->second;
    h.exited = true;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - h.started).count();
    stats_.total_ms += static_cast<uint64_t>(ms);
    ++stats_.ended;
    size_t b = 0;
    while (b < std::size(kDurationBounds) && static_cast<double>(ms) / 1000.0 > kDurationBounds[b]) ++b;
    ++stats_.duration_buckets[b];
    if (WIFEXITED(e.status) && WEXITSTATUS(e.status) != 0) {
      ++stats_.failed;
      log_(LOG_WARNING, "hook " + h.name + " failed with exit status " + std::to_string(WEXITSTATUS(e.status)));
    } else if (WIFSIGNALED(e.status) && !h.killed) {
      ++stats_.failed;
      log_(LOG_WARNING, "hook " + h.name + " was killed by signal " + std::to_string(WTERMSIG(e.status)));
    }
  }
  for (auto it = running_.begin(); it != running_.end();) {
    Hook& h = it->second;
    if (!h.killed && now > h.deadline && (!h.exited || spawner_.GroupAlive(it->first))) {
      spawner_.KillGroup(it->first);
      h.killed = true;
      ++stats_.killed;
      log_(LOG_WARNING, "hook " + h.name + " overran its time limit of " + std::to_string(limits_.time_limit.count()) +
                            " s; it and everything it started were killed");
    }
    // A hook's place is free once its leader ended and nothing it started is left.
    if (h.exited && (h.killed || !spawner_.GroupAlive(it->first))) it = running_.erase(it);
    else ++it;
  }
  while (!queue_.empty() && running_.size() < limits_.max_running) {
    Start(std::move(queue_.front()));
    queue_.pop_front();
  }
}

}  // namespace relayban
