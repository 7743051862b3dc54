#include "nonblocking_send.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace relayban {

long SendSome(int fd, std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  data.erase(0, done);
  return static_cast<long>(done);
}

}  // namespace relayban
