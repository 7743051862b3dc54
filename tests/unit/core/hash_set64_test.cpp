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
