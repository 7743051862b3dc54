#include "log_sink.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace relayban {
namespace {

bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  return fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

const char* LevelName(int priority) {
  static const char* const kNames[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};
  return kNames[priority < 0 ? 0 : priority > 7 ? 7 : priority];
}

}  // namespace

void LogLine(int priority, const std::string& message) {
  static const bool journal = StderrIsJournal();
  std::string line;
  if (journal) {
    line = "<" + std::to_string(priority) + ">" + message + "\n";
  } else {
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[96];  // room for any year gmtime_r can give
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    line = std::string(stamp) + LevelName(priority) + ": " + message + "\n";
  }
  (void)!write(2, line.data(), line.size());
}

}  // namespace relayban
