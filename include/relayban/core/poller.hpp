// Poller: the seam through which a part (the control server) asks the daemon's event loop to
// watch its descriptors. The loop (daemon/event_loop) implements it with epoll.
#pragma once

#include <cstdint>
#include <functional>

namespace relayban {

class Poller {
 public:
  enum : uint32_t { kReadable = 1, kWritable = 2, kHangup = 4 };
  using Handler = std::function<void(uint32_t what)>;
  virtual ~Poller() = default;
  // Calls `handler` with what happened whenever `fd` is ready for `interest`. False if the
  // descriptor cannot be watched.
  virtual bool Watch(int fd, uint32_t interest, Handler handler) = 0;
  virtual void Change(int fd, uint32_t interest) = 0;
  // Stops watching `fd`; pending events for it in the current turn are dropped. Call before
  // closing it.
  virtual void Unwatch(int fd) = 0;
};

}  // namespace relayban
