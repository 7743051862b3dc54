#include "relayban/filter/timestamp.hpp"

#include <cstring>

namespace relayban {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int Digits(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; ++i) v = v * 10 + (s[pos + i] - '0');
  return v;
}
bool AllDigits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = 0; i < n; ++i)
    if (!IsDigit(s[pos + i])) return false;
  return true;
}

int MonthIndex(std::string_view s) {
  if (s.size() < 3) return -1;
  // The three letters as one number: a switch, not twelve string compares per line.
  auto key = [](char a, char b, char c) {
    return (uint32_t{static_cast<unsigned char>(a)} << 16) | (uint32_t{static_cast<unsigned char>(b)} << 8) |
           uint32_t{static_cast<unsigned char>(c)};
  };
  switch (key(s[0], s[1], s[2])) {
    case key('J', 'a', 'n'): return 1;
    case key('F', 'e', 'b'): return 2;
    case key('M', 'a', 'r'): return 3;
    case key('A', 'p', 'r'): return 4;
    case key('M', 'a', 'y'): return 5;
    case key('J', 'u', 'n'): return 6;
    case key('J', 'u', 'l'): return 7;
    case key('A', 'u', 'g'): return 8;
    case key('S', 'e', 'p'): return 9;
    case key('O', 'c', 't'): return 10;
    case key('N', 'o', 'v'): return 11;
    case key('D', 'e', 'c'): return 12;
    default: return -1;
  }
}

// Skips the blanks after a stamp; a stamp must be followed by at least one.
std::optional<StampShape> Finish(std::string_view line, size_t end, StampFormat f) {
  if (end >= line.size() || line[end] != ' ') {
    if (end == line.size()) return StampShape{f, end};
    return std::nullopt;
  }
  while (end < line.size() && line[end] == ' ') ++end;
  return StampShape{f, end};
}

// "YYYY-MM-DD" at 0 and a separator at 10.
bool DatePart(std::string_view s) {
  return s.size() >= 19 && AllDigits(s, 0, 4) && s[4] == '-' && AllDigits(s, 5, 2) && s[7] == '-' &&
         AllDigits(s, 8, 2) && AllDigits(s, 11, 2) && s[13] == ':' && AllDigits(s, 14, 2) && s[16] == ':' &&
         AllDigits(s, 17, 2);
}

std::optional<StampShape> DetectSyslog(std::string_view s) {
  // "Mmm dd HH:MM:SS", "Mmm  d HH:MM:SS" or "Mmm d HH:MM:SS".
  if (s.size() < 14 || MonthIndex(s) < 0 || s[3] != ' ') return std::nullopt;
  size_t p = 4;
  if (s[p] == ' ') ++p;
  size_t day_start = p;
  while (p < s.size() && IsDigit(s[p]) && p - day_start < 2) ++p;
  if (p == day_start || p >= s.size() || s[p] != ' ') return std::nullopt;
  ++p;
  if (!(AllDigits(s, p, 2) && s.size() > p + 7 && s[p + 2] == ':' && AllDigits(s, p + 3, 2) && s[p + 5] == ':' &&
        AllDigits(s, p + 6, 2)))
    return std::nullopt;
  return Finish(s, p + 8, StampFormat::kSyslog);
}

std::optional<StampShape> DetectRfc3339(std::string_view s) {
  if (!DatePart(s) || s[10] != 'T') return std::nullopt;
  size_t p = 19;
  if (p < s.size() && s[p] == '.') {
    ++p;
    size_t start = p;
    while (p < s.size() && IsDigit(s[p])) ++p;
    if (p == start || p - start > 9) return std::nullopt;
  }
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) return Finish(s, p + 1, StampFormat::kRfc3339);
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    if (AllDigits(s, p + 1, 2) && p + 3 < s.size() && s[p + 3] == ':' && AllDigits(s, p + 4, 2))
      return Finish(s, p + 6, StampFormat::kRfc3339);
    if (AllDigits(s, p + 1, 4)) return Finish(s, p + 5, StampFormat::kRfc3339);
    return std::nullopt;
  }
  return Finish(s, p, StampFormat::kRfc3339);  // no offset: local time
}

std::optional<StampShape> DetectExim(std::string_view s) {
  if (!DatePart(s) || s[10] != ' ') return std::nullopt;
  size_t p = 19;
  if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
    if (!AllDigits(s, p + 1, 3)) return std::nullopt;
    p += 4;
  }
  // log_timezone: " +0100" belongs to the stamp.
  if (p + 6 <= s.size() && s[p] == ' ' && (s[p + 1] == '+' || s[p + 1] == '-') && AllDigits(s, p + 2, 4) &&
      (p + 6 == s.size() || s[p + 6] == ' '))
    p += 6;
  return Finish(s, p, StampFormat::kExim);
}

std::optional<StampShape> DetectRfc5424(std::string_view s) {
  // "<PRI>1 " with PRI of 1 to 3 digits, then an RFC 3339 time (the nil "-" is refused: the
  // line's time is what the filters' decisions rest on).
  if (s.size() < 4 || s[0] != '<') return std::nullopt;
  size_t p = 1;
  while (p < s.size() && p <= 3 && IsDigit(s[p])) ++p;
  if (p == 1 || p >= s.size() || s[p] != '>') return std::nullopt;
  ++p;
  if (p + 1 >= s.size() || s[p] != '1' || s[p + 1] != ' ') return std::nullopt;
  p += 2;
  auto inner = DetectRfc3339(s.substr(p));
  if (!inner) return std::nullopt;
  return StampShape{StampFormat::kRfc5424, p + inner->length, p};
}

std::optional<StampShape> DetectTai64n(std::string_view s) {
  if (s.size() < 25 || s[0] != '@' || s[1] != '4') return std::nullopt;
  for (size_t i = 1; i < 25; ++i)
    if (!IsHex(s[i])) return std::nullopt;
  return Finish(s, 25, StampFormat::kTai64n);
}

uint64_t Hex(std::string_view s, size_t pos, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    v = v * 16 + static_cast<uint64_t>(IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

bool ValidCivil(const CivilTime& c) {
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return c.year >= 1970 && c.year <= 2200 && c.month >= 1 && c.month <= 12 && c.day >= 1 &&
         c.day <= kDays[c.month - 1] && c.hour <= 23 && c.minute <= 59 && c.second <= 60;
}

Time FromUnix(int64_t secs, int64_t micros) {
  return Time(Micros(secs * 1'000'000 + micros));
}

}  // namespace

int64_t CivilToUnix(const CivilTime& c) {
  // Days from civil (H. Hinnant's algorithm), proleptic Gregorian.
  int y = c.year - (c.month <= 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = static_cast<unsigned>(y - era * 400);
  unsigned doy = (153 * static_cast<unsigned>(c.month + (c.month > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(c.day) - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
  return days * 86400 + c.hour * 3600 + c.minute * 60 + c.second;
}

const LocalZone& UtcZone() {
  static const LocalZone kUtc = [](const CivilTime& c) { return CivilToUnix(c); };
  return kUtc;
}

std::optional<StampShape> DetectStamp(std::string_view line, StampFormat expected) {
  switch (expected) {
    case StampFormat::kSyslog: return DetectSyslog(line);
    case StampFormat::kRfc3339: return DetectRfc3339(line);
    case StampFormat::kExim: return DetectExim(line);
    case StampFormat::kTai64n: return DetectTai64n(line);
    case StampFormat::kRfc5424: return DetectRfc5424(line);
    case StampFormat::kNone: return StampShape{StampFormat::kNone, 0};
    case StampFormat::kAuto: break;
  }
  if (line.empty()) return std::nullopt;
  char c = line[0];
  if (c == '@') return DetectTai64n(line);
  if (c == '<') return DetectRfc5424(line);
  if (IsDigit(c)) {
    if (line.size() > 10 && line[10] == 'T') return DetectRfc3339(line);
    return DetectExim(line);
  }
  return DetectSyslog(line);
}

std::optional<Time> DecodeStamp(std::string_view s, const StampShape& shape, Time now, const LocalZone& zone) {
  switch (shape.format) {
    case StampFormat::kNone:
    case StampFormat::kAuto:
      return now;
    case StampFormat::kRfc5424: {
      StampShape inner{StampFormat::kRfc3339, shape.length - shape.offset};
      return DecodeStamp(s.substr(shape.offset), inner, now, zone);
    }
    case StampFormat::kTai64n: {
      uint64_t label = Hex(s, 1, 16);
      uint64_t nanos = Hex(s, 17, 8);
      // daemontools writes 2^62 + 10 + unix seconds (tai.h); undo exactly that.
      constexpr uint64_t kOffset = 4611686018427387914ull;
      if (nanos >= 1'000'000'000ull || label < kOffset || label - kOffset > (1ull << 40)) return std::nullopt;
      return FromUnix(static_cast<int64_t>(label - kOffset), static_cast<int64_t>(nanos / 1000));
    }
    case StampFormat::kSyslog: {
      CivilTime c{};
      c.month = MonthIndex(s);
      size_t p = 4;
      if (s[p] == ' ') ++p;
      c.day = 0;
      while (IsDigit(s[p])) c.day = c.day * 10 + (s[p++] - '0');
      ++p;
      c.hour = Digits(s, p, 2);
      c.minute = Digits(s, p + 3, 2);
      c.second = Digits(s, p + 6, 2);
      auto now_secs = std::chrono::floor<Seconds>(now.time_since_epoch()).count();
      int64_t days = now_secs / 86400;
      // Year of `now` (UTC is close enough to pick between two candidate years).
      int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
      int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
      int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
      int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
      c.year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
      if (c.month == 2 && c.day == 29) {
        // Feb 29 only exists in leap years: pick the latest leap year not in the future.
        auto leap = [](int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; };
        while (!leap(c.year)) --c.year;
      }
      if (!ValidCivil(c)) return std::nullopt;
      int64_t t = zone(c);
      if (t > now_secs + 86400) {
        --c.year;
        if (!ValidCivil(c)) return std::nullopt;
        t = zone(c);
      }
      return FromUnix(t, 0);
    }
    case StampFormat::kRfc3339:
    case StampFormat::kExim: {
      CivilTime c{Digits(s, 0, 4), Digits(s, 5, 2), Digits(s, 8, 2), Digits(s, 11, 2), Digits(s, 14, 2), Digits(s, 17, 2)};
      if (!ValidCivil(c)) return std::nullopt;
      size_t p = 19;
      int64_t micros = 0;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        int n = 0;
        while (p < s.size() && IsDigit(s[p])) {
          if (n < 6) micros = micros * 10 + (s[p] - '0');
          ++n;
          ++p;
        }
        for (; n < 6; ++n) micros *= 10;
      }
      if (p < s.size() && s[p] == ' ' && shape.format == StampFormat::kExim) ++p;
      if (p < shape.length && (s[p] == 'Z' || s[p] == 'z')) return FromUnix(CivilToUnix(c), micros);
      if (p < shape.length && (s[p] == '+' || s[p] == '-')) {
        int sign = s[p] == '-' ? -1 : 1;
        int hh = Digits(s, p + 1, 2);
        int mm = s[p + 3] == ':' ? Digits(s, p + 4, 2) : Digits(s, p + 3, 2);
        if (hh > 23 || mm > 59) return std::nullopt;
        return FromUnix(CivilToUnix(c) - sign * (hh * 3600 + mm * 60), micros);
      }
      return FromUnix(zone(c), micros);
    }
  }
  return std::nullopt;
}

bool Rfc5424Message(std::string_view rest, std::string& out) {
  // Four space-separated header fields: HOSTNAME APP-NAME PROCID MSGID (nil: "-").
  std::string_view field[4];
  for (auto& f : field) {
    size_t sp = rest.find(' ');
    if (sp == 0 || sp == std::string_view::npos) return false;
    f = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
  }
  // STRUCTURED-DATA: "-" or [id param="value" ...]... where a value may hold \", \\ and \].
  if (rest.empty()) return false;
  if (rest[0] == '-') {
    rest.remove_prefix(1);
  } else {
    while (!rest.empty() && rest[0] == '[') {
      size_t i = 1;
      bool quoted = false, closed = false;
      for (; i < rest.size(); ++i) {
        char c = rest[i];
        if (quoted) {
          if (c == '\\') ++i;
          else if (c == '"') quoted = false;
        } else if (c == '"') {
          quoted = true;
        } else if (c == ']') {
          closed = true;
          break;
        }
      }
      if (!closed) return false;
      rest.remove_prefix(i + 1);
    }
  }
  if (!rest.empty()) {
    if (rest[0] != ' ') return false;
    rest.remove_prefix(1);
  }
  if (rest.size() >= 3 && rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  out.clear();
  out.append(field[0]).append(" ").append(field[1]);
  if (field[2] != "-") out.append("[").append(field[2]).append("]");
  out.append(": ").append(rest);
  return true;
}

}  // namespace relayban
