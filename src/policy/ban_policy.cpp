#include "relayban/policy/ban_policy.hpp"

#include <algorithm>
#include <cmath>

namespace relayban {

BanPolicy::BanPolicy(std::vector<Prefix> ignore, BanSpec ban, int ipv6_prefix)
    : ignore_(std::move(ignore)), ban_(ban), ipv6_prefix_(ipv6_prefix) {}

bool BanPolicy::IsIgnored(const IpAddress& ip) const {
  if (ip.IsLoopback()) return true;
  return std::any_of(ignore_.begin(), ignore_.end(), [&](const Prefix& p) { return p.Contains(ip); });
}

Prefix BanPolicy::TargetFor(const IpAddress& ip) const {
  if (ip.is_v4()) return Prefix(ip);
  Prefix wide(ip, ipv6_prefix_);
  // Never let a prefix ban cover an ignored address: fall back to the single address.
  return CoversIgnored(wide) ? Prefix(ip) : wide;
}

bool BanPolicy::CoversIgnored(const Prefix& target) const {
  if (IsIgnored(target.address())) return true;
  for (const Prefix& p : ignore_) {
    if (p.address().family() != target.address().family()) continue;
    int common = std::min(p.length(), target.length());
    if (p.address().Masked(common) == target.address().Masked(common)) return true;
  }
  return false;
}

Seconds BanPolicy::Escalate(const Prefix& target, Seconds base, Time at) {
  if (base.count() == 0) return base;  // permanent stays permanent
  auto& history = offences_[target];
  while (!history.empty() && history.front() + ban_.max < at) history.pop_front();
  history.push_back(at);
  if (history.size() > 64) history.pop_front();
  double d = static_cast<double>(base.count()) * std::pow(ban_.factor, static_cast<double>(history.size() - 1));
  double cap = static_cast<double>(std::max(ban_.max, base).count());
  return Seconds(static_cast<int64_t>(std::min(d, cap)));
}

std::optional<Order> BanPolicy::Ban(const IpAddress& ip, Seconds base, Time at, const std::string& jail,
                                    const std::string& rule, const std::string& account, const std::string& reason) {
  // Either check refuses on its own, so the cheaper common one goes first: the address is
  // banned already, at least as long (a fan-out meets most of its addresses again).
  Prefix target = TargetFor(ip);
  auto it = active_.find(target);
  if (it != active_.end() && it->second.end > at) {
    bool longer = it->second.duration.count() != 0 && (base.count() == 0 || base > it->second.duration);
    if (!longer) return std::nullopt;
  }
  if (IsIgnored(ip)) return std::nullopt;
  Seconds d = Escalate(target, base, at);
  Time end = d.count() == 0 ? Time::max() : at + d;
  active_[target] = Active{end, d};
  return Order{Order::Action::kBan, at, jail, rule, target, account, d, reason};
}

bool BanPolicy::IsBanned(const IpAddress& ip, Time now) const {
  auto it = active_.find(TargetFor(ip));
  return it != active_.end() && it->second.end > now;
}

void BanPolicy::Expire(Time now) {
  for (auto it = active_.begin(); it != active_.end();) {
    if (it->second.end <= now) it = active_.erase(it);
    else ++it;
  }
}

}  // namespace relayban

namespace relayban {

void BanPolicy::Restore(const Prefix& target, Time end, Seconds duration) { active_[target] = Active{end, duration}; }
void BanPolicy::Forget(const Prefix& target) { active_.erase(target); }
void BanPolicy::AddOffence(const Prefix& target, Time at) {
  auto& h = offences_[target];
  h.push_back(at);
  if (h.size() > 64) h.pop_front();
}

}  // namespace relayban
