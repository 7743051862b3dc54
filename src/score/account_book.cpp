#include "relayban/score/account_book.hpp"

#include <algorithm>

#include "relayban/core/text.hpp"

namespace relayban {

AccountBook::Entry* AccountBook::Find(std::string_view account) {
  uint32_t* at = index_.Get(account);
  return at ? &entries_[*at] : nullptr;
}

const AccountBook::Entry* AccountBook::Find(std::string_view account) const {
  const uint32_t* at = index_.Get(account);
  return at ? &entries_[*at] : nullptr;
}

AccountBook::Entry& AccountBook::Get(std::string_view account, Time t) {
  uint32_t sec = SecondsOf(t);
  newest_ = std::max(newest_, sec);
  size_t hash = StringHash{}(account);  // once, for the lookup and the insert
  if (size_t slot = index_.Find(account, hash); slot != index_.kNone) {
    uint32_t at = index_.ValueAt(slot);
    seen_sec_[at] = std::max(seen_sec_[at], sec);
    return entries_[at];
  }
  if (index_.size() >= max_accounts_) EvictOldestAccounts();
  uint32_t at;
  if (!free_.empty()) {
    at = free_.back();
    free_.pop_back();
  } else {
    at = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
    seen_sec_.push_back(kFree);
  }
  std::string name(account);
  index_.ValueAt(index_.Insert(name, hash)) = at;
  seen_sec_[at] = sec;
  Entry& e = entries_[at];
  e.view.account = std::move(name);
  e.view.last_seen = t;
  return e;
}

void AccountBook::EvictOldestAccounts() {
  // Failed logins can name any account, so a flood of invented names must neither grow memory
  // nor cost a scan of every account per name: the least recently seen eighth goes at once.
  ++runs_;
  size_t keep = max_accounts_ - max_accounts_ / 8;
  if (index_.size() <= keep) return;
  auto cost = EvictOldest(
      entries_.size(), index_.size() - keep, newest_, 86400, runs_, [&](size_t i) { return seen_sec_[i] != kFree; },
      [&](size_t i) { return seen_sec_[i]; }, [&](size_t i) { return static_cast<uint64_t>(StringHash{}(entries_[i].view.account)); },
      [&](size_t i) {
        index_.Erase(entries_[i].view.account);
        entries_[i] = Entry();
        seen_sec_[i] = kFree;
        free_.push_back(static_cast<uint32_t>(i));
        return false;
      });
  cost_.evicted += cost.evicted;
  cost_.positions_visited += cost.positions_visited;
}

AccountBook::IpUse* AccountBook::FindRecent(Entry& e, const IpAddress& ip) {
  if (e.recent.size() <= kLinearScan) {
    for (IpUse& u : e.recent)
      if (u.ip == ip) return &u;
    return nullptr;
  }
  const uint32_t* at = e.recent_index.Get(ip);
  return at ? &e.recent[*at] : nullptr;
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
    e.recent_index[ip] = static_cast<uint32_t>(e.recent.size() - 1);
    return;
  }
  // First use, or after the trim above moved entries: index them all again (in place,
  // keeping the table's memory).
  e.recent_index.Reset();
  for (size_t i = 0; i < e.recent.size(); ++i) e.recent_index[e.recent[i].ip] = static_cast<uint32_t>(i);
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
  Entry* e = Find(account);
  if (!e) return;
  auto& v = e->view.verdicts;
  if (std::find(v.begin(), v.end(), rule) == v.end()) v.emplace_back(rule);
}

void AccountBook::AddTargeted(std::string_view account, std::string_view rule) {
  Entry* e = Find(account);
  if (!e) return;
  auto& v = e->view.targeted_by;
  if (std::find(v.begin(), v.end(), rule) == v.end()) v.emplace_back(rule);
}

void AccountBook::ClearVerdicts(std::string_view account) {
  Entry* e = Find(account);
  if (!e) return;
  e->view.verdicts.clear();
  e->view.targeted_by.clear();
  e->fired.clear();
}

std::optional<Time> AccountBook::MarkFired(std::string_view account, uint32_t rule_id, Time t) {
  Entry* e = Find(account);
  if (!e) return std::nullopt;
  for (auto& [id, at] : e->fired) {
    if (id == rule_id) {
      Time previous = at;
      at = t;
      return previous;
    }
  }
  e->fired.emplace_back(rule_id, t);
  return std::nullopt;
}

std::vector<IpAddress> AccountBook::IpsSince(std::string_view account, Time since, uint64_t kinds) const {
  std::vector<IpAddress> out;
  const Entry* e = Find(account);
  if (!e) return out;
  for (const IpUse& u : e->recent)
    if (u.last >= since && (u.kinds & kinds) != 0) out.push_back(u.ip);
  return out;
}

std::vector<AccountView> AccountBook::Snapshot() const {
  std::vector<AccountView> out;
  out.reserve(index_.size());
  for (size_t i = 0; i < entries_.size(); ++i)
    if (seen_sec_[i] != kFree) out.push_back(entries_[i].view);
  std::sort(out.begin(), out.end(), [](const AccountView& a, const AccountView& b) { return a.account < b.account; });
  return out;
}

std::optional<AccountView> AccountBook::View(std::string_view account) const {
  const Entry* e = Find(account);
  if (!e) return std::nullopt;
  return e->view;
}

size_t AccountBook::CountWithVerdict() const {
  size_t n = 0;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (seen_sec_[i] != kFree && !entries_[i].view.verdicts.empty()) ++n;
  return n;
}

}  // namespace relayban
