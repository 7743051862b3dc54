// The ban ledger with a fake firewall, a fake store and a fake clock: every mirror failure.
#include "daemon/ban_ledger.hpp"

#include <catch2/catch.hpp>
#include <syslog.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "relayban/policy/ban_policy.hpp"

#include "fakes/fake_clock.hpp"
#include "fakes/fake_firewall.hpp"
#include "fakes/fake_state_store.hpp"

using namespace relayban;
using testing::FakeClock;
using testing::FakeFirewall;
using testing::FakeStateStore;

namespace {

struct Rig {
  FakeFirewall fw;
  FakeStateStore store;
  FakeClock clock;
  std::vector<std::pair<int, std::string>> logs;
  BanLedger ledger;
  explicit Rig(BanLedger::Options o = {})
      : ledger(fw, store, clock, [this](int p, const std::string& m) { logs.emplace_back(p, m); }, o) {}

  Order Make(const std::string& target, int seconds, const std::string& rule = "brute") {
    return Order{Order::Action::kBan, clock.Now(), "postfix", rule, *Prefix::Parse(target), "", Seconds(seconds), rule + ": reason"};
  }
  // Flushes until nothing is left that can be done now.
  void Settle() {
    for (int i = 0; i < 1000 && ledger.Flush(); ++i) {
    }
  }
  bool Logged(const std::string& part) const {
    return std::any_of(logs.begin(), logs.end(), [&](const auto& l) { return l.second.find(part) != std::string::npos; });
  }
};

Prefix P(const char* s) { return *Prefix::Parse(s); }

}  // namespace

TEST_CASE("a ban reaches the kernel and the store at the next flush, with its time left") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.1", 3600));
  CHECK(r.ledger.Find(P("203.0.113.1"), r.clock.Now()));
  CHECK(r.fw.bans.empty());  // nothing is done before the flush
  CHECK(r.ledger.KernelPending(P("203.0.113.1")));
  r.clock.Advance(Seconds(10));
  r.Settle();
  REQUIRE(r.fw.Has("203.0.113.1"));
  CHECK(r.fw.bans[P("203.0.113.1")] == Seconds(3590));
  CHECK(r.store.Active("203.0.113.1") == 1);
  CHECK(r.ledger.KernelSettled());
  CHECK(r.ledger.StoreSettled());
  CHECK(r.ledger.firewall_problem().empty());
}

TEST_CASE("a refusing firewall keeps the ban in memory, shows why, and retries with backoff until it holds") {
  Rig r;
  r.fw.fail_all = true;
  r.fw.failure = Error{"Operation not permitted", {}, ErrorKind::kPermission};
  r.ledger.Record(r.Make("203.0.113.2", 3600));
  r.ledger.Flush();
  CHECK(r.fw.apply_calls == 1);
  CHECK(r.ledger.firewall_problem() == "firewall: Operation not permitted");
  CHECK(r.ledger.Find(P("203.0.113.2"), r.clock.Now()));  // still banned as far as the policy goes
  CHECK(r.store.Active("203.0.113.2") == 1);               // the store is independent of the kernel
  // No retry before the backoff is over, then again with a longer wait each time.
  r.ledger.Flush();
  CHECK(r.fw.apply_calls == 1);
  r.clock.Advance(Seconds(1));
  r.ledger.Flush();
  CHECK(r.fw.apply_calls == 2);
  r.clock.Advance(Seconds(1));
  r.ledger.Flush();
  CHECK(r.fw.apply_calls == 2);  // 2 s this time
  r.clock.Advance(Seconds(1));
  r.ledger.Flush();
  CHECK(r.fw.apply_calls == 3);
  CHECK(std::count_if(r.logs.begin(), r.logs.end(), [](const auto& l) { return l.second.find("firewall:") == 0; }) == 1);  // logged once
  r.fw.fail_all = false;
  r.clock.Advance(Seconds(4));
  r.Settle();
  CHECK(r.fw.Has("203.0.113.2"));
  CHECK(r.ledger.firewall_problem().empty());
  CHECK(r.Logged("the firewall is working again"));
  CHECK(r.ledger.stats().kernel_errors == 3);
}

TEST_CASE("an unban the firewall refuses is retried until it holds") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.3", 3600));
  r.Settle();
  REQUIRE(r.fw.Has("203.0.113.3"));
  r.fw.fail_next = 3;
  CHECK(r.ledger.Unban(P("203.0.113.3")));
  CHECK_FALSE(r.ledger.Find(P("203.0.113.3"), r.clock.Now()));
  for (int i = 0; i < 30 && r.fw.Has("203.0.113.3"); ++i) {
    r.ledger.Flush();
    r.clock.Advance(Seconds(1));
  }
  CHECK_FALSE(r.fw.Has("203.0.113.3"));
  CHECK(r.store.Last("203.0.113.3")->how == "unban");
  CHECK(r.ledger.size() == 0);
}

TEST_CASE("a full state disk degrades the store only, the owed writes are made when there is room") {
  Rig r;
  r.store.fail_writes = true;
  for (int i = 0; i < 50; ++i) r.ledger.Record(r.Make("198.51.100." + std::to_string(i), 3600));
  r.Settle();
  CHECK(r.fw.bans.size() == 50);  // protection does not wait for the disk
  CHECK(r.ledger.store_problem() == "state database: database or disk is full");
  CHECK(r.ledger.store_backlog() == 50);
  CHECK(r.store.rows.empty());
  r.clock.Advance(Seconds(1));
  r.ledger.Record(r.Make("198.51.100.99", 60));
  r.ledger.Unban(P("198.51.100.7"));
  r.store.fail_writes = false;
  r.clock.Advance(Seconds(2));
  r.Settle();
  CHECK(r.ledger.store_problem().empty());
  CHECK(r.store.rows.size() == 51);
  CHECK(r.store.Active("198.51.100.8") == 1);
  CHECK(r.store.Last("198.51.100.7")->how == "unban");  // saved and ended, in that order
  CHECK(r.ledger.StoreSettled());
}

TEST_CASE("a ban ends at its time: gone from the book, ended in the store, not touched in the kernel") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.4", 60));
  r.Settle();
  size_t calls = r.fw.apply_calls;
  r.clock.Advance(Seconds(59));
  r.ledger.Tick();
  CHECK(r.ledger.Find(P("203.0.113.4"), r.clock.Now()));
  r.clock.Advance(Seconds(1));
  r.ledger.Tick();
  r.Settle();
  CHECK_FALSE(r.ledger.Find(P("203.0.113.4"), r.clock.Now()));
  CHECK(r.ledger.size() == 0);
  CHECK(r.store.Last("203.0.113.4")->how == "expired");
  CHECK(r.fw.apply_calls == static_cast<int>(calls));  // the kernel's own timeout ends it there
  CHECK(r.ledger.stats().expired == 1);
}

TEST_CASE("bans of many lengths, made out of order and renewed, each end at their own time and not before") {
  Rig r;
  std::map<std::string, int> ends;  // target -> second it ends at (from the start)
  for (int i = 0; i < 300; ++i) {
    std::string t = i < 250 ? "203.0.113." + std::to_string(i) : "198.51.100." + std::to_string(i - 250);
    int length = 1 + (i * 7919) % 120;  // scattered, not in the order they are made
    r.ledger.Record(r.Make(t, length));
    ends[t] = length;
  }
  // Some renewed at 10 s, longer or shorter than they were: their first end does not count.
  r.clock.Advance(Seconds(10));
  r.ledger.Tick();
  for (int i = 0; i < 50; i += 5) {
    std::string t = "198.51.100." + std::to_string(i);
    if (ends[t] <= 10) continue;
    int length = i % 2 ? 3 : 150;
    r.ledger.Record(r.Make(t, length));
    ends[t] = 10 + length;
  }
  r.Settle();
  for (int now = 11; now <= 170; ++now) {
    r.clock.Advance(Seconds(1));
    r.ledger.Tick();
    size_t left = 0;
    for (const auto& [t, end] : ends) {
      bool banned = r.ledger.Find(P(t.c_str()), r.clock.Now()).has_value();
      INFO(t << " ends at " << end << ", now " << now);
      CHECK(banned == (end > now));
      if (end > now) ++left;
    }
    REQUIRE(r.ledger.size() == left);  // ended here, not only hidden by their time
  }
}

TEST_CASE("a burst of bans goes to the kernel and the store in bounded slices") {
  BanLedger::Options o;
  o.kernel_slice = 1000;
  o.store_slice = 500;
  o.kernel_budget = o.store_budget = std::chrono::milliseconds(0);  // one transaction each per flush
  Rig r(o);
  for (uint32_t i = 0; i < 10000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  CHECK(r.ledger.size() == 10000);
  int flushes = 0;
  while (r.ledger.Flush()) {
    ++flushes;
    REQUIRE(r.fw.applied.back().size() <= 1000);
  }
  CHECK(r.fw.bans.size() == 10000);
  CHECK(r.fw.applied.size() == 10);
  CHECK(r.store.write_calls == 20);
  CHECK(flushes >= 19);
}

TEST_CASE("a slow kernel gets transactions that fit a turn's budget, and a quick one gets them whole again") {
  BanLedger::Options o;  // 10,000 elements a transaction, a 15 ms budget
  Rig r(o);
  r.store.fail_writes = true;  // only the kernel's side here (the fake store is quadratic)
  size_t per_element_us = 10;  // 10,000 elements: 100 ms
  r.fw.on_apply = [&] { r.clock.Advance(std::chrono::microseconds(per_element_us * r.fw.applying)); };
  for (uint32_t i = 0; i < 60000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  REQUIRE(r.ledger.Flush());
  REQUIRE(r.fw.applied.size() == 1);
  CHECK(r.fw.applied[0].size() == 10000);  // the first is whole: nothing was known yet
  for (int i = 0; i < 10 && r.fw.applied.size() < 6; ++i) r.ledger.Flush();
  REQUIRE(r.fw.applied.size() >= 6);
  for (size_t k = 1; k < 6; ++k) {
    CHECK(r.fw.applied[k].size() <= 1500);  // 15 ms at 10 us an element
    CHECK(r.fw.applied[k].size() >= 500);   // never below the floor
  }
  per_element_us = 0;  // the kernel is quick again: the slices double back to 10,000
  r.Settle();
  CHECK(r.fw.bans.size() == 60000);
  CHECK(r.fw.applied.back().size() <= 10000);
  size_t largest_late = 0;
  for (size_t k = r.fw.applied.size() - 3; k < r.fw.applied.size(); ++k) largest_late = std::max(largest_late, r.fw.applied[k].size());
  CHECK(largest_late == 10000);
}

TEST_CASE("one address the kernel keeps refusing does not hold up the others") {
  Rig r;
  r.fw.refuse.insert(P("203.0.113.66"));
  r.ledger.Record(r.Make("203.0.113.66", 3600));
  for (int i = 0; i < 5; ++i) r.ledger.Record(r.Make("192.0.2." + std::to_string(i + 1), 3600));
  // Each failure halves the slice, until the bad one goes alone, and then to the back.
  for (int i = 0; i < 20; ++i) {
    r.ledger.Flush();
    r.clock.Advance(Seconds(30));
  }
  CHECK(r.fw.bans.size() == 5);
  CHECK_FALSE(r.fw.Has("203.0.113.66"));
  CHECK(r.ledger.KernelPending(P("203.0.113.66")));  // still owed, still retried
  CHECK_FALSE(r.ledger.firewall_problem().empty());
}

TEST_CASE("at start-up the store's bans are put back, kernel-only ones adopted, lifted ones removed") {
  Rig r;
  // The store knows two active bans and one an admin lifted.
  r.store.rows.push_back({{P("203.0.113.10"), "postfix", "brute", "", "why", r.clock.Now() - Seconds(60), r.clock.Now() + Seconds(3540), "rule"}, std::nullopt, ""});
  r.store.rows.push_back({{P("203.0.113.11"), "manual", "manual", "", "hand", r.clock.Now() - Seconds(60), std::nullopt, "manual"}, std::nullopt, ""});
  r.store.rows.push_back({{P("203.0.113.12"), "postfix", "brute", "", "why", r.clock.Now() - Seconds(60), r.clock.Now() + Seconds(3540), "rule"}, r.clock.Now() - Seconds(30), "unban"});
  // The kernel holds .10 (right), .12 (the lifting never reached it) and .13 (the store lost it).
  r.fw.bans[P("203.0.113.10")] = Seconds(3540);
  r.fw.bans[P("203.0.113.12")] = Seconds(3540);
  r.fw.bans[P("203.0.113.13")] = Seconds(600);
  auto report = r.ledger.Restore();
  CHECK(report.restored == 2);
  CHECK(report.adopted == 1);
  CHECK(report.lifted == 1);
  CHECK(report.missing == 1);  // .11 is not in the kernel
  r.Settle();
  CHECK(r.fw.Has("203.0.113.10"));
  CHECK(r.fw.Has("203.0.113.11"));
  CHECK_FALSE(r.fw.Has("203.0.113.12"));
  CHECK(r.fw.Has("203.0.113.13"));
  CHECK(r.fw.Touches("203.0.113.10") == 0);  // already right: not re-added
  auto adopted = r.ledger.Get(P("203.0.113.13"));
  REQUIRE(adopted);
  CHECK(adopted->info->origin == BanOrigin::kAdopted);
  CHECK(r.store.Active("203.0.113.13") == 1);  // written to the store now
  CHECK(r.ledger.size() == 3);
}

TEST_CASE("a store that cannot be read at start-up leaves the kernel's bans adopted") {
  Rig r;
  r.store.fail_all = true;
  r.fw.bans[P("203.0.113.20")] = Seconds(600);
  auto report = r.ledger.Restore();
  CHECK(report.adopted == 1);
  CHECK(r.Logged("cannot read the bans in force"));
  CHECK(r.ledger.Find(P("203.0.113.20"), r.clock.Now()));
}

TEST_CASE("a set flushed by someone else is refilled, a deleted table is rebuilt with every ban") {
  Rig r;
  for (int i = 0; i < 5; ++i) r.ledger.Record(r.Make("203.0.113." + std::to_string(30 + i), 3600));
  r.Settle();
  REQUIRE(r.fw.bans.size() == 5);
  r.fw.FlushElements();
  r.clock.Advance(Seconds(5));
  r.ledger.Tick();
  r.Settle();
  CHECK(r.fw.bans.size() == 5);
  CHECK(r.ledger.stats().repaired == 5);
  CHECK(r.Logged("5 active bans were removed from the kernel set by someone else"));
  r.fw.DeleteTable();
  r.clock.Advance(Seconds(5));
  r.ledger.Tick();
  r.Settle();
  CHECK(r.fw.rebuild_calls == 1);
  CHECK(r.fw.bans.size() == 5);
  CHECK(r.ledger.firewall_problem().empty());
}

TEST_CASE("an urgent ban goes ahead of a backlog") {
  BanLedger::Options o;
  o.kernel_slice = 100;
  o.kernel_budget = std::chrono::milliseconds(0);
  Rig r(o);
  for (uint32_t i = 0; i < 1000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  r.ledger.Ban(r.Make("198.51.100.200", 600, "manual"), BanOrigin::kManual, true);
  r.ledger.Flush();
  CHECK(r.fw.Has("198.51.100.200"));
  CHECK_FALSE(r.ledger.KernelPending(P("198.51.100.200")));
  CHECK(r.fw.bans.size() == 100);
}

TEST_CASE("unbanning what is not banned still clears the kernel, and records nothing") {
  Rig r;
  r.fw.bans[P("203.0.113.40")] = Seconds(600);  // put there by hand
  CHECK_FALSE(r.ledger.Unban(P("203.0.113.40")));
  r.Settle();
  CHECK_FALSE(r.fw.Has("203.0.113.40"));
  CHECK(r.store.rows.empty());
}

TEST_CASE("banning again replaces the ban, unban all lifts every one, counts per jail follow") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.50", 60));
  r.ledger.Record(r.Make("203.0.113.51", 60));
  CHECK(r.ledger.CountInJail("postfix") == 2);
  r.ledger.Record(r.Make("203.0.113.50", 86400, "spray"));
  CHECK(r.ledger.Get(P("203.0.113.50"))->info->rule == "spray");
  CHECK(r.ledger.Get(P("203.0.113.50"))->duration == Seconds(86400));
  CHECK(r.ledger.CountInJail("postfix") == 2);
  r.Settle();
  r.ledger.Record(r.Make("203.0.113.52", 60));  // still on its way to the kernel
  int applies = r.fw.apply_calls;
  CHECK(r.ledger.UnbanAll() == 3);
  CHECK(r.fw.rebuild_calls == 1);  // the sets emptied in one transaction
  CHECK(r.ledger.KernelSettled());
  r.Settle();
  CHECK(r.fw.apply_calls == applies);  // nothing sent one by one
  CHECK(r.fw.bans.empty());
  CHECK(r.ledger.CountInJail("postfix") == 0);
  CHECK(r.ledger.size() == 0);
  CHECK(r.store.Active("203.0.113.50") == 0);
  CHECK(r.store.Last("203.0.113.50")->how == "unban");
  // After the store's writes, nothing is kept for them.
  CHECK(r.ledger.Targets().empty());
  CHECK(r.ledger.stats().unbans == 3);
}

TEST_CASE("the ledger hands the policy an offence when a rule's ban expires, is lifted or replaced, never a manual one") {
  Rig r;
  BanSpec spec;
  spec.factor = 2;
  spec.max = Seconds(86400 * 7);
  BanPolicy policy({}, spec, 64, r.ledger);
  auto ban = [&](const char* ip, int seconds) {
    auto o = policy.Ban(*IpAddress::Parse(ip), Seconds(seconds), r.clock.Now(), "postfix", "brute", "", "why");
    return o ? o->duration.count() : int64_t{-1};
  };
  REQUIRE(ban("203.0.113.70", 60) == 60);
  REQUIRE(ban("203.0.113.71", 3600) == 3600);
  REQUIRE(ban("203.0.113.72", 3600) == 3600);
  CHECK(policy.offences().size() == 0);  // running bans are the ledger's
  // .70 expires, .71 is lifted by hand, .72 is replaced by an admin's ban.
  r.clock.Advance(Seconds(61));
  r.ledger.Tick();
  CHECK(r.ledger.Unban(P("203.0.113.71")));
  r.ledger.Ban(r.Make("203.0.113.72", 3600, "manual"), BanOrigin::kManual);
  CHECK(policy.offences().size() == 3);
  CHECK(ban("203.0.113.70", 60) == 120);
  CHECK(ban("203.0.113.71", 60) == 120);
  // A running rule ban replaced by a longer one counts, too: the third offence of .70.
  CHECK(ban("203.0.113.70", 3600) == 3600 * 4);
  // An admin's ban is no offence: lifting it leaves the history as it was, and unban all
  // hands over the rule bans it lifts.
  r.ledger.Ban(r.Make("203.0.113.73", 3600, "manual"), BanOrigin::kManual);
  CHECK(r.ledger.Unban(P("203.0.113.73")));
  size_t before = policy.offences().size();
  CHECK(r.ledger.UnbanAll() == 3);  // .70, .71 (rules) and .72 (manual)
  // Handed over over the next flushes, not while lifting them.
  CHECK(r.ledger.LiftPending() > 0);
  CHECK(policy.offences().Count(P("203.0.113.70"), r.clock.Now()) == 2);
  r.Settle();
  CHECK(r.ledger.OffencesPending() == 0);
  CHECK(policy.offences().size() == before);  // .70 and .71 were known already
  CHECK(policy.offences().Count(P("203.0.113.70"), r.clock.Now()) == 3);
  CHECK(policy.offences().Count(P("203.0.113.73"), r.clock.Now()) == 0);
  CHECK(ban("203.0.113.73", 60) == 60);
}

TEST_CASE("unban all hands the offences it ends to the history over several flushes, in the order they ended") {
  Rig r;
  struct Listener : BanEndListener {
    FakeClock* clock;
    std::vector<Prefix> heard;
    void BanEnded(const Prefix& target, Time) override {
      heard.push_back(target);
      clock->Advance(std::chrono::milliseconds(1));  // each one takes a while
    }
  } listener;
  listener.clock = &r.clock;
  r.ledger.Listen(&listener);
  const uint32_t n = 10000;
  for (uint32_t i = 0; i < n; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  r.Settle();
  CHECK(r.ledger.UnbanAll() == n);
  CHECK(listener.heard.empty());  // nothing while lifting them
  // A ban replaced meanwhile: its offence waits behind those, not before them.
  r.ledger.Record(r.Make("203.0.113.9", 60));
  r.ledger.Record(r.Make("203.0.113.9", 3600));
  CHECK(r.ledger.OffencesPending() == 1);
  CHECK(listener.heard.empty());
  // A flush's budget allows one slice of them when each takes a millisecond (the sweep
  // that ends them takes no time on this clock: it is done at the first flush).
  r.ledger.Flush();
  CHECK(r.ledger.LiftPending() == 0);
  size_t first = listener.heard.size();
  CHECK(first > 0);
  CHECK(first < n);
  CHECK(r.ledger.OffencesPending() == n + 1 - first);
  r.Settle();
  CHECK(r.ledger.OffencesPending() == 0);
  REQUIRE(listener.heard.size() == n + 1);
  CHECK(listener.heard.back() == P("203.0.113.9"));
  std::set<Prefix> distinct(listener.heard.begin(), listener.heard.end() - 1);
  CHECK(distinct.size() == n);
  r.ledger.Unlisten(&listener);
}

TEST_CASE("unban all lifts every ban at once and ends them a slice of the table per flush, while a ban made meanwhile stands") {
  BanLedger::Options o;
  o.lift_slice = 256;                          // slots per step
  o.kernel_budget = std::chrono::milliseconds(0);  // one step per flush
  Rig r(o);
  const uint32_t n = 2000;
  std::vector<std::string> t;
  for (uint32_t i = 0; i < n; ++i) t.push_back(IpAddress::V4(0x0A000000u + i * 7919).ToString());
  for (const auto& a : t) r.ledger.Record(r.Make(a, 3600));
  r.Settle();
  REQUIRE(r.fw.bans.size() == n);
  CHECK(r.ledger.UnbanAll() == n);
  // At once: the kernel is empty, and no ban of before is held, listed, counted or owed to it.
  CHECK(r.fw.bans.empty());
  CHECK(r.ledger.size() == 0);
  CHECK(r.ledger.CountInJail("postfix") == 0);
  CHECK(r.ledger.LiftPending() == n);
  CHECK(r.ledger.KernelSettled());
  CHECK_FALSE(r.ledger.StoreSettled());  // their ends are owed to the store
  size_t listed = 0;
  r.ledger.ForEach([&](const BanLedger::ActiveBan&) { ++listed; });
  CHECK(listed == 0);
  CHECK(r.ledger.Targets().empty());
  for (const auto& a : t) {
    CHECK_FALSE(r.ledger.Held(P(a.c_str())));
    CHECK_FALSE(r.ledger.Get(P(a.c_str())));
    CHECK_FALSE(r.ledger.KernelPending(P(a.c_str())));
  }
  // A flush ends those of one slice of the table only.
  r.ledger.Flush();
  size_t left = r.ledger.LiftPending();
  CHECK(left > 0);
  CHECK(left < n);
  // Meanwhile the first 100 are banned again (ended first where the sweep has not been yet),
  // and one more is unbanned: it was lifted already.
  for (size_t k = 0; k < 100; ++k) r.ledger.Record(r.Make(t[k], 600));
  CHECK(r.ledger.size() == 100);
  CHECK(r.ledger.CountInJail("postfix") == 100);
  CHECK_FALSE(r.ledger.Unban(P(t[500].c_str())));
  CHECK(r.ledger.LiftPending() < left);
  int flushes = 0;
  while (r.ledger.LiftPending() > 0 && flushes < 10000) {
    r.ledger.Flush();
    ++flushes;
  }
  CHECK(flushes > 1);
  r.Settle();
  CHECK(r.ledger.LiftPending() == 0);
  CHECK(r.ledger.StoreSettled());
  // The new bans stand, in the ledger, the kernel and the store; the others ended as unbans.
  CHECK(r.ledger.size() == 100);
  CHECK(r.fw.bans.size() == 100);
  for (size_t k = 0; k < n; ++k) {
    INFO(t[k]);
    if (k < 100) {
      REQUIRE(r.ledger.Held(P(t[k].c_str())));
      CHECK(r.ledger.Held(P(t[k].c_str()))->duration == Seconds(600));
      CHECK(r.fw.Has(t[k]));
      CHECK(r.store.Active(t[k]) == 1);
    } else {
      CHECK_FALSE(r.ledger.Held(P(t[k].c_str())));
      CHECK(r.store.Active(t[k]) == 0);
      REQUIRE(r.store.Last(t[k]));
      CHECK(r.store.Last(t[k])->how == "unban");
    }
  }
  CHECK(r.ledger.stats().unbans == n);
  // Nothing more is kept for the ended ones; the new bans expire as any other.
  CHECK(r.ledger.tracked() == 100);
  r.clock.Advance(Seconds(601));
  r.ledger.Tick();
  CHECK(r.ledger.size() == 0);
}

TEST_CASE("a second unban all while the first one's ends are still being done lifts only what was banned since") {
  BanLedger::Options o;
  o.lift_slice = 64;
  o.kernel_budget = std::chrono::milliseconds(0);
  Rig r(o);
  for (uint32_t i = 0; i < 500; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0A000000u + i).ToString(), 3600));
  r.Settle();
  CHECK(r.ledger.UnbanAll() == 500);
  r.ledger.Flush();
  REQUIRE(r.ledger.LiftPending() > 0);
  r.ledger.Record(r.Make("203.0.113.5", 3600));
  r.ledger.Record(r.Make("10.0.0.1", 3600));  // one of the lifted, banned again
  CHECK(r.ledger.UnbanAll() == 2);
  r.Settle();
  CHECK(r.ledger.LiftPending() == 0);
  CHECK(r.ledger.size() == 0);
  CHECK(r.ledger.stats().unbans == 502);
  CHECK(r.ledger.tracked() == 0);
  CHECK(r.store.Active("203.0.113.5") == 0);
  CHECK(r.store.Active("10.0.0.1") == 0);
  CHECK(r.store.Active("10.0.1.243") == 0);
}

TEST_CASE("unban all falls back to one removal per ban when the sets cannot be emptied at once") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.60", 600));
  r.ledger.Record(r.Make("203.0.113.61", 600));
  r.Settle();
  r.fw.fail_next = 1;  // the rebuild fails
  CHECK(r.ledger.UnbanAll() == 2);
  CHECK_FALSE(r.ledger.KernelSettled());
  r.Settle();
  CHECK(r.fw.bans.empty());
  CHECK(r.ledger.size() == 0);
  CHECK(r.store.Active("203.0.113.61") == 0);
}

TEST_CASE("a new state database gets every ban in force written again") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.60", 3600));
  r.Settle();
  r.store.rows.clear();  // as after a damaged database was moved aside
  r.ledger.ResaveAll();
  r.Settle();
  CHECK(r.store.Active("203.0.113.60") == 1);
}

TEST_CASE("a flush gives each mirror transactions until its time budget is used, the kernel first") {
  BanLedger::Options o;
  o.kernel_slice = 100;
  o.store_slice = 100;
  Rig r(o);
  for (uint32_t i = 0; i < 1000; ++i) r.ledger.Record(r.Make(IpAddress::V4(0x0B000000u + i).ToString(), 3600));
  // Each transaction takes 4 ms: 15 ms of budget allow four of them per mirror and flush.
  r.fw.on_apply = [&] { r.clock.Advance(std::chrono::milliseconds(4)); };
  r.store.on_write = [&] { r.clock.Advance(std::chrono::milliseconds(4)); };
  CHECK(r.ledger.Flush());
  CHECK(r.fw.applied.size() == 4);
  CHECK(r.store.write_calls == 4);
}

TEST_CASE("above list_at_most bans the kernel is never listed: every ban is added again instead, at start and after a flush") {
  BanLedger::Options o;
  o.list_at_most = 3;
  Rig r(o);
  for (int i = 0; i < 5; ++i)
    r.store.rows.push_back({{P(("203.0.113." + std::to_string(40 + i)).c_str()), "postfix", "brute", "", "why",
                             r.clock.Now() - Seconds(60), r.clock.Now() + Seconds(3540), "rule"},
                            std::nullopt, ""});
  r.store.rows.push_back({{P("198.51.100.0/24"), "postfix", "subnet", "", "why", r.clock.Now() - Seconds(60),
                           r.clock.Now() + Seconds(3540), "rule"},
                          std::nullopt, ""});
  r.fw.bans[P("203.0.113.40")] = Seconds(3540);  // one is there already
  auto report = r.ledger.Restore();
  CHECK(report.restored == 6);
  CHECK(r.fw.list_calls == 0);
  CHECK(r.fw.assume_calls == 1);
  // The firewall is told only of the prefix: the single addresses are plainly added again
  // (re-adding one the kernel holds keeps it), a prefix must be known to avoid overlaps.
  REQUIRE(r.fw.assumed.size() == 1);
  CHECK(r.fw.assumed[0].target == P("198.51.100.0/24"));
  CHECK(r.Logged("6 bans in force: the kernel's sets are not listed"));
  r.Settle();
  CHECK(r.fw.bans.size() == 6);
  CHECK(r.fw.Touches("203.0.113.40") == 1);  // added again: harmless
  CHECK(r.fw.bans[P("203.0.113.44")] == Seconds(3540));
  // Someone flushes the set: refilled without a list.
  r.fw.FlushElements();
  r.clock.Advance(Seconds(5));
  r.ledger.Tick();
  r.Settle();
  CHECK(r.fw.list_calls == 0);
  CHECK(r.fw.bans.size() == 6);
  CHECK(r.Logged("with 6 bans in force the sets are not listed"));
  // At or below the limit the kernel is listed again (and only what it lacks is sent).
  BanLedger::Options few;
  few.list_at_most = 6;
  Rig s(few);
  s.store.rows = r.store.rows;
  s.fw.bans[P("203.0.113.40")] = Seconds(3540);
  s.ledger.Restore();
  CHECK(s.fw.list_calls == 1);
  s.Settle();
  CHECK(s.fw.Touches("203.0.113.40") == 0);
  CHECK(s.fw.bans.size() == 6);
}

TEST_CASE("bans of one verdict share its reason, and a reason freed is never handed out again") {
  Rig r;
  r.ledger.Record(r.Make("203.0.113.1", 3600, "spray"));
  r.ledger.Record(r.Make("203.0.113.2", 3600, "spray"));
  r.ledger.Record(r.Make("203.0.113.3", 3600, "brute"));
  r.ledger.Record(r.Make("203.0.113.4", 3600, "spray"));
  auto reason = [&](const char* t) { return r.ledger.Get(P(t))->info->reason; };
  CHECK(reason("203.0.113.1") == "spray: reason");
  CHECK(reason("203.0.113.3") == "brute: reason");
  CHECK(reason("203.0.113.4") == "spray: reason");
  CHECK(r.ledger.Get(P("203.0.113.1"))->info == r.ledger.Get(P("203.0.113.2"))->info);
  // Not only the last verdict's: verdicts on 50 accounts taking turns (a botnet guessing
  // them) find theirs again, one Info each.
  CHECK(r.ledger.Get(P("203.0.113.4"))->info == r.ledger.Get(P("203.0.113.1"))->info);
  for (int i = 0; i < 500; ++i) {
    Order o = r.Make(IpAddress::V4(0x0B000000u + static_cast<uint32_t>(i)).ToString(), 3600, "brute");
    o.account = "user" + std::to_string(i % 50);
    r.ledger.Record(o);
  }
  for (int i = 50; i < 500; ++i) {
    auto a = r.ledger.Get(Prefix(IpAddress::V4(0x0B000000u + static_cast<uint32_t>(i))));
    auto b = r.ledger.Get(Prefix(IpAddress::V4(0x0B000000u + static_cast<uint32_t>(i % 50))));
    REQUIRE(a);
    CHECK(a->info == b->info);
    CHECK(a->info->account == "user" + std::to_string(i % 50));
  }
  // The last ban's reason goes with it; a new one with another reason must not reuse it.
  REQUIRE(r.ledger.Unban(P("203.0.113.3")));
  r.ledger.Record(r.Make("203.0.113.5", 60, "relay"));
  CHECK(reason("203.0.113.5") == "relay: reason");
  CHECK(reason("203.0.113.4") == "spray: reason");
  Order manual = r.Make("203.0.113.6", 60, "relay");
  r.ledger.Ban(manual, BanOrigin::kManual);
  CHECK(r.ledger.Get(P("203.0.113.6"))->info->origin == BanOrigin::kManual);
  CHECK(r.ledger.Get(P("203.0.113.5"))->info->origin == BanOrigin::kRule);
}

TEST_CASE("a verdict's bans naming the very same texts share its Info, and a freed Info's id is not taken for them") {
  Rig r;
  Order o = r.Make("203.0.113.1", 3600, "spray");  // one verdict: its orders share the texts
  r.ledger.Record(o);
  o.target = P("203.0.113.2");
  r.ledger.Record(o);
  CHECK(r.ledger.Get(P("203.0.113.1"))->info == r.ledger.Get(P("203.0.113.2"))->info);
  // Both lifted: the Info is freed, and its id goes to the next Info made - here an unban
  // of an address nobody banned, recorded as the admin's.
  REQUIRE(r.ledger.Unban(P("203.0.113.1")));
  REQUIRE(r.ledger.Unban(P("203.0.113.2")));
  r.Settle();
  CHECK_FALSE(r.ledger.Unban(P("203.0.113.9")));
  o.target = P("203.0.113.3");
  r.ledger.Record(o);
  auto b = r.ledger.Get(P("203.0.113.3"));
  REQUIRE(b);
  CHECK(b->info->origin == BanOrigin::kRule);
  CHECK(b->info->rule == "spray");
  CHECK(b->info->reason == "spray: reason");
  // Equal texts that are other objects still find the same Info.
  r.ledger.Record(r.Make("203.0.113.4", 3600, "spray"));
  CHECK(r.ledger.Get(P("203.0.113.4"))->info == b->info);
}

TEST_CASE("a ban as list answers it reads as nlohmann::json's text of the same fields") {
  const std::string hostile = "user\"\\\n\x01\xFF\xC3\xBC\x1b[31m";
  BanLedger::Info info{"postfix", "brute", hostile, "brute: " + hostile, BanOrigin::kFleet, nullptr};
  BanLedger::Info manual{"manual", "manual", "", "by hand", BanOrigin::kManual, nullptr};
  Time now = Time(Seconds(1'800'000'000));
  auto expect = [&](const BanLedger::ActiveBan& b) {
    nlohmann::json j;
    j["target"] = b.target.ToString();
    j["jail"] = b.info->jail;
    j["rule"] = b.info->rule;
    j["account"] = b.info->account.empty() ? nlohmann::json(nullptr) : nlohmann::json(b.info->account);
    j["reason"] = b.info->reason;
    j["origin"] = OriginName(b.info->origin);
    j["since"] = FormatIso8601(b.start);
    j["remaining_s"] = b.end == Time::max()
                           ? nlohmann::json(nullptr)
                           : nlohmann::json(std::max<int64_t>(0, std::chrono::ceil<Seconds>(b.end - now).count()));
    return nlohmann::json{{"ban", j}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::vector<BanLedger::ActiveBan> bans{
      {P("203.0.113.7"), &info, now - Seconds(10), now + std::chrono::milliseconds(2500), Seconds(3600)},
      {P("2001:db8:1:2::/64"), &manual, now - Seconds(100), Time::max(), Seconds(0)},
      {P("198.51.100.0/24"), &info, now - Seconds(7200), now - Seconds(5), Seconds(60)},  // ended: 0 left
  };
  for (const auto& b : bans) {
    std::string line = BanLedger::ListItem(b, now);
    CHECK(line == expect(b));
    auto back = nlohmann::json::parse(line);
    CHECK(back["ban"]["target"] == b.target.ToString());
  }
  auto first = nlohmann::json::parse(BanLedger::ListItem(bans[0], now))["ban"];
  CHECK(first["remaining_s"] == 3);
  CHECK(first["origin"] == "fleet");
  CHECK(nlohmann::json::parse(BanLedger::ListItem(bans[1], now))["ban"]["account"].is_null());
  CHECK(nlohmann::json::parse(BanLedger::ListItem(bans[1], now))["ban"]["remaining_s"].is_null());
  CHECK(nlohmann::json::parse(BanLedger::ListItem(bans[2], now))["ban"]["remaining_s"] == 0);
}
