#include "job_thread.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>

namespace relayban {

JobThread::JobThread(const char* name, int nice) : nice_(nice) {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), name);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

JobThread::~JobThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_one();
  thread_.join();
  if (efd_ >= 0) close(efd_);
}

void JobThread::Submit(Job job, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace_back(std::move(job), std::move(done));
  }
  ++outstanding_;
  work_.notify_one();
}

size_t JobThread::Poll() {
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

void JobThread::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !running_; });
}

void JobThread::Run() {
  // Per thread on Linux: the calling thread's id. Raising it needs no privilege; should it
  // fail, the thread keeps the process's niceness and the loop only loses its head start.
  if (nice_ != 0) {
    auto self = static_cast<id_t>(gettid());
    (void)setpriority(PRIO_PROCESS, self, getpriority(PRIO_PROCESS, self) + nice_);
  }
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything handed over has run
    auto [job, done] = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    Result<void> r = job();
    lock.lock();
    running_ = false;
    finished_.emplace_back(std::move(done), std::move(r));
    uint64_t one = 1;
    if (efd_ >= 0) (void)!write(efd_, &one, sizeof one);
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace relayban
