// JournaldLosses: the report texts, and journald's own entries read from real journal files
// (written by systemd-journal-remote from export format) while a forged copy is not.
#include "relayban/source/journald_losses.hpp"

#include <catch2/catch.hpp>

#include "journal_files.hpp"
#include "skip.hpp"

#include <filesystem>
#include <vector>

using namespace relayban;

using testing::JournaldReport;
using testing::kForwardMissedId;
using testing::kJournalDroppedId;

TEST_CASE("journald's loss reports: the rate limit's (with its unit) and the syslog forwarding's") {
  auto a = JournaldLosses::Parse("Suppressed 52311 messages from postfix@-.service");
  REQUIRE(a);
  CHECK(a->kind == JournaldLoss::Kind::kRateLimit);
  CHECK(a->unit == "postfix@-.service");
  CHECK(a->lines == 52311);
  auto b = JournaldLosses::Parse("Suppressed 7 messages from /system.slice/dovecot.service");
  REQUIRE(b);
  CHECK(b->unit == "dovecot.service");
  auto c = JournaldLosses::Parse("Forwarding to syslog missed 34 messages.");
  REQUIRE(c);
  CHECK(c->kind == JournaldLoss::Kind::kSyslogForward);
  CHECK(c->lines == 34);
  CHECK(c->unit.empty());
  auto huge = JournaldLosses::Parse("Forwarding to syslog missed 99999999999999999999999 messages.");
  REQUIRE(huge);
  CHECK(huge->lines == UINT64_MAX);
  for (const char* bad : {"Suppressed messages from postfix@-.service", "Suppressed 12 messages from ",
                          "Suppressed 12 messages from a b", "Suppressed -3 messages from x.service",
                          "Suppressed 12 lines from x.service", "Forwarding to syslog missed 34 messages",
                          "Forwarding to syslog missed x messages.", "Journal started", ""}) {
    INFO(bad);
    CHECK_FALSE(JournaldLosses::Parse(bad));
  }
}

TEST_CASE("journald's own loss reports are read from the journal, a forged one is not, older ones are history") {
  if (!testing::CanWriteJournals()) {
    RELAYBAN_SKIP("systemd-journal-remote is not installed");
  }
  testing::JournalDir scratch("losses");
  const auto& dir = scratch.path;
  REQUIRE(testing::WriteJournal(dir, "a", JournaldReport(kJournalDroppedId, "Suppressed 500 messages from postfix@-.service", 1764151530000000)));
  auto w = JournaldLosses::Open(dir.string());
  REQUIRE(w);
  (*w)->fd();  // watches the directory for new files, as the daemon does
  (*w)->Start();
  std::vector<JournaldLoss> seen;
  auto collect = [&](const JournaldLoss& l) { seen.push_back(l); };
  CHECK((*w)->Poll(collect) == 0);  // before the start: history

  REQUIRE(testing::WriteJournal(
      dir, "b",
      JournaldReport(kJournalDroppedId, "Suppressed 52311 messages from postfix@-.service", 1764151560000000) +
          // Forged: a process logging the same text with the same MESSAGE_ID.
          JournaldReport(kJournalDroppedId, "Suppressed 999 messages from dovecot.service", 1764151561000000, "syslog") +
          JournaldReport(kForwardMissedId, "Forwarding to syslog missed 77 messages.", 1764151561500000, "stdout") +
          // journald's own, about something else.
          JournaldReport("f77379a8490b408bbe5f6940505a777b", "Journal started", 1764151562000000) +
          JournaldReport(kForwardMissedId, "Forwarding to syslog missed 34 messages.", 1764151563000000)));
  CHECK((*w)->Poll(collect) == 2);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].kind == JournaldLoss::Kind::kRateLimit);
  CHECK(seen[0].unit == "postfix@-.service");
  CHECK(seen[0].lines == 52311);
  CHECK(seen[1].kind == JournaldLoss::Kind::kSyslogForward);
  CHECK(seen[1].lines == 34);
  CHECK((*w)->Poll(collect) == 0);  // each report once
}
