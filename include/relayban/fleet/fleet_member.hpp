// FleetMember: this host's part in a fleet sharing bans through Redis.
//
// Out: every local ban and unban (rules' and admins') becomes a signed FleetEvent. It is queued
// in an outbox (kept in the state database once it has waited a second, so a crash or a Redis
// outage loses nothing, bounded), then written in one MULTI/EXEC: appended to the stream
// rb:{fleet}:events, and mirrored into rb:{fleet}:bans (a sorted set scored by the ban's end)
// with its fields in rb:{fleet}:ban:<target>, or, for an unban, removed from there and noted
// in rb:{fleet}:unbans (tombstones, so a resync never brings a lifted ban back).
//
// In: a second connection follows the stream with XREAD BLOCK from the position saved in the
// state database. When that position is gone (the stream was trimmed or deleted) or the
// member is new, it resyncs from the bans set first. When Redis lost everything (its epoch
// key changed: restarted empty), every host publishes its own bans in force again. Each event
// is verified (HMAC, strict fields) and bounded (no prefix wider than /24 or /48, the longest
// remote ban, a rate) before the daemon's `apply` sees it; the daemon applies the ignore list.
//
// Redis being down never stops anything local: the links reconnect with backoff and the
// outbox waits. Single-threaded, on the daemon's loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "relayban/core/clock.hpp"
#include "relayban/core/poller.hpp"
#include "relayban/fleet/fleet_event.hpp"
#include "relayban/fleet/redis_link.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

struct FleetOptions {
  std::string name;  // the fleet: keys are rb:{name}:...
  std::string host;  // this host
  RedisAddress address;
  std::string user, password;
  std::string key;  // the HMAC key
  Seconds max_remote_ban{7 * 86400};  // remote bans (and permanent ones) last at most this
  size_t rate = 2000;                 // remote bans applied per second, on average
  size_t burst = 100000;              // ... and at once
  size_t outbox = 100000;             // decisions kept while Redis is away; the oldest go first
  size_t stream_max = 100000;         // the stream is trimmed to about this many events
  size_t in_flight = 2000;            // events sent and not yet confirmed, at most
  bool operator==(const FleetOptions&) const = default;
};

struct FleetStats {
  uint64_t sent = 0;              // events confirmed written to Redis
  uint64_t received = 0;          // other hosts' events read
  uint64_t applied = 0;           // ... that changed this host's bans
  uint64_t unchanged = 0;         // ... that did not need to (already banned as long, expired, not banned)
  uint64_t refused_forged = 0;    // bad MAC or malformed
  uint64_t refused_bounds = 0;    // too wide a prefix
  uint64_t refused_ignored = 0;   // in the ignore list
  uint64_t refused_rate = 0;      // over the rate
  uint64_t refused_lifted = 0;    // banned before an unban already seen
  uint64_t outbox_dropped = 0;    // the outbox was full: oldest dropped
  uint64_t send_errors = 0;       // Redis refused a write (an ACL, a full memory)
  uint64_t resyncs = 0;           // full reads of the bans set
  uint64_t republished = 0;       // own bans written again after Redis lost its data
  uint64_t connects = 0;
  uint64_t counted = 0;           // events added to fleet windows
  uint64_t fleet_verdicts = 0;    // fleet verdicts this host won
  uint64_t count_errors = 0;
  uint64_t counts_dropped = 0;    // not sent: Redis away or too many waiting
  double delay_sum = 0;           // seconds from decision to applied here, summed
  std::vector<uint64_t> delay_buckets;  // counts per FleetMember::kDelayBounds (cumulative later)
};

class FleetMember {
 public:
  // What the daemon does with a remote decision that passed the checks.
  enum class Applied : uint8_t { kApplied, kUnchanged, kIgnored };
  struct Hooks {
    std::function<Applied(const FleetEvent&, Seconds remaining)> ban;
    std::function<Applied(const FleetEvent&)> unban;
    // Another host's verdict of a fleet account rule.
    std::function<Applied(const FleetEvent&)> verdict;
    // This host's own bans in force (rules' and admins'), to publish again.
    std::function<std::vector<FleetEvent>()> own_bans;
    std::function<void(int priority, const std::string&)> log;
  };
  static constexpr double kDelayBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

  FleetMember(Poller& poller, const Clock& clock, StateStore& store, FleetOptions options, Hooks hooks);
  ~FleetMember();
  FleetMember(const FleetMember&) = delete;
  FleetMember& operator=(const FleetMember&) = delete;

  // Loads the outbox and the stream position, starts connecting.
  void Start();
  // A local decision for the fleet (host and id are filled in here).
  void Publish(FleetEvent e);
  // Adds an event to a fleet rule's window in Redis (sorted set rb:{fleet}:w:<jail>:<rule>:<subject>,
  // scored by log time, trimmed to the window and to `threshold` members) in one script; the
  // host whose event makes it reach the threshold first takes the verdict (SET NX on
  // rb:{fleet}:v:..., for the window). `done(count, won)`; not called when Redis is away.
  struct CountRequest {
    std::string jail, rule, subject, value;
    int weight = 1;
    int64_t t_ms = 0, window_ms = 0;
    int threshold = 0;
  };
  // False (and `done` is never called) when the count cannot be sent: Redis away, or too
  // far behind.
  bool Count(const CountRequest& c, std::function<void(int64_t count, bool won)> done);
  // Sends queued events; true while more could be sent now.
  bool Flush();
  // Once a second: links' timeouts and reconnection, heartbeat, outbox and position saved.
  void Tick();
  // At stop: everything unsent goes to the state database.
  void Stop();

  bool connected() const { return writer_->ready() && reader_->ready(); }
  // Too many fleet counts wait for Redis (a flood): fleet rules should decide locally until
  // the backlog is down to half.
  bool congested() const { return congested_; }
  bool synced() const { return following_; }
  size_t outbox() const { return queue_.size() + in_flight_.size(); }
  // Peers (host names) seen in the last minute, and when.
  std::map<std::string, int64_t> peers() const;
  const std::string& last_error() const { return last_error_; }
  const std::string& position() const { return position_; }
  const FleetStats& stats() const { return stats_; }
  const FleetOptions& options() const { return options_; }

 private:
  struct Queued {
    uint64_t seq = 0;
    FleetFields fields;  // signed
    Prefix target;
    bool ban = true;
    int64_t until_ms = 0;
    bool stored = false;  // in the state database's outbox
    Clock::Steady queued{};
  };
  std::string Key(const std::string& what) const { return "rb:{" + options_.name + "}:" + what; }
  int64_t NowMs() const;
  void Log(int priority, const std::string& msg);
  void Problem(const std::string& what);
  void Send(Queued q);
  void OnWriterReady();
  void OnReaderReady();
  void CheckEpoch();
  void CheckStream();
  void Resync();
  void ResyncPage(std::string after_id, int64_t offset);
  void Follow();
  void Receive(const FleetFields& fields);
  void SavePosition(bool force);
  void SaveOutbox();
  void Heartbeat();
  bool TakeToken();

  Poller& poller_;
  const Clock& clock_;
  StateStore& store_;
  FleetOptions options_;
  Hooks hooks_;
  std::unique_ptr<RedisLink> writer_, reader_;
  std::deque<Queued> queue_;
  std::map<uint64_t, Queued> in_flight_;
  std::vector<uint64_t> sent_stored_;  // sent; to delete from the database's outbox
  uint64_t next_seq_ = 0;
  uint64_t count_seq_ = 0;
  bool congested_ = false;
  void EaseCongestion();  // ends a congestion once the backlog is down to half
  static constexpr size_t kMaxCountsWaiting = 20000;
  std::string script_sha_;
  std::string epoch_;        // Redis's epoch the position belongs to
  std::string position_ = "0-0";
  std::string saved_position_;
  bool following_ = false;
  bool resyncing_ = false;
  // Unbans seen (ours and others'): a ban decided before one is stale.
  std::unordered_map<std::string, int64_t> lifted_;
  std::deque<std::pair<std::string, int64_t>> lifted_order_;
  void NoteLifted(const std::string& target, int64_t at_ms);
  double tokens_ = 0;
  Clock::Steady tokens_at_{};
  std::map<std::string, int64_t> peers_;
  uint64_t ticks_ = 0;
  std::string last_error_;
  FleetStats stats_;
};

}  // namespace relayban
