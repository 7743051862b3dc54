#include "relayban/core/flat_map.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <type_traits>

using namespace relayban;

namespace {

struct StrHash {
  size_t operator()(const std::string& s) const { return std::hash<std::string>{}(s); }
};
// Three hashes for every key there is: keys with equal hashes must still be told apart.
struct PoorHash {
  size_t operator()(const std::string& s) const { return s.size() % 3; }
};

// Every entry once over the slot positions, and agreeing with the reference.
template <class Map, class Ref>
void CheckSame(const Map& m, const Ref& ref) {
  REQUIRE(m.size() == ref.size());
  size_t seen = 0;
  for (size_t i = 0; i < m.capacity(); ++i) {
    if (!m.Used(i)) continue;
    ++seen;
    auto it = ref.find(m.KeyAt(i));
    REQUIRE(it != ref.end());
    REQUIRE(m.HashAt(i) == typename Map::Hasher{}(m.KeyAt(i)));  // the kept hash is the key's
    REQUIRE(m.ValueAt(i) == it->second);
  }
  REQUIRE(seen == ref.size());
  for (const auto& [k, v] : ref) {
    const auto* got = m.Get(k);
    REQUIRE(got != nullptr);
    REQUIRE(*got == v);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("the flat map agrees with std::map through growth, erases by key and by slot, and scans", "",
                   StrHash, PoorHash) {
  std::mt19937_64 rng(7);
  const int rounds = std::is_same_v<TestType, PoorHash> ? 3000 : 60000;  // PoorHash probes every key
  FlatMap<std::string, std::string, TestType> m;
  std::map<std::string, std::string> ref;
  for (int round = 0; round < rounds; ++round) {
    std::string k = "k" + std::to_string(rng() % static_cast<uint64_t>(rounds * 2 / 3));
    switch (rng() % 8) {
      case 0:  // erase by key
        CHECK(m.Erase(k) == (ref.erase(k) == 1));
        break;
      case 1: {  // erase by slot
        size_t i = m.Find(k);
        REQUIRE((i == m.kNone) == (ref.count(k) == 0));
        if (i != m.kNone) {
          m.EraseAt(i);
          ref.erase(k);
        }
        break;
      }
      default:
        m[k] = k + "=" + std::to_string(round);
        ref[k] = k + "=" + std::to_string(round);
    }
    if (round % (rounds / 12) == 0) CheckSame(m, ref);
  }
  CheckSame(m, ref);
  CHECK_FALSE(m.Get(std::string("absent")));

  SECTION("copies and moves keep every entry") {
    FlatMap<std::string, std::string, TestType> copy = m;
    CheckSame(copy, ref);
    FlatMap<std::string, std::string, TestType> moved = std::move(copy);
    CheckSame(moved, ref);
  }
  SECTION("reset empties it and it fills again") {
    m.Reset();
    CHECK(m.size() == 0);
    for (size_t i = 0; i < m.capacity(); ++i) CHECK_FALSE(m.Used(i));
    m["again"] = "yes";
    CHECK(*m.Get(std::string("again")) == "yes");
  }
}
