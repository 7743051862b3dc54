#include "relayban/core/prefaulter.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <thread>

namespace relayban {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

class Worker {
 public:
  // A fork's child has no worker thread (only the forking thread is copied): it starts
  // afresh, its own started at its first range. The lock is held across fork so the
  // queue is copied whole.
  void BeforeFork() { mu_.lock(); }
  void AfterForkParent() { mu_.unlock(); }
  void AfterForkChild() {
    mu_.unlock();
    new (&wake_) std::condition_variable;  // no one waits on the child's copies
    new (&idle_) std::condition_variable;
    queue_.clear();
    busy_ = nullptr;
    started_ = false;
  }
  void Ahead(void* mapping, size_t from, size_t to) {
    if (to <= from) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!supported_) return;
    queue_.push_back({static_cast<char*>(mapping), from, to});
    if (!started_) {
      started_ = true;
      // Never joined: the worker lives as long as the process (it holds nothing but the
      // queue, and a range is only ever populated while its mapping is alive). Every
      // signal blocked in it: they are the daemon's loop's (signalfd), or the process's.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &old);
      std::thread t([this] { Run(); });
      pthread_setname_np(t.native_handle(), "relayban-fault");
      t.detach();
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    wake_.notify_one();
  }
  void Forget(void* mapping) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!started_) return;
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [&](const Range& r) { return r.base == mapping; }),
                 queue_.end());
    idle_.wait(lock, [&] { return busy_ != mapping; });
  }
  void Settle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return queue_.empty() && busy_ == nullptr; });
  }
  uint64_t populated() {
    std::lock_guard<std::mutex> lock(mu_);
    return populated_;
  }
  bool supported() {
    std::lock_guard<std::mutex> lock(mu_);
    return supported_;
  }

 private:
  struct Range {
    char* base;
    size_t from, to;
  };
  static constexpr size_t kStep = size_t{2} << 20;  // a huge page: Forget waits for one at most

  void Run() {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return !queue_.empty(); });
      Range& r = queue_.front();
      char* base = r.base;
      size_t from = r.from & ~(page - 1);
      size_t to = std::min(r.to, (from + kStep) & ~(kStep - 1));
      if (to <= from) to = std::min(r.to, from + kStep);
      to = (to + page - 1) & ~(page - 1);
      r.from = to;
      if (r.from >= r.to) queue_.pop_front();
      busy_ = base;
      lock.unlock();
      int rc = madvise(base + from, to - from, MADV_POPULATE_WRITE);
      int error = rc == 0 ? 0 : errno;
      lock.lock();
      busy_ = nullptr;
      if (rc == 0) populated_ += to - from;
      if (error == EINVAL) {  // a kernel before 5.14: nothing to gain here
        supported_ = false;
        queue_.clear();
      }
      idle_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::deque<Range> queue_;
  char* busy_ = nullptr;  // the mapping being populated now
  bool started_ = false;
  bool supported_ = true;
  uint64_t populated_ = 0;
};

// Never destroyed: tables in static storage may be freed after it would have been.
Worker& TheWorker() {
  static Worker* w = [] {
    auto* made = new Worker;
    pthread_atfork([] { TheWorker().BeforeFork(); }, [] { TheWorker().AfterForkParent(); },
                   [] { TheWorker().AfterForkChild(); });
    return made;
  }();
  return *w;
}

}  // namespace

void Prefaulter::Ahead(void* mapping, size_t from, size_t to) { TheWorker().Ahead(mapping, from, to); }
void Prefaulter::Forget(void* mapping) { TheWorker().Forget(mapping); }
void Prefaulter::Settle() { TheWorker().Settle(); }
uint64_t Prefaulter::populated() { return TheWorker().populated(); }
bool Prefaulter::supported() { return TheWorker().supported(); }

}  // namespace relayban
