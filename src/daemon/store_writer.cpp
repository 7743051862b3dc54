#include "store_writer.hpp"

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
  Result<void> Checkpoint(const JournalBatch& records, const Progress& progress) override {
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

StoreWriter::StoreWriter(StateStore& store)
    : store_(store), waiting_(std::make_unique<Waiting>(*this, store)), thread_("relayban-store") {}

StoreWriter::~StoreWriter() = default;

void StoreWriter::Submit(Job job, Done done) {
  thread_.Submit([this, job = std::move(job)] { return job(store_); }, std::move(done));
}

}  // namespace relayban
