// Real journal files for tests, without a running journald: entries in journald's export
// format (one "FIELD=value" line each, a blank line between entries) written into a journal
// directory by systemd-journal-remote.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace relayban::testing {

inline const char* kJournalRemote = "/lib/systemd/systemd-journal-remote";
inline bool CanWriteJournals() { return access(kJournalRemote, X_OK) == 0; }

// A fresh, empty journal directory, removed with this object.
struct JournalDir {
  explicit JournalDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("relayban-" + tag + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~JournalDir() { std::filesystem::remove_all(path); }
  JournalDir(const JournalDir&) = delete;
  JournalDir& operator=(const JournalDir&) = delete;
  std::filesystem::path path;
};

// Writes `entries` (export format) as `dir`/`name`.journal. True when it worked.
inline bool WriteJournal(const std::filesystem::path& dir, const std::string& name, const std::string& entries) {
  auto exp = dir / (name + ".export");
  std::ofstream(exp, std::ios::binary) << entries;
  std::string cmd = std::string(kJournalRemote) + " -o " + (dir / (name + ".journal")).string() + " " + exp.string() + " 2>/dev/null";
  bool ok = std::system(cmd.c_str()) == 0;
  std::filesystem::remove(exp);
  return ok;
}

// One of journald's own reports (_TRANSPORT=driver unless told otherwise).
inline std::string JournaldReport(const std::string& message_id, const std::string& message, uint64_t usec,
                                  const std::string& transport = "driver") {
  return "__REALTIME_TIMESTAMP=" + std::to_string(usec) + "\n_HOSTNAME=mx1\n_TRANSPORT=" + transport +
         "\n_COMM=systemd-journal\nSYSLOG_IDENTIFIER=systemd-journald\n_PID=19\nMESSAGE_ID=" + message_id +
         "\nMESSAGE=" + message + "\n\n";
}

inline const std::string kJournalDroppedId = "a596d6fe7bfa4994828e72309e95d61e";     // SD_MESSAGE_JOURNAL_DROPPED
inline const std::string kForwardMissedId = "0027229ca0644181a76c4e92458afa2e";      // SD_MESSAGE_FORWARD_SYSLOG_MISSED

}  // namespace relayban::testing
