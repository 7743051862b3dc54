#include "relayban/score/account_book.hpp"

#include "relayban/core/prefaulter.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

using namespace relayban;

namespace {
Time T(int s) { return Time(Micros(int64_t{1764150000 + s} * 1000000)); }
using O = AccountBook::Outcome;
}  // namespace

TEST_CASE("an account's counters, domains and addresses add up") {
  AccountBook b(100);
  auto ip1 = IpAddress::Parse("82.128.32.42");
  auto ip2 = IpAddress::Parse("198.51.100.23");
  b.Record("test", O::kAuthSuccess, 2, ip1, "", T(0));
  b.Record("test", O::kRelay, 4, ip1, "msn.com", T(1));
  b.Record("test", O::kRelay, 4, ip1, "msn.com", T(2));
  b.Record("test", O::kRelay, 4, ip2, "aol.com", T(3));
  b.Record("test", O::kAuthFailure, 1, IpAddress::Parse("203.0.113.1"), "", T(4));
  auto snap = b.Snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].auth_success == 1);
  CHECK(snap[0].auth_failure == 1);
  CHECK(snap[0].relayed == 3);
  CHECK(snap[0].recipient_domains == 2);
  CHECK(snap[0].ips == 3);
  CHECK(snap[0].last_ip == ip2);  // a failed login is not a use of the account
}

TEST_CASE("fan-out returns the addresses seen with the given kinds since a time") {
  AccountBook b(100);
  b.Record("test", O::kRelay, 4, IpAddress::Parse("192.0.2.1"), "x.org", T(0));
  b.Record("test", O::kAuthFailure, 1, IpAddress::Parse("192.0.2.2"), "", T(100));
  b.Record("test", O::kRelay, 4, IpAddress::Parse("192.0.2.3"), "y.org", T(100));
  auto ips = b.IpsSince("test", T(50), 4);
  REQUIRE(ips.size() == 1);
  CHECK(ips[0].ToString() == "192.0.2.3");
  CHECK(b.IpsSince("test", T(0), 4).size() == 2);
  CHECK(b.IpsSince("nobody", T(0), 4).empty());
}

TEST_CASE("an account's held addresses are found again past the linear scan and after replacements") {
  // Past 16 addresses a lookup first asks the presence counts (Rare::present), which a
  // replaced address lowers: an address held must always be found (never added twice), one
  // replaced must not, however many share its counters.
  AccountBook b(10);
  auto ip = [](int i) { return IpAddress::V6Words(0x20010db800000000ull + static_cast<uint64_t>(i), 1); };
  for (int i = 0; i < 1000; ++i) b.Record("test", O::kAuthFailure, 1, ip(i), "", T(0));
  // The 256 held now are the last ones added (none used twice: the clock took the oldest).
  for (int i = 1000 - AccountBook::kMaxRecentIps; i < 1000; i += 3) b.Record("test", O::kAuthFailure, 1, ip(i), "", T(10));
  auto again = b.IpsSince("test", T(10), 1);
  std::set<std::string> seen;
  for (const auto& a : again) CHECK(seen.insert(a.ToString()).second);  // each once
  CHECK(again.size() == (AccountBook::kMaxRecentIps + 2) / 3);
  CHECK(b.IpsSince("test", T(0), 1).size() == AccountBook::kMaxRecentIps);  // none added twice
  // An address replaced long ago comes back as new: held once, however often it returns.
  for (int k = 0; k < 3; ++k) b.Record("test", O::kAuthFailure, 1, ip(5), "", T(20));
  auto back = b.IpsSince("test", T(20), 1);
  REQUIRE(back.size() == 1);
  CHECK(back[0] == ip(5));
}

TEST_CASE("a repeated verdict in the same second as the last gets only the addresses used after it") {
  AccountBook b(100);
  auto ip = [](int i) { return IpAddress::Parse("192.0.2." + std::to_string(i)); };
  b.Record("test", O::kAuthFailure, 1, ip(1), "", T(100));
  b.Record("test", O::kAuthFailure, 1, ip(2), "", T(100));
  CHECK_FALSE(b.MarkFired("test", 7, T(100)));  // its fan-out reaches 1 and 2
  b.Record("test", O::kAuthFailure, 1, ip(3), "", T(100));  // the same second, after it
  b.Record("test", O::kAuthFailure, 1, ip(1), "", T(100));  // used again after it
  b.Record("test", O::kAuthFailure, 1, ip(4), "", T(101));
  auto previous = b.MarkFired("test", 7, T(101));
  REQUIRE(previous);
  CHECK(previous->at == T(100));
  auto names = [](const std::vector<IpAddress>& v) {
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.ToString());
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(names(b.IpsSince("test", previous->at, 1, previous->seq)) ==
        std::vector<std::string>{"192.0.2.1", "192.0.2.3", "192.0.2.4"});
  // Without the verdict's place, the whole second counts.
  CHECK(b.IpsSince("test", previous->at, 1).size() == 4);
  // Another rule's verdicts are its own.
  CHECK_FALSE(b.MarkFired("test", 8, T(101)));
}

TEST_CASE("invented account names cannot grow the book past its cap") {
  AccountBook b(50);
  for (int i = 0; i < 1000; ++i) b.Record("user" + std::to_string(i), O::kAuthFailure, 1, std::nullopt, "", T(i));
  CHECK(b.size() <= 50);
  CHECK(b.size() > 40);
  CHECK(b.evicted() == 1000 - b.size());
}

TEST_CASE("prefetching the spare entries of a full book changes nothing, however few are spare") {
  // Two books fed alike, one prefetching before every name at every distance (past the free
  // list's end too): the same accounts, counts and addresses come out.
  AccountBook plain(64), prefetched(64);
  for (int i = 0; i < 2000; ++i) {
    std::string name = "invented-account-name-" + std::to_string(i * 7919 % 1500) + "@example.com";
    IpAddress ip = IpAddress::V4(0x0B000000u + static_cast<uint32_t>(i % 37));
    for (size_t ahead : {size_t{0}, size_t{1}, size_t{12}, size_t{63}, size_t{64}, size_t{1000}}) prefetched.PrefetchSpare(ahead);
    plain.Record(name, O::kAuthFailure, 1, ip, "", T(i / 10));
    prefetched.Record(name, O::kAuthFailure, 1, ip, "", T(i / 10));
  }
  REQUIRE(plain.evicted() > 1000);
  CHECK(prefetched.evicted() == plain.evicted());
  auto a = plain.Snapshot(), b = prefetched.Snapshot();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].account == b[i].account);
    CHECK(a[i].auth_failure == b[i].auth_failure);
    CHECK(a[i].ips == b[i].ips);
  }
}

TEST_CASE("verdicts are listed once per rule") {
  AccountBook b(10);
  b.Record("a", O::kRelay, 4, std::nullopt, "x.org", T(0));
  b.AddVerdict("a", "relay-flood");
  b.AddVerdict("a", "relay-flood");
  b.AddVerdict("missing", "x");
  CHECK(b.Snapshot()[0].verdicts == std::vector<std::string>{"relay-flood"});
}

TEST_CASE("a flood of invented names evicts the least recently seen accounts in batches") {
  AccountBook b(800);
  for (int i = 0; i < 10000; ++i) b.Record("user" + std::to_string(i), O::kAuthFailure, 1, std::nullopt, "", T(i));
  CHECK(b.size() <= 800);
  CHECK(b.size() > 600);
  CHECK(b.evicted() == 10000 - b.size());
  // The newest accounts are all still there, the oldest are gone.
  auto snap = b.Snapshot();
  auto has = [&](const std::string& name) {
    return std::any_of(snap.begin(), snap.end(), [&](const AccountView& v) { return v.account == name; });
  };
  for (int i = 9400; i < 10000; ++i) CHECK(has("user" + std::to_string(i)));
  CHECK_FALSE(has("user0"));
  CHECK_FALSE(has("user8000"));
}

TEST_CASE("an account keeps its most recent addresses and each only once") {
  AccountBook b(10);
  auto ip = [](int i) { return IpAddress::V4(0xC6336400u + static_cast<uint32_t>(i)); };  // 198.51.100.0 + i
  for (int i = 0; i < 300; ++i) b.Record("test", O::kRelay, 4, ip(i), "x.org", T(i));
  auto all = b.IpsSince("test", T(0), 4);
  CHECK(all.size() <= AccountBook::kMaxRecentIps);
  // The most recent three quarters of the cap are certainly kept.
  for (int i = 300 - static_cast<int>(AccountBook::kMaxRecentIps * 3 / 4); i < 300; ++i)
    CHECK(std::find(all.begin(), all.end(), ip(i)) != all.end());
  CHECK(std::find(all.begin(), all.end(), ip(0)) == all.end());
  // Seeing a kept address again updates it (found through the index), never adds it twice.
  b.Record("test", O::kRelay, 4, ip(299), "x.org", T(400));
  b.Record("test", O::kAuthSuccess, 2, ip(250), "", T(401));
  auto again = b.IpsSince("test", T(0), 4 | 2);
  CHECK(again.size() == all.size());
  auto recent = b.IpsSince("test", T(400), 4 | 2);
  CHECK(recent.size() == 2);
  CHECK(b.IpsSince("test", T(401), 2) == std::vector<IpAddress>{ip(250)});
  // A few addresses (the linear path) behave the same.
  AccountBook small(10);
  small.Record("a", O::kRelay, 4, ip(1), "x.org", T(0));
  small.Record("a", O::kRelay, 4, ip(1), "x.org", T(5));
  CHECK(small.IpsSince("a", T(0), 4).size() == 1);
  CHECK(small.IpsSince("a", T(5), 4).size() == 1);
}

TEST_CASE("within one second an account keeps the addresses it used last, each once") {
  // A botnet spreads a second's many attempts over one account: a trim must keep the latest
  // of them (the order of events, not only their whole-second times).
  AccountBook b(10);
  auto ip = [](int i) { return IpAddress::V4(0xCB007100u + static_cast<uint32_t>(i)); };  // 203.0.113.0 + i
  constexpr int n = 1000;
  for (int i = 0; i < n; ++i) b.Record("test", O::kAuthFailure, 4, ip(i), "", T(7));
  auto all = b.IpsSince("test", T(0), 4);
  CHECK(all.size() <= AccountBook::kMaxRecentIps);
  CHECK(all.size() >= AccountBook::kMaxRecentIps * 3 / 4);
  for (int i = n - static_cast<int>(AccountBook::kMaxRecentIps * 3 / 4); i < n; ++i)
    CHECK(std::find(all.begin(), all.end(), ip(i)) != all.end());
  CHECK(std::find(all.begin(), all.end(), ip(0)) == all.end());
  // Kept addresses seen again are found through the index after the trims: not added twice.
  for (int i = n - 100; i < n; ++i) b.Record("test", O::kAuthFailure, 4, ip(i), "", T(8));
  auto again = b.IpsSince("test", T(0), 4);
  CHECK(again.size() == all.size());
  std::sort(again.begin(), again.end());
  CHECK(std::adjacent_find(again.begin(), again.end()) == again.end());
  CHECK(b.IpsSince("test", T(8), 4).size() == 100);
}

TEST_CASE("a full account's address list lets the oldest unused address go, not one in use") {
  AccountBook b(10);
  auto ip = [](int i) { return IpAddress::V4(0xC0000200u + static_cast<uint32_t>(i)); };  // 192.0.2.0 + i
  const int cap = static_cast<int>(AccountBook::kMaxRecentIps);
  for (int i = 0; i < cap; ++i) b.Record("test", O::kRelay, 4, ip(i), "", T(10));
  CHECK(b.IpsSince("test", T(0), 4).size() == AccountBook::kMaxRecentIps);
  // The first address keeps relaying; then new ones arrive.
  b.Record("test", O::kRelay, 4, ip(0), "", T(11));
  for (int i = cap; i < cap + 3; ++i) b.Record("test", O::kRelay, 4, ip(i), "", T(12));
  auto all = b.IpsSince("test", T(0), 4);
  CHECK(all.size() == AccountBook::kMaxRecentIps);
  auto kept = [&](int i) { return std::find(all.begin(), all.end(), ip(i)) != all.end(); };
  CHECK(kept(0));  // in use: passed over
  CHECK_FALSE(kept(1));  // the oldest unused ones went, in the order they came
  CHECK_FALSE(kept(2));
  CHECK_FALSE(kept(3));
  CHECK(kept(4));
  for (int i = cap; i < cap + 3; ++i) CHECK(kept(i));
  // Passed over once, it is the next to go unless used again.
  for (int i = cap + 3; i < 2 * cap; ++i) b.Record("test", O::kRelay, 4, ip(i), "", T(13));
  all = b.IpsSince("test", T(0), 4);
  CHECK_FALSE(kept(0));
  CHECK(all.size() == AccountBook::kMaxRecentIps);
}

TEST_CASE("a flood of invented names evicts the oldest eighth per run, with a bounded scan per name") {
  const size_t cap = 8000, flood = 200000;
  AccountBook b(cap);
  b.Record("early-bird", O::kAuthSuccess, 2, IpAddress::Parse("192.0.2.1"), "", T(0));
  for (size_t i = 0; i < flood; ++i)
    b.Record("invented" + std::to_string(i), O::kAuthFailure, 1, std::nullopt, "", T(1 + static_cast<int>(i / 1000)));
  CHECK(b.size() <= cap);
  CHECK(b.evicted() == flood + 1 - b.size());
  CHECK(b.eviction_runs() <= flood / (cap / 8) + 1);
  double per_name = static_cast<double>(b.positions_visited()) / flood;
  INFO("positions visited per name: " << per_name);
  CHECK(per_name < 40);
  // The oldest went first: the account seen before the flood is gone, the last ones stay.
  auto snap = b.Snapshot();
  CHECK(std::none_of(snap.begin(), snap.end(), [](const AccountView& a) { return a.account == "early-bird"; }));
  CHECK(std::any_of(snap.begin(), snap.end(), [&](const AccountView& a) { return a.account == "invented" + std::to_string(flood - 1); }));
}

TEST_CASE("after runs of eviction every account left is found by its name with its own counts, and no evicted one is") {
  // Eviction takes a name out of the index some names after it frees the name's position
  // (its index slot prefetched meanwhile): a name left behind, or the wrong one taken out,
  // would find another account's counts or none.
  const size_t cap = 640;
  AccountBook b(cap);
  const int names = 5000;
  for (int i = 0; i < names; ++i)
    for (int k = 0; k <= i % 3; ++k)
      b.Record("user" + std::to_string(i), O::kAuthFailure, 1, std::nullopt, "", T(i / 10));
  REQUIRE(b.eviction_runs() > 10);
  size_t found = 0;
  for (int i = 0; i < names; ++i) {
    auto v = b.View("user" + std::to_string(i));
    if (!v) continue;
    ++found;
    CHECK(v->account == "user" + std::to_string(i));
    CHECK(v->auth_failure == static_cast<uint64_t>(i % 3 + 1));
  }
  CHECK(found == b.size());
  CHECK(b.Snapshot().size() == b.size());
  CHECK(b.evicted() == names - b.size());
  // A name that was evicted starts again from nothing.
  REQUIRE_FALSE(b.View("user0"));
  b.Record("user0", O::kAuthFailure, 1, std::nullopt, "", T(names));
  CHECK(b.View("user0")->auth_failure == 1);
}

TEST_CASE("rules that targeted an account are listed once each, in the order they fired, past the inline few") {
  AccountBook b(10);
  b.Record("alice", O::kAuthFailure, 1, IpAddress::Parse("192.0.2.1"), "", T(0));
  b.Record("bob", O::kAuthFailure, 1, IpAddress::Parse("192.0.2.1"), "", T(0));
  std::vector<std::string> fired;
  for (int i = 9; i >= 0; --i) fired.push_back("rule-" + std::to_string(i));  // more than fit inline
  for (const auto& r : fired) {
    b.AddTargeted("alice", r);
    b.AddTargeted("alice", fired[0]);  // again: listed once
  }
  b.AddTargeted("bob", "rule-3");
  b.AddTargeted("bob", "rule-9");
  b.AddTargeted("nobody", "rule-1");
  CHECK(b.View("alice")->targeted_by == fired);
  CHECK(b.View("bob")->targeted_by == std::vector<std::string>{"rule-3", "rule-9"});
  CHECK(b.View("alice")->verdicts.empty());
  b.ClearVerdicts("alice");
  CHECK(b.View("alice")->targeted_by.empty());
  b.AddTargeted("alice", "rule-0");
  CHECK(b.View("alice")->targeted_by == std::vector<std::string>{"rule-0"});
  CHECK(b.View("bob")->targeted_by == std::vector<std::string>{"rule-3", "rule-9"});
}

TEST_CASE("an evicted account's position carries nothing over to the account that reuses it") {
  AccountBook b(8);
  auto ip = [](int i) { return IpAddress::V4(0xC0000200u + static_cast<uint32_t>(i)); };  // 192.0.2.0 + i
  // Old accounts with everything set: counters, domains, many addresses, verdicts, targets.
  for (int a = 0; a < 8; ++a) {
    std::string name = "old-account-with-a-name-longer-than-a-short-string-" + std::to_string(a);
    for (int i = 0; i < 40; ++i) b.Record(name, O::kRelay, 4, ip(i), "d" + std::to_string(i) + ".org", T(i));
    b.Record(name, O::kAuthSuccess, 2, ip(1), "", T(40));
    b.AddVerdict(name, "relay-flood");
    b.AddTargeted(name, "brute");
    b.MarkFired(name, 3, T(40));
  }
  // New ones push them all out and take their positions.
  for (int a = 0; a < 40; ++a) b.Record("n" + std::to_string(a), O::kAuthFailure, 1, std::nullopt, "", T(1000 + a));
  CHECK(b.evicted() >= 8);
  for (const AccountView& v : b.Snapshot()) {
    INFO(v.account);
    CHECK(v.account.rfind("n", 0) == 0);
    CHECK(v.auth_failure == 1);
    CHECK(v.auth_success == 0);
    CHECK(v.relayed == 0);
    CHECK(v.recipient_domains == 0);
    CHECK(v.ips == 0);
    CHECK_FALSE(v.last_ip);
    CHECK(v.verdicts.empty());
    CHECK(v.targeted_by.empty());
    CHECK(b.IpsSince(v.account, T(0), ~uint64_t{0}).empty());
    CHECK_FALSE(b.MarkFired(v.account, 3, T(2000)));  // no earlier verdict of that rule
  }
}

TEST_CASE("fan-out finds exactly the addresses used since a time, past the short scan and across renewed uses") {
  // Up to 200 addresses (no eviction), used at random times - some again later, some at
  // fractions of a second - with one of two kinds: what IpsSince gives must be what a plain
  // filter of every use gives, for every `since` around those times.
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    AccountBook b(100);
    struct Use {
      Time last{};
      uint64_t kinds = 0;
    };
    std::map<std::string, Use> model;
    size_t addresses = 10 + rng() % 190;
    Time t = T(0);
    for (int k = 0; k < 600; ++k) {
      t += Micros(static_cast<int64_t>(rng() % 3) * 1000000 + static_cast<int64_t>(rng() % 2) * 250000);
      std::string ip = "10.0." + std::to_string(rng() % addresses / 256) + "." + std::to_string(rng() % addresses % 256);
      uint64_t bit = rng() % 3 == 0 ? 1 : 4;
      b.Record("acct", bit == 1 ? O::kAuthFailure : O::kRelay, bit, IpAddress::Parse(ip), "", t);
      Use& u = model[ip];
      u.last = std::max(u.last, t);
      u.kinds |= bit;
    }
    for (int s = -2; s <= 1300; s += 7) {
      Time since = T(s) + Micros((s % 2) * 250000);
      for (uint64_t kinds : {uint64_t{1}, uint64_t{4}, uint64_t{5}}) {
        std::vector<std::string> want, got;
        for (const auto& [ip, u] : model)
          if (u.last >= since && (u.kinds & kinds) != 0) want.push_back(ip);
        for (const IpAddress& a : b.IpsSince("acct", since, kinds)) got.push_back(a.ToString());
        std::sort(got.begin(), got.end());
        INFO("round " << round << " addresses " << model.size() << " since " << s << " kinds " << kinds);
        REQUIRE(got == want);
      }
    }
  }
}

TEST_CASE("accounts are listed in the order of their names' bytes, however alike the names are") {
  // Names that share a long prefix and differ only in their eight bytes after it, in later
  // bytes, or in length; bytes above 0x7f and zero bytes.
  std::mt19937_64 rng(4122026);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  for (std::string prefix : {std::string(), std::string("invented"), std::string("a")}) {
    AccountBook b(100000);
    std::set<std::string> want;
    for (int i = 0; i < 3000; ++i) {
      std::string name = prefix;
      for (size_t k = pick(14); k > 0; --k) {
        uint64_t r = pick(8);
        name += r == 0 ? '\0' : r == 1 ? static_cast<char>(0x80 + pick(128)) : static_cast<char>('0' + pick(3));
      }
      if (name.empty()) continue;
      want.insert(name);
      b.Record(name, O::kAuthFailure, 1, IpAddress::Parse("192.0.2.1"), "", T(i));
    }
    std::vector<std::string> got;
    b.ForEachSorted([&](const AccountView& v) { got.push_back(v.account); });
    CHECK(got == std::vector<std::string>(want.begin(), want.end()));
  }
}

TEST_CASE("the book maps its next chunk of entries ahead for the Prefaulter, and none it cannot grow into") {
  AccountBook b(3000);  // three chunks of 1,024 at most
  CHECK(b.chunks_mapped() == 0);
  Prefaulter::Settle();
  uint64_t before = Prefaulter::populated();
  auto ip = IpAddress::Parse("203.0.113.7");
  b.Record("a0", O::kAuthFailure, 1, ip, "", T(0));
  CHECK(b.chunks_mapped() == 2);  // the one taken and the next, populated meanwhile
  for (int i = 1; i < 1024; ++i) b.Record("a" + std::to_string(i), O::kAuthFailure, 1, ip, "", T(i));
  CHECK(b.chunks_mapped() == 2);
  b.Record("a1024", O::kAuthFailure, 1, ip, "", T(1024));
  CHECK(b.chunks_mapped() == 3);
  for (int i = 1025; i < 2049; ++i) b.Record("a" + std::to_string(i), O::kAuthFailure, 1, ip, "", T(i));
  CHECK(b.chunks_mapped() == 3);  // the third chunk is the last the cap allows: no fourth
  for (int i = 2049; i < 10000; ++i) b.Record("a" + std::to_string(i), O::kAuthFailure, 1, ip, "", T(i));
  CHECK(b.chunks_mapped() == 3);  // past the cap, positions are reused
  CHECK(b.size() <= 3000);
  Prefaulter::Settle();
  if (Prefaulter::supported()) CHECK(Prefaulter::populated() - before == 3 * AccountBook::chunk_bytes());
  // Every entry is still what it was recorded as (the chunks hold them in place).
  auto v = b.View("a9999");
  REQUIRE(v);
  CHECK(v->auth_failure == 1);
}
