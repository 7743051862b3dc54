#include "relayban/score/account_book.hpp"

#include <algorithm>

#include "relayban/core/text.hpp"

namespace relayban {

AccountBook::Entry& AccountBook::Get(std::string_view account, Time t) {
  if (auto it = accounts_.find(account); it != accounts_.end()) return it->second;
  if (accounts_.size() >= max_accounts_) EvictOldestAccounts();
  Entry& e = accounts_[std::string(account)];
  e.view.account = std::string(account);
  e.view.last_seen = t;
  return e;
}

void AccountBook::EvictOldestAccounts() {
  // Failed logins can name any account, so a flood of invented names must neither grow memory
  // nor cost a scan of every account per name: the least recently seen eighth goes at once.
  std::vector<Time> seen;
  seen.reserve(accounts_.size());
  for (const auto& [name, e] : accounts_) seen.push_back(e.view.last_seen);
  if (seen.empty()) return;
  size_t nth = std::max<size_t>(1, seen.size() / 8);
  std::nth_element(seen.begin(), seen.begin() + static_cast<long>(nth - 1), seen.end());
  Time cutoff = seen[nth - 1];
  size_t dropped = 0;
  for (auto it = accounts_.begin(); it != accounts_.end() && dropped < nth;) {
    if (it->second.view.last_seen <= cutoff) {
      it = accounts_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  evicted_ += dropped;
}

AccountBook::IpUse* AccountBook::FindRecent(Entry& e, const IpAddress& ip) {
  if (e.recent.size() <= kLinearScan) {
    for (IpUse& u : e.recent)
      if (u.ip == ip) return &u;
    return nullptr;
  }
  auto it = e.recent_index.find(ip);
  return it == e.recent_index.end() ? nullptr : &e.recent[it->second];
}

void AccountBook::AddRecent(Entry& e, const IpAddress& ip, Time t, uint64_t kind_bit) {
  if (e.recent.size() >= kMaxRecentIps) {
    // Full: keep the most recently seen three quarters (one sort per quarter of new
    // addresses, not a scan per address).
    size_t keep = kMaxRecentIps * 3 / 4;
    std::nth_element(e.recent.begin(), e.recent.begin() + static_cast<long>(keep), e.recent.end(),
                     [](const IpUse& a, const IpUse& b) { return a.last > b.last; });
    e.recent.resize(keep);
  }
  e.recent.push_back({ip, t, kind_bit});
  if (e.recent.size() <= kLinearScan) return;
  if (e.recent_index.size() + 1 == e.recent.size()) {
    e.recent_index.emplace(ip, static_cast<uint32_t>(e.recent.size() - 1));
    return;
  }
  e.recent_index.clear();  // first use, or after an eviction moved entries
  for (size_t i = 0; i < e.recent.size(); ++i) e.recent_index.emplace(e.recent[i].ip, static_cast<uint32_t>(i));
}

void AccountBook::Record(std::string_view account, Outcome outcome, uint64_t kind_bit,
                         const std::optional<IpAddress>& ip, std::string_view recipient_domain, Time t) {
  Entry& e = Get(account, t);
  e.view.last_seen = std::max(e.view.last_seen, t);
  switch (outcome) {
    case Outcome::kAuthSuccess: ++e.view.auth_success; break;
    case Outcome::kAuthFailure: ++e.view.auth_failure; break;
    case Outcome::kRelay: ++e.view.relayed; break;
    case Outcome::kOther: break;
  }
  if (!recipient_domain.empty() && e.domains.size() < kMaxDistinct) e.domains.Insert(Hash64(recipient_domain));
  e.view.recipient_domains = e.domains.size();
  if (ip) {
    // Only addresses that really used the account become its last_ip; a failure does not.
    if (outcome != Outcome::kAuthFailure) e.view.last_ip = *ip;
    if (e.ip_hashes.size() < kMaxDistinct) e.ip_hashes.Insert(IpAddressHash{}(*ip));
    e.view.ips = e.ip_hashes.size();
    if (IpUse* u = FindRecent(e, *ip)) {
      u->last = std::max(u->last, t);
      u->kinds |= kind_bit;
    } else {
      AddRecent(e, *ip, t, kind_bit);
    }
  }
}

void AccountBook::AddVerdict(std::string_view account, std::string_view rule) {
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;
  auto& v = it->second.view.verdicts;
  if (std::find(v.begin(), v.end(), rule) == v.end()) v.emplace_back(rule);
}

std::optional<Time> AccountBook::MarkFired(std::string_view account, uint32_t rule_id, Time t) {
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return std::nullopt;
  for (auto& [id, at] : it->second.fired) {
    if (id == rule_id) {
      Time previous = at;
      at = t;
      return previous;
    }
  }
  it->second.fired.emplace_back(rule_id, t);
  return std::nullopt;
}

std::vector<IpAddress> AccountBook::IpsSince(std::string_view account, Time since, uint64_t kinds) const {
  std::vector<IpAddress> out;
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return out;
  for (const IpUse& u : it->second.recent)
    if (u.last >= since && (u.kinds & kinds) != 0) out.push_back(u.ip);
  return out;
}

std::vector<AccountView> AccountBook::Snapshot() const {
  std::vector<AccountView> out;
  out.reserve(accounts_.size());
  for (const auto& [name, e] : accounts_) out.push_back(e.view);
  std::sort(out.begin(), out.end(), [](const AccountView& a, const AccountView& b) { return a.account < b.account; });
  return out;
}

}  // namespace relayban
