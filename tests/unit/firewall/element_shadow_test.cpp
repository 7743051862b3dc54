// The nftables adapter's picture of its sets: a million single addresses and /64s in a flat
// table, other lengths ordered. Checked against a plain ordered map of the same elements.
#include "firewall/element_shadow.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

using namespace relayban;

namespace {
using TP = ElementShadow::TimePoint;
Prefix P(const char* text) { return *Prefix::Parse(text); }
TP At(int s) { return TP{} + std::chrono::seconds(s); }

std::set<Prefix> Inside(const ElementShadow& s, const Prefix& t) {
  std::set<Prefix> out;
  s.ForEachInside(t, [&](const Prefix& p) { CHECK(out.insert(p).second); });
  return out;
}
}  // namespace

TEST_CASE("the shadow keeps elements of every length, counted per family and length") {
  ElementShadow s;
  s.Set(P("203.0.113.7"), At(10));
  s.Set(P("203.0.113.0/24"), At(20));
  s.Set(P("2001:db8:1:2::/64"), At(30));
  s.Set(P("2001:db8::1"), TP::max());
  s.Set(P("203.0.113.7"), At(40));  // again: replaced, not counted twice
  CHECK(s.size() == 4);
  CHECK(s.Count(true, 32) == 1);
  CHECK(s.Count(true, 24) == 1);
  CHECK(s.Count(false, 64) == 1);
  CHECK(s.Count(false, 128) == 1);
  CHECK(*s.Get(P("203.0.113.7")) == At(40));
  CHECK(*s.Get(P("2001:db8::1")) == TP::max());
  CHECK_FALSE(s.Get(P("203.0.113.8")));
  s.Erase(P("203.0.113.7"));
  s.Erase(P("203.0.113.7"));  // twice: counted once
  s.Erase(P("2001:db8::1"));
  CHECK(s.Count(true, 32) == 0);
  CHECK(s.Count(false, 128) == 0);
  CHECK(s.size() == 2);
  s.Clear();
  CHECK(s.size() == 0);
  CHECK(s.Count(true, 24) == 0);
}

TEST_CASE("the elements inside a prefix are found by probing when few candidates, by a scan when many") {
  std::mt19937 rng(5);
  ElementShadow s;
  std::map<Prefix, TP> all;
  auto add = [&](const Prefix& p) {
    s.Set(p, At(1));
    all[p] = At(1);
  };
  // Addresses clustered in a few /16s, some prefixes, /64s and single IPv6 addresses.
  for (int i = 0; i < 3000; ++i) {
    uint32_t a = (uint32_t{198} << 24) | (static_cast<uint32_t>(51 + rng() % 3) << 16) | static_cast<uint32_t>(rng() % 65536);
    add(Prefix(IpAddress::V4(a), 32));
  }
  for (int i = 0; i < 40; ++i) {
    uint32_t a = (uint32_t{198} << 24) | (static_cast<uint32_t>(51 + rng() % 3) << 16) | static_cast<uint32_t>(rng() % 65536);
    add(Prefix(IpAddress::V4(a), 24 + static_cast<int>(rng() % 8)));
  }
  for (int i = 0; i < 2000; ++i) {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    b[4] = static_cast<uint8_t>(rng() % 2);
    b[5] = static_cast<uint8_t>(rng());
    b[6] = static_cast<uint8_t>(rng());
    b[7] = static_cast<uint8_t>(rng());
    b[15] = static_cast<uint8_t>(rng());
    add(Prefix(IpAddress::V6(b), i % 10 == 0 ? 128 : 64));
  }
  auto reference = [&](const Prefix& t) {
    std::set<Prefix> out;
    for (const auto& [p, end] : all)
      if (p.address().family() == t.address().family() && p.length() > t.length() && t.Contains(p.address())) out.insert(p);
    return out;
  };
  for (const char* t : {"198.51.0.0/16", "198.52.7.0/24", "198.53.200.0/22", "198.0.0.0/8", "0.0.0.0/0",
                        "198.51.3.128/25", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:0:77::/56",
                        "2001:db8:1:2::/64", "::/0"}) {
    INFO(t);
    auto before = s.stats();
    CHECK(Inside(s, P(t)) == reference(P(t)));
    // A /24 probes its 256 addresses; a /8 with 3,000 addresses held scans them instead.
    if (std::string(t) == "198.52.7.0/24") CHECK(s.stats().probes - before.probes == 256);
    if (std::string(t) == "198.0.0.0/8") {
      CHECK(s.stats().probes == before.probes);
      CHECK(s.stats().scans == before.scans + 1);
    }
  }
  // Every element's own prefix has nothing inside it but what is narrower.
  for (int i = 0; i < 50; ++i) {
    auto it = std::next(all.begin(), static_cast<long>(rng() % all.size()));
    CHECK(Inside(s, it->first) == reference(it->first));
  }
}

TEST_CASE("ended elements are purged a bounded slice at a time, and all of them in the end") {
  ElementShadow s;
  for (uint32_t i = 0; i < 10000; ++i) s.Set(Prefix(IpAddress::V4(0x0A000000u + i), 32), At(i % 2 ? 100 : 5));
  for (uint32_t i = 0; i < 100; ++i) s.Set(Prefix(IpAddress::V4(0x0B000000u + i * 256), 24), At(i % 2 ? 100 : 5));
  size_t dropped = s.Purge(At(10), 1000);
  CHECK(dropped > 0);
  CHECK(dropped <= 2000);  // at most 1,000 visits in each part
  for (int round = 0; round < 100 && s.size() > 5050; ++round) dropped += s.Purge(At(10), 1000);
  CHECK(dropped == 5050);
  CHECK(s.size() == 5050);
  CHECK(s.Count(true, 32) == 5000);
  CHECK(s.Count(true, 24) == 50);
  CHECK_FALSE(s.Get(P("10.0.0.0")));
  CHECK(s.Get(P("10.0.0.1")));
  CHECK(s.Purge(At(10), 100000) == 0);
}

TEST_CASE("elements arriving in the ban ledger's slot order do not pile up in one run") {
  // The ledger's FlatMap hashes with PrefixHash; a restart hands its bans over in slot order.
  FlatMap<Prefix, int, PrefixHash> ledger;
  for (uint32_t i = 0; i < 200000; ++i) ledger.Insert(Prefix(IpAddress::V4(0x0B000001u + i), 32));
  // Stopped a quarter of the way: the table holds 50,000 and has grown for them, but with the
  // ledger's own hash all of them would have homes in its first quarter, in one run.
  ElementShadow s;
  size_t n = 0;
  ledger.ForEach([&](const Prefix& p, int) {
    if (n++ < 50000) s.Set(p, TP::max());
  });
  CHECK(s.size() == 50000);
  auto c = s.Measure();
  CHECK(c.longest_run < 200);
  CHECK(c.mean_miss_probes < 5);
}

TEST_CASE("a transaction's table of 10,000 targets in the ledger's slot order stays spread with the shadow's hash") {
  // A restart after a crash adds every ban again, 10,000 to a transaction, in the ledger's
  // slot order; the transaction dedups and tracks them in tables of its own (NftFirewall).
  FlatMap<Prefix, int, PrefixHash> ledger;
  for (uint32_t i = 0; i < 200000; ++i) ledger.Insert(Prefix(IpAddress::V4(0x0B000001u + i), 32));
  FlatMap<Prefix, uint32_t, ElementShadow::Hash> spread;
  FlatMap<Prefix, uint32_t, PrefixHash> same;  // what the ledger's own hash would do
  size_t n = 0;
  ledger.ForEach([&](const Prefix& p, int) {
    if (n++ >= 10000) return;
    spread[p] = 1;
    same[p] = 1;
  });
  CHECK(spread.Measure().longest_run < 100);
  CHECK(same.Measure().longest_run > 1000);
}
