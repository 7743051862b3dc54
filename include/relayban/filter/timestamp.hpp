// Time stamp parsing: the first stage of the pipeline after a line is read. A line's own
// stamp gives the event its time, so a replay of a log decides exactly as live reading did.
// Pure: the current time and the local zone are passed in, never read here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "relayban/core/duration.hpp"
#include "relayban/spec/spec.hpp"

namespace relayban {

struct CivilTime {
  int year, month, day, hour, minute, second;
};

// Converts a civil time in the host's local zone to seconds since the epoch. Injected so the
// logic never reads the OS zone; UtcZone() is the zone of tests.
using LocalZone = std::function<int64_t(const CivilTime&)>;
int64_t CivilToUnix(const CivilTime& c);  // as if the civil time were UTC
const LocalZone& UtcZone();

struct StampShape {
  StampFormat format;
  size_t length;      // bytes of the stamp plus the blank(s) after it
  size_t offset = 0;  // kRfc5424: where its RFC 3339 time starts (after "<PRI>1 ")
};

// Recognises the stamp at the start of `line` by its shape alone (cheap, no conversion).
// With kAuto every format is tried; returns nullopt if the line does not start with one.
std::optional<StampShape> DetectStamp(std::string_view line, StampFormat expected);

// Converts a stamp recognised by DetectStamp. `now` resolves the missing year of syslog
// stamps: the year of `now`, or the one before if that would put the stamp more than a day
// in the future (New Year). Returns nullopt for out-of-range fields (month 13, nanos >= 1e9).
std::optional<Time> DecodeStamp(std::string_view line, const StampShape& shape, Time now,
                                const LocalZone& zone);

// The rest of an RFC 5424 line after its stamp ("HOST APP PROCID MSGID SD MSG") as the
// filters expect a syslog line: "HOST APP[PROCID]: MSG" (no [PROCID] when it is "-"; a
// leading UTF-8 BOM dropped). False if the header is malformed (the line is skipped).
bool Rfc5424Message(std::string_view rest, std::string& out);

}  // namespace relayban
