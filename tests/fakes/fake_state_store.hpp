// FakeStateStore: a StateStore for unit tests, in memory. Can be told to fail its writes
// (a full disk: ErrorKind::kNoSpace) or every call, and counts what it was asked.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "relayban/state/state_store.hpp"

namespace relayban::testing {

class FakeStateStore : public StateStore {
 public:
  struct Row {
    BanRecord record;
    std::optional<Time> ended;
    std::string how;
  };
  std::vector<Row> rows;  // the ban history, in order
  Progress progress;
  bool fail_writes = false;  // writes fail (the disk is full); reads work
  bool fail_all = false;
  Error failure{"database or disk is full", {}, ErrorKind::kNoSpace};
  int write_calls = 0, progress_calls = 0;
  std::function<void()> on_write;  // called by every WriteBans (a test advancing its clock)

  Result<void> WriteBans(const std::vector<BanWrite>& writes) override {
    ++write_calls;
    if (on_write) on_write();
    if (fail_writes || fail_all) return Fail(failure);
    for (const auto& w : writes) {
      if (w.kind == BanWrite::Kind::kSave) {
        for (auto& r : rows)
          if (r.record.target == w.record.target && !r.ended) {
            r.ended = w.record.start;
            r.how = "replaced";
          }
        rows.push_back({w.Record(), std::nullopt, ""});
      } else {
        for (auto& r : rows)
          if (r.record.target == w.target && !r.ended) {
            r.ended = w.at;
            r.how = w.how;
          }
      }
    }
    return {};
  }
  Result<std::vector<BanRecord>> ActiveBans(Time now) override {
    if (fail_all) return Fail(failure);
    std::vector<BanRecord> out;
    for (const auto& r : rows)
      if (!r.ended && (!r.record.end || *r.record.end > now)) out.push_back(r.record);
    return out;
  }
  Result<std::vector<Prefix>> LiftedTargets() override {
    if (fail_all) return Fail(failure);
    std::map<Prefix, std::string> last;
    for (const auto& r : rows) last[r.record.target] = r.how;
    std::vector<Prefix> out;
    for (const auto& [p, how] : last)
      if (how == "unban") out.push_back(p);
    return out;
  }
  Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) override {
    if (fail_all) return Fail(failure);
    std::vector<std::pair<Prefix, Time>> out;
    for (const auto& r : rows)
      if (r.record.origin == "rule" && r.record.start >= since) out.emplace_back(r.record.target, r.record.start);
    return out;
  }
  struct JournalRecord {
    Time time;
    std::string data;
  };
  std::vector<std::pair<uint64_t, JournalRecord>> journal;
  std::map<std::string, std::string> notes;
  uint64_t next_seq = 1;

  Result<void> Checkpoint(const JournalBatch& records, const Progress& p) override {
    ++progress_calls;
    if (fail_writes || fail_all) return Fail(failure);
    for (size_t i = 0; i < records.size(); ++i)
      journal.emplace_back(next_seq++, JournalRecord{records.time(i), std::string(records.data(i))});
    // Each path named is replaced whole (one position per open generation).
    for (const auto& f : p.files)
      progress.files.erase(std::remove_if(progress.files.begin(), progress.files.end(),
                                          [&](const FilePosition& g) { return g.path == f.path; }),
                           progress.files.end());
    for (const auto& f : p.files) progress.files.push_back(f);
    for (const auto& c : p.cursors) {
      bool found = false;
      for (auto& d : progress.cursors)
        if (d.first == c.first) {
          d = c;
          found = true;
        }
      if (!found) progress.cursors.push_back(c);
    }
    return {};
  }
  Result<Progress> LoadProgress() override {
    if (fail_all) return Fail(failure);
    return progress;
  }
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadJournal(uint64_t after, Time since, size_t limit) override {
    if (fail_all) return Fail(failure);
    std::vector<std::pair<uint64_t, std::string>> out;
    for (const auto& [seq, r] : journal)
      if (seq > after && r.time >= since && out.size() < limit) out.emplace_back(seq, r.data);
    return out;
  }
  Result<size_t> PruneJournal(Time before, size_t keep, size_t limit) override {
    if (fail_writes || fail_all) return Fail(failure);
    size_t gone = 0;
    while (!journal.empty() && gone < limit && (journal.front().second.time < before || journal.size() > keep)) {
      journal.erase(journal.begin());
      ++gone;
    }
    return gone;
  }

  std::vector<DecisionRow> decisions;
  Result<void> SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) override {
    if (fail_writes || fail_all) return Fail(failure);
    // Stored whole, as the database stores them (a row may share the rest of its record).
    for (const DecisionRow& d : rows) decisions.push_back(DecisionRow{d.time, d.target, d.account, d.Whole(), nullptr});
    if (decisions.size() > keep) decisions.erase(decisions.begin(), decisions.end() - static_cast<long>(keep));
    return {};
  }
  Result<std::vector<DecisionRow>> FindDecisions(const std::vector<std::string>& targets, const std::string& account,
                                                 size_t limit) override {
    if (fail_all) return Fail(failure);
    std::vector<DecisionRow> out;
    for (auto it = decisions.rbegin(); it != decisions.rend() && out.size() < limit; ++it)
      if ((!it->target.empty() && std::find(targets.begin(), targets.end(), it->target) != targets.end()) ||
          (!account.empty() && it->account == account))
        out.push_back(*it);
    return out;
  }
  std::map<std::string, std::string> account_history;
  Result<void> SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time, Time) override {
    if (fail_writes || fail_all) return Fail(failure);
    for (const auto& [a, d] : rows) account_history[a] = d;
    return {};
  }
  Result<std::vector<std::pair<std::string, std::string>>> LoadAccountHistory() override {
    if (fail_all) return Fail(failure);
    return std::vector<std::pair<std::string, std::string>>(account_history.begin(), account_history.end());
  }
  std::map<uint64_t, std::string> outbox;
  Result<void> SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add, const std::vector<uint64_t>& remove,
                          size_t keep) override {
    if (fail_writes || fail_all) return Fail(failure);
    for (const auto& [seq, d] : add) outbox[seq] = d;
    for (uint64_t seq : remove) outbox.erase(seq);
    while (outbox.size() > keep) outbox.erase(outbox.begin());
    return {};
  }
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadOutbox() override {
    if (fail_all) return Fail(failure);
    return std::vector<std::pair<uint64_t, std::string>>(outbox.begin(), outbox.end());
  }
  Result<std::optional<std::string>> GetNote(const std::string& key) override {
    if (fail_all) return Fail(failure);
    auto it = notes.find(key);
    if (it == notes.end()) return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }
  Result<void> SetNote(const std::string& key, const std::optional<std::string>& value) override {
    if (fail_writes || fail_all) return Fail(failure);
    if (value) notes[key] = *value;
    else notes.erase(key);
    return {};
  }

  size_t Active(const std::string& target) const {
    size_t n = 0;
    for (const auto& r : rows) n += r.record.target.ToString() == target && !r.ended;
    return n;
  }
  const Row* Last(const std::string& target) const {
    const Row* out = nullptr;
    for (const auto& r : rows)
      if (r.record.target.ToString() == target) out = &r;
    return out;
  }
};

}  // namespace relayban::testing
