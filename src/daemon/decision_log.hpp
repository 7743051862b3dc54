// DecisionLog: the daemon's machine-readable record of what it decided - one JSON object per
// line for every ban, unban, account verdict and forgiveness, for SIEMs, scripts and
// `relayban digest`. Appended, never rewritten; logrotate moves the file away and the log
// notices (a tick later) and starts a new one. Writes are buffered per loop turn; a disk
// that refuses them is logged and counted, and past a bound the oldest lines are dropped,
// never the daemon's work. Loop thread only; with a thread of its own (as the daemon runs
// it) the writes to the file run there, one at a time - a botnet's burst writes some 250 MB
// of records, and copying them into the page cache was a tenth of the loop's time - and
// every other use of the file (reopening, closing) first waits for the write on its way.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "relayban/core/text.hpp"

namespace relayban {

// One decision record, written field by field: a botnet's burst writes a million of them,
// and a json object per record cost more than deciding. The same layout as
// nlohmann::ordered_json's dump(-1) with invalid UTF-8 replaced (a unit test holds them equal).
class DecisionRecord {
 public:
  DecisionRecord() = default;
  // Room for `bytes` at once: a ban's record is its time, target and a verdict's rendered
  // fields, and growing it by doubling cost several allocations per ban in a burst.
  explicit DecisionRecord(size_t bytes) { text_.reserve(bytes); }
  DecisionRecord& Str(const char* key, std::string_view v) {
    Key(key);
    AppendJsonString(text_, v);
    return *this;
  }
  DecisionRecord& StrOrNull(const char* key, std::string_view v) {
    if (v.empty()) return Raw(key, "null");
    return Str(key, v);
  }
  DecisionRecord& Int(const char* key, int64_t v) { return Raw(key, std::to_string(v)); }
  DecisionRecord& Raw(const char* key, std::string_view json) {
    Key(key);
    text_ += json;
    return *this;
  }
  std::string Take() {
    text_ += '}';
    return std::move(text_);
  }
  // The record so far, not closed: the head of one whose shared rest (TakeTail of another
  // record) follows it.
  const std::string& Head() const { return text_; }
  // The fields written so far and the closing brace, to follow another record's Head.
  std::string TakeTail() {
    if (text_.size() == 1) return "}";
    text_ += '}';
    text_[0] = ',';
    return std::move(text_);
  }
  // Starts again in `buffer`'s memory (a record per ban need not allocate).
  void Reuse(std::string&& buffer) {
    text_ = std::move(buffer);
    text_.assign(1, '{');
  }
  std::string TakeBuffer() { return std::move(text_); }
  // The fields written so far without the braces, for Fields() of other records: what many
  // records share is written once.
  std::string TakeFields() { return text_.substr(1); }
  DecisionRecord& Fields(std::string_view rendered) {
    if (rendered.empty()) return *this;
    text_ += text_.size() > 1 ? "," : "";
    text_ += rendered;
    return *this;
  }

 private:
  void Key(const char* key) {
    text_ += text_.size() > 1 ? "," : "";
    AppendJsonString(text_, key);
    text_ += ':';
  }
  std::string text_ = "{";
};

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
  static constexpr size_t kSpareAtMost = size_t{4} << 20;  // a written buffer's memory kept

  // `threaded`: the file's writes on a thread of the log's own (their outcomes come back
  // through Poll, when fd() is readable, and in every Flush).
  explicit DecisionLog(Log log, bool threaded = false);
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // Writes to `path` from now on (created 0640 with its folder); "" closes it.
  void SetPath(const std::string& path);
  const std::string& path() const { return path_; }
  bool on() const { return !path_.empty(); }
  // Queues one record (a JSON object without its newline).
  void Add(std::string_view json);
  // The same for a record in two parts (DecisionRecord::Head and a shared TakeTail).
  void Add(std::string_view head, std::string_view tail);
  // Appends what is queued (threaded: hands it to the thread, unless a write is on its
  // way). Call at the end of each loop turn.
  void Flush();
  // Threaded: takes the outcome of a write that finished. Readable fd (-1: not threaded).
  void Poll();
  int fd() const;
  // Writes everything queued and waits for it (at stop).
  void Drain();
  // Once a second: reopens the file when it was rotated away or removed.
  void Tick();
  const Stats& stats() const { return stats_; }
  size_t buffered() const { return buffer_.size(); }

 private:
  bool Open();
  void Close();
  // Waits for the write on its way and takes its outcome.
  void Settle();
  // What a write of `bytes` did: `done` bytes written, `error` (errno, 0 = none). What was
  // not written goes back in front of the buffer.
  void Written(std::string bytes, size_t done, int error);
  Log log_;
  std::unique_ptr<class JobThread> writer_;
  bool in_flight_ = false;
  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::string buffer_;
  std::string spare_;  // empty, with the memory of the last buffer written
  std::string problem_;  // the last error logged (each new one is logged once)
  Stats stats_;
};

}  // namespace relayban
