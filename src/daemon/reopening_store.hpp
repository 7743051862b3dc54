// ReopeningStore: the daemon's StateStore. It opens the SQLite database when it can and again
// after losing it: a state disk too full to create the file at start, or a damaged database
// (moved aside to state.db.corrupt-<time> with a clear log line, then started afresh). While
// it has no database, writes fail with the reason (the ban ledger keeps them owed and shows
// "degraded") and reads find nothing, so the daemon protects from memory and the kernel.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "relayban/core/clock.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class ReopeningStore : public StateStore {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  using Opener = std::function<Result<std::unique_ptr<StateStore>>(const std::string& path)>;
  // `opener` opens (and checks) a database; OpenSqliteStore in the product.
  ReopeningStore(std::string path, const Clock& clock, Log log, Opener opener);

  Result<void> WriteBans(const std::vector<BanWrite>& writes) override;
  Result<std::vector<BanRecord>> ActiveBans(Time now) override;
  Result<size_t> EachActiveBan(Time now, const std::function<void(const BanRecord&)>& each) override;
  Result<std::vector<Prefix>> LiftedTargets() override;
  Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) override;
  Result<void> Checkpoint(const JournalBatch& records, const Progress& progress) override;
  Result<Progress> LoadProgress() override;
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadJournal(uint64_t after, Time since, size_t limit) override;
  Result<size_t> PruneJournal(Time before, size_t keep, size_t limit) override;
  Result<void> SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) override;
  Result<std::vector<DecisionRow>> FindDecisions(const std::vector<std::string>& targets, const std::string& account,
                                                 size_t limit) override;
  Result<void> SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time now,
                                  Time forget_before) override;
  Result<std::vector<std::pair<std::string, std::string>>> LoadAccountHistory() override;
  Result<void> SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add, const std::vector<uint64_t>& remove,
                          size_t keep) override;
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadOutbox() override;
  Result<std::optional<std::string>> GetNote(const std::string& key) override;
  Result<void> SetNote(const std::string& key, const std::optional<std::string>& value) override;

  // Counts the databases opened: a new one (after a damaged one was moved aside) holds none
  // of the bans in force, which must then be written again.
  uint64_t epoch() const { return epoch_.load(); }

 private:
  // Opens the database if it is not open and the last attempt is long enough ago.
  Result<StateStore*> Get();
  // After an error: a damaged database is closed, to be moved aside and started afresh.
  void Observe(const Error& e);

  std::string path_;
  const Clock& clock_;
  Log log_;
  Opener opener_;
  std::unique_ptr<StateStore> store_;
  Error last_error_;
  Clock::Steady retry_at_{};
  Seconds backoff_{0};
  std::atomic<uint64_t> epoch_{0};  // read by the loop while the store writer may open a database
};

}  // namespace relayban
