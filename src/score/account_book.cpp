#include "relayban/score/account_book.hpp"

#include <algorithm>

#include "relayban/core/text.hpp"

namespace relayban {

AccountBook::Entry& AccountBook::Get(std::string_view account, Time t) {
  if (auto it = accounts_.find(account); it != accounts_.end()) return it->second;
  if (accounts_.size() >= max_accounts_) {
    // Failed logins can name any account: evict the least recently seen so a flood of
    // invented names cannot grow memory without bound.
    auto oldest = std::min_element(accounts_.begin(), accounts_.end(), [](const auto& a, const auto& b) {
      return a.second.view.last_seen < b.second.view.last_seen;
    });
    accounts_.erase(oldest);
    ++evicted_;
  }
  Entry& e = accounts_[std::string(account)];
  e.view.account = std::string(account);
  e.view.last_seen = t;
  return e;
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
  if (!recipient_domain.empty() && e.domains.size() < kMaxDistinct) e.domains.insert(Hash64(recipient_domain));
  e.view.recipient_domains = e.domains.size();
  if (ip) {
    // Only addresses that really used the account become its last_ip; a failure does not.
    if (outcome != Outcome::kAuthFailure) e.view.last_ip = *ip;
    if (e.ip_hashes.size() < kMaxDistinct) e.ip_hashes.insert(IpAddressHash{}(*ip));
    e.view.ips = e.ip_hashes.size();
    auto it = std::find_if(e.recent.begin(), e.recent.end(), [&](const IpUse& u) { return u.ip == *ip; });
    if (it != e.recent.end()) {
      it->last = std::max(it->last, t);
      it->kinds |= kind_bit;
    } else {
      if (e.recent.size() >= kMaxRecentIps) {
        auto oldest = std::min_element(e.recent.begin(), e.recent.end(),
                                       [](const IpUse& a, const IpUse& b) { return a.last < b.last; });
        e.recent.erase(oldest);
      }
      e.recent.push_back({*ip, t, kind_bit});
    }
  }
}

void AccountBook::AddVerdict(std::string_view account, std::string_view rule) {
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;
  auto& v = it->second.view.verdicts;
  if (std::find(v.begin(), v.end(), rule) == v.end()) v.emplace_back(rule);
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
