#include "relayban/score/account_history.hpp"

#include <algorithm>

#include "relayban/core/bytes.hpp"

namespace relayban {

AccountHistory::Entry* AccountHistory::Find(std::string_view account) {
  size_t i = accounts_.Find(account);
  return i == accounts_.kNone ? nullptr : accounts_.ValueAt(i).get();
}

const AccountHistory::Entry* AccountHistory::Find(std::string_view account) const {
  size_t i = accounts_.Find(account);
  return i == accounts_.kNone ? nullptr : accounts_.ValueAt(i).get();
}

AccountHistory::Entry* AccountHistory::Get(const std::string& account, uint32_t day) {
  size_t hash = StringHash{}(account);
  size_t i = accounts_.Find(account, hash);
  Entry* e = i == accounts_.kNone ? nullptr : accounts_.ValueAt(i).get();
  if (!e) {
    if (accounts_.size() >= max_accounts_ && swept_day_ != day) {
      // Full: forget accounts idle for the whole history (one pass a day at most: only
      // accounts that logged in or relayed get here, never invented names).
      swept_day_ = day;
      std::vector<std::string> idle;
      accounts_.ForEach([&](const std::string& name, const std::unique_ptr<Entry>& x) {
        if (x->last_day + kDays < day) idle.push_back(name);
      });
      for (const std::string& name : idle) accounts_.Erase(name);
    }
    if (accounts_.size() >= max_accounts_) {
      ++refused_;
      return nullptr;
    }
    auto fresh = std::make_unique<Entry>();
    e = fresh.get();
    accounts_.ValueAt(accounts_.Insert(account, hash)) = std::move(fresh);
    e->first_day = day;
    e->last_day = day;
  }
  Roll(*e, day);
  if (!e->changed) {
    e->changed = true;
    changed_.push_back(account);
  }
  return e;
}

void AccountHistory::Roll(Entry& e, uint32_t day) {
  if (day > e.last_day) {
    e.today.clear();
    e.last_day = day;
  }
  size_t slot = day % kDays;
  if (e.day[slot] != day) {
    e.day[slot] = day;
    e.domains[slot] = 0;
    e.relays[slot] = 0;
    e.peak[slot] = 0;
  }
}

void AccountHistory::Relayed(const std::string& account, uint64_t domain, Time t) {
  uint32_t day = DayOf(t);
  Entry* e = Get(account, day);
  if (!e || day < e->last_day) return;  // a line of an earlier day read late: its day is closed
  uint32_t hour = SecondsOf(t) / 3600;
  if (hour > e->hour) {
    e->hour = hour;
    e->this_hour.clear();
  }
  if (hour == e->hour && e->this_hour.size() < kMaxToday && e->this_hour.insert(domain).second)
    e->peak[day % kDays] = std::max<uint32_t>(e->peak[day % kDays], static_cast<uint32_t>(e->this_hour.size()));
  if (e->today.size() >= kMaxToday || !e->today.insert(domain).second) return;
  ++e->domains[day % kDays];
}

bool AccountHistory::Entry::Mark::Fresh(int64_t us) {
  if (us < until_us) return false;
  if (us > until_us) {
    until_us = us;
    at_mark = 1;
    skip = 0;
    return true;
  }
  if (skip > 0) {
    --skip;
    return false;
  }
  ++at_mark;
  return true;
}

void AccountHistory::RelayCounted(const std::string& account, Time t) {
  uint32_t day = DayOf(t);
  Entry* e = Get(account, day);
  if (!e || day < e->last_day || !e->relays_mark.Fresh(t.time_since_epoch().count())) return;
  ++e->relays[day % kDays];
}

bool AccountHistory::LoggedIn(const std::string& account, uint64_t network, Time t, Seconds warmup) {
  uint32_t day = DayOf(t);
  Entry* e = Get(account, day);
  if (!e) return false;
  if (e->logins_mark.Fresh(t.time_since_epoch().count())) {
    auto& h = e->hours[static_cast<size_t>(SecondsOf(t) % 86400 / 3600)];
    // Old habits fade: past 1,000 logins in an hour, every hour's count is halved.
    if (++h > 1000)
      for (auto& x : e->hours) x /= 2;
  }
  bool seasoned = static_cast<int64_t>(day - std::min(day, e->first_day)) * 86400 >= warmup.count();
  for (auto& [n, last] : e->networks)
    if (n == network) {
      last = std::max(last, day);
      return false;
    }
  if (e->networks.size() >= kMaxNetworks) {
    auto oldest = std::min_element(e->networks.begin(), e->networks.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    e->networks.erase(oldest);
  }
  e->networks.emplace_back(network, day);
  return seasoned;
}

AccountHistory::Usual AccountHistory::UsualDay(const std::string& account, Time t) const {
  Usual u;
  const Entry* found = Find(account);
  if (!found) return u;
  const Entry& e = *found;
  uint32_t day = DayOf(t);
  u.days = static_cast<int>(day - std::min(day, e.first_day));
  std::vector<uint32_t> active, volume, peaks;
  for (size_t s = 0; s < static_cast<size_t>(kDays); ++s) {
    uint32_t d = e.day[s];
    if (d == day && d == e.last_day) {
      u.today = static_cast<int>(e.domains[s]);
      u.relays_today = static_cast<int>(e.relays[s]);
    } else if (d < day && d + kDays >= day) {
      if (e.domains[s] > 0) active.push_back(e.domains[s]);
      if (e.relays[s] > 0) volume.push_back(e.relays[s]);
      if (e.peak[s] > 0) peaks.push_back(e.peak[s]);
    }
  }
  // A busy day of its own, not an average one: the upper quartile of its active days (a
  // sales account's quiet Fridays and weekends must not set its limit).
  auto upper_quartile = [](std::vector<uint32_t>& v) {
    if (v.empty()) return 0;
    size_t k = v.size() * 3 / 4;
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return static_cast<int>(v[k]);
  };
  u.usual = upper_quartile(active);
  u.usual_relays = upper_quartile(volume);
  u.usual_hour = upper_quartile(peaks);
  uint64_t logins = 0;
  for (uint32_t h : e.hours) logins += h;
  for (int h = 0; h < 24; ++h) {
    uint32_t n = e.hours[static_cast<size_t>(h)];
    if (n >= 2 && n * 20 >= logins) u.login_hours.push_back(h);
  }
  return u;
}

std::vector<std::pair<std::string, std::string>> AccountHistory::TakeChanged(size_t limit) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!changed_.empty() && out.size() < limit) {
    std::string name = std::move(changed_.back());
    changed_.pop_back();
    Entry* found = Find(name);
    if (!found) continue;
    Entry& e = *found;
    e.changed = false;
    ByteWriter w;
    w.Byte(2);  // format version (1: without volume and login hours)
    w.Varint(e.first_day);
    w.Varint(e.last_day);
    for (int s = 0; s < kDays; ++s) {
      w.Varint(e.day[static_cast<size_t>(s)]);
      w.Varint(e.domains[static_cast<size_t>(s)]);
    }
    w.Varint(e.today.size());
    for (uint64_t h : e.today) w.Varint(h);
    w.Varint(e.networks.size());
    for (const auto& [n, d] : e.networks) {
      w.Varint(n);
      w.Varint(d);
    }
    for (uint32_t x : e.relays) w.Varint(x);
    for (uint32_t x : e.hours) w.Varint(x);
    for (uint32_t x : e.peak) w.Varint(x);
    w.Varint(e.hour);
    w.Varint(e.this_hour.size());
    for (uint64_t h : e.this_hour) w.Varint(h);
    for (const Entry::Mark* m : {&e.relays_mark, &e.logins_mark}) {
      w.Varint(static_cast<uint64_t>(std::max<int64_t>(0, m->until_us)));
      w.Varint(m->at_mark);
    }
    out.emplace_back(name, std::move(w.str()));
  }
  return out;
}

void AccountHistory::MarkAllChanged() {
  accounts_.ForEach([&](const std::string& name, const std::unique_ptr<Entry>&) { MarkChanged(name); });
}

void AccountHistory::MarkChanged(const std::string& account) {
  Entry* e = Find(account);
  if (!e || e->changed) return;
  e->changed = true;
  changed_.push_back(account);
}

std::optional<AccountHistory::Entry> AccountHistory::Parse(std::string_view bytes) {
  ByteReader r(bytes);
  Entry e;
  auto v = r.Byte();
  if (!v || (*v != 1 && *v != 2)) return std::nullopt;
  auto num = [&](uint64_t max) -> std::optional<uint64_t> {
    auto x = r.Varint();
    if (!x || *x > max) return std::nullopt;
    return x;
  };
  auto first = num(UINT32_MAX), last = num(UINT32_MAX);
  if (!first || !last) return std::nullopt;
  e.first_day = static_cast<uint32_t>(*first);
  e.last_day = static_cast<uint32_t>(*last);
  for (int s = 0; s < kDays; ++s) {
    auto d = num(UINT32_MAX), n = num(UINT32_MAX);
    if (!d || !n) return std::nullopt;
    e.day[static_cast<size_t>(s)] = static_cast<uint32_t>(*d);
    e.domains[static_cast<size_t>(s)] = static_cast<uint32_t>(*n);
  }
  auto today = num(kMaxToday);
  if (!today) return std::nullopt;
  for (uint64_t i = 0; i < *today; ++i) {
    auto h = r.Varint();
    if (!h) return std::nullopt;
    e.today.insert(*h);
  }
  auto nets = num(kMaxNetworks);
  if (!nets) return std::nullopt;
  for (uint64_t i = 0; i < *nets; ++i) {
    auto n = r.Varint();
    auto d = num(UINT32_MAX);
    if (!n || !d) return std::nullopt;
    e.networks.emplace_back(*n, static_cast<uint32_t>(*d));
  }
  if (*v == 2) {
    for (auto& x : e.relays) {
      auto n = num(UINT32_MAX);
      if (!n) return std::nullopt;
      x = static_cast<uint32_t>(*n);
    }
    for (auto& x : e.hours) {
      auto n = num(UINT32_MAX);
      if (!n) return std::nullopt;
      x = static_cast<uint32_t>(*n);
    }
    for (auto& x : e.peak) {
      auto n = num(UINT32_MAX);
      if (!n) return std::nullopt;
      x = static_cast<uint32_t>(*n);
    }
    auto hour = num(UINT32_MAX), in_hour = num(kMaxToday);
    if (!hour || !in_hour) return std::nullopt;
    e.hour = static_cast<uint32_t>(*hour);
    for (uint64_t i = 0; i < *in_hour; ++i) {
      auto h = r.Varint();
      if (!h) return std::nullopt;
      e.this_hour.insert(*h);
    }
    for (Entry::Mark* m : {&e.relays_mark, &e.logins_mark}) {
      auto until = num(INT64_MAX), at = num(UINT32_MAX);
      if (!until || !at) return std::nullopt;
      m->until_us = static_cast<int64_t>(*until);
      m->at_mark = static_cast<uint32_t>(*at);
      m->skip = m->at_mark;  // what a journal replayed over it brings again
    }
  }
  if (!r.done()) return std::nullopt;
  return e;
}

bool AccountHistory::Restore(std::string_view account, std::string_view bytes) {
  auto e = Parse(bytes);
  if (!e) return false;
  size_t i = accounts_.Find(account);
  if (i == accounts_.kNone) {
    if (accounts_.size() >= max_accounts_) {
      ++refused_;
      return false;
    }
    i = accounts_.Insert(std::string(account));
  }
  accounts_.ValueAt(i) = std::make_unique<Entry>(std::move(*e));
  return true;
}

bool AccountHistory::Merge(std::string_view account, std::string_view bytes) {
  Entry* found = Find(account);
  if (!found) return Restore(account, bytes);
  auto other = Parse(bytes);
  if (!other) return false;
  Entry& e = *found;
  e.first_day = std::min(e.first_day, other->first_day);
  for (size_t s = 0; s < static_cast<size_t>(kDays); ++s) {
    if (other->day[s] > e.day[s]) {
      e.day[s] = other->day[s];
      e.domains[s] = other->domains[s];
      e.relays[s] = other->relays[s];
      e.peak[s] = other->peak[s];
    } else if (other->day[s] == e.day[s]) {
      e.domains[s] = std::max(e.domains[s], other->domains[s]);
      e.relays[s] = std::max(e.relays[s], other->relays[s]);
      e.peak[s] = std::max(e.peak[s], other->peak[s]);
    }
  }
  for (size_t h = 0; h < e.hours.size(); ++h) e.hours[h] = std::max(e.hours[h], other->hours[h]);
  if (other->hour > e.hour) {
    e.hour = other->hour;
    e.this_hour = std::move(other->this_hour);
  } else if (other->hour == e.hour) {
    e.this_hour.insert(other->this_hour.begin(), other->this_hour.end());
  }
  for (auto [mine, theirs] : {std::pair{&e.relays_mark, &other->relays_mark}, std::pair{&e.logins_mark, &other->logins_mark}})
    if (theirs->until_us > mine->until_us) *mine = *theirs;
  if (other->last_day > e.last_day) {
    e.last_day = other->last_day;
    e.today = std::move(other->today);
  } else if (other->last_day == e.last_day) {
    e.today.insert(other->today.begin(), other->today.end());
    e.domains[e.last_day % kDays] = std::max<uint32_t>(e.domains[e.last_day % kDays], static_cast<uint32_t>(e.today.size()));
  }
  for (const auto& theirs : other->networks) {
    auto known = std::find_if(e.networks.begin(), e.networks.end(), [&](const auto& x) { return x.first == theirs.first; });
    if (known != e.networks.end()) known->second = std::max(known->second, theirs.second);
    else if (e.networks.size() < kMaxNetworks) e.networks.push_back(theirs);
  }
  MarkChanged(std::string(account));
  return true;
}

}  // namespace relayban
