#include "relayban/policy/ban_policy.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace relayban {

namespace {
constexpr int kMaxOffences = 64;  // escalation saturates long before: factor^63

// Whether the two share an address: the shorter one contains the other's first address.
bool Overlap(const Prefix& a, const Prefix& b) {
  if (a.address().family() != b.address().family()) return false;
  return a.length() <= b.length() ? a.Contains(b.address()) : b.Contains(a.address());
}
}  // namespace

BanPolicy::BanPolicy(std::vector<Prefix> ignore, BanSpec ban, int ipv6_prefix, BanBook& book, size_t max_offenders)
    : guard_(std::move(ignore)),
      ban_(ban),
      ipv6_prefix_(ipv6_prefix),
      book_(book),
      offences_(kMaxOffences, std::max(ban.max, Seconds(1)), false, max_offenders) {
  // The ignore list by family, for IsIgnored.
  for (const Prefix& p : guard_) {
    if (!p.address().is_v4()) {
      ignore6_.push_back(p);
      continue;
    }
    uint32_t mask = p.length() == 0 ? 0 : ~uint32_t{0} << (32 - p.length());
    ignore4_.push_back({V4Number(p.address()) & mask, mask});
  }
  // What no ban may cover: the ignore list and loopback (127.0.0.0/8, ::1).
  guard_.push_back(Prefix(IpAddress::V4(0x7F000000u), 8));
  guard_.push_back(Prefix(*IpAddress::Parse("::1")));
  std::sort(guard_.begin(), guard_.end());
  guard_.erase(std::unique(guard_.begin(), guard_.end()), guard_.end());
  std::tie(wide_high_mask_, wide_low_mask_) = Masks(ipv6_prefix_);
  for (const Prefix& p : guard_) {
    if (p.address().is_v4()) continue;
    auto [hm, lm] = Masks(std::min(p.length(), ipv6_prefix_));
    wide_guard_.push_back({p.address().high() & hm, p.address().low() & lm, hm, lm});
  }
  book_.Listen(this);
}

uint32_t BanPolicy::V4Number(const IpAddress& ip) {
  const auto& b = ip.bytes();
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
}

bool BanPolicy::IsIgnored(const IpAddress& ip) const {
  // Asked twice for every event: an IPv4 address is compared as a number with each network.
  if (ip.is_v4()) {
    uint32_t a = V4Number(ip);
    if (a >> 24 == 127) return true;
    for (const auto& [net, mask] : ignore4_)
      if ((a & mask) == net) return true;
    return false;
  }
  if (ip.IsLoopback()) return true;
  return std::any_of(ignore6_.begin(), ignore6_.end(), [&](const Prefix& p) { return p.Contains(ip); });
}

std::pair<uint64_t, uint64_t> BanPolicy::Masks(int length) {
  auto first = [](int bits) { return bits <= 0 ? 0 : bits >= 64 ? ~uint64_t{0} : ~(~uint64_t{0} >> bits); };
  return {first(length), first(length - 64)};
}

Prefix BanPolicy::WideTarget(const IpAddress& ip) const {
  // Asked several times for every IPv6 event: the address's halves compared as numbers with
  // the guard's IPv6 entries. Never let a prefix ban cover a guarded address: fall back to
  // the single address where the wide prefix and an entry share their first bits.
  const uint64_t high = ip.high(), low = ip.low();
  for (const Net6& g : wide_guard_)
    if (((high & g.high_mask) ^ g.high) == 0 && ((low & g.low_mask) ^ g.low) == 0) return Prefix(ip);
  return Prefix::OfNetwork(IpAddress::V6Words(high & wide_high_mask_, low & wide_low_mask_), ipv6_prefix_);
}

bool BanPolicy::CoversIgnored(const Prefix& target) const {
  return std::any_of(guard_.begin(), guard_.end(), [&](const Prefix& p) { return Overlap(p, target); });
}

Seconds BanPolicy::Escalate(const Prefix& target, Seconds base, Time at, const std::optional<BanTerm>& held) const {
  if (base.count() == 0) return base;  // permanent stays permanent
  int n = 1 + offences_.Count(target, at);
  // Within max, as the history's own window counts (a second is inside while later than
  // the latest second less max).
  Seconds max = std::max(ban_.max, Seconds(1));
  if (held && held->offence && SecondsOf(held->start) + uint64_t(max.count()) > SecondsOf(at)) ++n;
  if (n == 1) return base;  // a first offence: base * factor^0, within the cap (a botnet's every ban)
  double d = static_cast<double>(base.count()) * std::pow(ban_.factor, static_cast<double>(n - 1));
  double cap = static_cast<double>(std::max(ban_.max, base).count());
  return Seconds(static_cast<int64_t>(std::min(d, cap)));
}

bool BanPolicy::AlreadyCovered(const IpAddress& ip, Seconds base, Time at) const {
  return Covered(TargetFor(ip), base, at);
}

bool BanPolicy::Covered(const Prefix& target, Seconds base, Time at) const {
  return Covers(book_.Find(target, at), base);
}

template <class AccountText, class ReasonText>
std::optional<Order> BanPolicy::BanWith(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                                        const SharedText& rule, AccountText&& account, ReasonText&& reason) {
  // Either check refuses on its own, so the cheaper common one goes first: the address is
  // banned already, at least as long (a fan-out meets most of its addresses again).
  Prefix target = TargetFor(ip);
  std::optional<BanTerm> held = book_.Held(target);
  if (held && held->end > at && Covers(held, base)) return std::nullopt;
  if (IsIgnored(ip)) return std::nullopt;
  Seconds d = Escalate(target, base, at, held);
  Order order{Order::Action::kBan, at, jail, rule, target, account(), d, reason()};
  // The book reports the ban this one replaces as ended (an offence for the history).
  book_.Record(order);
  return order;
}

std::optional<Order> BanPolicy::Ban(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                                    const SharedText& rule, const SharedText& account, const SharedText& reason) {
  return BanWith(ip, base, at, jail, rule, [&] { return account; }, [&] { return reason; });
}

std::optional<Order> BanPolicy::Ban(const IpAddress& ip, Seconds base, Time at, const SharedText& jail,
                                    const SharedText& rule, SharedTextCopies& account, SharedTextCopies& reason) {
  return BanWith(ip, base, at, jail, rule, [&] { return account.Take(); }, [&] { return reason.Take(); });
}

void BanPolicy::Prefetch(const IpAddress& ip) const {
  Prefix target = TargetFor(ip);
  book_.Prefetch(target);
  offences_.Prefetch(target);
}

bool BanPolicy::IsBanned(const IpAddress& ip, Time now) const { return book_.Find(TargetFor(ip), now).has_value(); }

void BanPolicy::AddOffence(const Prefix& target, Time at) {
  if (auto held = book_.Held(target); held && held->offence && held->start <= at) return;
  (void)offences_.Observe(target, 0, 1, at);
}

void BanPolicy::BanEnded(const Prefix& target, Time start) { (void)offences_.Observe(target, 0, 1, start); }

}  // namespace relayban
