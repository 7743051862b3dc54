// FlatMap: a hash map in one flat array of slots (open addressing, linear probing; deletion
// shifts the rest of a run back, so there are no tombstones and no rehash after many erases).
// relayban keeps up to millions of addresses per table (rule windows, bans); a node-based
// std::unordered_map costs an allocation and a cache miss per key and three times the
// memory. Slots are exposed by index so owners can scan, sweep and evict in bounded slices.
// Not thread-safe; references to values are invalidated by Insert (the table may grow).
// A key that is costly to hash or compare (a string) has its hash kept in its slot: erasing
// and growing never hash a key again, and a lookup compares keys only when the hashes agree.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "relayban/core/huge_page_allocator.hpp"

namespace relayban {

template <class Key, class Value, class Hash>
class FlatMap {
 public:
  static constexpr size_t kNone = ~size_t{0};
  static constexpr bool kKeepsHash = std::is_same_v<Key, std::string>;
  using Hasher = Hash;

  size_t size() const { return used_; }
  size_t capacity() const { return slots_.size(); }
  bool empty() const { return used_ == 0; }

  // The slot holding `key`, or kNone.
  template <class K>
  size_t Find(const K& key) const {
    return Find(key, Hash{}(key));
  }
  // The same, with `hash` == Hash{}(key) already computed (a caller that may insert next).
  template <class K>
  size_t Find(const K& key, size_t hash) const {
    if (slots_.empty()) return kNone;
    for (size_t i = Home(hash), probes = 0; probes < slots_.size(); i = Next(i), ++probes) {
      if (slots_[i].tag == kEmpty) return kNone;
      if constexpr (kKeepsHash)
        if (slots_[i].hash != hash) continue;
      if (slots_[i].key == key) return i;
    }
    return kNone;
  }
  // Starts loading the slot where a lookup of `key` begins: issued for every table an event
  // will touch before any is read, the cache misses overlap instead of adding up.
  template <class K>
  void Prefetch(const K& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Home(Hash{}(key))]);
  }
  template <class K>
  Value* Get(const K& key) {
    size_t i = Find(key);
    return i == kNone ? nullptr : &slots_[i].value;
  }
  template <class K>
  const Value* Get(const K& key) const {
    size_t i = Find(key);
    return i == kNone ? nullptr : &slots_[i].value;
  }
  // Inserts `key` (which must not be present) with a default value; returns its slot.
  size_t Insert(Key key) {
    size_t hash = Hash{}(key);
    return Insert(std::move(key), hash);
  }
  // The same, with `hash` == Hash{}(key).
  size_t Insert(Key key, size_t hash) {
    // Up to 70 % full (a missing key then visits about six slots); grow so that 45 % are
    // used.
    if ((used_ + 1) * 100 > slots_.size() * 70) Rehash(std::max<size_t>(16, (used_ + 1) * 9 / 4));
    size_t i = Home(hash);
    while (slots_[i].tag == kUsed) i = Next(i);
    slots_[i].key = std::move(key);
    slots_[i].tag = kUsed;
    slots_[i].value = Value();
    if constexpr (kKeepsHash) slots_[i].hash = hash;
    ++used_;
    return i;
  }
  // The value of `key`, inserted with a default value when missing.
  Value& operator[](const Key& key) {
    size_t hash = Hash{}(key);
    size_t i = Find(key, hash);
    if (i == kNone) i = Insert(key, hash);
    return slots_[i].value;
  }
  template <class K>
  bool Erase(const K& key) {
    size_t i = Find(key);
    if (i == kNone) return false;
    EraseAt(i);
    return true;
  }
  // Erases the entry in slot `i`. Later entries of its run whose home allows it move back,
  // so slot `i` may hold another entry afterwards: returns true then (a scan that erases
  // as it goes must look at slot `i` again). Entries only ever move back, towards their home.
  bool EraseAt(size_t i) {
    size_t hole = i;
    bool refilled = false;
    for (size_t j = Next(i); slots_[j].tag == kUsed; j = Next(j)) {
      size_t home = Home(HashAt(j));
      // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
      bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole].key = std::move(slots_[j].key);
      slots_[hole].value = std::move(slots_[j].value);
      if constexpr (kKeepsHash) slots_[hole].hash = slots_[j].hash;
      refilled = refilled || hole == i;
      hole = j;
    }
    slots_[hole].tag = kEmpty;
    slots_[hole].value = Value();
    slots_[hole].key = Key{};
    --used_;
    return refilled;
  }
  void Clear() {
    slots_.clear();
    used_ = 0;
  }
  // Empties the table but keeps its slots' memory, for a table refilled at once.
  void Reset() {
    for (auto& s : slots_) {
      if (s.tag == kUsed) {
        s.key = Key{};
        s.value = Value();
      }
      s.tag = kEmpty;
    }
    used_ = 0;
  }

  // Slot access for scans: a slot is used or not; its key and value are meaningful if used.
  bool Used(size_t i) const { return slots_[i].tag == kUsed; }
  const Key& KeyAt(size_t i) const { return slots_[i].key; }
  // Hash{}(KeyAt(i)), kept or computed.
  size_t HashAt(size_t i) const { return HashOf(slots_[i]); }
  Value& ValueAt(size_t i) { return slots_[i].value; }
  const Value& ValueAt(size_t i) const { return slots_[i].value; }

  // Calls f(key, value) for every entry, in slot order.
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& s : slots_)
      if (s.tag == kUsed) f(s.key, s.value);
  }

  // How clustered the table is: the longest run of used slots, and the mean number of slots
  // a lookup of a missing key visits (over every home slot). Linear probing degrades
  // sharply once runs grow; tests use this to check that eviction keeps them short.
  struct Clustering {
    size_t longest_run = 0;
    double mean_miss_probes = 0;
  };
  Clustering Measure() const {
    Clustering c;
    size_t n = slots_.size(), first_empty = 0;
    while (first_empty < n && slots_[first_empty].tag == kUsed) ++first_empty;
    if (n == 0 || first_empty == n) return {n, static_cast<double>(n)};
    double total = 0;
    size_t run = 0;
    for (size_t k = 1; k <= n; ++k) {  // from just after an empty slot, all the way round
      size_t i = (first_empty + k) % n;
      if (slots_[i].tag == kUsed) {
        ++run;
        continue;
      }
      c.longest_run = std::max(c.longest_run, run);
      total += static_cast<double>(run) * static_cast<double>(run + 1) / 2 + 1;  // homes in the run, and this empty slot
      run = 0;
    }
    c.mean_miss_probes = total / static_cast<double>(n);
    return c;
  }

  // Gives the table `n` slots (at least size()/0.7).
  void Rehash(size_t n) {
    n = std::max(n, used_ * 100 / 70 + 1);
    Slots old = std::move(slots_);
    slots_ = Slots(n);
    used_ = 0;
    for (auto& s : old) {
      if (s.tag != kUsed) continue;
      size_t hash = HashOf(s);
      size_t i = Home(hash);
      while (slots_[i].tag == kUsed) i = Next(i);
      slots_[i].key = std::move(s.key);
      slots_[i].tag = kUsed;
      slots_[i].value = std::move(s.value);
      if constexpr (kKeepsHash) slots_[i].hash = hash;
      ++used_;
    }
  }
  // Shrinks a table that is mostly empty (after sweeping or eviction).
  void MaybeShrink() {
    if (slots_.size() > 16 && used_ < slots_.size() / 8) Rehash(std::max<size_t>(16, used_ * 9 / 4));
  }

 private:
  enum Tag : uint8_t { kEmpty, kUsed };
  struct KeptHash {
    size_t hash = 0;
  };
  struct NoHash {};
  struct Slot : std::conditional_t<kKeepsHash, KeptHash, NoHash> {
    Key key{};
    Tag tag = kEmpty;
    Value value{};
  };
  static size_t HashOf(const Slot& s) {
    if constexpr (kKeepsHash) return s.hash;
    else return Hash{}(s.key);
  }
  // Multiply-shift range reduction: the table need not have a power-of-two size and can
  // grow by two thirds instead of doubling.
  size_t Home(size_t hash) const {
    __extension__ typedef unsigned __int128 U128;
    uint64_t h = static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>((static_cast<U128>(h) * slots_.size()) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }

  using Slots = std::vector<Slot, HugePageAllocator<Slot>>;
  Slots slots_;
  size_t used_ = 0;
};

}  // namespace relayban
