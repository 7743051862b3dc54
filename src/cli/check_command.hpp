// `relayban check` and `relayban config-test`: offline replay of logs through the jails'
// filters and rules, and configuration validation. Neither touches a firewall.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"

namespace relayban {

inline constexpr int kExitConfig = 78;  // EX_CONFIG, as systemd and sysexits(3) know it
inline constexpr int kExitInput = 66;   // EX_NOINPUT: a log could not be read

struct CheckOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  std::vector<std::string> jails;
  std::vector<std::string> logs;
  bool json = false;
  bool events = false;
  // Instead of the summary: the lines that look like authentication failures (they name a
  // mail program and words such as "auth", "login", "failed") yet yielded no event.
  bool explain_misses = false;
  // Each decision lists the lines that led to it (text: the last 3, JSON: up to 10).
  bool evidence = true;
  // A state database whose per-account history (relayban history-import, or the daemon's)
  // the replay starts from (it is only read); empty: none (the history warms up during the replay).
  std::string history;
  // The process ends right after (the command line's check): the replay's state is left for
  // the process's end to take back whole, not freed piece by piece (200,000 accounts of a
  // botnet's invented names took longer to free than to list).
  bool leave_state = false;
};

// Whether a log line looks like a mail program's authentication failure (a word of each
// kind, case-insensitive): what --explain-misses reports when no pattern took it.
bool LooksLikeAuthFailure(std::string_view line);

// Returns the process exit code. `now` is the wall clock, for syslog stamps without a year.
int RunCheck(const CheckOptions& options, Time now, std::ostream& out, std::ostream& err);
int RunConfigTest(const std::string& config, bool json, std::ostream& out, std::ostream& err);

}  // namespace relayban
