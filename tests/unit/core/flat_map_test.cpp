#include "relayban/core/flat_map.hpp"
#include "relayban/core/prefaulter.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <random>
#include <string>
#include <type_traits>

#include <sys/wait.h>
#include <unistd.h>

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

namespace {
struct U64Hash {
  size_t operator()(uint64_t k) const { return static_cast<size_t>(k * 0x9E3779B97F4A7C15ull ^ (k >> 17)); }
};
// The process's resident memory high-water mark (VmHWM), in KiB; -1 if unknown.
long PeakRssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}
// Lowers the high-water mark to what is resident now (Linux: clear_refs 5).
bool ResetPeakRss() { return static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5"); }
}  // namespace

TEST_CASE("a mapped table of plain slots (empty is zero bytes, never written) agrees with std::map past 4 MiB") {
  using Map = FlatMap<uint64_t, uint64_t, U64Hash>;
  static_assert(Map::PlainSlots());
  static_assert(!FlatMap<std::string, std::string, StrHash>::PlainSlots());
  std::mt19937_64 rng(11);
  Map m;
  std::map<uint64_t, uint64_t> ref;
  for (int round = 0; round < 600000; ++round) {
    uint64_t k = rng() % 400000;
    if (rng() % 5 == 0) {
      CHECK(m.Erase(k) == (ref.erase(k) == 1));
    } else {
      m[k] = static_cast<uint64_t>(round);
      ref[k] = static_cast<uint64_t>(round);
    }
  }
  REQUIRE(m.capacity() * 24 >= (size_t{4} << 20));  // the array is mapped, not from the heap
  CheckSame(m, ref);
  // Mostly emptied, it shrinks (a rehash from a mapped array into a smaller one).
  for (auto it = ref.begin(); it != ref.end();)
    if (it->first % 50 != 0) {
      REQUIRE(m.Erase(it->first));
      it = ref.erase(it);
    } else {
      ++it;
    }
  size_t before = m.capacity();
  m.MaybeShrink();
  CHECK(m.capacity() < before);
  CheckSame(m, ref);
}

TEST_CASE("growing a mapped table of plain slots costs about its new array, not the old and the new together") {
  // In a child process: a table of 24-byte slots is filled to just under its growth point
  // (about 34 MB), the high-water mark of resident memory is lowered to what is resident,
  // then one more insert makes the table grow by about 1.6 times (and the inserts after it
  // move the old entries over). Built whole before the old
  // array was freed, the mark would rise by the new array's size (about 53 MB); read in
  // order and given back as it goes, it rises by about the difference (about 20 MB).
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FlatMap<uint64_t, uint64_t, U64Hash> m;
    uint64_t k = 0;
    size_t cap = 0;
    while (m.capacity() * 24 < (size_t{30} << 20)) m[k++] = 1;
    cap = m.capacity();
    while ((m.size() + 1) * 100 <= cap * 70) m[k++] = 1;  // the next insert grows it
    if (!ResetPeakRss()) _exit(3);
    long before = PeakRssKb();
    m[k++] = 1;
    while (m.growing()) m[k++] = 1;  // the entries move over a few per insert
    long after = PeakRssKb();
    if (before < 0 || after < 0) _exit(3);
    if (m.capacity() == cap) _exit(2);  // it did not grow: the test is wrong
    long new_kb = static_cast<long>(m.capacity() * 24 / 1024);
    // Fail (exit 1) if the mark rose by three quarters of the new array or more.
    _exit(after - before < new_kb * 3 / 4 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("while a mapped table grows, lookups of missing keys do not bring in the new array") {
  // A read of a page never written brings in (and zeroes) a whole huge page on Linux 6.x:
  // lookups of new keys - every new address in a botnet's burst - must stay in the old
  // array's unmoved runs, or they bring in the whole new array at once, on the caller's
  // thread. In a child process: resident memory before and after 200,000 such lookups.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FlatMap<uint64_t, uint64_t, U64Hash> m;
    uint64_t k = 0;
    while (m.capacity() * 24 < (size_t{30} << 20) || m.growing()) m[k++] = 1;
    size_t cap = m.capacity();
    while ((m.size() + 1) * 100 <= cap * 70) m[k++] = 1;
    m[k++] = 1;  // grows: the new array is about 50 MB
    if (!m.growing()) _exit(2);
    auto resident_kb = [] {
      std::ifstream f("/proc/self/statm");
      long size = 0, resident = 0;
      f >> size >> resident;
      return resident * (sysconf(_SC_PAGESIZE) / 1024);
    };
    Prefaulter::Settle();  // what the insert asked for is in
    long before = resident_kb();
    size_t found = 0;
    for (uint64_t i = 0; i < 200000; ++i) found += m.Find(k + 1 + i * 7919) != m.kNone ? 1 : 0;
    long after = resident_kb();
    if (found != 0) _exit(3);
    for (uint64_t i = 0; i < k; i += 97)
      if (m.Find(i) == m.kNone) _exit(4);  // and every key there is still found
    // Fail (exit 1) if 8 MB or more came in (four huge pages; read for every lookup, the new
    // array, about 50 MB, would be).
    _exit(after - before < 8192 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("string_view keys keep their hash in the slot, as strings do") {
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back("account" + std::to_string(i) + "@example.com");
  struct ViewHash {
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  FlatMap<std::string_view, int, ViewHash> m;
  static_assert(decltype(m)::kKeepsHash);
  for (int i = 0; i < 5000; ++i) m[names[static_cast<size_t>(i)]] = i;
  for (int i = 0; i < 5000; i += 2) REQUIRE(m.Erase(std::string_view(names[static_cast<size_t>(i)])));
  std::map<std::string_view, int> ref;
  for (int i = 1; i < 5000; i += 2) ref[names[static_cast<size_t>(i)]] = i;
  CheckSame(m, ref);
}

namespace {
// Inserts new keys until `m` starts growing (the next insert needs a bigger array).
template <class Map, class Ref, class MakeKey>
void InsertUntilGrowing(Map& m, Ref& ref, uint64_t& next, MakeKey key) {
  while (!m.growing()) {
    auto k = key(next++);
    m[k] = typename Ref::mapped_type{};
    ref[k] = typename Ref::mapped_type{};
  }
}
// Entries of `m` at positions past its new array (still in the old one).
template <class Map>
size_t InOldArray(const Map& m, size_t new_slots) {
  size_t n = 0;
  for (size_t i = new_slots; i < m.capacity(); ++i) n += m.Used(i) ? 1 : 0;
  return n;
}
}  // namespace

TEMPLATE_TEST_CASE("a big table grows a few positions per insert, and agrees with std::map meanwhile", "", uint64_t,
                   std::string) {
  struct AnyHash {
    size_t operator()(uint64_t k) const { return U64Hash{}(k); }
    size_t operator()(const std::string& s) const { return std::hash<std::string>{}(s); }
  };
  using Map = FlatMap<TestType, TestType, AnyHash>;
  auto key = [](uint64_t i) {
    if constexpr (std::is_same_v<TestType, std::string>) return "key-" + std::to_string(i) + "-long-enough-for-the-heap";
    else return i * 7919;
  };
  std::mt19937_64 rng(5);
  Map m;
  std::map<TestType, TestType> ref;
  uint64_t next = 0;
  InsertUntilGrowing(m, ref, next, key);
  // A copy is built whole: its capacity is the new array's, the rest of m's is the old one.
  Map plain = m;
  CHECK_FALSE(plain.growing());
  CheckSame(plain, ref);
  size_t new_slots = plain.capacity(), old_slots = m.capacity() - new_slots;
  REQUIRE(old_slots > Map::kMoveAtOnce);
  // The insert that grew the table moved a few runs' worth of positions, not the table.
  CHECK(InOldArray(m, new_slots) + 200 >= m.size());
  CheckSame(m, ref);

  SECTION("every operation meanwhile agrees with std::map, and the move ends within old/kMovePerInsert inserts") {
    size_t inserts = 0;
    while (m.growing()) {
      uint64_t r = rng();
      if (r % 4 == 0 && !ref.empty()) {  // erase by position, often in the old array
        auto it = ref.begin();
        std::advance(it, static_cast<long>(rng() % std::min<size_t>(ref.size(), 64)));
        size_t i = m.Find(it->first);
        REQUIRE(i != m.kNone);
        m.EraseAt(i);
        ref.erase(it);
      } else if (r % 4 == 1) {  // overwrite one that may still be in the old array
        auto k = key(rng() % next);
        if (ref.count(k)) {
          m[k] = k;
          ref[k] = k;
        }
      } else {
        auto k = key(next++);
        m[k] = k;
        ref[k] = k;
        ++inserts;
      }
      if (inserts % 97 == 0) REQUIRE(m.size() == ref.size());
    }
    CHECK(inserts <= old_slots / Map::kMovePerInsert + 1);
    CHECK(m.capacity() == new_slots);
    CheckSame(m, ref);
  }
  SECTION("scans over both arrays see every entry once, and an erasing scan leaves the rest") {
    for (int k = 0; k < 300; ++k) {
      auto kk = key(next++);
      m[kk] = kk;
      ref[kk] = kk;
    }
    REQUIRE(m.growing());
    for (size_t i = 0; i < m.capacity();) {
      if (m.Used(i) && rng() % 3 == 0) {
        ref.erase(m.KeyAt(i));
        if (m.EraseAt(i)) continue;
      }
      ++i;
    }
    CheckSame(m, ref);
  }
  SECTION("with no more inserts, Settle moves the rest over a slice at a time") {
    size_t calls = 0;
    while (m.Settle(4096)) {
      ++calls;
      REQUIRE(calls <= old_slots / 4096 + 1);
    }
    CHECK(calls >= old_slots / 4096 / 2);  // slices, not all at once
    CHECK(m.capacity() == new_slots);
    CheckSame(m, ref);
    CHECK_FALSE(m.Settle(4096));
  }
  SECTION("copies, moves, reset, clear and an explicit rehash while growing") {
    Map copy = m;
    CheckSame(copy, ref);
    Map moved = std::move(copy);
    CheckSame(moved, ref);
    moved.Rehash(moved.capacity());
    CHECK_FALSE(moved.growing());
    CheckSame(moved, ref);
    m.Reset();
    CHECK(m.size() == 0);
    CHECK_FALSE(m.growing());
    m[key(1)] = key(1);
    CHECK(m.size() == 1);
    m.Clear();
    CHECK(m.size() == 0);
  }
}

TEST_CASE("FindWhere finds an entry by its value among the keys of one hash, while growing too") {
  // Every name hashes to one of four values: entries of one hash differ only by their value.
  struct FewHashes {
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s) % 4; }
  };
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) names.push_back("account" + std::to_string(i) + "@example.com");
  FlatMap<std::string_view, uint32_t, FewHashes> m;
  for (uint32_t i = 0; i < 300; ++i) m[names[i]] = i;
  for (uint32_t i = 0; i < 300; ++i) {
    size_t at = m.FindWhere(FewHashes{}(names[i]), [i](std::string_view, uint32_t v) { return v == i; });
    REQUIRE(at != m.kNone);
    CHECK(m.KeyAt(at) == names[i]);
  }
  // The right hash with a value no entry has, and another hash than the entry's: not found.
  CHECK(m.FindWhere(FewHashes{}(names[0]), [](std::string_view, uint32_t v) { return v == 1000; }) == m.kNone);
  size_t other = (FewHashes{}(names[7]) + 1) % 4;
  CHECK(m.FindWhere(other, [](std::string_view, uint32_t v) { return v == 7; }) == m.kNone);

  // A big table in the middle of a growth: entries still in the old array are found too.
  struct ViewHash {
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> many;
  FlatMap<std::string_view, uint32_t, ViewHash> big;
  many.reserve(200000);
  while (!big.growing()) {
    many.push_back("user" + std::to_string(many.size()));
    big[many.back()] = static_cast<uint32_t>(many.size() - 1);
  }
  const size_t new_slots = decltype(big)(big).capacity();  // a copy is built whole: the new array's size
  size_t found_in_old = 0;
  for (uint32_t i = 0; i < many.size(); ++i) {
    size_t at = big.FindWhere(ViewHash{}(many[i]), [i](std::string_view, uint32_t v) { return v == i; });
    REQUIRE(at != big.kNone);
    REQUIRE(big.ValueAt(at) == i);
    CHECK(at == big.Find(std::string_view(many[i])));
    found_in_old += at >= new_slots ? 1 : 0;
  }
  CHECK(big.growing());
  CHECK(found_in_old > 1000);
}

namespace {
// A value that owns a heap block, counts the blocks alive and its move assignments, and says
// it may be relocated (its bytes copied, the old ones forgotten).
int g_owned_alive = 0;
int g_owned_moves = 0;
struct Owned {
  int* p = nullptr;
  Owned() = default;
  explicit Owned(int v) : p(new int(v)) { ++g_owned_alive; }
  Owned(Owned&& o) noexcept : p(std::exchange(o.p, nullptr)) { ++g_owned_moves; }
  Owned& operator=(Owned&& o) noexcept {
    ++g_owned_moves;
    if (this != &o) {
      Drop();
      p = std::exchange(o.p, nullptr);
    }
    return *this;
  }
  ~Owned() { Drop(); }
  void Drop() {
    if (p) --g_owned_alive;
    delete p;
    p = nullptr;
  }
  int value() const { return p ? *p : -1; }
};
// 64 hashes: long runs, so erases shift many entries back.
struct Clustered {
  size_t operator()(uint64_t k) const { return static_cast<size_t>(k % 64); }
};
}  // namespace

template <>
struct relayban::Relocatable<Owned> : std::true_type {};

TEST_CASE("erasing from a table of relocatable values shifts entries as bytes, losing and freeing nothing twice") {
  std::mt19937_64 rng(11);
  {
    FlatMap<uint64_t, Owned, Clustered> m;
    std::map<uint64_t, int> ref;
    size_t shifted_erases = 0;
    for (int round = 0; round < 20000; ++round) {
      uint64_t k = rng() % 3000;
      if (rng() % 3 == 0) {
        size_t i = m.Find(k);
        REQUIRE((i == m.kNone) == (ref.count(k) == 0));
        if (i == m.kNone) continue;
        int moves = g_owned_moves;
        size_t before = m.size();
        if (m.EraseAt(i)) ++shifted_erases;
        REQUIRE(g_owned_moves == moves);  // relocated, not moved
        REQUIRE(m.size() == before - 1);
        ref.erase(k);
      } else {
        size_t i = m.Find(k);
        if (i == m.kNone) i = m.Insert(k);
        m.ValueAt(i) = Owned(round);
        ref[k] = round;
      }
      REQUIRE(g_owned_alive == static_cast<int>(ref.size()));
    }
    CHECK(shifted_erases > 100);
    for (const auto& [k, v] : ref) {
      const Owned* got = m.Get(k);
      REQUIRE(got != nullptr);
      REQUIRE(got->value() == v);
    }
  }
  CHECK(g_owned_alive == 0);  // the table's destruction freed every block once
}
