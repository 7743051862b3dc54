#include "relayban/fleet/fleet_member.hpp"

#include <syslog.h>

#include <algorithm>
#include <random>

#include "relayban/core/text.hpp"

namespace relayban {
namespace {

constexpr const char* kPositionNote = "fleet_position";  // "<epoch> <stream id>"
constexpr size_t kLiftedKept = 100000;   // unbans remembered to refuse stale bans
constexpr size_t kResyncPage = 1000;     // bans read per page of a resync
constexpr size_t kOutboxSavePerTick = 20000;
constexpr int64_t kPeerSeenMs = 60000;

// A fleet rule's window: add the event (or distinct value), drop what left the window, keep
// at most `threshold` members (the newest), and let the first host to reach the threshold
// take the verdict for the window. Keys: the window, the verdict. Arguments: the event's
// time (ms), the window (ms), the threshold, the member, its weight, the host.
constexpr const char* kCountScript = R"(
local t = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local weight = tonumber(ARGV[5])
if weight <= 1 then
  redis.call('ZADD', KEYS[1], 'GT', t, ARGV[4])
else
  for i = 1, math.min(weight, threshold) do redis.call('ZADD', KEYS[1], 'GT', t, ARGV[4] .. '#' .. i) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (t - window))
local n = redis.call('ZCARD', KEYS[1])
if n > threshold then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - threshold - 1)
end
redis.call('PEXPIRE', KEYS[1], window)
if n >= threshold then
  if redis.call('SET', KEYS[2], ARGV[6], 'NX', 'PX', window) then
    redis.call('DEL', KEYS[1])
    return {n, 1}
  end
end
return {n, 0}
)";

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    s += hex[v >> 4];
    s += hex[v & 15];
  }
  return s;
}

bool Less(const std::string& a, const std::string& b) {
  auto x = ParseStreamId(a), y = ParseStreamId(b);
  if (!x || !y) return false;
  return *x < *y;
}

// A flat [name, value, name, value ...] reply as fields.
FleetFields Pairs(const RedisReply& r) {
  FleetFields f;
  if (!r.is_array()) return f;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    f.emplace_back(r.elements[i].str, r.elements[i + 1].str);
  return f;
}

const RedisReply* Field(const RedisReply& r, std::string_view name) {
  if (!r.is_array()) return nullptr;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    if (r.elements[i].str == name) return &r.elements[i + 1];
  return nullptr;
}

}  // namespace

FleetMember::FleetMember(Poller& poller, const Clock& clock, StateStore& store, FleetOptions options, Hooks hooks)
    : poller_(poller), clock_(clock), store_(store), options_(std::move(options)), hooks_(std::move(hooks)) {
  stats_.delay_buckets.assign(std::size(kDelayBounds) + 1, 0);  // and one above the last bound
  RedisLink::Options wo{options_.address, options_.user, options_.password, Seconds{5}};
  RedisLink::Options ro = wo;
  ro.timeout = Seconds{15};  // its XREAD blocks for 5 s
  writer_ = std::make_unique<RedisLink>(
      poller_, clock_, wo, [this] { OnWriterReady(); },
      [this](const std::string& why) {
        // Sent but not confirmed: sent again (a duplicate is harmless), in order.
        for (auto it = in_flight_.rbegin(); it != in_flight_.rend(); ++it) queue_.push_front(std::move(it->second));
        in_flight_.clear();
        Problem("Redis " + options_.address.ToString() + ": " + why);
      });
  reader_ = std::make_unique<RedisLink>(
      poller_, clock_, ro, [this] { OnReaderReady(); },
      [this](const std::string& why) {
        following_ = false;
        resyncing_ = false;
        Problem("Redis " + options_.address.ToString() + ": " + why);
      });
}

FleetMember::~FleetMember() = default;

int64_t FleetMember::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count();
}

void FleetMember::Log(int priority, const std::string& msg) {
  if (hooks_.log) hooks_.log(priority, "fleet " + options_.name + ": " + msg);
}

void FleetMember::Problem(const std::string& what) {
  if (what != last_error_) Log(LOG_WARNING, what + " (local protection goes on; decisions wait in the outbox)");
  last_error_ = what;
}

void FleetMember::Start() {
  uint64_t max_seq = 0;
  if (auto rows = store_.LoadOutbox()) {
    for (auto& [seq, packed] : *rows) {
      auto f = UnpackFields(packed);
      if (!f) continue;
      Queued q;
      q.seq = seq;
      q.fields = std::move(*f);
      q.stored = true;
      q.queued = clock_.Monotonic();
      queue_.push_back(std::move(q));
      max_seq = std::max(max_seq, seq);
    }
    if (!rows->empty()) Log(LOG_INFO, std::to_string(queue_.size()) + " decisions in the outbox from before, to send");
  } else {
    Log(LOG_ERR, "cannot read the outbox: " + rows.error().message);
  }
  next_seq_ = std::max<uint64_t>(static_cast<uint64_t>(NowMs()) * 1000, max_seq + 1);
  if (auto note = store_.GetNote(kPositionNote); note && *note) {
    const std::string& s = **note;
    size_t sp = s.find(' ');
    if (sp != std::string::npos && ParseStreamId(s.substr(sp + 1))) {
      epoch_ = s.substr(0, sp);
      position_ = saved_position_ = s.substr(sp + 1);
    }
  }
  writer_->Start();
  reader_->Start();
}

void FleetMember::NoteLifted(const std::string& target, int64_t at_ms) {
  auto [it, fresh] = lifted_.try_emplace(target, at_ms);
  if (!fresh) {
    it->second = std::max(it->second, at_ms);
    return;
  }
  lifted_order_.emplace_back(target, at_ms);
  while (lifted_order_.size() > kLiftedKept) {
    auto& [t, at] = lifted_order_.front();
    if (auto f = lifted_.find(t); f != lifted_.end() && f->second == at) lifted_.erase(f);
    lifted_order_.pop_front();
  }
}

void FleetMember::Publish(FleetEvent e) {
  e.host = options_.host;
  Queued q;
  q.seq = next_seq_++;
  e.id = options_.host + "-" + std::to_string(q.seq);
  q.fields = EncodeFleetEvent(e, options_.name, options_.key);
  q.queued = clock_.Monotonic();
  if (e.kind == FleetEvent::Kind::kUnban) NoteLifted(e.target.ToString(), e.at_ms);
  queue_.push_back(std::move(q));
  while (outbox() > options_.outbox && !queue_.empty()) {
    if (queue_.front().stored) sent_stored_.push_back(queue_.front().seq);
    queue_.pop_front();
    if (++stats_.outbox_dropped == 1 || stats_.outbox_dropped % 10000 == 0)
      Log(LOG_WARNING, "the outbox is full (" + std::to_string(options_.outbox) + "): " +
                           std::to_string(stats_.outbox_dropped) + " oldest decisions dropped so far");
  }
}

bool FleetMember::Flush() {
  while (writer_->ready() && !queue_.empty() && in_flight_.size() < options_.in_flight) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    Send(std::move(q));
  }
  return writer_->ready() && !queue_.empty() && in_flight_.size() < options_.in_flight;
}

void FleetMember::Send(Queued q) {
  const FleetFields& f = q.fields;
  auto get = [&f](std::string_view name) -> std::string {
    for (const auto& [k, v] : f)
      if (k == name) return v;
    return {};
  };
  std::string target = get("target");
  std::string type = get("type");
  bool ban = type == "ban";
  auto queued_ok = [this](const RedisReply& r) {
    if (!r.ok() && r.str.rfind("connection lost", 0) != 0) Problem("Redis refused a command: " + r.str);
  };
  writer_->Send({"MULTI"}, queued_ok);
  std::vector<std::string> xadd{"XADD", Key("events"), "MAXLEN", "~", std::to_string(options_.stream_max), "*"};
  for (const auto& [k, v] : f) {
    xadd.push_back(k);
    xadd.push_back(v);
  }
  writer_->Send(xadd, queued_ok);
  if (type == "verdict") {
    // Only the stream: a verdict is news, not state.
  } else if (ban) {
    std::string until = get("until");
    writer_->Send({"ZADD", Key("bans"), until == "0" ? "+inf" : until, target}, queued_ok);
    std::vector<std::string> hset{"HSET", Key("ban:" + target)};
    for (const auto& [k, v] : f) {
      hset.push_back(k);
      hset.push_back(v);
    }
    writer_->Send({"DEL", Key("ban:" + target)}, queued_ok);
    writer_->Send(hset, queued_ok);
    if (until == "0") writer_->Send({"PERSIST", Key("ban:" + target)}, queued_ok);
    else writer_->Send({"PEXPIREAT", Key("ban:" + target), until}, queued_ok);
  } else {
    writer_->Send({"ZREM", Key("bans"), target}, queued_ok);
    writer_->Send({"DEL", Key("ban:" + target)}, queued_ok);
    writer_->Send({"ZADD", Key("unbans"), get("at"), target}, queued_ok);
  }
  uint64_t seq = q.seq;
  in_flight_.emplace(seq, std::move(q));
  writer_->Send({"EXEC"}, [this, seq](const RedisReply& r) {
    auto it = in_flight_.find(seq);
    if (it == in_flight_.end()) return;
    if (!r.ok() && r.str.rfind("connection lost", 0) == 0) return;  // requeued by on_down
    if (r.is_array()) {
      ++stats_.sent;
      if (!last_error_.empty() && reader_->ready()) {
        Log(LOG_NOTICE, "Redis " + options_.address.ToString() + " is back; " + std::to_string(outbox()) +
                            " decisions left to send");
        last_error_.clear();
      }
    } else {
      ++stats_.send_errors;
      Problem("Redis refused a decision (" + (r.str.empty() ? std::string("transaction discarded") : r.str) +
              "); it is dropped");
    }
    if (it->second.stored) sent_stored_.push_back(seq);
    in_flight_.erase(it);
  });
}

void FleetMember::EaseCongestion() {
  if (!congested_ || writer_->waiting() >= kMaxCountsWaiting / 2) return;
  congested_ = false;
  Log(LOG_NOTICE, "Redis keeps up again: fleet rules count across the fleet");
}

bool FleetMember::Count(const CountRequest& c, std::function<void(int64_t, bool)> done) {
  EaseCongestion();
  size_t waiting = writer_->waiting();
  if (!writer_->ready() || congested_ || waiting >= kMaxCountsWaiting) {
    if (writer_->ready() && !congested_) {
      congested_ = true;
      Log(LOG_WARNING, std::to_string(waiting) + " fleet counts wait for Redis: fleet rules decide on this host alone "
                       "until it catches up");
    }
    ++stats_.counts_dropped;
    return false;
  }
  if (script_sha_.empty()) script_sha_ = Sha1Hex(kCountScript);
  // Subjects are addresses or account names (attacker text): hashed into the key names.
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Hash64(c.subject)));
  std::string base = c.jail + ":" + c.rule + ":" + hex;
  std::string member = c.value.empty() ? options_.host + ":" + std::to_string(next_seq_) + ":" + std::to_string(++count_seq_)
                                       : c.value;
  std::vector<std::string> args{"EVALSHA", script_sha_, "2", Key("w:" + base), Key("v:" + base),
                                std::to_string(c.t_ms), std::to_string(c.window_ms), std::to_string(c.threshold),
                                member, std::to_string(c.weight), options_.host};
  auto handle = [this, done](const RedisReply& r) {
    if (r.is_array() && r.elements.size() == 2) {
      ++stats_.counted;
      bool won = r.elements[1].integer == 1;
      if (won) ++stats_.fleet_verdicts;
      done(r.elements[0].integer, won);
      return;
    }
    if (r.str.rfind("connection lost", 0) == 0) return;
    ++stats_.count_errors;
    Problem("Redis refused a fleet count: " + r.str);
  };
  writer_->Send(args, [this, args, handle](const RedisReply& r) {
    if (!r.ok() && r.str.rfind("NOSCRIPT", 0) == 0) {
      // Redis restarted or flushed its script cache: send the script itself (cached again).
      std::vector<std::string> eval = args;
      eval[0] = "EVAL";
      eval[1] = kCountScript;
      writer_->Send(eval, handle);
      return;
    }
    handle(r);
  });
  return true;
}

void FleetMember::OnWriterReady() {
  ++stats_.connects;
  Heartbeat();
  Flush();
}

void FleetMember::Heartbeat() {
  if (!writer_->ready()) return;
  int64_t now = NowMs();
  writer_->Send({"HSET", Key("hosts"), options_.host, std::to_string(now)}, [](const RedisReply&) {});
  writer_->Send({"HGETALL", Key("hosts")}, [this](const RedisReply& r) {
    if (!r.is_array()) return;
    peers_.clear();
    for (const auto& [host, at] : Pairs(r)) {
      if (host == options_.host) continue;
      try {
        peers_[host] = std::stoll(at);
      } catch (...) {
      }
    }
  });
}

std::map<std::string, int64_t> FleetMember::peers() const {
  std::map<std::string, int64_t> out;
  int64_t now = NowMs();
  for (const auto& [h, at] : peers_)
    if (now - at <= kPeerSeenMs) out.emplace(h, at);
  return out;
}

void FleetMember::OnReaderReady() {
  following_ = false;
  // The epoch names this Redis's data set: set once by whichever host comes first. A
  // different one than ours means Redis lost the fleet's data (restarted empty).
  reader_->Send({"SET", Key("epoch"), RandomHex(16), "NX"}, [](const RedisReply&) {});
  reader_->Send({"GET", Key("epoch")}, [this](const RedisReply& r) {
    if (r.type != RedisReply::Type::kString || r.str.empty()) {
      Problem("cannot read the fleet's epoch: " + r.str);
      return reader_->Drop("no epoch");
    }
    if (epoch_.empty()) {
      epoch_ = r.str;
      position_ = "0-0";
      Log(LOG_INFO, "joining the fleet through " + options_.address.ToString() + ": reading the bans in force");
      return Resync();
    }
    if (epoch_ != r.str) {
      std::vector<FleetEvent> own = hooks_.own_bans ? hooks_.own_bans() : std::vector<FleetEvent>{};
      Log(LOG_WARNING, "Redis lost the fleet's data (restarted empty?): publishing this host's " +
                           std::to_string(own.size()) + " bans again and reading the others'");
      for (auto& e : own) Publish(std::move(e));
      stats_.republished += own.size();
      epoch_ = r.str;
      position_ = "0-0";
      SavePosition(true);
      Flush();
      return Resync();
    }
    CheckStream();
  });
}

void FleetMember::CheckStream() {
  reader_->Send({"XINFO", "STREAM", Key("events")}, [this](const RedisReply& r) {
    if (!r.ok()) {
      // No stream at all: nothing was ever published, or it was deleted.
      if (position_ == "0-0") return Follow();
      Log(LOG_WARNING, "the fleet's event stream is gone: reading the bans in force");
      return Resync();
    }
    const RedisReply* first = Field(r, "first-entry");
    if (first && first->is_array() && !first->elements.empty() && Less(position_, first->elements[0].str) &&
        position_ != "0-0") {
      Log(LOG_WARNING, "events since " + position_ + " were trimmed from the stream: reading the bans in force");
      return Resync();
    }
    Follow();
  });
}

void FleetMember::Resync() {
  resyncing_ = true;
  ++stats_.resyncs;
  reader_->Send({"XINFO", "STREAM", Key("events")}, [this](const RedisReply& r) {
    std::string last = "0-0";
    if (const RedisReply* l = r.ok() ? Field(r, "last-generated-id") : nullptr) last = l->str;
    int64_t since = NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_remote_ban).count();
    reader_->Send({"ZRANGEBYSCORE", Key("unbans"), std::to_string(since), "+inf", "WITHSCORES"},
                  [this, last](const RedisReply& u) {
                    if (u.is_array())
                      for (size_t i = 0; i + 1 < u.elements.size(); i += 2) {
                        try {
                          NoteLifted(u.elements[i].str, static_cast<int64_t>(std::stod(u.elements[i + 1].str)));
                        } catch (...) {
                        }
                      }
                    ResyncPage(last, 0);
                  });
  });
}

void FleetMember::ResyncPage(std::string after_id, int64_t offset) {
  reader_->Send({"ZRANGEBYSCORE", Key("bans"), "(" + std::to_string(NowMs()), "+inf", "LIMIT", std::to_string(offset),
                 std::to_string(kResyncPage)},
                [this, after_id, offset](const RedisReply& r) {
                  if (!r.is_array()) {
                    Problem("cannot read the bans in force: " + r.str);
                    return reader_->Drop("resync failed");
                  }
                  if (r.elements.empty()) {
                    resyncing_ = false;
                    if (Less(position_, after_id)) position_ = after_id;
                    Log(LOG_INFO, "in step with the fleet; following its events from " + position_);
                    SavePosition(true);
                    return Follow();
                  }
                  size_t n = r.elements.size();
                  for (size_t i = 0; i < n; ++i) {
                    bool last = i + 1 == n;
                    reader_->Send({"HGETALL", Key("ban:" + r.elements[i].str)},
                                  [this, last, after_id, offset, n](const RedisReply& h) {
                                    if (h.is_array() && !h.elements.empty()) Receive(Pairs(h));
                                    if (last) ResyncPage(after_id, offset + static_cast<int64_t>(n));
                                  });
                  }
                });
}

void FleetMember::Follow() {
  following_ = true;
  reader_->Send({"XREAD", "COUNT", "1000", "BLOCK", "5000", "STREAMS", Key("events"), position_},
                [this](const RedisReply& r) {
                  if (!r.ok()) {
                    if (r.str.rfind("connection lost", 0) == 0) return;
                    Problem("cannot read the fleet's events: " + r.str);
                    return reader_->Drop("XREAD failed");
                  }
                  if (r.is_array())
                    for (const RedisReply& stream : r.elements) {
                      if (!stream.is_array() || stream.elements.size() < 2 || !stream.elements[1].is_array()) continue;
                      for (const RedisReply& entry : stream.elements[1].elements) {
                        if (!entry.is_array() || entry.elements.size() < 2) continue;
                        Receive(Pairs(entry.elements[1]));
                        if (ParseStreamId(entry.elements[0].str)) position_ = entry.elements[0].str;
                      }
                    }
                  if (reader_->ready()) Follow();
                });
}

bool FleetMember::TakeToken() {
  Clock::Steady now = clock_.Monotonic();
  double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  if (tokens_at_ == Clock::Steady{}) tokens_ = static_cast<double>(options_.burst);
  else tokens_ = std::min(static_cast<double>(options_.burst), tokens_ + elapsed * static_cast<double>(options_.rate));
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void FleetMember::Receive(const FleetFields& fields) {
  for (const auto& [k, v] : fields)
    if (k == "host" && v == options_.host) return;  // our own
  ++stats_.received;
  auto e = DecodeFleetEvent(fields, options_.name, options_.key);
  if (!e) {
    if (++stats_.refused_forged <= 10 || stats_.refused_forged % 1000 == 0)
      Log(LOG_WARNING, "refused an event from Redis (" + e.error().message + "); " +
                           std::to_string(stats_.refused_forged) + " refused so far: is someone writing to Redis without the key?");
    return;
  }
  std::string target = e->target.ToString();
  if (e->kind == FleetEvent::Kind::kVerdict) {
    Applied a = hooks_.verdict ? hooks_.verdict(*e) : Applied::kUnchanged;
    ++(a == Applied::kApplied ? stats_.applied : stats_.unchanged);
    return;
  }
  if (e->kind == FleetEvent::Kind::kUnban) {
    NoteLifted(target, e->at_ms);
    Applied a = hooks_.unban ? hooks_.unban(*e) : Applied::kUnchanged;
    ++(a == Applied::kApplied ? stats_.applied : stats_.unchanged);
    return;
  }
  int min_len = e->target.address().is_v4() ? 24 : 48;
  if (e->target.length() < min_len) {
    ++stats_.refused_bounds;
    Log(LOG_WARNING, "refused a ban of " + target + " from " + e->host + ": wider than /" + std::to_string(min_len));
    return;
  }
  if (auto it = lifted_.find(target); it != lifted_.end() && it->second >= e->at_ms) {
    ++stats_.refused_lifted;
    return;
  }
  int64_t now = NowMs();
  int64_t cap = now + std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_remote_ban).count();
  int64_t end = e->until_ms == 0 ? cap : std::min(e->until_ms, cap);
  if (end <= now) {
    ++stats_.unchanged;
    return;
  }
  if (!TakeToken()) {
    if (++stats_.refused_rate == 1 || stats_.refused_rate % 10000 == 0)
      Log(LOG_WARNING, "remote bans arrive faster than " + std::to_string(options_.rate) + "/s: " +
                           std::to_string(stats_.refused_rate) + " not applied so far");
    return;
  }
  Applied a = hooks_.ban ? hooks_.ban(*e, Seconds{(end - now + 999) / 1000}) : Applied::kUnchanged;
  if (a == Applied::kIgnored) {
    ++stats_.refused_ignored;
    return;
  }
  if (a == Applied::kUnchanged) {
    ++stats_.unchanged;
    return;
  }
  ++stats_.applied;
  if (!resyncing_) {
    double delay = std::max<double>(0, static_cast<double>(now - e->at_ms) / 1000.0);
    stats_.delay_sum += delay;
    size_t i = 0;
    while (i < std::size(kDelayBounds) && delay > kDelayBounds[i]) ++i;
    ++stats_.delay_buckets[i];
  }
}

void FleetMember::SavePosition(bool force) {
  if (!force && position_ == saved_position_) return;
  if (epoch_.empty()) return;
  if (store_.SetNote(kPositionNote, epoch_ + " " + position_)) saved_position_ = position_;
}

void FleetMember::SaveOutbox() {
  std::vector<std::pair<uint64_t, std::string>> add;
  std::vector<Queued*> added;
  Clock::Steady now = clock_.Monotonic();
  bool away = !writer_->ready();
  auto consider = [&](Queued& q) {
    if (q.stored || add.size() >= kOutboxSavePerTick) return;
    if (!away && now - q.queued < std::chrono::seconds(1)) return;
    add.emplace_back(q.seq, PackFields(q.fields));
    added.push_back(&q);
  };
  for (auto& [seq, q] : in_flight_) consider(q);
  for (auto& q : queue_) consider(q);
  if (add.empty() && sent_stored_.empty()) return;
  if (auto r = store_.SaveOutbox(add, sent_stored_, options_.outbox); r) {
    for (Queued* q : added) q->stored = true;
    sent_stored_.clear();
  }
}

void FleetMember::Tick() {
  ++ticks_;
  EaseCongestion();
  writer_->Tick();
  reader_->Tick();
  if (ticks_ % 5 == 0) Heartbeat();
  if (ticks_ % 600 == 0 && writer_->ready()) {
    int64_t now = NowMs();
    int64_t keep = std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_remote_ban).count();
    writer_->Send({"ZREMRANGEBYSCORE", Key("bans"), "-inf", std::to_string(now)}, [](const RedisReply&) {});
    writer_->Send({"ZREMRANGEBYSCORE", Key("unbans"), "-inf", std::to_string(now - keep)}, [](const RedisReply&) {});
  }
  SaveOutbox();
  SavePosition(false);
}

void FleetMember::Stop() {
  std::vector<std::pair<uint64_t, std::string>> add;
  for (auto& [seq, q] : in_flight_)
    if (!q.stored) add.emplace_back(q.seq, PackFields(q.fields));
  for (auto& q : queue_)
    if (!q.stored) add.emplace_back(q.seq, PackFields(q.fields));
  if (!add.empty() || !sent_stored_.empty()) {
    if (auto r = store_.SaveOutbox(add, sent_stored_, options_.outbox); !r)
      Log(LOG_ERR, "cannot keep " + std::to_string(add.size()) + " unsent decisions: " + r.error().message);
    else if (!add.empty())
      Log(LOG_INFO, std::to_string(outbox()) + " decisions not yet sent wait in the outbox for the next start");
  }
  SavePosition(true);
}

}  // namespace relayban
