// FleetEvent: one decision shared between the hosts of a fleet (a ban or an unban), as it
// travels through Redis: a flat list of fields, signed with an HMAC-SHA256 over every field
// and the fleet's name, so a party that can write to Redis but lacks the key file cannot make
// any host ban anything. Decoding is strict (known kinds, parseable targets, lengths, no
// control characters); what a receiving host then accepts (ignore list, widest prefix,
// longest ban, rate) is FleetTrust's business. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

struct FleetEvent {
  // kVerdict: a fleet account rule's verdict (jail, rule, account; until = its ban's end):
  // every host bans the addresses it saw use the account.
  enum class Kind : uint8_t { kBan, kUnban, kVerdict };
  Kind kind = Kind::kBan;
  std::string host;  // the host that decided
  std::string id;    // unique per decision: "<host>-<sequence>"
  Prefix target;          // kBan, kUnban
  int64_t at_ms = 0;     // when it was decided (ban: its start; unban: when lifted)
  int64_t until_ms = 0;  // ban: when it ends; 0 = permanent
  std::string jail, rule, account, reason;
  std::string origin;  // "rule" or "manual"
};

using FleetFields = std::vector<std::pair<std::string, std::string>>;

// The fields as they go into the stream (and the ban's hash), "mac" last.
FleetFields EncodeFleetEvent(const FleetEvent& e, std::string_view fleet, std::string_view key);
// Checks the fields and their MAC; a refusal says why ("bad mac", "bad target", ...).
Result<FleetEvent> DecodeFleetEvent(const FleetFields& fields, std::string_view fleet, std::string_view key);

// Fields packed into one string and back (the outbox keeps events this way).
std::string PackFields(const FleetFields& fields);
std::optional<FleetFields> UnpackFields(std::string_view packed);

// SHA-1 of `data` in lower-case hex (the name Redis gives a script).
std::string Sha1Hex(std::string_view data);
// HMAC-SHA256 of `data` under `key`, in lower-case hex.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// A Redis stream entry id "ms-seq", for comparisons; nullopt when malformed.
std::optional<std::pair<uint64_t, uint64_t>> ParseStreamId(std::string_view id);

}  // namespace relayban
