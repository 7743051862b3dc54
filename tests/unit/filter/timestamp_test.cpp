#include "relayban/filter/timestamp.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
Time At(int64_t unix_secs, int64_t micros = 0) { return Time(Micros(unix_secs * 1000000 + micros)); }
// 2026-11-27T00:00:00Z, the fake "now" of these tests.
const Time kNow = At(CivilToUnix({2026, 11, 27, 0, 0, 0}));

std::optional<Time> Parse(std::string_view line, StampFormat f = StampFormat::kAuto, Time now = kNow) {
  auto shape = DetectStamp(line, f);
  if (!shape) return std::nullopt;
  return DecodeStamp(line, *shape, now, UtcZone());
}
}  // namespace

TEST_CASE("classic syslog stamps take the year of now") {
  CHECK(Parse("Nov 26 10:20:00 mx1 x") == At(CivilToUnix({2026, 11, 26, 10, 20, 0})));
  CHECK(Parse("Nov  4 09:11:01 mx1 x") == At(CivilToUnix({2026, 11, 4, 9, 11, 1})));
  CHECK(Parse("Aug 4 16:47:52 mail3 x") == At(CivilToUnix({2026, 8, 4, 16, 47, 52})));
  CHECK(Parse("Jul 02 06:25:43 srv x") == At(CivilToUnix({2026, 7, 2, 6, 25, 43})));
}

TEST_CASE("every month name is read and other three letters are not a month") {
  const char* names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int m = 1; m <= 12; ++m) {
    std::string line = std::string(names[m - 1]) + "  1 12:00:00 mx1 x";
    INFO(line);
    int year = m == 12 ? 2025 : 2026;  // Dec 1 would be after "now", so it is last year's
    CHECK(Parse(line) == At(CivilToUnix({year, m, 1, 12, 0, 0})));
  }
  for (const char* bad : {"jan  1 12:00:00 x", "JAN  1 12:00:00 x", "Jam  1 12:00:00 x", "Ja"}) CHECK_FALSE(Parse(bad));
}

TEST_CASE("a syslog stamp in the future belongs to last year (New Year rollover)") {
  Time jan2 = At(CivilToUnix({2027, 1, 2, 0, 0, 0}));
  CHECK(Parse("Dec 31 23:59:59 mx1 x", StampFormat::kAuto, jan2) == At(CivilToUnix({2026, 12, 31, 23, 59, 59})));
  CHECK(Parse("Jan  1 00:00:01 mx1 x", StampFormat::kAuto, jan2) == At(CivilToUnix({2027, 1, 1, 0, 0, 1})));
}

TEST_CASE("syslog stamps are local time through the injected zone") {
  LocalZone plus_one = [](const CivilTime& c) { return CivilToUnix(c) - 3600; };
  auto shape = DetectStamp("Nov 26 10:20:00 x", StampFormat::kAuto);
  REQUIRE(shape);
  CHECK(DecodeStamp("Nov 26 10:20:00 x", *shape, kNow, plus_one) == At(CivilToUnix({2026, 11, 26, 9, 20, 0})));
}

TEST_CASE("RFC 3339 stamps with and without the colon in the offset and with fractions") {
  int64_t base = CivilToUnix({2025, 11, 26, 9, 4, 0});
  CHECK(Parse("2025-11-26T10:04:00+0100 mx1") == At(base));
  CHECK(Parse("2025-11-26T10:04:00+01:00 mx1") == At(base));
  CHECK(Parse("2025-11-26T09:04:00Z mx1") == At(base));
  CHECK(Parse("2025-11-26T10:04:01.123456+01:00 mx1") == At(base + 1, 123456));
  CHECK(Parse("2024-08-25T12:31:56.154748+00:00 machine") == At(CivilToUnix({2024, 8, 25, 12, 31, 56}), 154748));
  CHECK(Parse("2025-11-26T03:04:00-06:00 x") == At(base));
}

TEST_CASE("Exim and log4j stamps with milliseconds and an optional zone") {
  CHECK(Parse("2013-01-04 17:03:46 login") == At(CivilToUnix({2013, 1, 4, 17, 3, 46})));
  CHECK(Parse("2023-05-30 06:10:13.345 login") == At(CivilToUnix({2023, 5, 30, 6, 10, 13}), 345000));
  CHECK(Parse("2021-03-03 19:51:53,762 INFO") == At(CivilToUnix({2021, 3, 3, 19, 51, 53}), 762000));
  CHECK(Parse("2021-05-04 13:37:00 +0100 x") == At(CivilToUnix({2021, 5, 4, 12, 37, 0})));
  auto shape = DetectStamp("2021-05-04 13:37:00 +0100 x", StampFormat::kAuto);
  REQUIRE(shape);
  CHECK(shape->length == 26);
}

TEST_CASE("TAI64N stamps use the daemontools convention") {
  // fail2ban's sample: label 0x400000004c91b044 -> 2010-09-16 05:50:50 UTC, 125476500 ns.
  CHECK(Parse("@400000004c91b044077a9e94 dovecot-auth: x") == At(1284616250, 125476));
  CHECK(Parse("@400000006926d45a000003e8 tcpserver: status: 1/100") == At(CivilToUnix({2025, 11, 26, 10, 20, 0}), 1));
}

TEST_CASE("malformed and truncated stamps are not recognised") {
  for (const char* bad : {"Nov 26 10:0", "Nov 26 10:00:00x", "Foo 26 10:00:00 x", "Nov 266 10:00:00 x", "2025-11-26",
                          "2025-11-26T10:04:00+1 x", "@400000006926d45a00003e8 x", "@5000000000000000000000000 x",
                          "@40000000692gd45a000003e8 x", "", "random text", "2025-1-26 10:00:00 x"})
    CHECK_FALSE(DetectStamp(bad, StampFormat::kAuto));
}

TEST_CASE("stamps whose fields are out of range do not decode") {
  CHECK_FALSE(Parse("2025-13-26 10:00:00 x"));
  CHECK_FALSE(Parse("2025-02-30T10:00:00Z x"));
  CHECK_FALSE(Parse("Nov 31 10:00:00 x"));
  CHECK_FALSE(Parse("Nov 26 25:00:00 x"));
  CHECK_FALSE(Parse("@4000000069270000ffffffff x"));  // nanoseconds >= 1e9
}

TEST_CASE("a declared format refuses other formats") {
  CHECK_FALSE(DetectStamp("Nov 26 10:20:00 mx1 x", StampFormat::kTai64n));
  CHECK(DetectStamp("@400000006926d45a000003e8 x", StampFormat::kTai64n));
  auto none = DetectStamp("[NOTICE] haraka", StampFormat::kNone);
  REQUIRE(none);
  CHECK(none->length == 0);
  CHECK(DecodeStamp("x", *none, kNow, UtcZone()) == kNow);
}

TEST_CASE("RFC 5424 lines: the time after <PRI>1, the header rewritten as a syslog line's") {
  std::string line = "<38>1 2026-11-26T10:20:00.5+01:00 mx1 postfix/smtpd 4101 - - warning: x";
  auto shape = DetectStamp(line, StampFormat::kAuto);
  REQUIRE(shape);
  CHECK(shape->format == StampFormat::kRfc5424);
  CHECK(Parse(line) == At(CivilToUnix({2026, 11, 26, 9, 20, 0}), 500000));
  CHECK(Parse(line, StampFormat::kRfc5424) == Parse(line));
  std::string out;
  REQUIRE(Rfc5424Message(std::string_view(line).substr(shape->length), out));
  CHECK(out == "mx1 postfix/smtpd[4101]: warning: x");
  // No PROCID, structured data with quoted ] and \", a BOM, an empty message.
  CHECK(Rfc5424Message(R"(h app - ID47 [a b="x]\"y"][c d="e"] msg)", out));
  CHECK(out == "h app: msg");
  CHECK(Rfc5424Message("h app 7 - - \xEF\xBB\xBFmsg", out));
  CHECK(out == "h app[7]: msg");
  CHECK(Rfc5424Message("h app 7 - -", out));
  CHECK(out == "h app[7]: ");
  // Malformed: missing fields, unclosed structured data, no space before the message.
  CHECK_FALSE(Rfc5424Message("h app 7", out));
  CHECK_FALSE(Rfc5424Message("h app 7 - [a b=\"c\" msg", out));
  CHECK_FALSE(Rfc5424Message("h app 7 - [a]msg", out));
  CHECK_FALSE(Rfc5424Message("h  app 7 - - msg", out));
  // Not RFC 5424: other versions, a nil or missing time, a PRI of four digits.
  CHECK_FALSE(Parse("<38>2 2026-11-26T10:20:00Z mx1 a 1 - - m"));
  CHECK_FALSE(Parse("<38>1 - mx1 a 1 - - m"));
  CHECK_FALSE(Parse("<1234>1 2026-11-26T10:20:00Z mx1 a 1 - - m"));
  CHECK_FALSE(Rfc5424Message("", out));  // a stamp and nothing after it
}
