// BanPolicy: turns verdicts into ban orders. It never bans loopback or an `ignore` CIDR,
// escalates repeat offenders (the n-th ban within `max` lasts ban * factor^(n-1), capped at
// max), keeps the table of active bans so a ban is only re-issued when it would last
// longer, and maps IPv6 clients to their configured prefix. Pure: time is passed in.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "relayban/config/spec.hpp"
#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"

namespace relayban {

struct Order {
  enum class Action : uint8_t { kBan, kUnban };
  Action action = Action::kBan;
  Time at{};
  std::string jail;
  std::string rule;
  Prefix target;
  std::string account;  // empty unless the verdict was about an account
  Seconds duration{0};  // 0 with kBan = permanent
  std::string reason;
};

class BanPolicy {
 public:
  BanPolicy(std::vector<Prefix> ignore, BanSpec ban, int ipv6_prefix);

  bool IsIgnored(const IpAddress& ip) const;
  // Whether a ban of `target` would cover loopback or any address of the ignore list.
  bool CoversIgnored(const Prefix& target) const;
  // The address or prefix a ban of `ip` covers (an IPv6 client's /64 by default).
  Prefix TargetFor(const IpAddress& ip) const;
  // A ban order for `ip`, escalated for a repeat offender; nullopt if the address is ignored
  // or already banned. A verdict against an address that is already banned only upgrades
  // the ban when its rule bans for longer than the running ban was given (a 1h brute-force
  // ban followed by a 1d relay-flood verdict); more of the same is not a new offence.
  std::optional<Order> Ban(const IpAddress& ip, Seconds base, Time at, const std::string& jail,
                           const std::string& rule, const std::string& account, const std::string& reason);
  // Whether `ip` is inside an active ban at `now`.
  bool IsBanned(const IpAddress& ip, Time now) const;
  // Forgets bans that ended before `now` (the kernel expires them on its own).
  void Expire(Time now);
  // Bookkeeping from outside the engine: bans restored from the state store at start-up or
  // made by hand, unbans, and past offences for escalation.
  void Restore(const Prefix& target, Time end, Seconds duration);
  void Forget(const Prefix& target);
  void AddOffence(const Prefix& target, Time at);
  size_t active() const { return active_.size(); }

 private:
  Seconds Escalate(const Prefix& target, Seconds base, Time at);

  std::vector<Prefix> ignore_;
  BanSpec ban_;
  int ipv6_prefix_;
  struct Active {
    Time end;           // Time::max() = permanent
    Seconds duration;   // as ordered, after escalation
  };
  std::unordered_map<Prefix, Active, PrefixHash> active_;
  std::unordered_map<Prefix, std::deque<Time>, PrefixHash> offences_;
};

}  // namespace relayban
