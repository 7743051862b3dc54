// StoreWriter: the daemon's state-store writes on a thread of their own. The ban ledger's
// slices, the journal's checkpoints and the decisions are SQLite transactions; under a
// botnet's burst they were a third of the loop's time (each slice of 2,000 bans dirties
// pages all over the index of targets and writes them to the WAL). Handed over here, they
// run in the order they were handed over while the loop goes on reading, and each outcome
// comes back to the loop thread (Poll, when fd() is readable).
//
// The store is never used by two threads at once: every other call goes through store(),
// a StateStore that first waits until the writes handed over so far are done. The loop
// keeps at most one write of each kind outstanding, so such a wait is short.
// Submit, Poll, Wait and store() belong to one thread (the loop's).
#pragma once

#include <functional>
#include <memory>

#include "job_thread.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class StoreWriter {
 public:
  using Job = std::function<Result<void>(StateStore&)>;
  using Done = std::function<void(const Result<void>&)>;

  // Starts the thread. `store` must outlive the writer.
  explicit StoreWriter(StateStore& store);
  // Runs what was handed over (their outcomes are not reported), then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Runs `job` on the writer thread after the jobs before it; `done` (may be empty) gets
  // its outcome on the calling thread, in Poll.
  void Submit(Job job, Done done);
  // Hands the outcomes of the finished jobs to their `done`. Returns how many.
  size_t Poll() { return thread_.Poll(); }
  // Waits until every job handed over so far has run (their outcomes wait for Poll).
  void Wait() { thread_.Wait(); }
  // Jobs handed over whose outcome Poll has not handed on yet.
  size_t outstanding() const { return thread_.outstanding(); }
  // Readable while outcomes wait for Poll (an eventfd).
  int fd() const { return thread_.fd(); }
  // The store for every other call: waits for the jobs handed over so far, then calls it.
  StateStore& store() { return *waiting_; }

 private:
  class Waiting;

  StateStore& store_;
  std::unique_ptr<StateStore> waiting_;
  JobThread thread_;  // last: stopped (running what was handed over) before the rest goes
};

}  // namespace relayban
