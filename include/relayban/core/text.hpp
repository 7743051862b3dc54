// Small text routines shared by the stages: validation of untrusted log bytes and safe
// display of attacker-controlled text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace relayban {

// True if `line` is valid UTF-8 without NUL or other C0 control characters except TAB.
// ASCII lines take a fast path.
bool IsCleanText(std::string_view line);
// ASCII lower-case copy.
std::string ToLowerAscii(std::string_view s);
// Writes `s` lower-cased (ASCII letters only; other bytes as they are) to out[0, s.size()),
// eight bytes at a time: every event's account and addresses are keyed lower-case.
void LowerAsciiInto(std::string_view s, char* out);
// For output meant for people: control and non-ASCII bytes become '?', length capped.
std::string Printable(std::string_view s, size_t max_len = 256);
// Appends `s` as a quoted JSON string: quotes, backslashes and control characters escaped
// (as nlohmann::json writes them), each invalid UTF-8 sequence replaced by U+FFFD, so any
// bytes an attacker logs make valid JSON. For records written by the million (the decision
// log under a botnet), where building a json object per record costs more than the work.
void AppendJsonString(std::string& out, std::string_view s);
// 64-bit FNV-1a; used to keep distinct values without storing them.
uint64_t Hash64(std::string_view s);

// Hash for unordered containers keyed by std::string that are looked up with string_view
// (use with std::equal_to<>), so a lookup never builds a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace relayban
