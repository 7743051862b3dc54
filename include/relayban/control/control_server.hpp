// ControlServer: the daemon's side of the control socket - a Unix stream socket, mode 0600
// (0660 with a control group), watched through the daemon's Poller, never blocking. Each
// peer is checked with SO_PEERCRED against ids resolved when the configuration was loaded
// (no user database lookup per connection). One request per connection; the answer is
// written as the peer reads it. Limits: clients at once, request size, bytes waiting for a
// slow reader, and timeouts for a peer that sends nothing or stops reading.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/clock.hpp"
#include "relayban/core/poller.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

// Who may send commands besides root: the members of a group, resolved once.
struct PeerPolicy {
  std::string group_name;       // empty: root only
  std::optional<gid_t> group;
  std::vector<uid_t> members;   // users whose supplementary groups include it
};
// Looks the group and its members up (getgrnam, getpwnam): at start and at reload only.
Result<PeerPolicy> ResolvePeerPolicy(const std::string& group_name);
// Whether a peer with these credentials may send commands; the error says why not.
Result<void> CheckPeerCredentials(uid_t uid, gid_t gid, const PeerPolicy& policy);

class ControlServer {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  using ClientId = uint64_t;
  // A complete request line (without its newline) from an admitted peer.
  using OnRequest = std::function<void(ClientId client, std::string_view line)>;
  struct Limits {
    size_t max_clients = 64;
    size_t max_request = 65536;
    size_t max_pending = size_t{16} << 20;  // bytes of answer waiting for a slow reader
    std::chrono::seconds request_timeout{10};  // to send a complete request
    std::chrono::seconds stalled_timeout{60};  // to read any of its answer
  };
  struct Stats {
    uint64_t accepted = 0, refused = 0, timed_out = 0, too_many = 0;
  };

  // `poller` and `clock` must outlive the server.
  ControlServer(Poller& poller, const Clock& clock, Limits limits, Log log);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket at `path` (removing a stale one, refusing when another daemon answers
  // there; creating its folder when missing).
  Result<void> Listen(const std::string& path, const PeerPolicy& policy, OnRequest on_request);
  void SetPolicy(const PeerPolicy& policy);
  // Queues answer bytes for `client`; a client that is gone is ignored.
  void Send(ClientId client, std::string_view data);
  // Closes the connection once what was queued is written.
  void Finish(ClientId client);
  bool Connected(ClientId client) const { return clients_.count(client) > 0; }
  // Who the peer is, for the log: "uid 0 pid 1234"; "a local call" for one that is not a
  // connected client (the daemon's own commands, tests).
  std::string Describe(ClientId client) const;
  size_t Pending(ClientId client) const;
  // Drops peers past their timeouts; call every tick.
  void Tick();
  // Closes the listening socket and every client, and removes the socket file.
  void Shutdown();
  size_t clients() const { return clients_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Client {
    int fd = -1;
    std::string in, out;
    bool requested = false;  // its one request was read
    bool finishing = false;  // close once `out` is written
    Clock::Steady since;     // accepted, or last progress writing
    uid_t uid = 0;
    pid_t pid = 0;
  };
  void Accept();
  void OnClient(ClientId id, uint32_t what);
  void Flush(ClientId id);
  void Drop(ClientId id);

  Poller& poller_;
  const Clock& clock_;
  Limits limits_;
  Log log_;
  PeerPolicy policy_;
  OnRequest on_request_;
  std::string path_;
  int listen_ = -1;
  ClientId next_id_ = 1;
  std::map<ClientId, Client> clients_;
  Stats stats_;
};

}  // namespace relayban
