// FlatMap: a hash map in one flat array of slots (open addressing, linear probing; deletion
// shifts the rest of a run back, so there are no tombstones and no rehash after many erases).
// relayban keeps up to millions of addresses per table (rule windows, bans); a node-based
// std::unordered_map costs an allocation and a cache miss per key and three times the
// memory. Slots are exposed by index so owners can scan, sweep and evict in bounded slices.
// Not thread-safe; references to values are invalidated by Insert (the table may grow).
// A key that is costly to hash or compare (a string or string_view) has its hash kept in its slot: erasing
// and growing never hash a key again, and a lookup compares keys only when the hashes agree.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "relayban/core/huge_page_allocator.hpp"

namespace relayban {

template <class Key, class Value, class Hash>
class FlatMap {
 public:
  static constexpr size_t kNone = ~size_t{0};
  static constexpr bool kKeepsHash = std::is_same_v<Key, std::string> || std::is_same_v<Key, std::string_view>;
  using Hasher = Hash;

  // Slots copied as bytes: an empty one is all zero bytes, so a mapped array is not written
  // before entries land in it.
  static constexpr bool PlainSlots() { return std::is_trivially_copyable_v<Slot>; }

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

  // Gives the table `n` slots (at least size()/0.7). The old slots are read in order and
  // their memory given back as the move goes (a mapped array), so growing a table of a
  // million entries needs little more than its new array: where an empty slot is all zero
  // bytes, the new array's pages are only touched as entries land in them.
  void Rehash(size_t n) {
    n = std::max(n, used_ * 100 / 70 + 1);
    Slots old = std::move(slots_);
    slots_ = Slots(n);
    used_ = 0;
    old.Drain([&](Slot& s) {
      if (s.tag != kUsed) return;
      size_t hash = HashOf(s);
      size_t i = Home(hash);
      while (slots_[i].tag == kUsed) i = Next(i);
      slots_[i].key = std::move(s.key);
      slots_[i].tag = kUsed;
      slots_[i].value = std::move(s.value);
      if constexpr (kKeepsHash) slots_[i].hash = hash;
      ++used_;
    });
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

  // The slot array. A slot that can be copied as bytes is empty when all its bytes are zero
  // (kEmpty is 0; an empty slot's key and value are never read), so a mapped array, which
  // comes zero-filled, is not written at all until entries land in it.
  class Slots {
   public:
    using Alloc = HugePageAllocator<Slot>;
    Slots() = default;
    explicit Slots(size_t n) : n_(n) {
      if (n == 0) return;
      p_ = Alloc{}.allocate(n);
      if (!(PlainSlots() && Alloc::Mapped(n))) std::uninitialized_default_construct_n(p_, n);
    }
    Slots(Slots&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    Slots& operator=(Slots&& o) noexcept {
      if (this != &o) {
        Free();
        p_ = std::exchange(o.p_, nullptr);
        n_ = std::exchange(o.n_, 0);
      }
      return *this;
    }
    Slots(const Slots& o) : n_(o.n_) {
      if (n_ == 0) return;
      p_ = Alloc{}.allocate(n_);
      std::uninitialized_copy_n(o.p_, n_, p_);
    }
    Slots& operator=(const Slots& o) {
      if (this != &o) *this = Slots(o);
      return *this;
    }
    ~Slots() { Free(); }

    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    Slot& operator[](size_t i) { return p_[i]; }
    const Slot& operator[](size_t i) const { return p_[i]; }
    Slot* begin() { return p_; }
    Slot* end() { return p_ + n_; }
    const Slot* begin() const { return p_; }
    const Slot* end() const { return p_ + n_; }
    void clear() { Free(); }
    // Calls f(slot) on every slot in order, destroying each after, and gives the memory
    // behind back every 2 MiB; leaves the array empty.
    template <class F>
    void Drain(F&& f) {
      const size_t step = std::max<size_t>(1, (size_t{2} << 20) / sizeof(Slot));
      size_t given_back = 0;  // bytes
      for (size_t i = 0; i < n_; ++i) {
        f(p_[i]);
        std::destroy_at(&p_[i]);
        if ((i + 1) % step == 0) {
          Alloc::Discard(p_, n_, given_back, (i + 1) * sizeof(Slot));
          given_back = (i + 1) * sizeof(Slot);
        }
      }
      if (p_) Alloc{}.deallocate(p_, n_);
      p_ = nullptr;
      n_ = 0;
    }

   private:
    void Free() {
      if (!p_) return;
      std::destroy_n(p_, n_);
      Alloc{}.deallocate(p_, n_);
      p_ = nullptr;
      n_ = 0;
    }
    Slot* p_ = nullptr;
    size_t n_ = 0;
  };
  Slots slots_;
  size_t used_ = 0;
};

}  // namespace relayban
