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
