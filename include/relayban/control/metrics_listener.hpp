// MetricsListener: the optional HTTP endpoint Prometheus scrapes (`metrics: {listen: ...}`),
// served inside the daemon's epoll loop like the control socket. Deliberately small: HTTP/1.0
// semantics, GET or HEAD of /metrics only, one request per connection, a request capped at
// 8 KiB that must arrive within 2 s, a bounded number of peers, the answer written as the
// peer reads it. Anything else gets a short error status and the connection closed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "relayban/core/clock.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/poller.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

class MetricsListener {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  using Render = std::function<std::string()>;  // the exposition text
  struct Limits {
    size_t max_clients = 16;
    size_t max_request = 8192;
    std::chrono::seconds timeout{2};  // to send the request, and to read each part of the answer
  };
  struct Stats {
    uint64_t requests = 0;   // answered with the metrics
    uint64_t rejected = 0;   // bad method, path, size, or too many peers
    uint64_t timed_out = 0;
  };

  // `poller` and `clock` must outlive the listener.
  MetricsListener(Poller& poller, const Clock& clock, Limits limits, Log log);
  ~MetricsListener();
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  // Listens on address:port (SO_REUSEADDR; port 0 picks one, see port()).
  Result<void> Listen(const IpAddress& address, uint16_t port, Render render);
  uint16_t port() const { return port_; }
  bool listening() const { return listen_ >= 0; }
  // Drops peers past the timeout; call every tick.
  void Tick();
  void Shutdown();
  const Stats& stats() const { return stats_; }

  // The answer to one request's head (pure; for tests): status line, headers, body.
  static std::string Answer(std::string_view request_head, const Render& render, bool* ok = nullptr);

 private:
  struct Peer {
    int fd = -1;
    std::string in, out;
    bool answered = false;
    Clock::Steady since;
  };
  void Accept();
  void OnPeer(uint64_t id, uint32_t what);
  void Flush(uint64_t id);
  void Drop(uint64_t id);

  Poller& poller_;
  const Clock& clock_;
  Limits limits_;
  Log log_;
  Render render_;
  int listen_ = -1;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Peer> peers_;
  Stats stats_;
};

}  // namespace relayban
