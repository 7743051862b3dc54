#include "store_writer.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace relayban {

// Every call waits for the jobs handed over before it.
class StoreWriter::Waiting : public StateStore {
 public:
  Waiting(StoreWriter& w, StateStore& s) : w_(w), s_(s) {}
  Result<void> WriteBans(const std::vector<BanWrite>& writes) override {
    w_.Wait();
    return s_.WriteBans(writes);
  }
  Result<std::vector<BanRecord>> ActiveBans(Time now) override {
    w_.Wait();
    return s_.ActiveBans(now);
  }
  Result<size_t> EachActiveBan(Time now, const std::function<void(const BanRecord&)>& each) override {
    w_.Wait();
    return s_.EachActiveBan(now, each);
  }
  Result<std::vector<Prefix>> LiftedTargets() override {
    w_.Wait();
    return s_.LiftedTargets();
  }
  Result<std::vector<std::pair<Prefix, Time>>> Offences(Time since) override {
    w_.Wait();
    return s_.Offences(since);
  }
  Result<void> Checkpoint(const std::vector<JournalRecord>& records, const Progress& progress) override {
    w_.Wait();
    return s_.Checkpoint(records, progress);
  }
  Result<Progress> LoadProgress() override {
    w_.Wait();
    return s_.LoadProgress();
  }
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadJournal(uint64_t after, Time since, size_t limit) override {
    w_.Wait();
    return s_.LoadJournal(after, since, limit);
  }
  Result<size_t> PruneJournal(Time before, size_t keep, size_t limit) override {
    w_.Wait();
    return s_.PruneJournal(before, keep, limit);
  }
  Result<void> SaveDecisions(const std::vector<DecisionRow>& rows, size_t keep) override {
    w_.Wait();
    return s_.SaveDecisions(rows, keep);
  }
  Result<std::vector<DecisionRow>> FindDecisions(const std::vector<std::string>& targets, const std::string& account, size_t limit) override {
    w_.Wait();
    return s_.FindDecisions(targets, account, limit);
  }
  Result<void> SaveAccountHistory(const std::vector<std::pair<std::string, std::string>>& rows, Time now, Time forget_before) override {
    w_.Wait();
    return s_.SaveAccountHistory(rows, now, forget_before);
  }
  Result<std::vector<std::pair<std::string, std::string>>> LoadAccountHistory() override {
    w_.Wait();
    return s_.LoadAccountHistory();
  }
  Result<void> SaveOutbox(const std::vector<std::pair<uint64_t, std::string>>& add, const std::vector<uint64_t>& remove, size_t keep) override {
    w_.Wait();
    return s_.SaveOutbox(add, remove, keep);
  }
  Result<std::vector<std::pair<uint64_t, std::string>>> LoadOutbox() override {
    w_.Wait();
    return s_.LoadOutbox();
  }
  Result<std::optional<std::string>> GetNote(const std::string& key) override {
    w_.Wait();
    return s_.GetNote(key);
  }
  Result<void> SetNote(const std::string& key, const std::optional<std::string>& value) override {
    w_.Wait();
    return s_.SetNote(key, value);
  }

 private:
  StoreWriter& w_;
  StateStore& s_;
};

StoreWriter::StoreWriter(StateStore& store) : store_(store), waiting_(std::make_unique<Waiting>(*this, store)) {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_one();
  thread_.join();
  if (efd_ >= 0) close(efd_);
}

void StoreWriter::Submit(Job job, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back(std::move(job), std::move(done));
  }
  ++outstanding_;
  work_.notify_one();
}

size_t StoreWriter::Poll() {
  uint64_t n;
  if (efd_ >= 0) (void)!read(efd_, &n, sizeof n);
  std::vector<std::pair<Done, Result<void>>> got;
  {
    std::lock_guard<std::mutex> lock(mu_);
    got.swap(finished_);
  }
  outstanding_ -= got.size();
  for (auto& [done, r] : got)
    if (done) done(r);
  return got.size();
}

void StoreWriter::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !running_; });
}

void StoreWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything handed over has run
    auto [job, done] = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    Result<void> r = job(store_);
    lock.lock();
    running_ = false;
    finished_.emplace_back(std::move(done), std::move(r));
    uint64_t one = 1;
    if (efd_ >= 0) (void)!write(efd_, &one, sizeof one);
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace relayban
