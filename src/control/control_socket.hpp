// The control socket: a Unix stream socket, one JSON object per line each way. The server
// side checks the peer with SO_PEERCRED (root, or a member of the configured group); the
// client side is what `relayban ban|unban|list|status|accounts|reload` use.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "relayban/core/result.hpp"

namespace relayban {

// Creates the listening socket at `path` (removing a stale one), mode 0600, or 0660 with
// group `group` when given. Returns the fd.
Result<int> ListenControl(const std::string& path, const std::string& group);
// Whether the peer of `fd` may send commands: uid 0, or in `group`.
Result<void> CheckPeer(int fd, const std::string& group);
// Sends one request and waits (up to `timeout_ms`) for its one-line answer.
Result<nlohmann::json> ControlRequest(const std::string& path, const nlohmann::json& request, int timeout_ms = 10000);

}  // namespace relayban
