// The client side of the control socket, used by `relayban ban|unban|list|status|...`.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "relayban/core/result.hpp"

namespace relayban {

// Sends one request line and calls `on_line` for every answer line until the daemon closes
// the connection; each read waits at most `timeout_ms`. Errors: kUnavailable when no daemon
// listens, kPermission when the socket may not be opened, kOther otherwise.
Result<void> ControlExchange(const std::string& path, std::string_view request,
                             const std::function<void(std::string_view line)>& on_line, int timeout_ms = 30000);

}  // namespace relayban
