// StateStore: what relayban remembers across restarts - active and past bans, offences for
// escalation, and per-source read positions - so a restart neither loses bans nor misses or
// double-counts log lines. The daemon's ban ledger and source set mirror into it; SqliteStore
// (state/, the only sqlite3 user) is the product's, FakeStateStore (tests/fakes/) can be told
// to fail. Every write is one transaction: it happens whole or not at all, and its error says
// what kind it was (ErrorKind::kNoSpace, kCorrupt, kBusy, ...). Not thread-safe: used by
// one thread at a time (the daemon's store writer and its loop take turns, see StoreWriter).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

struct BanRecord {
  Prefix target;
  std::string jail, rule, account, reason;
  Time start{};
  std::optional<Time> end;      // nullopt = permanent
  std::string origin = "rule";  // rule | manual | adopted (found in the kernel) | fleet
};

// Why a ban exists, as the history records it.
struct BanInfo {
  std::string jail, rule, account, reason, origin = "rule";
};

// One change to the ban history.
struct BanWrite {
  enum class Kind : uint8_t { kSave, kEnd };
  Kind kind = Kind::kSave;
  BanRecord record;  // kSave: the ban (it replaces an active one of the same target)
  Prefix target;     // kEnd: the ban that ended ...
  Time at{};         // ... when ...
  std::string how;   // ... and how: "unban", "expired", "flushed on exit"
  // kSave: the store may hold an active ban of the target that this one replaces (false only
  // when the writer knows it does not: spares a lookup per ban in a flood).
  bool replaces = true;
  // kSave: when set, the ban's jail, rule, account, reason and origin, and the record's are
  // not used: shared by the bans of a verdict instead of copied into each (four strings per
  // ban of a burst, made and freed on the loop thread).
  std::shared_ptr<const BanInfo> info;

  // The ban saved, whole.
  BanRecord Record() const {
    if (!info) return record;
    BanRecord r = record;
    r.jail = info->jail;
    r.rule = info->rule;
    r.account = info->account;
    r.reason = info->reason;
    r.origin = info->origin;
    return r;
  }
};

struct FilePosition {
  std::string path;
  uint64_t dev = 0, ino = 0, offset = 0;
};

// How far every source was read: file positions and journald cursors (by source name).
struct Progress {
  std::vector<FilePosition> files;
  std::vector<std::pair<std::string, std::string>> cursors;
};

// Engine journal records (see Engine::SetJournal), each with the log time it is pruned by,
// packed in one buffer: a botnet's burst makes a record per line, and a string each was a
// memory allocation and a free per line on the loop thread.
class JournalBatch {
 public:
  void Add(Time time, std::string_view data) {
    index_.push_back({time, bytes_.size(), data.size()});
    bytes_.append(data);
  }
  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }
  Time time(size_t i) const { return index_[i].time; }
  std::string_view data(size_t i) const { return std::string_view(bytes_).substr(index_[i].at, index_[i].size); }
  // Puts `older` (a batch the store refused) in front of these records.
  void Prepend(JournalBatch&& older) {
    for (Item& i : index_) i.at += older.bytes_.size();
    older.bytes_ += bytes_;
    older.index_.insert(older.index_.end(), index_.begin(), index_.end());
    bytes_ = std::move(older.bytes_);
    index_ = std::move(older.index_);
  }
  void clear() {
    bytes_.clear();
    index_.clear();
  }
  // Memory held, written or not (clear keeps it).
  size_t capacity_bytes() const { return bytes_.capacity() + index_.capacity() * sizeof(Item); }

 private:
  struct Item {
    Time time;
    size_t at, size;
  };
  std::string bytes_;
  std::vector<Item> index_;
};

// A decision as the decision log records it (a JSON object), kept for `relayban explain`:
// what it was about (a ban's target, an account) and when.
struct DecisionRow {
  Time time{};
  std::string target;   // a ban's target as Prefix::ToString writes it; "" for none
  std::string account;  // "" for none
  std::string record;   // the JSON object, with the evidence (or its head, with `tail`)
  // When set, the record is `record` followed by this: the part a verdict's bans share,
  // held once for all of them (a botnet's burst makes a million such records).
  std::shared_ptr<const std::string> tail;
  std::string Whole() const { return tail ? record + *tail : record; }
  size_t size() const { return record.size() + (tail ? tail->size() : 0); }
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // Applies the writes in order, in one transaction.
  virtual Result<void> WriteBans(const std::vector<BanWrite>& writes) = 0;
  // Bans still in force at `now`, oldest first.
  virtual Result<std::vector<BanRecord>> ActiveBans(Time now) = 0;
  // The same bans handed to `each` one at a time as they are read, so a million of them are
  // never all held at once (a restart after a botnet's burst); returns how many.
  virtual Result<size_t> EachActiveBan(Time now, const std::function<void(const BanRecord&)>& each) {
    auto all = ActiveBans(now);
    if (!all) return Fail(all.error());
    for (const BanRecord& b : *all) each(b);
    return all->size();
  }
  // Targets whose latest ban was lifted by hand ("unban"): if the kernel still holds one at
  // start-up, the lifting did not reach it.
  virtual Result<std::vector<Prefix>> LiftedTargets() = 0;
  // Start times of the bans made by rules since `since` (escalation history).
  virtual Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) = 0;
  // Appends `records` to the journal and replaces the saved progress of the sources it
  // names (others are kept), in one transaction: after a crash the journal holds exactly
  // the events of the lines before the saved positions, so re-reading never counts twice.
  virtual Result<void> Checkpoint(const JournalBatch& records, const Progress& progress) = 0;
  virtual Result<Progress> LoadProgress() = 0;
  // Journal records after sequence number `after` whose time is at or after `since`, in the
  // order they were written, at most `limit`; each with its sequence number.
  virtual Result<std::vector<std::pair<uint64_t, std::string>>> LoadJournal(uint64_t after, Time since, size_t limit) = 0;
  // Deletes at most `limit` records older than `before`, and the oldest beyond `keep`
  // records. Returns how many went.
  virtual Result<size_t> PruneJournal(Time before, size_t keep, size_t limit) = 0;
  // Appends decisions, then deletes the oldest beyond `keep`, in one transaction.
  virtual Result<void> SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) = 0;
  // The newest decisions (at most `limit`, newest first) about any of `targets`, or about
  // `account` when it is not empty.
  virtual Result<std::vector<DecisionRow>> FindDecisions(const std::vector<std::string>& targets,
                                                         const std::string& account, size_t limit) = 0;
  // Per-account history (AccountHistory's bytes): replaces each account's row; rows not
  // written since `forget_before` go.
  virtual Result<void> SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time now,
                                          Time forget_before) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> LoadAccountHistory() = 0;
  // Small facts kept between runs (e.g. the firewall generation left at a clean exit);
  // setting nullopt removes one.
  virtual Result<std::optional<std::string>> GetNote(const std::string& key) = 0;
  virtual Result<void> SetNote(const std::string& key, const std::optional<std::string>& value) = 0;

  // Fleet mode's outbox: decisions not yet sent to Redis, by sequence number. Adds `add`,
  // deletes `remove`, then the oldest beyond `keep`, in one transaction.
  virtual Result<void> SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add,
                                  const std::vector<uint64_t>& remove, size_t keep) = 0;
  virtual Result<std::vector<std::pair<uint64_t, std::string>>> LoadOutbox() = 0;

  Result<void> SaveProgress(const Progress& progress) { return Checkpoint({}, progress); }
  Result<void> SaveBan(const BanRecord& b) { return WriteBans({BanWrite{BanWrite::Kind::kSave, b, {}, {}, {}, true}}); }
  Result<void> EndBan(const Prefix& target, Time at, const std::string& how) {
    return WriteBans({BanWrite{BanWrite::Kind::kEnd, {}, target, at, how, true}});
  }
};

// Opens (creating if needed) the database at `path` in WAL mode and checks it. A damaged file
// is an error of kind kCorrupt; the caller decides whether to move it aside (see
// MoveAsideCorrupt).
Result<std::unique_ptr<StateStore>> OpenSqliteStore(const std::string& path);
// Renames a damaged database (and its -wal and -shm files) to `path.corrupt-<stamp>` so a
// fresh one can be created; returns the new name.
Result<std::string> MoveAsideCorrupt(const std::string& path, Time now);

}  // namespace relayban
