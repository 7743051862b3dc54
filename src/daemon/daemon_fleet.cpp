// The daemon's side of fleet mode: starting the member from `fleet:`, publishing this host's
// bans and unbans, and applying the fleet's through the ban ledger (the ignore list first).
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cerrno>
#include <cstring>
#include <syslog.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon.hpp"
#include "relayban/core/text.hpp"

namespace relayban {
namespace {

// A secret file: a regular file that neither group nor others may read or write.
Result<std::string> ReadSecret(const std::string& path, const char* what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Fail(std::string("fleet.") + what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Fail(std::string("fleet.") + what + " " + path + " is not a regular file");
  if (st.st_mode & 077)
    return Fail(std::string("fleet.") + what + " " + path + " may be read by others (mode " +
                std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                std::to_string(st.st_mode & 7) + "): chmod 600 it");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) return Fail(std::string("fleet.") + what + " " + path + ": cannot read it");
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  size_t nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

int64_t Ms(Time t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }

}  // namespace

Result<FleetOptions> Daemon::FleetOptionsOf(const FleetSpec& spec) {
  FleetOptions o;
  o.name = spec.name;
  o.host = spec.host;
  if (o.host.empty()) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    o.host = h;
    if (!FleetNameOk(o.host)) return Fail("fleet: the host name '" + Printable(o.host, 64) + "' cannot name this host; set fleet.host");
  }
  auto a = RedisAddress::Parse(spec.redis);
  if (!a) {
    // A host name: resolved now (at start and at each reload), never in the loop.
    size_t colon = spec.redis.rfind(':');
    std::string host = spec.redis.substr(0, colon), port = spec.redis.substr(colon + 1);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res)
      return Fail("fleet.redis: cannot resolve " + host + ": " + gai_strerror(rc));
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = res->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
                                                  : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
    inet_ntop(res->ai_family, addr, text, sizeof text);
    bool v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    a = RedisAddress::Parse(v6 ? "[" + std::string(text) + "]:" + port : std::string(text) + ":" + port);
    if (!a) return Fail("fleet.redis: " + spec.redis + " resolves to no usable address");
  }
  o.address = *a;
  o.user = spec.user;
  if (!spec.password_file.empty()) {
    auto p = ReadSecret(spec.password_file, "password_file");
    if (!p) return Fail(p.error());
    o.password = *p;
  }
  auto k = ReadSecret(spec.key_file, "key_file");
  if (!k) return Fail(k.error());
  if (k->size() < 16) return Fail("fleet.key_file " + spec.key_file + " holds fewer than 16 characters; make one with: openssl rand -hex 32");
  o.key = *k;
  o.max_remote_ban = spec.max_remote_ban;
  o.rate = spec.rate;
  o.burst = spec.burst;
  o.outbox = spec.outbox;
  return o;
}

void Daemon::StartFleet(FleetOptions options) {
  if (fleet_) fleet_->Stop();
  fleet_.reset();
  FleetMember::Hooks hooks;
  hooks.log = [this](int p, const std::string& m) { Log(p, m); };
  hooks.ban = [this](const FleetEvent& e, Seconds remaining) { return FleetBan(e, remaining); };
  hooks.unban = [this](const FleetEvent& e) { return FleetUnban(e); };
  hooks.verdict = [this](const FleetEvent& e) { return FleetAccountVerdict(e); };
  hooks.own_bans = [this] {
    std::vector<FleetEvent> out;
    ledger_->ForEach([&](const BanLedger::ActiveBan& b) {
      if (b.info->origin != BanOrigin::kRule && b.info->origin != BanOrigin::kManual) return;
      FleetEvent e;
      e.target = b.target;
      e.at_ms = Ms(b.start);
      e.until_ms = b.end == Time::max() ? 0 : Ms(b.end);
      e.jail = b.info->jail;
      e.rule = b.info->rule;
      e.account = b.info->account;
      e.reason = b.info->reason;
      e.origin = b.info->origin == BanOrigin::kRule ? "rule" : "manual";
      out.push_back(std::move(e));
    });
    return out;
  };
  Log(LOG_INFO, "fleet " + options.name + ": this host is " + options.host + ", Redis at " + options.address.ToString());
  fleet_ = std::make_unique<FleetMember>(loop_, *parts_.clock, Store(), std::move(options), std::move(hooks));
  fleet_->Start();
  FollowFleetState();
}

void Daemon::FollowFleetState() {
  bool on = fleet_ && fleet_->connected() && !fleet_->congested();
  if (on == engine_->fleet_counting()) return;
  engine_->SetFleetCounting(on);
  if (engine_->has_fleet_rules())
    Log(on ? LOG_INFO : LOG_WARNING, on ? "fleet rules count across the fleet" : "fleet rules count on this host alone until Redis is back");
}

void Daemon::CountInFleet(const FleetCount& c) {
  if (!fleet_) return;
  FleetMember::CountRequest r{c.jail, c.rule, c.subject, c.value, c.count, Ms(c.time),
                              std::chrono::duration_cast<std::chrono::milliseconds>(c.window).count(), c.threshold};
  RuleKey key = c.key;
  std::string jail = c.jail, rule = c.rule, subject = c.subject, ip = c.ip;
  Time at = c.time;
  bool sent = fleet_->Count(r, [this, key, jail, rule, subject, at, ip](int64_t count, bool won) {
    if (!won || !engine_) return;
    Log(LOG_NOTICE, "fleet verdict won here: jail=" + jail + " rule=" + rule + " " +
                        (key == RuleKey::kIp ? subject : "account=" + Printable(subject, 80)) + " reached " +
                        std::to_string(count) + " across the fleet");
    if (!engine_->FleetVerdict(jail, rule, subject, at, static_cast<int>(count), true, out_, ip)) return;
    if (key == RuleKey::kAccount) {
      // Every host bans the addresses it saw use the account.
      const JailSpec* js = config_.FindJail(jail);
      Seconds ban{0};
      if (js)
        for (const auto& rs : js->rules)
          if (rs.name == rule) ban = rs.ban;
      FleetEvent e;
      e.kind = FleetEvent::Kind::kVerdict;
      e.at_ms = Ms(at);
      e.until_ms = ban.count() == 0 ? 0 : Ms(at + ban);
      e.jail = jail;
      e.rule = rule;
      e.account = Printable(subject, 320);
      e.origin = "rule";
      fleet_->Publish(std::move(e));
    }
    HandleOutput();
    more_work_ = true;
  });
  if (sent) return;
  // The count cannot reach Redis (away, or too far behind): this host decides alone from
  // now on, starting with this event.
  FollowFleetState();
  if (c.local_count >= c.threshold &&
      engine_->FleetVerdict(jail, rule, subject, at, c.local_count, true, out_, ip, /*here_only=*/true))
    HandleOutput();
}

FleetMember::Applied Daemon::FleetAccountVerdict(const FleetEvent& e) {
  Time at{std::chrono::milliseconds(e.at_ms)};
  if (!engine_->FleetVerdict(e.jail, e.rule, e.account, at, 0, false, out_)) return FleetMember::Applied::kUnchanged;
  Log(LOG_NOTICE, "fleet account verdict from " + e.host + ": account=" + Printable(e.account, 80) + " jail=" + e.jail +
                      " rule=" + e.rule + "; banning the addresses that used it here (" + std::to_string(out_.orders.size()) + ")");
  HandleOutput();
  more_work_ = true;
  return FleetMember::Applied::kApplied;
}

void Daemon::PublishBan(const Prefix& target, Seconds duration, const std::string& jail, const std::string& rule,
                        const std::string& account, const std::string& reason, bool manual) {
  if (!fleet_) return;
  FleetEvent e;
  e.kind = FleetEvent::Kind::kBan;
  e.target = target;
  Time now = parts_.clock->Now();
  e.at_ms = Ms(now);
  e.until_ms = duration.count() == 0 ? 0 : Ms(now + duration);
  e.jail = Printable(jail, 64);
  e.rule = Printable(rule, 64);
  e.account = Printable(account, 320);
  e.reason = Printable(reason, 512);
  e.origin = manual ? "manual" : "rule";
  fleet_->Publish(std::move(e));
}

void Daemon::PublishUnban(const Prefix& target) {
  if (!fleet_) return;
  FleetEvent e;
  e.kind = FleetEvent::Kind::kUnban;
  e.target = target;
  e.at_ms = Ms(parts_.clock->Now());
  fleet_->Publish(std::move(e));
}

FleetMember::Applied Daemon::FleetBan(const FleetEvent& e, Seconds remaining) {
  // The local ignore list always wins over a remote ban.
  if (engine_->policy().CoversIgnored(e.target)) {
    Log(LOG_WARNING, "fleet: refused a ban of " + e.target.ToString() + " from " + e.host + ": it is in the ignore list");
    return FleetMember::Applied::kIgnored;
  }
  Time now = parts_.clock->Now();
  if (auto b = ledger_->Get(e.target); b && b->end >= now + remaining) return FleetMember::Applied::kUnchanged;
  std::string reason = e.reason + " [from " + e.host + "]";
  Order o{Order::Action::kBan, now, e.jail, e.rule, e.target, e.account, remaining, reason};
  ledger_->Ban(o, BanOrigin::kFleet);
  ++bans_by_[{e.jail, e.rule, "fleet"}];
  using Record = nlohmann::ordered_json;
  Record j{{"time", FormatIso8601(now)}, {"action", "ban"}, {"target", e.target.ToString()}, {"jail", e.jail},
           {"rule", e.rule}, {"account", e.account.empty() ? Record(nullptr) : Record(e.account)},
           {"reason", e.reason}, {"duration_s", remaining.count()}, {"origin", "fleet"}, {"host", e.host},
           {"id", e.id}};
  Decision(j.dump(-1, ' ', false, Record::error_handler_t::replace), now, e.target.ToString(), e.account);
  if (ban_lines_this_second_ < kBanLinesPerSecondShown) {
    ++ban_lines_this_second_;
    Log(LOG_NOTICE, "fleet ban " + e.target.ToString() + " for " + FormatDuration(remaining) + " from " + e.host +
                        " jail=" + e.jail + " rule=" + e.rule +
                        (e.account.empty() ? "" : " account=" + Printable(e.account, 80)));
  } else {
    ++unlogged_bans_["fleet " + e.jail + " rule=" + e.rule];
  }
  more_work_ = true;
  return FleetMember::Applied::kApplied;
}

FleetMember::Applied Daemon::FleetUnban(const FleetEvent& e) {
  Time now = parts_.clock->Now();
  bool lifted = ledger_->Unban(e.target, true);
  // As an admin's unban here: an account verdict must not ban the address again.
  if (e.target.is_single()) {
    engine_->Exempt(e.target.address(), now);
    SaveAdminNote(kExemptedNote, e.target.address().ToString(), now);
  }
  using Record = nlohmann::ordered_json;
  Record j{{"time", FormatIso8601(now)}, {"action", "unban"}, {"target", e.target.ToString()}, {"lifted", lifted},
           {"origin", "fleet"}, {"host", e.host}, {"id", e.id}};
  Decision(j.dump(-1, ' ', false, Record::error_handler_t::replace), now, e.target.ToString(), "");
  Log(LOG_NOTICE, "fleet unban " + e.target.ToString() + " from " + e.host + (lifted ? "" : " (it was not banned here)"));
  more_work_ = true;
  return lifted ? FleetMember::Applied::kApplied : FleetMember::Applied::kUnchanged;
}

}  // namespace relayban
