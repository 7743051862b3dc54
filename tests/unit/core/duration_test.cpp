#include "relayban/core/duration.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

TEST_CASE("durations parse with every unit and in combination") {
  CHECK(ParseDuration("90s") == Seconds(90));
  CHECK(ParseDuration("10m") == Seconds(600));
  CHECK(ParseDuration("1h30m") == Seconds(5400));
  CHECK(ParseDuration("2d") == Seconds(172800));
  CHECK(ParseDuration("1w") == Seconds(604800));
  CHECK(ParseDuration("0") == Seconds(0));
}

TEST_CASE("durations without a unit or with junk are refused") {
  for (const char* bad : {"", "10", "m", "10x", "1h 30m", "-5m", "1.5h", "99999999999999d", "11000d"})
    CHECK_FALSE(ParseDuration(bad));
}

TEST_CASE("durations format in their shortest exact form") {
  CHECK(FormatDuration(Seconds(3600)) == "1h");
  CHECK(FormatDuration(Seconds(5400)) == "1h30m");
  CHECK(FormatDuration(Seconds(90061)) == "1d1h1m1s");
  CHECK(FormatDuration(Seconds(0)) == "0s");
}

TEST_CASE("times format as ISO 8601 UTC") {
  CHECK(FormatIso8601(Time(Micros(int64_t{1764152400} * 1000000))) == "2025-11-26T10:20:00Z");
  // The last second formatted is handed out again: the same second, a fraction later, and
  // the seconds around it (before and after) each format as themselves.
  CHECK(FormatIso8601(Time(Micros(int64_t{1764152400} * 1000000 + 999999))) == "2025-11-26T10:20:00Z");
  CHECK(FormatIso8601(Time(Micros(int64_t{1764152401} * 1000000))) == "2025-11-26T10:20:01Z");
  CHECK(FormatIso8601(Time(Micros(int64_t{1764152399} * 1000000))) == "2025-11-26T10:19:59Z");
  CHECK(FormatIso8601(Time(Micros(int64_t{1764152399} * 1000000))) == "2025-11-26T10:19:59Z");
  CHECK(FormatIso8601(Time(Micros(-1))) == "1969-12-31T23:59:59Z");
  // The last two are kept (a record's own time and its line's): taking turns, and a third
  // second among them, each still formats as itself.
  auto at = [](int64_t s) { return FormatIso8601(Time(Micros(s * 1000000))); };
  for (int i = 0; i < 3; ++i) {
    CHECK(at(1764152400) == "2025-11-26T10:20:00Z");
    CHECK(at(1764238800) == "2025-11-27T10:20:00Z");
  }
  CHECK(at(1764325200) == "2025-11-28T10:20:00Z");
  CHECK(at(1764152400) == "2025-11-26T10:20:00Z");
  CHECK(at(1764238800) == "2025-11-27T10:20:00Z");
  CHECK(at(1764325200) == "2025-11-28T10:20:00Z");
}
