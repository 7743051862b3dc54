// EventLoop: the daemon's one epoll loop. Parts register descriptors with a handler (Poller);
// Turn waits once and dispatches. A handler may watch and unwatch descriptors, its own
// included, while the turn runs.
#pragma once

#include <map>

#include "relayban/core/poller.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

class EventLoop : public Poller {
 public:
  EventLoop() = default;
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Result<void> Open();
  bool Watch(int fd, uint32_t interest, Handler handler) override;
  void Change(int fd, uint32_t interest) override;
  void Unwatch(int fd) override;
  // Waits up to `timeout_ms` (0 = not at all) and dispatches what is ready. Returns the
  // number of events handled.
  int Turn(int timeout_ms);

 private:
  struct Watched {
    uint32_t generation;
    Handler handler;
  };
  int epfd_ = -1;
  uint32_t generation_ = 0;
  std::map<int, Watched> watched_;
};

}  // namespace relayban
