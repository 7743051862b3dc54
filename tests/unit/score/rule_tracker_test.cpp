#include "relayban/score/rule_tracker.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include <set>
#include <vector>

using namespace relayban;

namespace {
Time T(int s) { return Time(Micros(int64_t{1764150000 + s} * 1000000)); }
const IpAddress kIp = *IpAddress::Parse("203.0.113.9");
}  // namespace

TEST_CASE("the threshold-th event inside the window is a verdict") {
  IpWindows w(5, Seconds(600), false, 1000);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(w.Add(kIp, 0, 1, T(i * 10)));
  CHECK(w.Add(kIp, 0, 1, T(50)));
  CHECK(w.size() == 0);  // the count restarts after a verdict
}

TEST_CASE("events that left the window do not count") {
  IpWindows w(3, Seconds(60), false, 1000);
  CHECK_FALSE(w.Add(kIp, 0, 1, T(0)));
  CHECK_FALSE(w.Add(kIp, 0, 1, T(30)));
  CHECK_FALSE(w.Add(kIp, 0, 1, T(100)));  // the first two are gone
  CHECK_FALSE(w.Add(kIp, 0, 1, T(120)));
  CHECK(w.Add(kIp, 0, 1, T(130)));
}

TEST_CASE("a weighted event counts as many attempts, up to the threshold") {
  IpWindows w(5, Seconds(600), false, 1000);
  CHECK_FALSE(w.Add(kIp, 0, 3, T(0)));
  CHECK(w.Add(kIp, 0, 2, T(1)));
}

TEST_CASE("distinct counting ignores repeats of the same value") {
  AccountWindows w(3, Seconds(3600), true, 1000);
  CHECK_FALSE(w.Add(std::string("test"), 111, 1, T(0)));
  CHECK_FALSE(w.Add(std::string("test"), 111, 1, T(1)));
  CHECK_FALSE(w.Add(std::string("test"), 222, 1, T(2)));
  CHECK_FALSE(w.Add(std::string("test"), 222, 1, T(3)));
  CHECK(w.Add(std::string("test"), 333, 1, T(4)));
}

TEST_CASE("keys are counted separately") {
  AccountWindows w(2, Seconds(3600), false, 1000);
  CHECK_FALSE(w.Add(std::string("a"), 0, 1, T(0)));
  CHECK_FALSE(w.Add(std::string("b"), 0, 1, T(0)));
  CHECK(w.Add(std::string("a"), 0, 1, T(1)));
}

TEST_CASE("idle keys are swept and the key count is capped") {
  IpWindows w(10, Seconds(60), false, 100);
  for (uint32_t i = 0; i < 1000; ++i) w.Add(IpAddress::V4(0xC0000200u + i), 0, 1, T(static_cast<int>(i)));
  CHECK(w.size() <= 100);
  CHECK(w.evicted() >= 900);
  w.Sweep(T(5000));
  CHECK(w.size() == 0);
}

TEST_CASE("memory per key is bounded by the threshold") {
  WindowState s;
  for (uint32_t i = 0; i < 10000; ++i) CHECK(s.Add(i, 1, 1000, true, 50, 3600) <= 50);
}

TEST_CASE("at the cap the least recently seen quarter is evicted at once") {
  static_assert(IpWindows::kEvictShare == 4);
  IpWindows w(10, Seconds(86400), false, 800);
  for (uint32_t i = 0; i < 800; ++i) w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(static_cast<int>(i)));
  CHECK(w.stats().eviction_runs == 0);
  w.Add(IpAddress::V4(0x0B000000u), 0, 1, T(1000));
  CHECK(w.stats().eviction_runs == 1);
  CHECK(w.evicted() == 200);
  CHECK(w.size() == 601);
  // The oldest two hundred went: adding one of them again starts it fresh (no verdict at 10).
  for (int k = 0; k < 9; ++k) CHECK_FALSE(w.Add(IpAddress::V4(0x0A000000u + 150), 0, 1, T(1001)));
  // A newer key kept its count: nine more make ten with the one it had.
  for (int k = 0; k < 8; ++k) CHECK_FALSE(w.Add(IpAddress::V4(0x0A000000u + 500), 0, 1, T(1001)));
  CHECK(w.Add(IpAddress::V4(0x0A000000u + 500), 0, 1, T(1001)));
}

TEST_CASE("tables with other phases evict at other counts, a quarter each time, never above the cap") {
  const size_t cap = 6400;
  std::vector<IpWindows> tables;
  for (size_t phase = 0; phase < IpWindows::kPhases; ++phase) tables.emplace_back(10, Seconds(86400), false, cap, phase);
  // The same flood of new addresses reaches every table, as a botnet's lines reach every rule.
  std::vector<std::vector<uint32_t>> runs_at(tables.size());
  for (uint32_t i = 0; i < 3 * cap; ++i) {
    for (size_t p = 0; p < tables.size(); ++p) {
      uint64_t before = tables[p].stats().eviction_runs;
      tables[p].Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(static_cast<int>(i / 100)));
      CHECK(tables[p].size() <= cap);
      if (tables[p].stats().eviction_runs != before) runs_at[p].push_back(i);
    }
  }
  for (size_t p = 0; p < tables.size(); ++p) {
    REQUIRE(runs_at[p].size() >= 2);
    CHECK(runs_at[p][0] == cap - p * (cap / 64));       // its first eviction
    CHECK(runs_at[p][1] - runs_at[p][0] == cap / IpWindows::kEvictShare);  // then every quarter of the cap
    CHECK(tables[p].evicted() == runs_at[p].size() * (cap / IpWindows::kEvictShare));
  }
  // No two tables evict at the same line, nor within a sixty-fourth of the cap.
  for (size_t p = 1; p < tables.size(); ++p)
    for (size_t k = 0; k < runs_at[p].size() && k < runs_at[p - 1].size(); ++k)
      CHECK(runs_at[p - 1][k] - runs_at[p][k] == cap / 64);
}

TEST_CASE("tables with other phases grow at other counts: no two rehash on the same line") {
  std::vector<IpWindows> tables;
  for (size_t phase = 0; phase < IpWindows::kPhases; ++phase) tables.emplace_back(10, Seconds(86400), false, 1000000, phase);
  std::vector<std::set<uint32_t>> grown_at(tables.size());
  for (uint32_t i = 0; i < 200000; ++i)
    for (size_t p = 0; p < tables.size(); ++p) {
      size_t before = tables[p].capacity();
      tables[p].Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(1));
      if (tables[p].capacity() != before && i >= 1000) grown_at[p].insert(i);
    }
  for (size_t p = 0; p < tables.size(); ++p) {
    REQUIRE(grown_at[p].size() >= 3);  // it did grow, several times
    for (size_t q = 0; q < p; ++q)
      for (uint32_t at : grown_at[p]) CHECK(grown_at[q].count(at) == 0);
  }
}

TEST_CASE("a flood of new keys in one second is evicted in quarters, with a bounded scan per key") {
  const size_t cap = 4000, flood = 200000;
  IpWindows w(5, Seconds(600), false, cap);
  for (uint32_t i = 0; i < flood; ++i) w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(7));  // one second
  CHECK(w.size() <= cap);
  CHECK(w.evicted() == flood - w.size());
  // One run per cap/kEvictShare new keys, not one per key.
  constexpr size_t kRunEvery = cap / IpWindows::kEvictShare;
  CHECK(w.stats().eviction_runs <= flood / kRunEvery + 1);
  CHECK(w.stats().eviction_runs >= (flood - cap) / kRunEvery);
  // Every run scans the table a bounded number of times: slots visited per new key stay
  // a small constant, whatever the flood's length.
  double per_key = static_cast<double>(w.stats().slots_visited) / flood;
  INFO("slots visited per key: " << per_key);
  CHECK(per_key < 60);
}

TEST_CASE("a bounded sweep visits at most its slice and goes on where it stopped") {
  IpWindows w(10, Seconds(60), false, 100000);
  for (uint32_t i = 0; i < 10000; ++i) w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(0));
  uint64_t before = w.stats().slots_visited;
  w.Sweep(T(5000), 1000);
  CHECK(w.stats().slots_visited - before == 1000);
  CHECK(w.size() < 10000);
  CHECK(w.size() > 8000);
  for (int i = 0; i < 40 && w.size() > 0; ++i) w.Sweep(T(5000), 1000);
  CHECK(w.size() == 0);
}

TEST_CASE("observing counts without a verdict, capped at the threshold, and forgets what left the window") {
  PrefixWindows w(4, Seconds(100), false, 10);
  Prefix p(*IpAddress::Parse("203.0.113.0"), 24);
  CHECK(w.Observe(p, 0, 1, T(0)) == 1);
  CHECK(w.Observe(p, 0, 1, T(10)) == 2);
  for (int i = 0; i < 10; ++i) CHECK(w.Observe(p, 0, 1, T(20 + i)) <= 4);
  CHECK(w.size() == 1);
  CHECK(w.Observe(p, 0, 1, T(500)) == 1);
}

TEST_CASE("eviction keeps the table free of long probe runs, whatever the window") {
  // With a 30-day window every key of a flood falls into one age bucket; the share evicted
  // from it must be spread over the table, or linear probing degrades (runs of thousands).
  for (int days : {1, 30}) {
    PrefixWindows w(64, Seconds(86400 * days), false, 20000);
    for (uint32_t i = 0; i < 300000; ++i) w.Observe(Prefix(IpAddress::V4(0x0B000000u + i)), 0, 1, T(static_cast<int>(i / 1000)));
    auto c = w.Measure();
    INFO(days << " days: longest run " << c.longest_run << ", mean probes " << c.mean_miss_probes);
    CHECK(w.stats().eviction_runs >= (300000 - 20000) / (20000 / PrefixWindows::kEvictShare));  // many runs
    CHECK(c.mean_miss_probes < 8);
    CHECK(c.longest_run < 400);
  }
}

TEST_CASE("a window leaves its inline item for room for eight items, or the threshold, at once") {
  WindowState five, twenty;
  five.Add(0, 1, 100, false, 5, 600);
  CHECK(five.capacity() == 1);
  CHECK(five.Add(0, 1, 101, false, 5, 600) == 2);
  CHECK(five.capacity() == 5);  // the threshold: a ban's worth in one allocation
  for (uint32_t s = 102; s < 110; ++s) five.Add(0, 1, s, false, 5, 600);
  CHECK(five.capacity() == 5);  // full windows drop their oldest, they do not grow
  for (uint32_t s = 100; s < 102; ++s) twenty.Add(s, 1, s, true, 20, 600);
  CHECK(twenty.capacity() == 8);
  for (uint32_t s = 102; s < 109; ++s) twenty.Add(s, 1, s, true, 20, 600);
  CHECK(twenty.capacity() == 16);  // then doubling, up to the threshold
  for (uint32_t s = 109; s < 130; ++s) twenty.Add(s, 1, s, true, 20, 600);
  CHECK(twenty.capacity() == 20);
  CHECK(twenty.Add(999, 1, 130, true, 20, 600) == 20);
}

TEST_CASE("a verdict restarts a lane's count and keeps its room, and the key's other lanes count on") {
  // Two lanes: 4 distinct values (a spray) and 20 events. An address spraying on crosses the
  // first again and again: after the first time, without an allocation each time.
  KeyedWindows<IpAddress, IpAddressHash, 2> w({WindowSpec{4, Seconds(3600), true}, WindowSpec{20, Seconds(86400), false}},
                                              1000);
  const IpAddress ip = IpAddress::V4(0x0A000001u);
  int crossed = 0;
  for (int i = 0; i < 19; ++i) {
    size_t slot = w.Slot(ip, T(i));
    if (w.AddAt(slot, 0, static_cast<uint64_t>(i), 1, T(i))) ++crossed;
    CHECK(!w.AddAt(slot, 1, 0, 1, T(i)));
    w.Release(slot);
  }
  CHECK(crossed == 4);  // at the 4th, 8th, 12th and 16th distinct value
  size_t slot = w.Slot(ip, T(19));
  // 19 - 16 = 3 distinct values since the last verdict: the next one crosses again.
  CHECK(w.ObserveAt(slot, 0, 100, 1, T(19)) == 4);
  // The 20th event of the other lane crosses it: its count was never restarted.
  CHECK(w.AddAt(slot, 1, 0, 1, T(19)));
  w.Release(slot);
  // The restart itself: empty, counting from one, in the room it had.
  WindowState four;
  for (uint32_t v = 0; v < 4; ++v) four.Add(v, 1, 100 + v, true, 4, 3600);
  CHECK(four.capacity() == 4);
  four.Restart();
  CHECK(four.empty());
  CHECK(four.capacity() == 4);
  CHECK(four.Add(0, 1, 104, true, 4, 3600) == 1);
  CHECK(four.Add(9, 1, 105, true, 4, 3600) == 2);
}

TEST_CASE("an empty window state is all zero bytes, so a table's mapped array is not written before use") {
  static_assert(FlatMap<IpAddress, WindowState, IpAddressHash>::PlainSlots());
  WindowState empty;
  unsigned char zero[sizeof(WindowState)] = {};
  CHECK(std::memcmp(static_cast<const void*>(&empty), zero, sizeof zero) == 0);
  // Zero bytes taken as a state: empty, one item inline, and it counts and grows as one.
  alignas(WindowState) unsigned char raw[sizeof(WindowState)] = {};
  auto* w = reinterpret_cast<WindowState*>(raw);
  CHECK(w->capacity() == 1);
  CHECK(w->Add(1, 1, 100, false, 20, 600) == 1);
  CHECK(w->Add(1, 1, 101, false, 20, 600) == 2);
  CHECK(w->capacity() == 8);
  w->~WindowState();
}

TEST_CASE("a table that reaches its cap while growing evicts across both arrays and keeps every recent key") {
  // The table grows at 33,186 keys and moves its old array over about 3,000 inserts: with a
  // cap of 34,000 the first eviction comes in the middle of that move.
  const size_t cap = 34000;
  IpWindows w(3, Seconds(600), false, cap);
  bool evicted_while_growing = false;
  for (uint32_t i = 0; i < 100000; ++i) {
    uint64_t runs = w.stats().eviction_runs;
    size_t capacity = w.capacity();
    w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(static_cast<int>(i / 100)));
    // A growing table's positions span both arrays: more than the new array's alone.
    if (w.stats().eviction_runs != runs && w.capacity() == capacity && capacity > cap * 100 / 45) evicted_while_growing = true;
    REQUIRE(w.size() <= cap);
  }
  CHECK(evicted_while_growing);
  CHECK(w.evicted() == 100000 - w.size());
  // The most recent keys were kept, with their counts: two more events each are a verdict.
  for (uint32_t i = 100000 - 1000; i < 100000; ++i) {
    CHECK_FALSE(w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(1000)));
    CHECK(w.Add(IpAddress::V4(0x0A000000u + i), 0, 1, T(1000)));
  }
}

TEST_CASE("a table whose new keys stopped in the middle of a growth finishes it through its sweeps") {
  IpWindows w(3, Seconds(600), false, 1000000);
  uint32_t i = 0;
  size_t before = w.capacity();
  // Up to the insert that makes it grow (its capacity jumps by the old array and the new).
  while (w.capacity() == before || w.capacity() < 50000) {
    before = w.capacity();
    w.Add(IpAddress::V4(0x0A000000u + i++), 0, 1, T(0));
  }
  size_t growing = w.capacity();
  // No more new keys: the sweeps of the next ticks (a slice each) move the rest over.
  int ticks = 0;
  while (w.capacity() == growing && ticks < 1000) {
    w.Sweep(T(1), 4096);
    ++ticks;
  }
  CHECK(w.capacity() < growing);  // the old array is gone
  CHECK(ticks > 1);               // in slices
  CHECK(w.size() == i);           // nothing was lost (all inside the window)
  for (uint32_t k = 0; k < i; k += 997) {
    CHECK_FALSE(w.Add(IpAddress::V4(0x0A000000u + k), 0, 1, T(2)));
    CHECK(w.Add(IpAddress::V4(0x0A000000u + k), 0, 1, T(2)));
  }
}

TEST_CASE("rules sharing a table count in lanes of their own: one key, each lane its threshold and window") {
  // Brute force (3 in 60 s), slow (5 in an hour), spraying (2 distinct values in an hour).
  IpLaneWindows w({WindowSpec{3, Seconds(60), false}, WindowSpec{5, Seconds(3600), false}, WindowSpec{2, Seconds(3600), true}},
                  1000);
  auto add = [&](int second, uint64_t value) {
    size_t i = w.Slot(kIp, T(second));
    int crossed = 0;
    for (size_t l = 0; l < 3; ++l)
      if (w.AddAt(i, l, value, 1, T(second))) crossed |= 1 << l;
    w.Release(i);
    return crossed;
  };
  CHECK(add(0, 7) == 0);
  CHECK(add(1, 7) == 0);       // lane 2: the same value again
  CHECK(add(2, 8) == (1 | 4));  // lane 0: three events; lane 2: two distinct values
  CHECK(w.size() == 1);         // lane 1 still counts: the key stays
  CHECK(add(100, 9) == 0);      // lane 0 restarted; lane 1 at four
  CHECK(add(101, 9) == 2);      // lane 1: five in the hour
  CHECK(add(102, 9) == 1);      // lane 0: three in a minute again; lane 2: one value since
  CHECK(w.size() == 1);         // lane 1 (one event) and lane 2 (one value) still count
  // A key with no lane left goes.
  w.EraseLane(kIp, 1);
  CHECK(w.size() == 1);
  w.EraseLane(kIp, 2);
  CHECK(w.size() == 0);
}

TEST_CASE("a shared table's sweep empties each lane after its own window, and the key after the last") {
  IpLaneWindows w({WindowSpec{10, Seconds(60), false}, WindowSpec{10, Seconds(3600), false}, WindowSpec{10, Seconds(60), true}},
                  1000);
  size_t i = w.Slot(kIp, T(0));
  for (size_t l = 0; l < 3; ++l) w.AddAt(i, l, 1, 1, T(0));
  w.Release(i);
  w.Sweep(T(120));
  REQUIRE(w.size() == 1);  // the hour lane still counts
  // The minute lanes were emptied: nine more events in lane 0 are not a verdict, while the
  // hour lane had one and reaches ten with nine more.
  i = w.Slot(kIp, T(121));
  bool lane0 = false, lane1 = false;
  for (int k = 0; k < 9; ++k) {
    lane0 = lane0 || w.AddAt(i, 0, 1, 1, T(121));
    lane1 = lane1 || w.AddAt(i, 1, 1, 1, T(121));
  }
  w.Release(i);
  CHECK_FALSE(lane0);
  CHECK(lane1);
  w.Sweep(T(4000));
  CHECK(w.size() == 0);
  // An inserted key none of whose lanes counted anything is not kept.
  w.Release(w.Slot(kIp, T(4001)));
  CHECK(w.size() == 0);
}

TEST_CASE("a shared table evicts keys by their most recent lane, a quarter at once") {
  IpLaneWindows w({WindowSpec{10, Seconds(86400), false}, WindowSpec{10, Seconds(86400), false}, WindowSpec{10, Seconds(600), false}},
                  800);
  // Keys 0-799 counted in lane 0 at seconds 0-799; the first hundred seen again (lane 1) at 900.
  for (uint32_t k = 0; k < 800; ++k) {
    size_t i = w.Slot(IpAddress::V4(0x0A000000u + k), T(static_cast<int>(k)));
    w.AddAt(i, 0, 0, 1, T(static_cast<int>(k)));
    w.Release(i);
  }
  for (uint32_t k = 0; k < 100; ++k) {
    size_t i = w.Slot(IpAddress::V4(0x0A000000u + k), T(900));
    w.AddAt(i, 1, 0, 1, T(900));
    w.Release(i);
  }
  w.Add(IpAddress::V4(0x0B000000u), 0, 1, T(1000));  // the cap: a quarter goes
  CHECK(w.stats().eviction_runs == 1);
  CHECK(w.evicted() == 200);
  // What went was keys 100-299 (seen last at 100-299), not 0-99 (lane 1 at 900): these
  // still have their lane 0 count, nine more make ten.
  size_t i = w.Slot(IpAddress::V4(0x0A000000u + 5), T(1001));
  bool kept = false;
  for (int k = 0; k < 9; ++k) kept = kept || w.AddAt(i, 0, 0, 1, T(1001));
  w.Release(i);
  CHECK(kept);
  i = w.Slot(IpAddress::V4(0x0A000000u + 150), T(1001));
  bool fresh = false;
  for (int k = 0; k < 9; ++k) fresh = fresh || w.AddAt(i, 0, 0, 1, T(1001));
  w.Release(i);
  CHECK_FALSE(fresh);
}

TEST_CASE("an eviction passes over the table about once, however its sample misjudged the cutoff") {
  // A sampled table (more positions than eviction.hpp's kSampleAbove) of entries seen over
  // the last 200 seconds (several age buckets): the first pass takes every older bucket
  // and a hashed share of the cutoff one. Where the sample put that share short, the rest
  // comes from the cutoff bucket in position order, in a short second pass (not a full
  // pass that takes nothing and a third that takes it).
  const size_t positions = 400000, held = 200000, excess = 50000;
  std::vector<uint8_t> used(positions, 0);
  for (size_t i = 0; i < held; ++i) used[(i * 2654435761u) % positions] = 1;
  REQUIRE(static_cast<size_t>(std::count(used.begin(), used.end(), 1)) == held);
  uint64_t most = 0;
  for (uint64_t run = 1; run <= 24; ++run) {
    std::vector<uint8_t> u = used;
    auto cost = EvictOldest(
        positions, excess, 1000, 86400, run, [&](size_t i) { return u[i] != 0; },
        [](size_t i) { return 1000u - static_cast<uint32_t>((i * 0x9E3779B97F4A7C15ull) >> 40) % 200u; },
        [](size_t i) { return static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull; },
        [&](size_t i) {
          u[i] = 0;
          return false;
        });
    CHECK(cost.evicted == excess);
    CHECK(static_cast<size_t>(std::count(u.begin(), u.end(), 1)) == held - excess);
    most = std::max(most, cost.positions_visited);
  }
  INFO("most positions visited by one run: " << most);
  CHECK(most < positions + positions / 4);
}
