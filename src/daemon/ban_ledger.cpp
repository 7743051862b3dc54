#include "ban_ledger.hpp"

#include "decision_log.hpp"
#include "job_thread.hpp"
#include "store_writer.hpp"

#include <syslog.h>

#include <algorithm>
#include <unordered_set>

#include "relayban/core/text.hpp"

namespace relayban {
namespace {

int64_t Us(Time t) { return t.time_since_epoch().count(); }
Time FromUs(int64_t us) { return us == INT64_MAX ? Time::max() : Time(Micros(us)); }
// Min-heap on the end time.
bool Later(const std::pair<int64_t, Prefix>& a, const std::pair<int64_t, Prefix>& b) { return a.first > b.first; }

}  // namespace

const char* OriginName(BanOrigin o) {
  switch (o) {
    case BanOrigin::kRule: return "rule";
    case BanOrigin::kManual: return "manual";
    case BanOrigin::kAdopted: return "adopted";
    case BanOrigin::kFleet: return "fleet";
  }
  return "rule";
}

BanLedger::BanLedger(Firewall& firewall, StateStore& store, const Clock& clock, Log log, Options options)
    : firewall_(firewall),
      store_(store),
      clock_(clock),
      log_(std::move(log)),
      options_(options),
      kernel_slice_(options.kernel_slice) {}

uint64_t BanLedger::InfoHash(std::string_view jail, std::string_view rule, std::string_view account,
                             std::string_view reason, BanOrigin origin) {
  uint64_t h = static_cast<uint64_t>(origin) + 1;
  for (std::string_view s : {jail, rule, account, reason}) h = (h ^ StringHash{}(s)) * 0x9E3779B97F4A7C15ull;
  return h;
}

uint32_t BanLedger::Intern(std::string_view jail, std::string_view rule, std::string_view account, std::string_view reason,
                           BanOrigin origin) {
  // Keyed by a hash of the values, the id checked against its Info. Should two Infos' hashes
  // ever agree, the second is not indexed: its bans share it no further (nothing else).
  uint64_t h = InfoHash(jail, rule, account, reason, origin);
  const uint32_t* at = info_index_.Get(h);
  if (at) {
    const Info& i = infos_[*at];
    if (i.origin == origin && i.jail == jail && i.rule == rule && i.account == account && i.reason == reason) {
      ++info_refs_[*at];
      return *at;
    }
  }
  Info info{std::string(jail), std::string(rule), std::string(account), std::string(reason), origin};
  uint32_t id;
  if (!info_free_.empty()) {
    id = info_free_.back();
    info_free_.pop_back();
    infos_[id] = std::move(info);
    info_refs_[id] = 1;
    info_jail_active_[id] = &per_jail_[infos_[id].jail];
  } else {
    id = static_cast<uint32_t>(infos_.size());
    infos_.push_back(std::move(info));
    info_refs_.push_back(1);
    info_jail_active_.push_back(&per_jail_[infos_.back().jail]);
  }
  if (!at) info_index_.ValueAt(info_index_.Insert(h)) = id;
  return id;
}

uint32_t BanLedger::Intern(const Info& info) { return Intern(info.jail, info.rule, info.account, info.reason, info.origin); }

void BanLedger::Release(uint32_t id) {
  if (--info_refs_[id] != 0) return;
  if (id == last_info_) last_info_ = UINT32_MAX;  // its id may be handed to other texts
  const Info& info = infos_[id];
  size_t i = info_index_.Find(InfoHash(info.jail, info.rule, info.account, info.reason, info.origin));
  if (i != info_index_.kNone && info_index_.ValueAt(i) == id) info_index_.EraseAt(i);
  infos_[id] = Info();
  info_free_.push_back(id);
}

void BanLedger::SetInfo(Entry& e, uint32_t info) {
  uint32_t old = e.info;
  e.info = info;
  Release(old);
}

BanLedger::ActiveBan BanLedger::MakeBan(const Prefix& p, const Entry& e) const {
  return ActiveBan{p, &infos_[e.info], FromUs(e.start_us), FromUs(e.end_us), Seconds(e.duration_s)};
}

BanWrite BanLedger::SaveOf(const Prefix& p, const Entry& e) const {
  const Info& i = infos_[e.info];
  if (!i.saved) i.saved = std::make_shared<const BanInfo>(BanInfo{i.jail, i.rule, i.account, i.reason, OriginName(i.origin)});
  BanWrite w;
  w.kind = BanWrite::Kind::kSave;
  w.record.target = p;
  w.record.start = FromUs(e.start_us);
  if (e.end_us != kForever) w.record.end = FromUs(e.end_us);
  w.replaces = e.in_store;
  w.info = i.saved;
  return w;
}

void BanLedger::Activate(const Prefix& target, Entry& e) {
  (void)target;
  e.state = State::kActive;
  ++active_;
  ++*info_jail_active_[e.info];
}

void BanLedger::Deactivate(Entry& e) {
  --active_;
  --*info_jail_active_[e.info];
}

void BanLedger::QueueKernel(const Prefix& target, Entry& e, bool urgent) {
  if (e.kernel_pending && !urgent) return;
  e.kernel_pending = true;
  // Urgent work may be queued twice (at the head and where it was): the later pop finds it
  // done and skips it.
  if (urgent) kernel_queue_.push_front(target);
  else kernel_queue_.push_back(target);
}

void BanLedger::ResaveAll() {
  for (size_t i = 0; i < entries_.capacity(); ++i) {
    if (!entries_.Used(i)) continue;
    Entry& e = entries_.ValueAt(i);
    if (!Live(e) || e.save_pending) continue;
    QueueStore(entries_.KeyAt(i), e);
    e.save_pending = true;
    e.in_store = store_in_flight_ > 0;  // a fresh database holds none, unless a slice is on its way there
  }
  store_failed_.clear();  // written again whole above, or ended: the new database never held them
}

void BanLedger::OffenceEnded(const Prefix& target, int64_t start_us, bool later) {
  if (lifting_ && !later) {
    // While lifted bans are settled, their offences (ended first) are still to be queued.
    ended_after_lift_.emplace_back(target, start_us);
  } else if (!later && ended_head_ == ended_.size()) {
    ReportEnded(target, FromUs(start_us));
  } else {
    ended_.emplace_back(target, start_us);
  }
}

bool BanLedger::FlushOffences(size_t n) {
  size_t end = std::min(ended_.size(), ended_head_ + n);
  for (; ended_head_ < end; ++ended_head_) ReportEnded(ended_[ended_head_].first, FromUs(ended_[ended_head_].second));
  if (ended_head_ < ended_.size()) return true;
  if (lifting_) return false;  // more come as the sweep goes on
  std::vector<std::pair<Prefix, int64_t>>().swap(ended_);
  ended_head_ = 0;
  return false;
}

void BanLedger::End(const Prefix& target, Entry& e, State state, How how, int64_t at_us, bool offence_later) {
  Deactivate(e);
  Close(target, e, state, how, at_us, offence_later);
}

void BanLedger::Close(const Prefix& target, Entry& e, State state, How how, int64_t at_us, bool offence_later) {
  if (Offence(e)) OffenceEnded(target, e.start_us, offence_later);
  e.state = state;
  e.how = how;
  e.ended_us = at_us;
  QueueStore(target, e);
  e.end_pending = true;
}

void BanLedger::QueueStore(const Prefix& target, Entry& e) {
  // One place in the queue per target: the flush writes whatever the entry owes by then.
  if (e.save_pending || e.end_pending) return;
  store_queue_.push_back(target);
}

void BanLedger::MaybeErase(const Prefix& target) {
  size_t i = entries_.Find(target);
  if (i == entries_.kNone) return;
  Entry& e = entries_.ValueAt(i);
  if (Lifted(e)) Settle(target, e);
  EraseIfSpent(i);
}

bool BanLedger::EraseIfSpent(size_t i) {
  Entry& e = entries_.ValueAt(i);
  if (!Spent(e)) return false;
  Release(e.info);
  return entries_.EraseAt(i);
}

size_t BanLedger::InsertEntry(const Prefix& target) {
  size_t i = entries_.Insert(target);
  entries_.ValueAt(i).gen = gen_;
  return i;
}

void BanLedger::Settle(const Prefix& target, Entry& e) {
  e.gen = gen_;
  --lift_left_;
  lift_pass_found_ = true;
  // Its kernel element went with the sets; an order still queued for it was dropped.
  e.kernel_pending = false;
  if (e.state == State::kActive) Close(target, e, State::kLifting, How::kUnban, lift_at_us_, true);
}

void BanLedger::SettleIfLifted(const Prefix& target) {
  if (!lifting_) return;
  Entry* e = entries_.Get(target);
  if (e && Lifted(*e)) Settle(target, *e);
}

bool BanLedger::SweepLifted(size_t slots) {
  if (!lifting_) return false;
  size_t capacity = entries_.capacity();
  size_t end = lift_cursor_ < capacity && capacity - lift_cursor_ > slots ? lift_cursor_ + slots : capacity;
  for (size_t& i = lift_cursor_; i < end; ++i) {
    if (!entries_.Used(i)) continue;
    Entry& e = entries_.ValueAt(i);
    if (!Lifted(e)) continue;
    Settle(entries_.KeyAt(i), e);
    // The entry that moves back into slot i is looked at too.
    if (EraseIfSpent(i)) --i;
  }
  if (lift_cursor_ < entries_.capacity() && lift_left_ > 0) return true;
  // Entries move back when others are erased, and over to a grown table: a pass may miss
  // some. Another pass, until none is left (or a whole pass found none: counted wrong).
  if (lift_left_ > 0 && lift_pass_found_) {
    lift_cursor_ = 0;
    lift_pass_found_ = false;
    return true;
  }
  lifting_ = false;
  // The offences that ended meanwhile go behind the lifted ones.
  for (const auto& [target, start_us] : ended_after_lift_) ended_.emplace_back(target, start_us);
  std::vector<std::pair<Prefix, int64_t>>().swap(ended_after_lift_);
  return false;
}

void BanLedger::FinishLift() {
  while (SweepLifted(SIZE_MAX)) {
  }
}

std::optional<BanTerm> BanLedger::Held(const Prefix& target) const {
  const Entry* e = entries_.Get(target);
  if (!e || !Live(*e)) return std::nullopt;
  return BanTerm{FromUs(e->start_us), e->end_us == kForever ? Time::max() : FromUs(e->end_us),
                 Seconds(e->duration_s), Offence(*e)};
}

void BanLedger::Record(const Order& order) {
  if (order.action == Order::Action::kUnban) {
    Unban(order.target);
    return;
  }
  Ban(order, BanOrigin::kRule);
}

void BanLedger::Ban(const Order& order, BanOrigin origin, bool urgent) {
  // Bans count from now on the wall clock, whatever the log time of the line that decided
  // them (a backlog read after a restart must not make them shorter).
  Time now = clock_.Now();
  // One verdict bans many addresses for the same reason: the last interned Info is checked
  // first, without building it or its key.
  uint32_t info;
  auto same_texts = [&] {  // the very texts of the order that interned last_info_
    return last_texts_[0].identity() == order.jail.identity() && last_texts_[1].identity() == order.rule.identity() &&
           last_texts_[2].identity() == order.account.identity() &&
           last_texts_[3].identity() == order.reason.identity();
  };
  bool last_usable = last_info_ < infos_.size() && info_refs_[last_info_] > 0 && infos_[last_info_].origin == origin;
  if (last_usable && same_texts()) {
    ++info_refs_[last_info_];
    info = last_info_;
  } else {
    const Info* l = last_usable ? &infos_[last_info_] : nullptr;
    if (l && l->jail == order.jail && l->rule == order.rule && l->account == order.account && l->reason == order.reason) {
      ++info_refs_[last_info_];
      info = last_info_;
    } else {
      info = last_info_ = Intern(order.jail, order.rule, order.account, order.reason, origin);
    }
    last_texts_ = {order.jail, order.rule, order.account, order.reason};
  }
  SettleIfLifted(order.target);
  size_t i = entries_.Find(order.target);
  if (i == entries_.kNone) {
    i = InsertEntry(order.target);
    Entry& fresh = entries_.ValueAt(i);
    fresh.info = info;
    Activate(order.target, fresh);
  } else {
    Entry& old = entries_.ValueAt(i);
    if (old.state == State::kActive) {
      if (Offence(old)) OffenceEnded(order.target, old.start_us);  // replaced
      Deactivate(old);
      SetInfo(old, info);
    } else {
      SetInfo(old, info);
      // The save of the new ban marks the old record replaced: its end need not be written.
      old.end_pending = false;
    }
    Activate(order.target, old);
  }
  Entry& e = entries_.ValueAt(i);
  e.how = How::kNone;
  e.start_us = Us(now);
  e.duration_s = static_cast<uint32_t>(std::min<int64_t>(order.duration.count(), UINT32_MAX));
  e.end_us = order.duration.count() == 0 ? kForever : Us(now + order.duration);
  if (e.end_us != kForever) {
    expiry_.emplace_back(e.end_us, order.target);
    std::push_heap(expiry_.begin(), expiry_.end(), Later);
  }
  QueueKernel(order.target, e, urgent);
  QueueStore(order.target, e);
  e.save_pending = true;
  ++stats_.bans;
}

bool BanLedger::Unban(const Prefix& target, bool urgent) {
  SettleIfLifted(target);
  size_t i = entries_.Find(target);
  if (i == entries_.kNone || entries_.ValueAt(i).state != State::kActive) {
    // Not banned as far as we know: remove it from the kernel all the same (an element put
    // there by hand, or one whose removal is still on its way), with nothing to record.
    if (i == entries_.kNone) {
      i = InsertEntry(target);
      entries_.ValueAt(i).info = Intern(Info{"manual", "unban", "", "", BanOrigin::kManual});
    }
    Entry& e = entries_.ValueAt(i);
    e.state = State::kLifting;
    QueueKernel(target, e, urgent);
    return false;
  }
  Entry& e = entries_.ValueAt(i);
  End(target, e, State::kLifting, How::kUnban, Us(clock_.Now()));
  QueueKernel(target, e, urgent);
  ++stats_.unbans;
  return true;
}

size_t BanLedger::UnbanAll() {
  // Emptying the sets is one transaction whatever their size (removing a million elements
  // one by one keeps the kernel busy for seconds); if it fails, one by one it is.
  WaitKernel();
  Clock::Steady t0 = clock_.Monotonic();
  bool emptied = static_cast<bool>(firewall_.Rebuild({}));
  stats_.kernel_seconds += std::chrono::duration<double>(clock_.Monotonic() - t0).count();
  if (!emptied) {
    size_t n = 0;
    for (const Prefix& p : Targets()) n += Unban(p);
    return n;
  }
  FinishLift();  // the last unban --all's, if its sweep is still going
  // Every entry becomes a lifted one at once (a generation of its own), counted out now and
  // settled by the sweep (Flush) or when touched.
  size_t n = active_;
  active_ = 0;
  for (auto& [jail, count] : per_jail_) count = 0;
  stats_.unbans += n;
  gen_ ^= 1;
  lifting_ = entries_.size() > 0;
  lift_left_ = entries_.size();
  lift_cursor_ = 0;
  lift_pass_found_ = false;
  lift_at_us_ = Us(clock_.Now());
  kernel_queue_.clear();  // whatever was on its way to the kernel is moot
  return n;
}

std::vector<Prefix> BanLedger::Targets() const {
  std::vector<Prefix> out;
  out.reserve(active_);
  entries_.ForEach([&](const Prefix& p, const Entry& e) {
    if (Live(e)) out.push_back(p);
  });
  return out;
}

std::optional<BanLedger::ActiveBan> BanLedger::Get(const Prefix& target) const {
  const Entry* e = entries_.Get(target);
  if (!e || !Live(*e)) return std::nullopt;
  return MakeBan(target, *e);
}

std::string BanLedger::ListItem(const ActiveBan& b, Time now) {
  // nlohmann::json's keys are sorted: account, jail, origin, reason, remaining_s, rule,
  // since, target.
  DecisionRecord r;
  r.StrOrNull("account", b.info->account).Str("jail", b.info->jail).Str("origin", OriginName(b.info->origin))
      .Str("reason", b.info->reason);
  if (b.end == Time::max()) r.Raw("remaining_s", "null");
  else r.Int("remaining_s", std::max<int64_t>(0, std::chrono::ceil<Seconds>(b.end - now).count()));
  r.Str("rule", b.info->rule).Str("since", FormatIso8601(b.start)).Str("target", b.target.ToString());
  std::string item = r.Take();
  std::string line;
  line.reserve(item.size() + 8);
  line += "{\"ban\":";
  line += item;
  line += '}';
  return line;
}

size_t BanLedger::CountInJail(const std::string& jail) const {
  auto it = per_jail_.find(jail);
  return it == per_jail_.end() ? 0 : it->second;
}

BanLedger::RestoreReport BanLedger::Restore(bool kernel_as_left) {
  WaitKernel();
  FinishLift();
  RestoreReport report;
  Time now = clock_.Now();
  // Read a row at a time: a million bans restored must not sit in memory twice.
  auto restored = store_.EachActiveBan(now, [&](const BanRecord& b) {
    BanOrigin origin = b.origin == "manual" ? BanOrigin::kManual
                       : b.origin == "adopted" ? BanOrigin::kAdopted
                       : b.origin == "fleet"   ? BanOrigin::kFleet
                                               : BanOrigin::kRule;
    size_t i = entries_.Find(b.target);
    if (i == entries_.kNone) {
      i = InsertEntry(b.target);
      entries_.ValueAt(i).info = Intern(Info{b.jail, b.rule, b.account, b.reason, origin});
      Activate(b.target, entries_.ValueAt(i));
    }
    Entry& e = entries_.ValueAt(i);
    e.start_us = Us(b.start);
    e.end_us = b.end ? Us(*b.end) : kForever;
    e.duration_s = b.end ? static_cast<uint32_t>(std::chrono::ceil<Seconds>(*b.end - b.start).count()) : 0;
    if (e.end_us != kForever) {
      expiry_.emplace_back(e.end_us, b.target);
      std::push_heap(expiry_.begin(), expiry_.end(), Later);
    }
    e.kernel_pending = true;  // until the kernel is seen to hold it
    e.in_store = true;
    ++report.restored;
  });
  if (!restored) {
    // Protect from what the kernel holds; the store gets it when it works again.
    log_(LOG_ERR, "cannot read the bans in force from the state database: " + restored.error().message +
                      "; adopting what the kernel holds");
  }
  if (auto off = store_.Offences(now - Seconds(86400 * 366))) report.offences = std::move(*off);
  std::unordered_set<Prefix, PrefixHash> lifted;
  if (auto l = store_.LiftedTargets()) lifted.insert(l->begin(), l->end());
  if (kernel_as_left) {
    AssumeKernelHoldsAll(true);
    return report;
  }
  if (active_ > options_.list_at_most) {
    log_(LOG_NOTICE, std::to_string(active_) + " bans in force: the kernel's sets are not listed at this size; every ban is "
                     "added again (what the kernel holds already stays), elements only the kernel holds expire on their own");
    AssumeKernelHoldsAll(false);
  }
  auto kernel = active_ > options_.list_at_most ? Result<std::vector<FirewallElement>>(std::vector<FirewallElement>{})
                                                : firewall_.List();
  if (!kernel) {
    log_(LOG_WARNING, "cannot read the kernel's ban sets (" + kernel.error().message + "); every ban is added again");
  } else {
    for (const FirewallElement& k : *kernel) {
      Entry* e = entries_.Get(k.target);
      if (e && e->state == State::kActive) {
        // In the kernel already: keep it unless its time left is clearly off.
        bool permanent = e->end_us == kForever;
        bool kernel_permanent = !k.remaining.has_value();
        int64_t left = permanent ? 0 : e->end_us - Us(now);
        bool close = permanent == kernel_permanent &&
                     (permanent || std::llabs(left - k.remaining->count()) <= 3'000'000);
        if (close) e->kernel_pending = false;
        continue;
      }
      size_t i = InsertEntry(k.target);
      Entry& n = entries_.ValueAt(i);
      if (lifted.count(k.target)) {
        // An admin lifted it, but the removal never reached the kernel.
        n.info = Intern(Info{"manual", "unban", "", "lifted by hand", BanOrigin::kManual});
        n.state = State::kLifting;
        n.how = How::kUnban;
        n.kernel_pending = true;
        ++report.lifted;
        continue;
      }
      n.info = Intern(Info{"adopted", "adopted", "", "found in the kernel set, not in the state database",
                           BanOrigin::kAdopted});
      Activate(k.target, n);
      n.start_us = Us(now);
      n.end_us = k.remaining ? Us(now + *k.remaining) : kForever;
      n.duration_s = k.timeout ? static_cast<uint32_t>(k.timeout->count()) : 0;
      if (n.end_us != kForever) {
        expiry_.emplace_back(n.end_us, k.target);
        std::push_heap(expiry_.begin(), expiry_.end(), Later);
      }
      n.save_pending = true;
      store_queue_.push_back(k.target);
      ++report.adopted;
    }
  }
  entries_.ForEach([&](const Prefix& p, const Entry& e) {
    if (e.kernel_pending) {
      kernel_queue_.push_back(p);
      if (e.state == State::kActive) ++report.missing;
    }
  });
  return report;
}

void BanLedger::AssumeKernelHoldsAll(bool settled) {
  WaitKernel();
  std::vector<FirewallElement> held;
  held.reserve(active_);
  int64_t now_us = Us(clock_.Now());
  for (size_t i = 0; i < entries_.capacity(); ++i) {
    if (!entries_.Used(i)) continue;
    Entry& e = entries_.ValueAt(i);
    if (!Live(e)) continue;
    if (settled) e.kernel_pending = false;
    // Single addresses about to be added again are left out: re-adding one the kernel
    // holds is a plain add (kept as it is), where one believed held would be deleted and
    // added - twice the work, and on kernels without DESTROY an error for any that is
    // missing. Prefixes stay in: overlapping intervals must be seen before they are added.
    if (!settled && entries_.KeyAt(i).is_single()) continue;
    if (e.end_us == kForever) held.push_back({entries_.KeyAt(i), std::nullopt, std::nullopt});
    else held.push_back({entries_.KeyAt(i), Micros(std::max<int64_t>(0, e.end_us - now_us)), Seconds(e.duration_s)});
  }
  firewall_.Assume(held);
}

void BanLedger::Tick() {
  entries_.Settle(65536);  // a growth the inserts left unfinished: a few ms a second at most
  Time now = clock_.Now();
  int64_t now_us = Us(now);
  // Bans the kernel expires on its own: end them here and in the store.
  while (!expiry_.empty() && expiry_.front().first <= now_us) {
    std::pop_heap(expiry_.begin(), expiry_.end(), Later);
    auto [end, target] = expiry_.back();
    expiry_.pop_back();
    size_t i = entries_.Find(target);
    if (i == entries_.kNone) continue;
    Entry& e = entries_.ValueAt(i);
    if (!Live(e) || e.end_us != end) continue;  // lifted, or banned anew since
    End(target, e, State::kEnded, How::kExpired, end);
    ++stats_.expired;
    // A ban still queued for the kernel need not reach it any more.
    MaybeErase(target);
  }
  // Items left by bans that were lifted or renewed: rebuild when they outnumber the bans.
  if (expiry_.size() > 2 * entries_.size() + 4096) {
    expiry_.clear();
    entries_.ForEach([&](const Prefix& p, const Entry& e) {
      if (Live(e) && e.end_us != kForever) expiry_.emplace_back(e.end_us, p);
    });
    std::make_heap(expiry_.begin(), expiry_.end(), Later);
  }
  Clock::Steady mono = clock_.Monotonic();
  if (mono >= next_check_) {
    next_check_ = mono + options_.check_every;
    CheckKernel();
  }
}

void BanLedger::CheckKernel() {
  WaitKernel();
  auto integrity = firewall_.Check();
  if (!integrity) {
    Failed(kernel_retry_, firewall_problem_, "firewall", integrity.error(), stats_.kernel_errors);
    return;
  }
  if (*integrity == Integrity::kUnchanged) return;
  if (*integrity == Integrity::kBroken) {
    log_(LOG_WARNING, "the firewall table was changed or removed by someone else; rebuilding it with " +
                          std::to_string(active_) + " active bans");
    if (auto r = firewall_.Rebuild({}); !r) {
      Failed(kernel_retry_, firewall_problem_, "firewall", r.error(), stats_.kernel_errors);
      return;
    }
    entries_.ForEach([&](const Prefix& p, const Entry& e) {
      if (Live(e) && !e.kernel_pending) kernel_queue_.push_back(p);
    });
    for (size_t i = 0; i < entries_.capacity(); ++i)
      if (entries_.Used(i) && Live(entries_.ValueAt(i))) entries_.ValueAt(i).kernel_pending = true;
    return;
  }
  // Someone committed a change somewhere: make sure none of our elements went (a flushed
  // set keeps its table, chains and rules).
  if (active_ > options_.list_at_most) {
    // Too many to list without stalling: add them all again, a slice per turn.
    log_(LOG_WARNING, "someone changed the ruleset; with " + std::to_string(active_) +
                          " bans in force the sets are not listed, every ban is added again");
    AssumeKernelHoldsAll(false);
    for (size_t i = 0; i < entries_.capacity(); ++i) {
      if (!entries_.Used(i)) continue;
      Entry& e = entries_.ValueAt(i);
      if (Live(e)) QueueKernel(entries_.KeyAt(i), e);
    }
    return;
  }
  auto kernel = firewall_.List();
  if (!kernel) {
    Failed(kernel_retry_, firewall_problem_, "firewall", kernel.error(), stats_.kernel_errors);
    return;
  }
  std::unordered_set<Prefix, PrefixHash> present;
  present.reserve(kernel->size());
  for (const auto& k : *kernel) present.insert(k.target);
  int64_t soon = Us(clock_.Now()) + 2'000'000;  // about to expire: the kernel may be first
  size_t missing = 0;
  for (size_t i = 0; i < entries_.capacity(); ++i) {
    if (!entries_.Used(i)) continue;
    Entry& e = entries_.ValueAt(i);
    if (!Live(e) || e.kernel_pending || e.end_us <= soon) continue;
    if (present.count(entries_.KeyAt(i))) continue;
    QueueKernel(entries_.KeyAt(i), e);
    ++missing;
  }
  if (missing) {
    stats_.repaired += missing;
    log_(LOG_WARNING, std::to_string(missing) + " active bans were removed from the kernel set by someone else; adding them again");
  }
}

void BanLedger::Failed(Retry& retry, std::string& problem, const std::string& what, const Error& error, uint64_t& counter) {
  ++counter;
  std::string now_problem = what + ": " + error.message;
  if (problem != now_problem) log_(LOG_ERR, now_problem + " (retrying)");
  problem = now_problem;
  retry.backoff = std::clamp(retry.backoff * 2, Seconds(1), options_.max_backoff);
  retry.at = clock_.Monotonic() + retry.backoff;
}

void BanLedger::Recovered(Retry& retry, std::string& problem, const std::string& what) {
  if (!problem.empty()) log_(LOG_NOTICE, what + " is working again");
  problem.clear();
  retry = Retry{};
}

bool BanLedger::Flush() {
  // Each kind of work in steps until none is left or its budget is used (one step at least).
  auto steps = [this](std::chrono::milliseconds budget, auto&& step) {
    for (Clock::Steady until = clock_.Monotonic() + budget;;) {
      bool more = step();
      if (!more || clock_.Monotonic() >= until) return more;
    }
  };
  bool lift_more = steps(options_.kernel_budget, [this] { return SweepLifted(options_.lift_slice); });
  bool offences_more = steps(options_.kernel_budget, [this] { return FlushOffences(4096); });
  bool kernel_more = steps(options_.kernel_budget, [this] { return FlushKernel(); });
  bool store_more = steps(options_.store_budget, [this] { return FlushStore(); });
  return lift_more || offences_more || kernel_more || store_more;
}

bool BanLedger::FlushKernel() {
  if (kernel_queue_.empty() || kernel_in_flight_) return false;
  Clock::Steady mono = clock_.Monotonic();
  if (mono < kernel_retry_.at) return false;
  Time now = clock_.Now();
  std::vector<FirewallOrder> orders;
  std::vector<Prefix> taken;
  orders.reserve(std::min(kernel_slice_, kernel_queue_.size()));
  taken.reserve(orders.capacity());
  // A burst's targets are spread over a table of up to a million entries: each lookup is a
  // cache miss, so the ones kAhead further on are started first.
  constexpr size_t kAhead = 16;
  for (size_t k = 0; k < kAhead && k < kernel_queue_.size(); ++k) entries_.Prefetch(kernel_queue_[k]);
  while (!kernel_queue_.empty() && taken.size() < kernel_slice_) {
    if (kernel_queue_.size() > kAhead) entries_.Prefetch(kernel_queue_[kAhead]);
    Prefix p = kernel_queue_.front();
    kernel_queue_.pop_front();
    Entry* e = entries_.Get(p);
    if (e && Lifted(*e)) {
      MaybeErase(p);  // settles it: nothing is owed to the kernel
      continue;
    }
    if (!e || !e->kernel_pending) continue;
    if (e->state == State::kActive) {
      Seconds left = e->end_us == kForever ? Seconds(0)
                                           : std::max(Seconds(1), std::chrono::ceil<Seconds>(FromUs(e->end_us) - now));
      orders.push_back({FirewallOrder::Kind::kBan, p, left});
    } else if (e->state == State::kLifting) {
      orders.push_back({FirewallOrder::Kind::kUnban, p, Seconds(0)});
    } else {
      e->kernel_pending = false;  // ended meanwhile: the kernel's timeout takes care of it
      MaybeErase(p);
      continue;
    }
    // What the entry owes the kernel is taken now: a change after this is queued again and
    // sent after this slice.
    e->kernel_pending = false;
    e->kernel_in_flight = true;
    taken.push_back(p);
  }
  if (orders.empty()) return !kernel_queue_.empty();
  if (options_.kernel_thread) {
    kernel_in_flight_ = orders.size();
    struct Slice {
      std::vector<FirewallOrder> orders;
      std::vector<Prefix> taken;
      Result<ApplyReport> r = Fail("not applied");
      double took = 0;
    };
    auto slice = std::make_shared<Slice>();
    slice->orders = std::move(orders);
    slice->taken = std::move(taken);
    Firewall& fw = firewall_;
    const Clock& clock = clock_;
    options_.kernel_thread->Submit(
        [slice, &fw, &clock]() -> Result<void> {
          Clock::Steady t0 = clock.Monotonic();
          slice->r = fw.Apply(slice->orders);
          slice->took = std::chrono::duration<double>(clock.Monotonic() - t0).count();
          return {};
        },
        [this, slice](const Result<void>&) {
          kernel_in_flight_ = 0;
          KernelApplied(slice->taken, slice->r, slice->took);
        });
    return false;  // the outcome wakes the loop
  }
  Clock::Steady t0 = clock_.Monotonic();
  auto r = firewall_.Apply(orders);
  KernelApplied(taken, r, std::chrono::duration<double>(clock_.Monotonic() - t0).count());
  return r && !kernel_queue_.empty();
}

void BanLedger::KernelApplied(const std::vector<Prefix>& taken, const Result<ApplyReport>& r, double took) {
  stats_.kernel_seconds += took;
  // One pass over the slice's entries, prefetched ahead (as when it was taken): those
  // ended meanwhile and owing nothing more go; after a failure, those not queued again
  // since go back to be sent again.
  std::vector<Prefix> again;
  constexpr size_t kAhead = 16;
  for (size_t k = 0; k < kAhead && k < taken.size(); ++k) entries_.Prefetch(taken[k]);
  for (size_t k = 0; k < taken.size(); ++k) {
    if (k + kAhead < taken.size()) entries_.Prefetch(taken[k + kAhead]);
    Entry* e = entries_.Get(taken[k]);
    if (!e) continue;
    e->kernel_in_flight = false;
    if (!r) {
      if (!e->kernel_pending) {
        e->kernel_pending = true;
        again.push_back(taken[k]);
      }
    } else if (Spent(*e)) {
      MaybeErase(taken[k]);
    }
  }
  if (!r) {
    // Back to the front in order; a lone failing element goes to the back instead, so one
    // bad address cannot hold up every other ban. One that changed meanwhile is queued
    // already.
    if (again.size() == 1 && !kernel_queue_.empty()) kernel_queue_.push_back(again[0]);
    else kernel_queue_.insert(kernel_queue_.begin(), again.begin(), again.end());
    kernel_slice_ = std::max<size_t>(1, taken.size() / 2);
    Failed(kernel_retry_, firewall_problem_, "firewall", r.error(), stats_.kernel_errors);
    return;
  }
  // A transaction that took longer than a turn's budget (a slow kernel, or a big set) makes
  // the next one smaller, to what fits the budget: one transaction is never cut, and a
  // control request (or, with a kernel thread, any other firewall call) waits for all of
  // it. One under half the budget lets the next grow back (doubling).
  double budget = std::chrono::duration<double>(options_.kernel_budget).count();
  size_t floor = std::min(kMinKernelSlice, options_.kernel_slice);
  if (budget > 0 && took > budget)
    kernel_slice_ = std::max(floor, static_cast<size_t>(static_cast<double>(taken.size()) * budget / took));
  else if (took < budget / 2)
    kernel_slice_ = std::min(options_.kernel_slice, std::max(kernel_slice_, taken.size()) * 2);
  Recovered(kernel_retry_, firewall_problem_, "the firewall");
  stats_.kernel_changes += taken.size();
  for (const auto& [p, why] : r->skipped) log_(LOG_INFO, "ban of " + p.ToString() + " not needed: " + why);
}

void BanLedger::WaitKernel() {
  if (!options_.kernel_thread || !kernel_in_flight_) return;
  options_.kernel_thread->Wait();
  options_.kernel_thread->Poll();
}

bool BanLedger::FlushStore() {
  if (store_in_flight_ || (store_queue_.empty() && store_failed_.empty())) return false;
  if (clock_.Monotonic() < store_retry_.at) return false;
  std::vector<BanWrite> writes;
  if (!store_failed_.empty()) {
    writes.swap(store_failed_);
  } else {
    // What an entry owes is taken now: a change after this is queued and written after
    // this slice. "In the store" is assumed from here on (true is the safe side: a save
    // then looks for a record to replace).
    size_t taken = 0;
    writes.reserve(std::min(options_.store_slice, store_queue_.size()));
    constexpr size_t kAhead = 16;  // as for the kernel's slices
    for (size_t k = 0; k < kAhead && k < store_queue_.size(); ++k) entries_.Prefetch(store_queue_[k]);
    while (!store_queue_.empty() && taken < options_.store_slice) {
      if (store_queue_.size() > kAhead) entries_.Prefetch(store_queue_[kAhead]);
      Prefix p = store_queue_.front();
      store_queue_.pop_front();
      Entry* e = entries_.Get(p);
      if (!e || !(e->save_pending || e->end_pending)) continue;
      if (e->save_pending) {
        writes.push_back(SaveOf(p, *e));
        e->in_store = true;
      }
      if (e->end_pending) {
        const char* how = e->how == How::kUnban ? "unban" : e->how == How::kFlushed ? "flushed on exit" : "expired";
        BanWrite& end = writes.emplace_back();
        end.kind = BanWrite::Kind::kEnd;
        end.target = p;
        end.at = FromUs(e->ended_us);
        end.how = how;
        e->in_store = false;
      }
      e->save_pending = e->end_pending = false;
      ++taken;
      MaybeErase(p);
    }
    if (writes.empty()) return !store_queue_.empty();
  }
  Clock::Steady t0 = clock_.Monotonic();
  if (options_.writer) {
    store_in_flight_ = writes.size();
    auto batch = std::make_shared<std::vector<BanWrite>>(std::move(writes));
    options_.writer->Submit([batch](StateStore& s) { return s.WriteBans(*batch); },
                            [this, batch, t0](const Result<void>& r) {
                              store_in_flight_ = 0;
                              StoreWritten(std::move(*batch), r, t0);
                            });
    return false;  // the outcome wakes the loop
  }
  auto r = store_.WriteBans(writes);
  StoreWritten(std::move(writes), r, t0);
  return r && !store_queue_.empty();
}

void BanLedger::StoreWritten(std::vector<BanWrite> writes, const Result<void>& r, Clock::Steady started) {
  stats_.store_seconds += std::chrono::duration<double>(clock_.Monotonic() - started).count();
  if (!r) {
    store_failed_ = std::move(writes);
    Failed(store_retry_, store_problem_, "state database", r.error(), stats_.store_errors);
    return;
  }
  Recovered(store_retry_, store_problem_, "the state database");
  stats_.store_writes += writes.size();
}

void BanLedger::Drain(Clock::Steady deadline) {
  kernel_retry_.at = store_retry_.at = Clock::Steady{};
  WaitKernel();
  FinishLift();
  while (clock_.Monotonic() < deadline && (!KernelSettled() || !StoreSettled())) {
    size_t k = kernel_backlog(), s = store_backlog();
    Flush();
    WaitKernel();
    if (options_.writer) {
      options_.writer->Wait();
      options_.writer->Poll();
    }
    if (kernel_backlog() == k && store_backlog() == s) break;  // failing: give up
  }
}

Result<void> BanLedger::RemoveAll() {
  WaitKernel();
  FinishLift();
  auto r = firewall_.Remove();
  int64_t now = Us(clock_.Now());
  for (size_t i = 0; i < entries_.capacity(); ++i) {
    if (!entries_.Used(i)) continue;
    Entry& e = entries_.ValueAt(i);
    if (e.state != State::kActive) continue;
    End(entries_.KeyAt(i), e, State::kEnded, How::kFlushed, now);
    e.kernel_pending = false;
  }
  return r;
}

}  // namespace relayban
