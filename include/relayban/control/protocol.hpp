// The control protocol: one JSON object per line each way on the daemon's Unix socket. This
// part is pure - request text to a typed request and back - so it is unit-tested and fuzzed
// without a socket. Answers are JSON objects with "ok"; `list` and `accounts` answer with one
// line per item ({"ban": {...}} or {"account": {...}}) and a last line {"ok": true, "count": N},
// so a million bans stream without one giant line.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "relayban/core/result.hpp"

namespace relayban {

struct ControlRequest {
  enum class Command : uint8_t { kStatus, kList, kAccounts, kReload, kBan, kUnban, kForgive, kMetrics, kExplain };
  Command command = Command::kStatus;
  std::string jail;                     // status: only this jail; ban: file it under this jail
  std::string target;                   // ban, unban: an address or prefix; forgive: an account; explain: either
  std::optional<std::string> duration;  // ban: "1h", "0" (permanent); none = the default
  std::string reason;                   // ban
  bool force = false;                   // ban: even an address of the ignore list
  bool all = false;                     // unban: every ban
};

// Parses one request line (without its newline). The error message is meant for the client.
Result<ControlRequest> ParseControlRequest(std::string_view line);
// The request as one line of JSON (without the newline), for the client.
std::string FormatControlRequest(const ControlRequest& request);
// {"error": message, "ok": false} (one line, without the newline).
std::string ErrorAnswer(std::string_view message);

}  // namespace relayban
