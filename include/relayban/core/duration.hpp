// Durations and points in time as relayban uses them. Times are microseconds since the Unix
// epoch (UTC) on the log's own clock; durations in configuration are whole seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace relayban {

using Micros = std::chrono::microseconds;
using Seconds = std::chrono::seconds;
using Time = std::chrono::time_point<std::chrono::system_clock, Micros>;

// "90s", "10m", "1h", "1h30m", "2d", "1w"; a bare "0" is zero. Returns nullopt on anything
// else, including a missing unit, overflow, or an empty string.
std::optional<Seconds> ParseDuration(std::string_view text);
// Shortest exact form: 3600s -> "1h", 5400s -> "1h30m", 0 -> "0s".
std::string FormatDuration(Seconds d);
// ISO 8601 UTC with a 'Z', to the second: "2025-11-26T10:20:00Z".
std::string FormatIso8601(Time t);

}  // namespace relayban
