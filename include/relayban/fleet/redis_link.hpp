// RedisLink: one connection to Redis, driven by the daemon's epoll loop (through Poller), never
// blocking it: a non-blocking connect (TCP or a Unix socket), AUTH, then pipelined commands
// whose replies come back to their callbacks in order. A link that fails, or whose oldest
// command waits longer than its timeout, is closed (every waiting callback hears "connection
// lost") and reconnected after a backoff (1 s doubling to 30 s). The RESP protocol is
// hiredis's reader (this file's implementation is the only hiredis user with fleet_event's
// OpenSSL). Single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "relayban/core/clock.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/poller.hpp"

namespace relayban {

struct RedisReply {
  enum class Type : uint8_t { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kStatus, kError, kString
  std::vector<RedisReply> elements;
  bool ok() const { return type != Type::kError; }
  bool is_array() const { return type == Type::kArray; }
};

// "10.0.0.5:6379", "[2001:db8::5]:6379" or an absolute path to a Unix socket.
struct RedisAddress {
  std::string path;  // a Unix socket, or empty
  IpAddress ip;
  uint16_t port = 6379;
  std::string ToString() const;
  static std::optional<RedisAddress> Parse(std::string_view text);
  bool operator==(const RedisAddress&) const = default;
};

// A command as RESP (an array of bulk strings).
std::string EncodeRedisCommand(const std::vector<std::string>& args);

class RedisLink {
 public:
  using Callback = std::function<void(const RedisReply&)>;
  struct Options {
    RedisAddress address;
    std::string user, password;  // AUTH; both empty: none
    Seconds timeout{5};          // the oldest command's reply must come within this
  };
  // `on_ready` runs after each (re)connection is authenticated; `on_down` with the reason
  // whenever it is lost or cannot be made.
  RedisLink(Poller& poller, const Clock& clock, Options options, std::function<void()> on_ready,
            std::function<void(const std::string&)> on_down);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Starts connecting (at once; later reconnections follow the backoff).
  void Start();
  // Queues a command; false (and the callback is not kept) unless ready.
  bool Send(const std::vector<std::string>& args, Callback cb);
  // Timeouts and reconnection; once a second.
  void Tick();
  bool ready() const { return state_ == State::kReady; }
  size_t waiting() const { return callbacks_.size(); }
  size_t unsent_bytes() const { return out_.size() - out_done_; }
  // Closes the connection (with a reason) and reconnects after the backoff.
  void Drop(const std::string& why);

 private:
  enum class State : uint8_t { kIdle, kConnecting, kAuth, kReady };
  void Connect();
  void OnEvent(uint32_t what);
  void Write();
  void Read();
  void Close();
  void Want(bool write);

  Poller& poller_;
  const Clock& clock_;
  Options options_;
  std::function<void()> on_ready_;
  std::function<void(const std::string&)> on_down_;
  State state_ = State::kIdle;
  int fd_ = -1;
  bool want_write_ = false;
  std::string out_;
  size_t out_done_ = 0;
  struct Waiting {
    Callback cb;
    Clock::Steady sent;
  };
  std::deque<Waiting> callbacks_;
  void* reader_ = nullptr;  // hiredis' redisReader
  size_t unparsed_ = 0;     // bytes fed since the last whole reply
  Clock::Steady retry_at_{};
  Clock::Steady connect_started_{};
  Seconds backoff_{0};
};

}  // namespace relayban
