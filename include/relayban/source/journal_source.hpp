// JournalSource: reads journald through sd-journal (libsystemd), matching only trusted
// fields (_SYSTEMD_UNIT, _COMM, ... - set by journald, not by the logging process), so a
// line forged through syslog(3) by a web application is never read. Each entry becomes one
// line "<RFC 3339 UTC stamp> <_HOSTNAME> <SYSLOG_IDENTIFIER>[<_PID>]: <MESSAGE>"; a MESSAGE
// with a newline or other control bytes stays one record and the engine skips it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/result.hpp"

struct sd_journal;

namespace relayban {

class JournalSource {
 public:
  ~JournalSource();
  // Opens the system journal, or the journal files in `directory` when given.
  static Result<std::unique_ptr<JournalSource>> Open(const std::vector<std::string>& matches, const std::string& directory);

  // Positions the reader after `cursor`, or at the end of the journal without one.
  void Start(const std::optional<std::string>& cursor);
  // Reads new entries, at most `max_lines`, and no more once `stop` (if given, asked every 64
  // entries) says so. Returns the number of lines handed out.
  size_t Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines = SIZE_MAX,
              const std::function<bool()>& stop = nullptr);
  // The last Poll stopped at its limit: entries may be waiting.
  bool more() const { return more_; }
  // The fd to watch for new entries (sd_journal_get_fd), -1 if none.
  int fd() const;
  std::string cursor() const { return cursor_; }
  // A name for the state store and status: "journal:" + the matches.
  const std::string& name() const { return name_; }

 private:
  JournalSource(sd_journal* j, std::string name) : j_(j), name_(std::move(name)) {}
  sd_journal* j_;
  std::string name_;
  std::string cursor_;
  std::string line_;
  bool more_ = false;
};

}  // namespace relayban
