#include "reopening_store.hpp"

#include <syslog.h>

#include <algorithm>

namespace relayban {

ReopeningStore::ReopeningStore(std::string path, const Clock& clock, Log log, Opener opener)
    : path_(std::move(path)), clock_(clock), log_(std::move(log)), opener_(std::move(opener)) {}

Result<StateStore*> ReopeningStore::Get() {
  if (store_) return store_.get();
  Clock::Steady now = clock_.Monotonic();
  if (now < retry_at_) return Fail(last_error_);
  auto s = opener_(path_);
  if (!s && s.error().kind == ErrorKind::kCorrupt) {
    auto aside = MoveAsideCorrupt(path_, clock_.Now());
    if (aside) {
      log_(LOG_ERR, s.error().message + "; moved it aside to " + *aside +
                        " and started a fresh one (the bans in the kernel are adopted into it)");
      s = opener_(path_);
    } else {
      log_(LOG_ERR, s.error().message + "; " + aside.error().message);
    }
  }
  if (!s) {
    if (last_error_.message != s.error().message) log_(LOG_ERR, s.error().message + " (retrying)");
    last_error_ = s.error();
    backoff_ = std::clamp(backoff_ * 2, Seconds(1), Seconds(30));
    retry_at_ = now + backoff_;
    return Fail(last_error_);
  }
  store_ = std::move(s.value());
  ++epoch_;
  if (!last_error_.message.empty()) log_(LOG_NOTICE, "state database " + path_ + " is open again");
  last_error_ = Error{};
  backoff_ = Seconds(0);
  return store_.get();
}

void ReopeningStore::Observe(const Error& e) {
  if (e.kind != ErrorKind::kCorrupt) return;
  // Close it; the next call moves it aside and starts afresh.
  store_.reset();
  last_error_ = e;
  retry_at_ = Clock::Steady{};
}

Result<void> ReopeningStore::WriteBans(const std::vector<BanWrite>& writes) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->WriteBans(writes);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<BanRecord>> ReopeningStore::ActiveBans(Time now) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->ActiveBans(now);
  if (!r) Observe(r.error());
  return r;
}

Result<size_t> ReopeningStore::EachActiveBan(Time now, const std::function<void(const BanRecord&)>& each) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->EachActiveBan(now, each);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<Prefix>> ReopeningStore::LiftedTargets() {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->LiftedTargets();
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<std::pair<Prefix, Time>>> ReopeningStore::Offences(Time since) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->Offences(since);
  if (!r) Observe(r.error());
  return r;
}

Result<void> ReopeningStore::Checkpoint(const JournalBatch& records, const Progress& progress) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->Checkpoint(records, progress);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<std::pair<uint64_t, std::string>>> ReopeningStore::LoadJournal(uint64_t after, Time since, size_t limit) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->LoadJournal(after, since, limit);
  if (!r) Observe(r.error());
  return r;
}

Result<size_t> ReopeningStore::PruneJournal(Time before, size_t keep, size_t limit) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->PruneJournal(before, keep, limit);
  if (!r) Observe(r.error());
  return r;
}

Result<void> ReopeningStore::SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->SaveDecisions(rows, keep);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<DecisionRow>> ReopeningStore::FindDecisions(const std::vector<std::string>& targets,
                                                               const std::string& account, size_t limit) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->FindDecisions(targets, account, limit);
  if (!r) Observe(r.error());
  return r;
}

Result<void> ReopeningStore::SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time now,
                                                Time forget_before) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->SaveAccountHistory(rows, now, forget_before);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<std::pair<std::string, std::string>>> ReopeningStore::LoadAccountHistory() {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->LoadAccountHistory();
  if (!r) Observe(r.error());
  return r;
}

Result<void> ReopeningStore::SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add,
                                        const std::vector<uint64_t>& remove, size_t keep) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->SaveOutbox(add, remove, keep);
  if (!r) Observe(r.error());
  return r;
}

Result<std::vector<std::pair<uint64_t, std::string>>> ReopeningStore::LoadOutbox() {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->LoadOutbox();
  if (!r) Observe(r.error());
  return r;
}

Result<std::optional<std::string>> ReopeningStore::GetNote(const std::string& key) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->GetNote(key);
  if (!r) Observe(r.error());
  return r;
}

Result<void> ReopeningStore::SetNote(const std::string& key, const std::optional<std::string>& value) {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->SetNote(key, value);
  if (!r) Observe(r.error());
  return r;
}

Result<Progress> ReopeningStore::LoadProgress() {
  auto s = Get();
  if (!s) return Fail(s.error());
  auto r = (*s)->LoadProgress();
  if (!r) Observe(r.error());
  return r;
}

}  // namespace relayban
