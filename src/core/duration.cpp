#include "relayban/core/duration.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace relayban {

std::optional<Seconds> ParseDuration(std::string_view text) {
  if (text == "0") return Seconds(0);
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > 100'000'000) return std::nullopt;
      ++i;
    }
    if (i == start || i == text.size()) return std::nullopt;  // number without unit
    int64_t unit;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      default: return std::nullopt;
    }
    ++i;
    total += n * unit;
    if (total > int64_t{10} * 365 * 86400) return std::nullopt;  // over ten years: a typo
  }
  return Seconds(total);
}

std::string FormatDuration(Seconds d) {
  int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  static constexpr struct { int64_t secs; char unit; } kUnits[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (auto [secs, unit] : kUnits) {
    if (s >= secs) {
      out += std::to_string(s / secs);
      out += unit;
      s %= secs;
    }
  }
  return out;
}

std::string FormatIso8601(Time t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
  // A burst decides a million times within a few seconds: the last two seconds formatted
  // are kept (per thread) and handed out again - two, as a decision record carries both
  // the time it was made and the log time of its line.
  struct Formatted {
    int64_t secs = INT64_MIN;
    char text[72] = {};  // room for any int in each field (the compiler checks it)
  };
  thread_local Formatted last[2];
  thread_local unsigned older = 0;  // the entry to replace next
  for (const Formatted& f : last)
    if (f.secs == secs) return f.text;
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  Formatted& f = last[older];
  older ^= 1;
  std::snprintf(f.text, sizeof f.text, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  f.secs = secs;
  return f.text;
}

}  // namespace relayban
