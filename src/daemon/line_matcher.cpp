#include "line_matcher.hpp"

#include <pthread.h>
#include <signal.h>

#include <utility>

namespace relayban {

LineMatcher::LineMatcher(size_t batch_lines, size_t batch_bytes) : batch_lines_(batch_lines), batch_bytes_(batch_bytes) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_setname_np(thread_.native_handle(), "relayban-match");
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

LineMatcher::~LineMatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_one();
  thread_.join();
}

void LineMatcher::Begin(const Engine& engine, Time now, Score score) {
  engine_ = &engine;
  now_ = now;
  score_ = std::move(score);
  if (!filling_) filling_ = TakeFree();
}

std::unique_ptr<ParsedLines> LineMatcher::TakeFree() {
  if (free_.empty()) return std::make_unique<ParsedLines>(batch_lines_, batch_bytes_);
  auto b = std::move(free_.back());
  free_.pop_back();
  return b;
}

void LineMatcher::Add(int source, std::string_view line) {
  if (filling_->Full(line.size())) {
    ParsedLines* batch = filling_.get();
    in_flight_.push_back(std::move(filling_));
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo_.push_back({batch, engine_, now_});
    }
    ++submitted_;
    work_.notify_one();
    // The thread matches this batch while the loop scores the one before.
    if (in_flight_.size() > 1) ScoreOldest();
    filling_ = TakeFree();
  }
  filling_->Add(source, line);
}

void LineMatcher::ScoreOldest() {
  ParsedLines* oldest = in_flight_.front().get();
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_matching_ && !todo_.empty() && todo_.front().batch == oldest) {
    // The thread has not started it: it waits for a core (the other one busy with the
    // kernel's or the store's work), or was only just woken. The loop matches it itself
    // rather than give its own core away and then wait to get it back; meanwhile the thread
    // takes nothing (the filters learn from the lines they see, in order).
    Job job = todo_.front();
    todo_.pop_front();
    loop_matching_ = true;
    lock.unlock();
    job.batch->Parse(*job.engine, job.now);
    lock.lock();
    loop_matching_ = false;
    ++matched_;
    ++taken_back_;
    lock.unlock();
    work_.notify_one();
  } else {
    uint64_t index = submitted_ - in_flight_.size();  // the oldest batch's number
    done_.wait(lock, [&] { return matched_ > index; });
    lock.unlock();
    ++on_thread_;
  }
  auto batch = std::move(in_flight_.front());
  in_flight_.pop_front();
  ScoreAndFree(std::move(batch));
}

void LineMatcher::ScoreAndFree(std::unique_ptr<ParsedLines> batch) {
  batch->ForEach(score_, engine_);
  batch->Clear();
  free_.push_back(std::move(batch));
}

void LineMatcher::Finish() {
  while (!in_flight_.empty()) ScoreOldest();
  // The thread is idle now: the loop may match the rest itself.
  if (filling_ && !filling_->empty()) {
    filling_->Parse(*engine_, now_);
    ++inline_;
    ScoreAndFree(std::move(filling_));
  }
  filling_ = TakeFree();
  engine_ = nullptr;
  score_ = nullptr;
}

void LineMatcher::Hold(bool held) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = held;
  }
  work_.notify_one();
}

void LineMatcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || (!todo_.empty() && !loop_matching_ && !held_); });
    if (stop_) return;
    Job job = todo_.front();
    todo_.pop_front();
    thread_matching_ = true;
    lock.unlock();
    job.batch->Parse(*job.engine, job.now);
    lock.lock();
    thread_matching_ = false;
    ++matched_;
    done_.notify_one();
  }
}

}  // namespace relayban
