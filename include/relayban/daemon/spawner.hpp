// Spawner: the seam through which hooks start processes. PosixSpawner (daemon/) uses
// posix_spawn with an argument vector - never a shell - and puts each child in a process
// group of its own, so a time limit can end the child and everything it started; tests use
// the recording FakeSpawner (tests/fakes/). Owned by the daemon's loop thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "relayban/core/result.hpp"

namespace relayban {

class Spawner {
 public:
  struct Exit {
    pid_t pid;
    int status;  // as waitpid reports it
  };
  virtual ~Spawner() = default;
  // Starts argv[0] with argv, stdin and stdout on /dev/null, stderr inherited, no signal
  // blocked, in a new process group whose id is the returned pid.
  virtual Result<pid_t> Spawn(const std::vector<std::string>& argv) = 0;
  // Every child that ended since the last call (children of children included, where the
  // daemon is their subreaper); never waits.
  virtual std::vector<Exit> Reap() = 0;
  // Whether any process of the group is still there.
  virtual bool GroupAlive(pid_t group) = 0;
  // Sends SIGKILL to every process of the group.
  virtual void KillGroup(pid_t group) = 0;
};

// The real one. Makes the calling process a child subreaper, so that what a hook leaves
// behind is reparented to the daemon (and reaped by it), not to PID 1.
std::unique_ptr<Spawner> MakePosixSpawner();

}  // namespace relayban
