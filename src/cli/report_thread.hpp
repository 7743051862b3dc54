// ReportThread: items (a replayed line's decisions) handed from the thread that makes them to
// one of its own that formats them, in the order they came. `relayban check` under a botnet
// makes a million decisions, and writing them out was a seventh of the scoring thread,
// which sets a replay's pace. Items are swapped into chunks (the adding thread takes back
// storage the formatting one emptied) and chunks handed over; at most `chunks` of them are
// on their way, so a slow formatter holds the adding thread back instead of piling items up
// in memory.
#pragma once

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace relayban {

template <class Item>
class ReportThread {
 public:
  // `format` is called on the thread for each item added, in order; then the item is
  // cleared (Item::clear, which may keep its storage for the next use).
  explicit ReportThread(std::function<void(Item&)> format, size_t chunk_items = 512, size_t chunks = 4)
      : format_(std::move(format)), chunk_items_(chunk_items), thread_([this] { Run(); }) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < std::max<size_t>(chunks, 2); ++i) free_.emplace_back();
    }
    filling_ = TakeFree();
  }
  ~ReportThread() { Stop(); }
  ReportThread(const ReportThread&) = delete;
  ReportThread& operator=(const ReportThread&) = delete;

  // Takes what `item` holds; `item` is left empty (a cleared item the thread is done with).
  void Add(Item& item) {
    if (filling_.used == filling_.items.size()) filling_.items.emplace_back();
    std::swap(filling_.items[filling_.used++], item);
    if (filling_.used == chunk_items_) {
      Give(std::move(filling_));
      filling_ = TakeFree();
    }
  }
  // Formats what is left and ends the thread; rethrows what formatting threw.
  void Finish() {
    Stop();
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  }

 private:
  void Stop() {
    if (!thread_.joinable()) return;
    if (filling_.used > 0) Give(std::move(filling_));
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  struct Chunk {
    std::vector<Item> items;  // the first `used` were added; the rest are empty
    size_t used = 0;
  };
  Chunk TakeFree() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return !free_.empty(); });
    Chunk c = std::move(free_.front());
    free_.pop_front();
    return c;
  }
  void Give(Chunk c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      full_.push_back(std::move(c));
    }
    changed_.notify_all();
  }
  void Run() {
    // Below the threads that read and score (a thread's own nice value, on Linux): with two
    // cores and three threads, the scheduler should give way to the pace-setter, and this
    // one catches up whenever either waits.
    const auto self = static_cast<id_t>(syscall(SYS_gettid));
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, self);
    if (errno == 0) (void)setpriority(PRIO_PROCESS, self, std::min(nice + 10, 19));
    for (;;) {
      Chunk c;
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] { return done_ || !full_.empty(); });
        if (full_.empty()) return;
        c = std::move(full_.front());
        full_.pop_front();
      }
      for (size_t i = 0; i < c.used; ++i) {
        if (!failure_) {
          try {
            format_(c.items[i]);
          } catch (...) {
            failure_ = std::current_exception();
          }
        }
        c.items[i].clear();  // what it holds is freed here too, not on the adding thread
      }
      c.used = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        free_.push_back(std::move(c));
      }
      changed_.notify_all();
    }
  }
  std::function<void(Item&)> format_;
  const size_t chunk_items_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Chunk> full_, free_;
  Chunk filling_;
  bool done_ = false;
  std::exception_ptr failure_;  // written by the thread, read after it is joined
  std::thread thread_;          // last: started once the rest is made
};

// Formats blocks 0 .. count-1 of a report with format(k, text) - the even ones on this
// thread, the odd ones on a helper at the same time - and hands each to write(text), in
// order. The helper runs at most kAhead blocks in front, so no more than that waits in
// memory. For a report made after the last line is read, when both cores are free (a
// botnet's 200,000 accounts took a fifth of a replay's scoring thread to list). What
// format throws on the helper is thrown here once the blocks before it are written.
inline void FormatInPairs(size_t count, const std::function<void(size_t, std::string&)>& format,
                          const std::function<void(const std::string&)>& write) {
  constexpr size_t kAhead = 4;
  std::mutex mu;
  std::condition_variable changed;
  std::map<size_t, std::string> done;  // odd blocks formatted, not yet written
  std::map<size_t, std::exception_ptr> failed;
  size_t written = 0;  // blocks written so far
  bool stop = false;   // this thread gave up: the helper ends
  std::thread helper([&] {
    for (size_t k = 1; k < count; k += 2) {
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return stop || k < written + kAhead; });
        if (stop) return;
      }
      std::string text;
      std::exception_ptr failure;
      try {
        format(k, text);
      } catch (...) {
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (failure) failed[k] = failure;
        else done[k] = std::move(text);
      }
      changed.notify_all();
      if (failure) return;
    }
  });
  std::exception_ptr failure;
  std::string text;
  for (size_t k = 0; k < count && !failure; ++k) {
    try {
      if (k % 2 == 0) {
        text.clear();
        format(k, text);
      } else {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait(lock, [&] { return done.count(k) > 0 || failed.count(k) > 0; });
        if (auto f = failed.find(k); f != failed.end()) std::rethrow_exception(f->second);
        text = std::move(done[k]);
        done.erase(k);
      }
      write(text);
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      written = k + 1;
      if (failure) stop = true;
    }
    changed.notify_all();
  }
  helper.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace relayban
