// JournalSource on real journal files written by systemd-journal-remote from export format
// (no journald needs to run). Skipped where systemd-journal-remote is not installed.
#include "relayban/source/journal_source.hpp"

#include <catch2/catch.hpp>

#include "journal_files.hpp"
#include "skip.hpp"
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace relayban;

namespace {

struct Entry {
  std::string unit, comm, ident, pid, message;
  uint64_t usec;
};

// Export format; a MESSAGE with a newline needs the binary field form.
std::string Export(const std::vector<Entry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    out += "__REALTIME_TIMESTAMP=" + std::to_string(e.usec) + "\n";
    out += "_HOSTNAME=mx1\n_SYSTEMD_UNIT=" + e.unit + "\n_COMM=" + e.comm + "\nSYSLOG_IDENTIFIER=" + e.ident +
           "\n_PID=" + e.pid + "\n";
    if (e.message.find('\n') == std::string::npos) {
      out += "MESSAGE=" + e.message + "\n";
    } else {
      out += "MESSAGE\n";
      uint64_t n = e.message.size();
      for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
      out += e.message + "\n";
    }
    out += "\n";
  }
  return out;
}

void Write(const std::filesystem::path& dir, const std::string& name, const std::vector<Entry>& entries) {
  REQUIRE(testing::WriteJournal(dir, name, Export(entries)));
}

}  // namespace

TEST_CASE("journald entries become lines, only from the trusted unit, and a cursor resumes") {
  if (!testing::CanWriteJournals()) {
    RELAYBAN_SKIP("systemd-journal-remote is not installed");
  }
  testing::JournalDir scratch("journal");
  const auto& dir = scratch.path;
  Write(dir, "a", {{"postfix@-.service", "smtpd", "postfix/smtpd", "25010",
                    "warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: authentication failure", 1764151530000100},
                   // Forged through syslog(3) by a web application: another unit, never read.
                   {"php8.2-fpm.service", "php-fpm8.2", "postfix/smtpd", "31337",
                    "warning: unknown[198.51.100.250]: SASL LOGIN authentication failed: x", 1764151530000200}});
  auto j = JournalSource::Open({"_SYSTEMD_UNIT=postfix@-.service"}, dir.string());
  REQUIRE(j);
  (*j)->Start(std::string("no-such-cursor"));  // an unusable cursor: start at the end
  std::vector<std::string> lines;
  (*j)->Poll([&](std::string_view l) { lines.emplace_back(l); });
  CHECK(lines.empty());

  auto fresh = JournalSource::Open({"_SYSTEMD_UNIT=postfix@-.service"}, dir.string());
  REQUIRE(fresh);
  std::string cursor;
  {
    // From the beginning, by seeking to a cursor before the first entry: read everything.
    auto all = JournalSource::Open({"_SYSTEMD_UNIT=postfix@-.service"}, dir.string());
    REQUIRE(all);
    (*all)->Poll([&](std::string_view l) { lines.emplace_back(l); });
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] ==
          "2025-11-26T10:05:30.000100Z mx1 postfix/smtpd[25010]: warning: unknown[203.0.113.9]: SASL LOGIN "
          "authentication failed: authentication failure");
    cursor = (*all)->cursor();
    CHECK_FALSE(cursor.empty());
  }
  // New entries, one of them with an embedded newline (a forged second line).
  Write(dir, "b", {{"postfix@-.service", "smtpd", "postfix/smtpd", "25011",
                    "warning: unknown[203.0.113.10]: SASL LOGIN authentication failed: authentication failure", 1764151531000000},
                   {"postfix@-.service", "smtpd", "postfix/smtpd", "25012",
                    "a\nNov 26 10:05:30 mx1 postfix/smtpd[1]: warning: unknown[198.51.100.250]: SASL LOGIN authentication failed: x",
                    1764151532000000}});
  auto resumed = JournalSource::Open({"_SYSTEMD_UNIT=postfix@-.service"}, dir.string());
  REQUIRE(resumed);
  (*resumed)->Start(cursor);
  lines.clear();
  (*resumed)->Poll([&](std::string_view l) { lines.emplace_back(l); });
  REQUIRE(lines.size() == 2);  // the entry at the cursor is not read again
  CHECK(lines[0].find("unknown[203.0.113.10]") != std::string::npos);
  CHECK(lines[1].find('\n') != std::string::npos);  // one record: the engine refuses it whole
}
