// `relayban history-import`: fills the per-account history (relative and new_network rules)
// from mail logs already on disk - mail.log.1 and mail.log after installing - so accounts
// need not spend their first week warming up. Runs while the daemon is stopped: it writes
// the state database the daemon loads at start.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"

namespace relayban {

struct HistoryImportOptions {
  std::string config = "/etc/relayban/relayban.yaml";
  std::vector<std::string> logs;
};

int RunHistoryImport(const HistoryImportOptions& o, Time now, std::ostream& out, std::ostream& err);

}  // namespace relayban
