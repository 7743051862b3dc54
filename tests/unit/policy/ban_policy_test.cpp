#include "relayban/policy/ban_policy.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <random>

using namespace relayban;

namespace {
Time T(int64_t s) { return Time(Micros((1764150000 + s) * 1000000)); }
IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }
// A policy with its own book (each test's policies are separate).
struct Policy : MemoryBanBook, BanPolicy {
  explicit Policy(std::vector<Prefix> ignore = {}) : BanPolicy(std::move(ignore), Spec(), 64, *this) {}
  static BanSpec Spec() {
    BanSpec b;
    b.default_duration = Seconds(3600);
    b.factor = 2;
    b.max = Seconds(86400 * 7);
    return b;
  }
};
}  // namespace

TEST_CASE("loopback and ignored networks are never banned") {
  auto p = Policy({*Prefix::Parse("192.0.2.0/24")});
  CHECK_FALSE(p.Ban(Ip("127.0.0.1"), Seconds(3600), T(0), "j", "r", "", ""));
  CHECK_FALSE(p.Ban(Ip("::1"), Seconds(3600), T(0), "j", "r", "", ""));
  CHECK_FALSE(p.Ban(Ip("192.0.2.77"), Seconds(3600), T(0), "j", "r", "", ""));
  CHECK(p.Ban(Ip("192.0.3.77"), Seconds(3600), T(0), "j", "r", "", ""));
}

TEST_CASE("repeat offenders get longer bans, capped at max") {
  auto p = Policy();
  std::vector<int64_t> got;
  for (int i = 0; i < 5; ++i) {
    auto o = p.Ban(Ip("203.0.113.5"), Seconds(3600), T(i * 86400), "j", "r", "", "");
    REQUIRE(o);
    got.push_back(o->duration.count());
  }
  CHECK(got == std::vector<int64_t>{3600, 7200, 14400, 28800, 57600});
  auto big = Policy();
  REQUIRE(big.Ban(Ip("203.0.113.6"), Seconds(86400 * 5), T(0), "j", "r", "", "")->duration == Seconds(86400 * 5));
  auto capped = big.Ban(Ip("203.0.113.6"), Seconds(86400 * 5), T(86400 * 5 + 1), "j", "r", "", "");
  REQUIRE(capped);
  CHECK(capped->duration == Seconds(86400 * 7));
}

TEST_CASE("offences older than max are forgotten") {
  auto p = Policy();
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(3600), T(0), "j", "r", "", "")->duration == Seconds(3600));
  auto later = p.Ban(Ip("203.0.113.5"), Seconds(3600), T(86400 * 8), "j", "r", "", "");
  REQUIRE(later);
  CHECK(later->duration == Seconds(3600));
}

TEST_CASE("a first ban adds nothing to the history: the book holds its offence until the ban ends") {
  auto p = Policy();
  for (uint32_t i = 0; i < 1000; ++i)
    REQUIRE(p.Ban(IpAddress::V4(0x0B000000u + i), Seconds(3600), T(0), "j", "r", "", "")->duration == Seconds(3600));
  CHECK(p.offences().size() == 0);
  CHECK(p.size() == 1000);
  // When they end, the book hands their offences over, one each.
  p.Expire(T(3600));
  CHECK(p.size() == 0);
  CHECK(p.offences().size() == 1000);
  CHECK(p.offences().Count(Prefix(IpAddress::V4(0x0B000007u)), T(3600)) == 1);
  // A second offence doubles, ended in the history or still held by the book.
  CHECK(p.Ban(IpAddress::V4(0x0B000007u), Seconds(3600), T(7200), "j", "r", "", "")->duration == Seconds(7200));
  CHECK(p.Ban(IpAddress::V4(0x0B000007u), Seconds(86400), T(7300), "j", "r", "", "")->duration == Seconds(86400 * 4));
  CHECK(p.offences().Count(Prefix(IpAddress::V4(0x0B000007u)), T(7300)) == 2);  // the replaced ban ended
}

TEST_CASE("a ban that ended, was lifted or was replaced counts once, whether or not the book has let it go") {
  // Not expired from the book: the ended ban is still held there, and counts once.
  auto p = Policy();
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(60), T(0), "j", "r", "", ""));
  CHECK(p.Ban(Ip("203.0.113.5"), Seconds(60), T(100), "j", "r", "", "")->duration == Seconds(120));
  CHECK(p.Ban(Ip("203.0.113.5"), Seconds(60), T(1000), "j", "r", "", "")->duration == Seconds(240));
  CHECK(p.offences().Count(Prefix(Ip("203.0.113.5")), T(1000)) == 2);
  // Lifted by hand: it was an offence all the same.
  auto q = Policy();
  REQUIRE(q.Ban(Ip("203.0.113.6"), Seconds(3600), T(0), "j", "r", "", ""));
  CHECK(q.Lift(Prefix(Ip("203.0.113.6"))));
  CHECK_FALSE(q.IsBanned(Ip("203.0.113.6"), T(1)));
  CHECK(q.Ban(Ip("203.0.113.6"), Seconds(3600), T(10), "j", "r", "", "")->duration == Seconds(7200));
  // A permanent ban is no offence: what follows it is a first one.
  auto r = Policy();
  REQUIRE(r.Ban(Ip("203.0.113.7"), Seconds(0), T(0), "j", "r", "", "")->duration == Seconds(0));
  CHECK(r.Lift(Prefix(Ip("203.0.113.7"))));
  CHECK(r.offences().size() == 0);
  CHECK(r.Ban(Ip("203.0.113.7"), Seconds(3600), T(10), "j", "r", "", "")->duration == Seconds(3600));
}

TEST_CASE("an offence restored from the store is not counted twice when the book holds its ban") {
  auto p = Policy();
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(3600), T(0), "j", "r", "", ""));
  p.AddOffence(Prefix(Ip("203.0.113.5")), T(0));        // the running ban, as the store has it
  p.AddOffence(Prefix(Ip("203.0.113.5")), T(-86400));   // an earlier one
  CHECK(p.offences().Count(Prefix(Ip("203.0.113.5")), T(0)) == 1);
  // The third offence: the earlier one, the one that ran, this one.
  CHECK(p.Ban(Ip("203.0.113.5"), Seconds(3600), T(4000), "j", "r", "", "")->duration == Seconds(14400));
}

TEST_CASE("the policy built last hears of the book's ended offences, whichever policy goes first") {
  MemoryBanBook book;
  auto old_policy = std::make_unique<BanPolicy>(std::vector<Prefix>{}, Policy::Spec(), 64, book);
  REQUIRE(old_policy->Ban(Ip("203.0.113.5"), Seconds(60), T(0), "j", "r", "", ""));
  BanPolicy next({}, Policy::Spec(), 64, book);  // a reload: the new engine's policy
  old_policy.reset();
  book.Expire(T(60));
  CHECK(next.offences().size() == 1);
  CHECK(next.Ban(Ip("203.0.113.5"), Seconds(60), T(100), "j", "r", "", "")->duration == Seconds(120));
}

TEST_CASE("an active ban is only re-ordered when it would last longer") {
  auto p = Policy();
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(86400), T(0), "j", "r", "", ""));
  CHECK_FALSE(p.Ban(Ip("203.0.113.5"), Seconds(3600), T(60), "j", "r2", "", ""));
  CHECK(p.IsBanned(Ip("203.0.113.5"), T(61)));
  CHECK_FALSE(p.IsBanned(Ip("203.0.113.5"), T(86401)));
  auto longer = p.Ban(Ip("203.0.113.5"), Seconds(86400 * 3), T(120), "j", "r3", "", "");
  REQUIRE(longer);
  CHECK(longer->rule == "r3");
  CHECK_FALSE(p.Ban(Ip("203.0.113.5"), Seconds(86400 * 3), T(180), "j", "r3", "", ""));
}

TEST_CASE("AlreadyCovered says beforehand exactly when a running ban makes Ban order nothing") {
  auto p = Policy();
  CHECK_FALSE(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(3600), T(0)));  // not banned
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(86400), T(0), "j", "r", "", ""));
  CHECK(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(3600), T(60)));        // shorter
  CHECK(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(86400), T(60)));       // as long
  CHECK_FALSE(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(2 * 86400), T(60)));  // longer
  CHECK_FALSE(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(0), T(60)));     // permanent
  CHECK_FALSE(p.AlreadyCovered(Ip("203.0.113.5"), Seconds(3600), T(86401)));  // ended
  CHECK_FALSE(p.AlreadyCovered(Ip("203.0.113.6"), Seconds(3600), T(60)));  // another address
  // An IPv6 client is covered by its /64's ban.
  REQUIRE(p.Ban(Ip("2001:db8:1:2::7"), Seconds(3600), T(0), "j", "r", "", ""));
  CHECK(p.AlreadyCovered(Ip("2001:db8:1:2::99"), Seconds(3600), T(1)));
  // Wherever it says covered, Ban orders nothing; where not, Ban orders.
  for (int64_t base : {int64_t{60}, int64_t{3600}, int64_t{86400}, int64_t{3 * 86400}, int64_t{0}}) {
    auto q = Policy();
    REQUIRE(q.Ban(Ip("198.51.100.1"), Seconds(86400), T(0), "j", "r", "", ""));
    bool covered = q.AlreadyCovered(Ip("198.51.100.1"), Seconds(base), T(10));
    CHECK(covered == !q.Ban(Ip("198.51.100.1"), Seconds(base), T(10), "j", "r2", "", "").has_value());
  }
}

TEST_CASE("an IPv6 client is banned by its /64 unless that would cover an ignored address") {
  auto p = Policy({*Prefix::Parse("2001:db8:1::5")});
  auto o = p.Ban(Ip("2001:db8:2::7"), Seconds(3600), T(0), "j", "r", "", "");
  REQUIRE(o);
  CHECK(o->target.ToString() == "2001:db8:2::/64");
  auto narrow = p.Ban(Ip("2001:db8:1::9"), Seconds(3600), T(0), "j", "r", "", "");
  REQUIRE(narrow);
  CHECK(narrow->target.ToString() == "2001:db8:1::9");
  CHECK(p.IsBanned(Ip("2001:db8:2::ffff"), T(1)));
}

TEST_CASE("a ban ends at its time and the book forgets it, in bounded slices") {
  auto p = Policy();
  REQUIRE(p.Ban(Ip("203.0.113.5"), Seconds(60), T(0), "j", "r", "", ""));
  CHECK(p.IsBanned(Ip("203.0.113.5"), T(59)));
  CHECK_FALSE(p.IsBanned(Ip("203.0.113.5"), T(60)));
  for (int i = 0; i < 100; ++i) REQUIRE(p.Ban(IpAddress::V4(0x0B000000u + i), i < 50 ? Seconds(30) : Seconds(0), T(0), "j", "r", "", ""));
  CHECK(p.size() == 101);
  for (int i = 0; i < 100; ++i) p.Expire(T(61), 8);
  CHECK(p.size() == 50);  // the permanent ones stay
}

TEST_CASE("a ban target covering loopback or an ignored network is recognised") {
  auto p = Policy({*Prefix::Parse("192.0.2.0/24")});
  CHECK(p.CoversIgnored(*Prefix::Parse("192.0.2.7")));
  CHECK(p.CoversIgnored(*Prefix::Parse("192.0.0.0/16")));   // wider than the ignored /24
  CHECK(p.CoversIgnored(*Prefix::Parse("192.0.2.128/25")));  // inside it
  CHECK(p.CoversIgnored(*Prefix::Parse("127.0.0.1")));
  // Loopback whether or not the list names it: a prefix that contains it is refused too.
  CHECK(p.CoversIgnored(*Prefix::Parse("0.0.0.0/0")));
  CHECK(p.CoversIgnored(*Prefix::Parse("96.0.0.0/3")));
  CHECK(p.CoversIgnored(*Prefix::Parse("::/64")));
  CHECK(p.CoversIgnored(*Prefix::Parse("::1")));
  CHECK_FALSE(p.CoversIgnored(*Prefix::Parse("128.0.0.0/2")));
  CHECK_FALSE(p.CoversIgnored(*Prefix::Parse("::2")));
  CHECK_FALSE(p.CoversIgnored(*Prefix::Parse("192.0.3.0/24")));
  CHECK_FALSE(p.CoversIgnored(*Prefix::Parse("2001:db8::/64")));
}

TEST_CASE("a target covers an ignored network exactly when their common leading bits agree, for every length") {
  // IPv6 ignore prefixes of every length around 2001:db8:1:2::/64's bits.
  std::vector<Prefix> ignore;
  for (int len : {16, 40, 63, 64, 65, 100, 128}) ignore.push_back(Prefix(Ip("2001:db8:1:2:8000::5"), len));
  auto p = Policy(ignore);
  std::array<uint8_t, 16> base = Ip("2001:db8:1:2:8000::5").bytes();
  for (int bit = 0; bit < 128; ++bit) {  // a target differing from it at one bit
    std::array<uint8_t, 16> b = base;
    b[static_cast<size_t>(bit / 8)] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
    IpAddress other = IpAddress::V6(b);
    for (int len = 0; len <= 128; len += 1) {
      Prefix target(other, len);
      auto overlaps = [&](const Prefix& ig) {
        int common = std::min(ig.length(), target.length());
        return ig.address().Masked(common) == target.address().Masked(common);
      };
      bool want = std::any_of(ignore.begin(), ignore.end(), overlaps);
      CHECK(want == (bit >= std::min(len, 128) || bit >= 16));
      // Loopback is guarded as if on the list: a short prefix such as 0::/3 covers ::1.
      bool loopback = overlaps(Prefix(Ip("::1")));
      CHECK(loopback == (len <= (bit < 2 ? bit : bit == 2 ? 15 : 2)));
      INFO("bit " << bit << " length " << len);
      CHECK(p.CoversIgnored(target) == (want || loopback));
    }
  }
}

TEST_CASE("offences handed over in another table's slot order do not pile up in one run of the history") {
  // A ledger lifting every ban walks its table by position: its keys come in the order of
  // their home slots. The history must not put them in one long run (a million took
  // minutes before its hash was remixed).
  FlatMap<Prefix, int, PrefixHash> walked;
  for (uint32_t i = 0; i < 150000; ++i) walked[Prefix(IpAddress::V4(0x0B000000u + i * 7919u))] = 1;
  auto p = Policy();
  // Looked at every 5,000 keys, growth included (its clusters are what insertion pays).
  size_t longest = 0, added = 0;
  for (size_t i = 0; i < walked.capacity(); ++i) {
    if (!walked.Used(i)) continue;
    p.AddOffence(walked.KeyAt(i), T(0));
    if (++added % 5000 == 0) longest = std::max(longest, p.offences().Measure().longest_run);
  }
  REQUIRE(p.offences().size() == 150000);
  auto c = p.offences().Measure();
  CHECK(longest < 500);
  CHECK(c.mean_miss_probes < 10);
}

TEST_CASE("an address is ignored exactly when loopback or inside a network of the list, for random lists") {
  std::mt19937_64 rng(41204);
  auto pick = [&](uint64_t n) { return static_cast<int>(rng() % n); };
  // Addresses drawn near the networks (a few random bits flipped), so both answers are common.
  auto near = [&](const IpAddress& a) {
    std::array<uint8_t, 16> b = a.bytes();
    int bits = a.is_v4() ? 32 : 128;
    for (int k = pick(3); k > 0; --k) {
      int bit = pick(static_cast<uint64_t>(bits));
      b[static_cast<size_t>(bit / 8)] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
    }
    if (a.is_v4()) return IpAddress::V4(uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3]);
    return IpAddress::V6(b);
  };
  auto random_ip = [&](bool v4) {
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (v4) return IpAddress::V4(static_cast<uint32_t>(rng()));
    b[0] = 0x20;
    return IpAddress::V6(b);
  };
  int ignored = 0, kept = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<Prefix> list;
    for (int k = pick(5); k > 0; --k) {
      bool v4 = pick(2) == 0;
      list.push_back(Prefix(random_ip(v4), v4 ? pick(33) : pick(129)));
    }
    auto p = Policy(list);
    for (int t = 0; t < 200; ++t) {
      IpAddress ip = list.empty() || pick(4) == 0 ? random_ip(pick(2) == 0) : near(list[static_cast<size_t>(pick(list.size()))].address());
      if (pick(20) == 0) ip = pick(2) ? IpAddress::V4(0x7F000000u | static_cast<uint32_t>(rng() & 0xFFFFFF)) : *IpAddress::Parse("::1");
      bool want = ip.IsLoopback() || std::any_of(list.begin(), list.end(), [&](const Prefix& n) { return n.Contains(ip); });
      INFO(ip.ToString());
      REQUIRE(p.IsIgnored(ip) == want);
      (want ? ignored : kept)++;
    }
  }
  CHECK(ignored > 5000);
  CHECK(kept > 5000);
}

TEST_CASE("an IPv6 client's target is its wide prefix exactly when that overlaps no guarded network, at every width") {
  // The reference: the wide prefix made by masking, and overlap as "the shorter of the two
  // contains the other's network", with loopback (::1) guarded like the list.
  std::mt19937_64 rng(51205);
  auto pick = [&](uint64_t n) { return static_cast<int>(rng() % n); };
  auto random_v6 = [&] {
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (pick(4) == 0) std::fill(b.begin(), b.begin() + 8, 0);  // near ::1
    return IpAddress::V6(b);
  };
  auto near = [&](const IpAddress& a) {
    std::array<uint8_t, 16> b = a.bytes();
    for (int k = pick(3); k > 0; --k) {
      int bit = pick(128);
      b[static_cast<size_t>(bit / 8)] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
    }
    return IpAddress::V6(b);
  };
  auto overlap = [](const Prefix& a, const Prefix& b) {
    return a.length() <= b.length() ? a.Contains(b.address()) : b.Contains(a.address());
  };
  int wide = 0, narrow = 0;
  for (int round = 0; round < 300; ++round) {
    int width = 16 + pick(113);
    std::vector<Prefix> list;
    for (int k = pick(4); k > 0; --k) list.push_back(Prefix(random_v6(), pick(129)));
    if (pick(3) == 0) list.push_back(*Prefix::Parse("192.0.2.0/24"));  // another family: never in the way
    MemoryBanBook book;
    BanPolicy p(list, Policy::Spec(), width, book);
    std::vector<Prefix> guard = list;
    guard.push_back(*Prefix::Parse("::1"));
    for (int t = 0; t < 200; ++t) {
      IpAddress ip = pick(3) == 0 ? random_v6() : near(pick(4) == 0 ? Ip("::1") : list.empty() ? random_v6() : list[static_cast<size_t>(pick(list.size()))].address());
      if (ip.is_v4()) continue;
      Prefix masked(ip, width);
      bool covers = std::any_of(guard.begin(), guard.end(), [&](const Prefix& g) { return overlap(g, masked); });
      INFO(ip.ToString() << " /" << width);
      Prefix got = p.TargetFor(ip);
      REQUIRE(got == (covers ? Prefix(ip) : masked));
      (covers ? narrow : wide)++;
    }
  }
  CHECK(wide > 5000);
  CHECK(narrow > 5000);
}

TEST_CASE("a book records the right ban after a lookup of the same target, whatever changed the table between") {
  // Record reuses the slot that Held found just before it (BanPolicy::Ban's pair): a lift,
  // an expiry or a growth between the two must not leave it writing where the target was.
  MemoryBanBook book;
  auto order = [](const char* ip, int64_t at, int64_t seconds) {
    return Order{Order::Action::kBan, T(at), "j", "r", Prefix(Ip(ip)), "", Seconds(seconds), ""};
  };
  Prefix a(Ip("203.0.113.1")), b(Ip("203.0.113.2"));
  book.Record(order("203.0.113.1", 0, 100));
  book.Record(order("203.0.113.2", 0, 100));
  // Held, then the target lifted: the record that follows inserts it again.
  REQUIRE(book.Held(a));
  REQUIRE(book.Lift(a));
  book.Record(order("203.0.113.1", 10, 200));
  REQUIRE(book.Held(a));
  CHECK(book.Held(a)->duration == Seconds(200));
  CHECK(book.Held(b)->duration == Seconds(100));
  // Held, then its neighbour expired (which may move it back in its run), then recorded.
  REQUIRE(book.Held(a));
  book.Expire(T(150));
  CHECK_FALSE(book.Held(b));
  REQUIRE(book.Held(a));
  book.Expire(T(150));
  book.Record(order("203.0.113.1", 20, 300));
  CHECK(book.Held(a)->duration == Seconds(300));
  CHECK(book.size() == 1);
  // Held of one target, record of another: each where it belongs, through a growth of the
  // table and its move.
  for (int i = 0; i < 50000; ++i) {
    IpAddress ip = IpAddress::V4(0x0A000000u + static_cast<uint32_t>(i));
    (void)book.Held(Prefix(IpAddress::V4(0x0A000000u + static_cast<uint32_t>(i + 1))));
    book.Record(Order{Order::Action::kBan, T(30), "j", "r", Prefix(ip), "", Seconds(1000 + i), ""});
  }
  CHECK(book.size() == 50001);
  for (int i = 0; i < 50000; i += 997) {
    auto held = book.Held(Prefix(IpAddress::V4(0x0A000000u + static_cast<uint32_t>(i))));
    REQUIRE(held);
    CHECK(held->duration == Seconds(1000 + i));
  }
  CHECK(book.Held(a)->duration == Seconds(300));
}
