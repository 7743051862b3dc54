// StateStore: what relayban remembers across restarts - active and past bans, offences for
// escalation, and per-source read positions - so a restart neither loses bans nor misses or
// double-counts log lines. SqliteStore (state/, the only sqlite3 user) is the product's.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

struct BanRecord {
  Prefix target;
  std::string jail, rule, account, reason;
  Time start{};
  std::optional<Time> end;  // nullopt = permanent
};

struct FilePosition {
  std::string path;
  uint64_t dev = 0, ino = 0, offset = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // Records a ban (replacing an active one of the same target) and counts the offence.
  virtual Result<void> SaveBan(const BanRecord& b) = 0;
  // Marks the active ban of `target` as ended at `at` with `how` ("unban", "expired", ...).
  virtual Result<void> EndBan(const Prefix& target, Time at, const std::string& how) = 0;
  // Bans still in force at `now`.
  virtual Result<std::vector<BanRecord>> ActiveBans(Time now) = 0;
  // Start times of the bans of `target` since `since` (escalation history).
  virtual Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) = 0;
  virtual Result<void> SavePositions(const std::vector<FilePosition>& positions) = 0;
  virtual Result<std::vector<FilePosition>> Positions() = 0;
  // journald cursors, by source name.
  virtual Result<void> SaveCursor(const std::string& source, const std::string& cursor) = 0;
  virtual Result<std::optional<std::string>> Cursor(const std::string& source) = 0;
};

// Opens (creating if needed) the database at `path` in WAL mode.
Result<std::unique_ptr<StateStore>> OpenSqliteStore(const std::string& path);

}  // namespace relayban
