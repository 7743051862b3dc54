// Durations and points in time as relayban uses them. Times are microseconds since the Unix
// epoch (UTC) on the log's own clock; durations in configuration are whole seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relayban {

using Micros = std::chrono::microseconds;
using Seconds = std::chrono::seconds;
using Time = std::chrono::time_point<std::chrono::system_clock, Micros>;

// Whole seconds since the epoch in 32 bits (until 2106), for compact tables of many keys.
// Times before the epoch are 0; the largest value is reserved by some tables.
inline uint32_t SecondsOf(Time t) {
  auto s = std::chrono::floor<Seconds>(t.time_since_epoch()).count();
  return s < 0 ? 0 : s > 0xFFFFFFFEll ? 0xFFFFFFFEu : static_cast<uint32_t>(s);
}

// "90s", "10m", "1h", "1h30m", "2d", "1w"; a bare "0" is zero. Returns nullopt on anything
// else, including a missing unit, overflow, or an empty string.
std::optional<Seconds> ParseDuration(std::string_view text);
// Shortest exact form: 3600s -> "1h", 5400s -> "1h30m", 0 -> "0s".
std::string FormatDuration(Seconds d);
// ISO 8601 UTC with a 'Z', to the second: "2025-11-26T10:20:00Z".
std::string FormatIso8601(Time t);

}  // namespace relayban
