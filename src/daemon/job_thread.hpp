// JobThread: one thread that runs the loop's slow calls in the order they were handed over,
// and hands each outcome back to the loop thread (Poll, when fd() is readable). The store
// writer runs SQLite's transactions on one; the ban ledger its netlink transactions on
// another, so a botnet's million bans go to the kernel while the loop goes on reading.
// Submit, Poll and Wait belong to one thread (the loop's).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "relayban/core/result.hpp"

namespace relayban {

class JobThread {
 public:
  using Job = std::function<Result<void>()>;
  using Done = std::function<void(const Result<void>&)>;

  // Starts the thread (every signal blocked in it: they are the loop's, through its
  // signalfd), named `name` (at most 15 bytes: what `top -H`, `ps -L` and perf show), at
  // `nice` above the process's niceness (see kBackground).
  explicit JobThread(const char* name = "relayban-job", int nice = 0);
  // The niceness of the threads whose work may lag the loop's (the decision log's writes;
  // the WAL checkpointer likewise): on two busy cores the loop, which reads, scores, answers
  // the control socket and feeds the watchdog, is given a core first. They still run
  // whenever a core is free, and get a tenth of a contended one (CFS weights). Not the
  // store writer: under load it then missed a stop's deadline for a burst's bans.
  static constexpr int kBackground = 10;
  // Runs what was handed over (their outcomes are not reported), then stops the thread.
  ~JobThread();
  JobThread(const JobThread&) = delete;
  JobThread& operator=(const JobThread&) = delete;

  // Runs `job` on the thread after the jobs before it; `done` (may be empty) gets its
  // outcome on the calling thread, in Poll.
  void Submit(Job job, Done done);
  // Hands the outcomes of the finished jobs to their `done`. Returns how many.
  size_t Poll();
  // Waits until every job handed over so far has run (their outcomes wait for Poll).
  void Wait();
  // Jobs handed over whose outcome Poll has not handed on yet.
  size_t outstanding() const { return outstanding_; }
  // Readable while outcomes wait for Poll (an eventfd).
  int fd() const { return efd_; }

 private:
  void Run();

  int efd_ = -1;
  int nice_ = 0;
  size_t outstanding_ = 0;  // the calling thread's count
  std::mutex mu_;
  std::condition_variable work_, idle_;
  std::deque<std::pair<Job, Done>> queue_;
  std::vector<std::pair<Done, Result<void>>> finished_;
  bool running_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace relayban
