#include "relayban/core/hash_set64.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <unordered_set>

using namespace relayban;

TEST_CASE("the flat hash set counts what std::unordered_set counts") {
  std::mt19937_64 rng(42);
  HashSet64 flat;
  std::unordered_set<uint64_t> ref;
  for (int i = 0; i < 20000; ++i) {
    // Few distinct values at first (many repeats), then mostly new ones; 0 included.
    uint64_t v = i < 5000 ? rng() % 300 : rng();
    CHECK(flat.Insert(v) == ref.insert(v).second);
  }
  CHECK(flat.size() == ref.size());
  for (uint64_t v : ref) CHECK(flat.Contains(v));
  CHECK_FALSE(flat.Contains(12345678901234567ull));
  HashSet64 empty;
  CHECK_FALSE(empty.Contains(0));
  CHECK(empty.size() == 0);
}

TEST_CASE("the flat hash set keeps its first element inline and moves it into the table") {
  HashSet64 s;
  CHECK(s.Insert(7));
  CHECK_FALSE(s.Insert(7));
  CHECK(s.Contains(7));
  CHECK_FALSE(s.Contains(8));
  CHECK(s.size() == 1);
  CHECK(s.Insert(0));  // 0 is the empty marker inside: stored under another value
  CHECK(s.Contains(0));
  CHECK(s.Contains(7));
  CHECK_FALSE(s.Insert(7));
  for (uint64_t v = 100; v < 110; ++v) CHECK(s.Insert(v));
  CHECK(s.size() == 12);
  for (uint64_t v : {uint64_t{7}, uint64_t{0}, uint64_t{100}, uint64_t{109}}) CHECK(s.Contains(v));
  HashSet64 zero;
  CHECK(zero.Insert(0));
  CHECK(zero.Contains(0));
  CHECK_FALSE(zero.Contains(1));
}

TEST_CASE("the flat hash set moves with its elements, inline or in its table, and leaves the source empty") {
  for (int n : {0, 1, 2, 50}) {
    HashSet64 a;
    for (int v = 0; v < n; ++v) a.Insert(1000 + static_cast<uint64_t>(v));
    HashSet64 b(std::move(a));
    CHECK(b.size() == static_cast<size_t>(n));
    for (int v = 0; v < n; ++v) CHECK(b.Contains(1000 + static_cast<uint64_t>(v)));
    CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty, by contract
    CHECK_FALSE(a.Contains(1000));
    CHECK(a.Insert(5));  // and usable again
    CHECK(a.Contains(5));
    HashSet64 c;
    c.Insert(1);
    c.Insert(2);
    c = std::move(b);  // replaces c's own table
    CHECK(c.size() == static_cast<size_t>(n));
    CHECK_FALSE(c.Contains(2));
    for (int v = 0; v < n; ++v) CHECK(c.Contains(1000 + static_cast<uint64_t>(v)));
  }
}
