#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "relayban/daemon/spawner.hpp"

extern char** environ;

namespace relayban {
namespace {

class PosixSpawner : public Spawner {
 public:
  PosixSpawner() { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

  Result<pid_t> Spawn(const std::vector<std::string>& argv) override {
    if (argv.empty()) return Fail("empty command");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // The daemon blocks signals for its signalfd; the hook must start with none blocked
    // and SIGPIPE at its default.
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setpgroup(&attr, 0);  // a group of its own, led by the child
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return Fail(rc == ENOENT ? ErrorKind::kNotFound : ErrorKind::kOther, std::strerror(rc));
    return pid;
  }

  std::vector<Exit> Reap() override {
    std::vector<Exit> out;
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      out.push_back({pid, status});
    }
    return out;
  }

  bool GroupAlive(pid_t group) override { return group > 1 && kill(-group, 0) == 0; }
  void KillGroup(pid_t group) override {
    if (group > 1) kill(-group, SIGKILL);
  }
};

}  // namespace

std::unique_ptr<Spawner> MakePosixSpawner() { return std::make_unique<PosixSpawner>(); }

}  // namespace relayban
