#include "event_loop.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace relayban {
namespace {
uint32_t ToEpoll(uint32_t interest) {
  return (interest & Poller::kReadable ? EPOLLIN : 0u) | (interest & Poller::kWritable ? EPOLLOUT : 0u);
}
}  // namespace

EventLoop::~EventLoop() {
  if (epfd_ >= 0) close(epfd_);
}

Result<void> EventLoop::Open() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Fail(std::string("epoll: ") + std::strerror(errno));
  return {};
}

bool EventLoop::Watch(int fd, uint32_t interest, Handler handler) {
  if (fd < 0) return false;
  // The generation tells a stale event (for a descriptor unwatched, closed and reused within
  // one turn) from a current one.
  uint32_t gen = ++generation_;
  epoll_event ev{};
  ev.events = ToEpoll(interest);
  ev.data.u64 = (uint64_t{gen} << 32) | static_cast<uint32_t>(fd);
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  watched_[fd] = Watched{gen, std::move(handler)};
  return true;
}

void EventLoop::Change(int fd, uint32_t interest) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return;
  epoll_event ev{};
  ev.events = ToEpoll(interest);
  ev.data.u64 = (uint64_t{it->second.generation} << 32) | static_cast<uint32_t>(fd);
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Unwatch(int fd) {
  if (watched_.erase(fd)) epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

int EventLoop::Turn(int timeout_ms) {
  epoll_event events[64];
  int n = epoll_wait(epfd_, events, 64, timeout_ms);
  int handled = 0;
  for (int i = 0; i < n; ++i) {
    int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
    uint32_t gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
    auto it = watched_.find(fd);
    if (it == watched_.end() || it->second.generation != gen) continue;
    uint32_t what = (events[i].events & EPOLLIN ? kReadable : 0u) | (events[i].events & EPOLLOUT ? kWritable : 0u) |
                    (events[i].events & (EPOLLHUP | EPOLLERR) ? kHangup : 0u);
    Handler h = it->second.handler;  // a copy: the handler may unwatch itself
    h(what);
    ++handled;
  }
  return handled;
}

}  // namespace relayban
