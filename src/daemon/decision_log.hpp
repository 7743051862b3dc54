// DecisionLog: the daemon's machine-readable record of what it decided - one JSON object per
// line for every ban, unban, account verdict and forgiveness, for SIEMs, scripts and
// `relayban digest`. Appended, never rewritten; logrotate moves the file away and the log
// notices (a tick later) and starts a new one. Writes are buffered per loop turn; a disk
// that refuses them is logged and counted, and past a bound the oldest lines are dropped,
// never the daemon's work. Loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace relayban {

class DecisionLog {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  struct Stats {
    uint64_t lines = 0;    // written to the file
    uint64_t dropped = 0;  // lost: the file could not be written for too long
    uint64_t errors = 0;   // failed opens and writes
    uint64_t reopened = 0;  // after a rotation
  };
  static constexpr size_t kMaxBuffered = size_t{16} << 20;

  explicit DecisionLog(Log log) : log_(std::move(log)) {}
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Writes to `path` from now on (created 0640 with its folder); "" closes it.
  void SetPath(const std::string& path);
  const std::string& path() const { return path_; }
  bool on() const { return !path_.empty(); }
  // Queues one record (a JSON object without its newline).
  void Add(std::string_view json);
  // Appends what is queued. Call at the end of each loop turn.
  void Flush();
  // Once a second: reopens the file when it was rotated away or removed.
  void Tick();
  const Stats& stats() const { return stats_; }
  size_t buffered() const { return buffer_.size(); }

 private:
  bool Open();
  void Close();
  Log log_;
  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::string buffer_;
  std::string problem_;  // the last error logged (each new one is logged once)
  Stats stats_;
};

}  // namespace relayban
