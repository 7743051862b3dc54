#include "hook_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace relayban {

HookRunner::~HookRunner() {
  for (auto& [pid, c] : running_) kill(pid, SIGKILL);
  for (auto& [pid, c] : running_) waitpid(pid, nullptr, 0);
}

void HookRunner::Run(const std::vector<std::string>& argv) {
  if (argv.empty()) return;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The daemon blocks signals for its signalfd; the hook must start with none blocked.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    log_(LOG_WARNING, "hook " + argv[0] + " could not start: " + std::strerror(rc));
    return;
  }
  running_[pid] = Child{argv[0], std::chrono::steady_clock::now() + limit_, false};
}

void HookRunner::Reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = running_.find(pid);
    if (it == running_.end()) continue;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      log_(LOG_WARNING, "hook " + it->second.name + " failed with exit status " + std::to_string(WEXITSTATUS(status)));
    else if (WIFSIGNALED(status))
      log_(LOG_WARNING, "hook " + it->second.name + (it->second.killed ? " overran its time limit and was killed" :
                                                      " was killed by signal " + std::to_string(WTERMSIG(status))));
    running_.erase(it);
  }
  auto now = std::chrono::steady_clock::now();
  for (auto& [pid, c] : running_) {
    if (!c.killed && now > c.deadline) {
      kill(pid, SIGKILL);
      c.killed = true;
    }
  }
}

}  // namespace relayban
