// Writing to a non-blocking stream socket, shared by the control server and the metrics
// listener: as much as the peer takes now, never SIGPIPE.
#pragma once

#include <cstddef>
#include <string>

namespace relayban {

// Sends from the start of `data` until the socket would block; erases what was sent.
// Returns the bytes sent, or -1 when the peer is gone (the caller drops it).
long SendSome(int fd, std::string& data);

}  // namespace relayban
