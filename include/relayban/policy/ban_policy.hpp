// BanPolicy: turns verdicts into ban orders. It never bans loopback or an `ignore` CIDR,
// escalates repeat offenders (the n-th ban within `max` lasts ban * factor^(n-1), capped at
// max), asks the BanBook so a ban is only re-issued when it would last longer (and records
// each ban it orders there), and maps IPv6 clients to their configured prefix. Pure: time
// is passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "relayban/spec/spec.hpp"
#include "relayban/policy/ban_book.hpp"
#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/score/rule_tracker.hpp"

namespace relayban {

class BanPolicy : private BanEndListener {
 public:
  // `max_offenders`: addresses whose offence history is kept (the least recently banned
  // eighth is forgotten at once when full).
  // `book` must outlive the policy.
  BanPolicy(std::vector<Prefix> ignore, BanSpec ban, int ipv6_prefix, BanBook& book, size_t max_offenders = 200000);
  ~BanPolicy() { book_.Unlisten(this); }
  // The book holds a pointer to it.
  BanPolicy(const BanPolicy&) = delete;
  BanPolicy& operator=(const BanPolicy&) = delete;

  bool IsIgnored(const IpAddress& ip) const;
  // Whether a ban of `target` would cover loopback (127.0.0.0/8, ::1) or any address of the
  // ignore list.
  bool CoversIgnored(const Prefix& target) const;
  // The address or prefix a ban of `ip` covers (an IPv6 client's /64 by default). Inline
  // for IPv4 (the address itself): it is asked several times for every event.
  Prefix TargetFor(const IpAddress& ip) const { return ip.is_v4() ? Prefix(ip) : WideTarget(ip); }
  // A ban order for `ip`, escalated for a repeat offender; nullopt if the address is ignored
  // or already banned. A verdict against an address that is already banned only upgrades
  // the ban when its rule bans for longer than the running ban was given (a 1h brute-force
  // ban followed by a 1d relay-flood verdict); more of the same is not a new offence.
  // The texts are shared with the order, not copied (one verdict's bans name the same).
  std::optional<Order> Ban(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                           const SharedText& rule, const SharedText& account, const SharedText& reason);
  // The same for one of a verdict's bans: the account and reason are taken from copies
  // counted for the whole fan-out, and only for an order made.
  std::optional<Order> Ban(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                           const SharedText& rule, SharedTextCopies& account, SharedTextCopies& reason);
  // Whether Ban(ip, base, at, ...) would order nothing because a ban of the address's target
  // runs already, at least as long: a caller may then skip building the reason and the
  // evidence (an address rule's count restarts after each verdict, so a banned address
  // still hammering makes a verdict every few lines).
  bool AlreadyCovered(const IpAddress& ip, Seconds base, Time at) const;
  // Starts loading what Ban(ip, ...) will look at first.
  void Prefetch(const IpAddress& ip) const;
  // Whether `ip` is inside an active ban at `now`.
  bool IsBanned(const IpAddress& ip, Time now) const;
  // The ban the book holds for `ip`'s target, if any (running or not).
  std::optional<BanTerm> Held(const IpAddress& ip) const { return book_.Held(TargetFor(ip)); }
  // Past offences (from the state store at start-up), for escalation. The one of a ban the
  // book holds (it started at `at` or before) is the book's: not counted twice.
  void AddOffence(const Prefix& target, Time at);
  const PrefixWindows& offences() const { return offences_; }

 private:
  // Ban's work, with `account()` and `reason()` giving the order's texts once it is made.
  template <class AccountText, class ReasonText>
  std::optional<Order> BanWith(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                               const SharedText& rule, AccountText&& account, ReasonText&& reason);
  Prefix WideTarget(const IpAddress& ip) const;
  bool Covered(const Prefix& target, Seconds base, Time at) const;
  // Whether a running ban makes a new one for `base` pointless: it is at least as long.
  static bool Covers(const std::optional<BanTerm>& running, Seconds base) {
    if (!running) return false;
    bool longer = running->duration.count() != 0 && (base.count() == 0 || base > running->duration);
    return !longer;
  }
  // The duration of a ban of `target` at `at`: base * factor^(n-1) for its n-th offence
  // within max, counting the one the book holds (`held`) if it began within max.
  Seconds Escalate(const Prefix& target, Seconds base, Time at, const std::optional<BanTerm>& held) const;
  // An offence the book held has ended: history now.
  void BanEnded(const Prefix& target, Time start) override;

  // The ignore list and loopback: what no ban may cover.
  std::vector<Prefix> guard_;
  // Its IPv6 part for WideTarget, as numbers: the bits a client's wide prefix shares with an
  // entry (the shorter of the two lengths) and what they must be to overlap it.
  struct Net6 {
    uint64_t high, low, high_mask, low_mask;
  };
  std::vector<Net6> wide_guard_;
  uint64_t wide_high_mask_ = 0, wide_low_mask_ = 0;  // ipv6_prefix_'s bits
  static std::pair<uint64_t, uint64_t> Masks(int length);
  // The ignore list by family: IPv4 networks as (network, mask) numbers, IPv6 prefixes.
  std::vector<std::pair<uint32_t, uint32_t>> ignore4_;
  std::vector<Prefix> ignore6_;
  static uint32_t V4Number(const IpAddress& ip);
  BanSpec ban_;
  int ipv6_prefix_;
  BanBook& book_;
  // Offence times per target within ban.max, at most 64 each: escalation history. Only
  // ended ones: those of bans the book holds are the book's until it reports their end.
  PrefixWindows offences_;
};

}  // namespace relayban
