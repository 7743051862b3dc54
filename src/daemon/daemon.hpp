// The daemon: one thread, one epoll loop joining log sources (inotify), the control socket,
// signals (signalfd) and a one-second timer to the engine, the firewall and the state store.
// Bans are batched per loop turn into one firewall transaction.
#pragma once

#include <string>

namespace relayban {

struct DaemonOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  bool dry_run = false;        // the dry-run firewall: log bans, change nothing, no privileges
  bool flush_on_exit = false;  // remove the table on SIGTERM (bans otherwise stay and expire)
};

// Runs until SIGTERM/SIGINT. Returns the exit code (78 for a bad configuration at start).
int RunDaemon(const DaemonOptions& options);

}  // namespace relayban
