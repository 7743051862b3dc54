// FlatMap: a hash map in one flat array of slots (open addressing, linear probing; deletion
// shifts the rest of a run back, so there are no tombstones and no rehash after many erases).
// relayban keeps up to millions of addresses per table (rule windows, bans); a node-based
// std::unordered_map costs an allocation and a cache miss per key and three times the
// memory. Slots are exposed by index so owners can scan, sweep and evict in bounded slices.
// Not thread-safe; references to values are invalidated by Insert (the table may grow).
// A key that is costly to hash or compare (a string, string_view or KeyString: CostlyToHash) has its hash kept in its slot: erasing
// and growing never hash a key again, and a lookup compares keys only when the hashes agree.
// A big table grows without a pause: the old array's entries move over to the new one
// kMovePerInsert positions per insert (moving a million entries at once takes 100 ms and
// more, a stall of the daemon's loop); until they all have, lookups look in both, and slot
// positions number the new array's slots, then the old one's.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "relayban/core/huge_page_allocator.hpp"

namespace relayban {

// Whether a type's all-zero bytes are its default value, and destroying that value does
// nothing: trivially copyable types are; others may say so (a mapped array of slots of such
// keys and values comes zero-filled and is not written before entries land in it).
template <class T>
struct ZeroIsDefault : std::is_trivially_copyable<T> {};

// Whether a value may be moved to another address by copying its bytes, the old bytes then
// forgotten without being destroyed (no pointer into itself, no registration elsewhere):
// trivially copyable types may; others may say so. Erasing from a table of such keys and
// values shifts the rest of the run back by plain copies.
template <class T>
struct Relocatable : std::is_trivially_copyable<T> {};

// Whether hashing or comparing a key costs a walk over its bytes (a string): such a key has
// its hash kept in its slot.
template <class T>
struct CostlyToHash : std::bool_constant<std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>> {};

template <class Key, class Value, class Hash>
class FlatMap {
 public:
  static constexpr size_t kNone = ~size_t{0};
  // A table of fewer entries grows in one go (well under a millisecond).
  static constexpr size_t kMoveAtOnce = 16384;
  // Old positions moved over per insert while growing: the old array (70 % full) is moved
  // in about a tenth of the inserts the new one (45 % full after the growth) takes to need
  // to grow again, and the first touches of the new array's memory are spread as thinly.
  static constexpr size_t kMovePerInsert = 16;
  // A growing mapped array is asked for (Prefaulter) this far ahead of the move, twice that
  // at a time (see PrefaultAhead).
  static constexpr size_t kPrefaultAhead = size_t{16} << 20;
  static constexpr bool kKeepsHash = CostlyToHash<Key>::value;
  using Hasher = Hash;

  // Slots whose empty state is all zero bytes (ZeroIsDefault): a mapped array is not written
  // before entries land in it.
  static constexpr bool PlainSlots() { return ZeroIsDefault<Key>::value && ZeroIsDefault<Value>::value; }

  size_t size() const { return used_; }
  // Slot positions (scans go over 0 to capacity() - 1): both arrays' while growing.
  size_t capacity() const { return slots_.size() + old_.size(); }
  bool empty() const { return used_ == 0; }

  // The slot holding `key`, or kNone.
  template <class K>
  size_t Find(const K& key) const {
    return Find(key, Hash{}(key));
  }
  // The same, with `hash` == Hash{}(key) already computed (a caller that may insert next).
  template <class K>
  size_t Find(const K& key, size_t hash) const {
    return FindWhere(hash, [&key](const Key& k, const Value&) { return k == key; });
  }
  // The slot of an entry whose key hashes to `hash` and for which match(key, value) holds,
  // or kNone: an owner that knows an entry by its value (a position of its own) finds it
  // without reading its key (for a string_view, memory elsewhere). With kKeepsHash only the
  // entries of that hash are offered to `match`.
  template <class Match>
  size_t FindWhere(size_t hash, Match&& match) const {
    // While growing, a key whose place in the old array has not moved yet is there (or, now
    // and then, in the new one: see InsertOld); one whose place has moved is in the new one.
    // A key missing from an unmoved run is in neither: the new array is not read for it (its
    // pages, not yet written, would be brought in by the read: a huge page zeroed per lookup
    // that lands on one, on this thread, ahead of the move and of the Prefaulter).
    if (growing()) {
      bool maybe_new = false;
      if (size_t at = FindOld(hash, match, maybe_new); at != kNone || !maybe_new) return at;
    }
    for (size_t i = Home(hash), probes = 0; probes < slots_.size(); i = Next(i), ++probes) {
      if (slots_[i].tag == kEmpty) break;
      if constexpr (kKeepsHash)
        if (slots_[i].hash != hash) continue;
      if (match(slots_[i].key, slots_[i].value)) return i;
    }
    return kNone;
  }
  // Starts loading the slot where a lookup of `key` begins: issued for every table an event
  // will touch before any is read, the cache misses overlap instead of adding up.
  template <class K>
  void Prefetch(const K& key) const {
    PrefetchHashed(Hash{}(key));
  }
  // The same, given Hash{}(key).
  void PrefetchHashed(size_t hash) const {
    if (!slots_.empty()) {
      const Slot* home = &slots_[Home(hash)];
      __builtin_prefetch(home);
      // A slot of more than a few words: a lookup that goes past the first (a miss, an
      // insert: about half of them at 70 % full) reads the next cache line too.
      if constexpr (sizeof(Slot) >= 48) __builtin_prefetch(reinterpret_cast<const char*>(home) + 64);
    }
    if (!old_.empty()) __builtin_prefetch(&old_[HomeIn(hash, old_.size())]);
    // GCC's pure-const analysis takes a function that only prefetches for one without side
    // effects and deletes every call to it (all 40 prefetches of the binary were gone, and
    // a botnet's replay 10 % slower); an empty volatile asm is a side effect it keeps.
    asm volatile("");
  }
  template <class K>
  Value* Get(const K& key) {
    size_t i = Find(key);
    return i == kNone ? nullptr : &At(i).value;
  }
  template <class K>
  const Value* Get(const K& key) const {
    size_t i = Find(key);
    return i == kNone ? nullptr : &At(i).value;
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
    if ((used_ + 1) * 100 > slots_.size() * 70) Grow(std::max<size_t>(16, (used_ + 1) * 9 / 4));
    else if (growing()) MoveOver(kMovePerInsert);
    if (growing())
      if (size_t at = InsertOld(key, hash); at != kNone) return at;
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
    return At(i).value;
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
    if (i >= slots_.size()) {  // in the old array: left as a tombstone (its runs stay whole)
      Slot& s = old_[i - slots_.size()];
      s.key = Key{};
      s.value = Value();
      s.tag = kMoved;
      --used_;
      return false;
    }
    if constexpr (Relocatable<Key>::value && Relocatable<Value>::value) return EraseRelocating(i);
    auto [hole, refilled] = ShiftBack(i, [this](size_t to, size_t from) {
      slots_[to].key = std::move(slots_[from].key);
      slots_[to].value = std::move(slots_[from].value);
      if constexpr (kKeepsHash) slots_[to].hash = slots_[from].hash;
    });
    slots_[hole].tag = kEmpty;
    slots_[hole].value = Value();
    slots_[hole].key = Key{};
    --used_;
    return refilled;
  }
  void Clear() {
    DropOld();
    slots_.clear();
    used_ = 0;
  }
  // Empties the table but keeps its slots' memory, for a table refilled at once.
  void Reset() {
    DropOld();
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
  bool Used(size_t i) const {
    if (i < slots_.size()) return slots_[i].tag == kUsed;
    i -= slots_.size();
    return !Moved(i) && old_[i].tag == kUsed;
  }
  const Key& KeyAt(size_t i) const { return At(i).key; }
  // Hash{}(KeyAt(i)), kept or computed.
  size_t HashAt(size_t i) const { return HashOf(At(i)); }
  Value& ValueAt(size_t i) { return At(i).value; }
  const Value& ValueAt(size_t i) const { return At(i).value; }
  // Whether entries are still moving over from the array before the last growth.
  bool growing() const { return !old_.empty(); }
  // Moves at least `positions` more old positions over (0: all): for owners to call in their
  // periodic work, so that a table whose inserts stopped in the middle of a growth does not
  // keep both arrays, and two lookups for some keys, for good. Returns growing().
  bool Settle(size_t positions) {
    if (growing()) MoveOver(positions == 0 ? ~size_t{0} : positions);
    return growing();
  }

  // Calls f(key, value) for every entry, in slot order.
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& s : slots_)
      if (s.tag == kUsed) f(s.key, s.value);
    for (size_t i = 0; i < old_.size(); ++i)
      if (!Moved(i) && old_[i].tag == kUsed) f(old_[i].key, old_[i].value);
  }

  FlatMap() = default;
  ~FlatMap() { DropOld(); }
  FlatMap(const FlatMap& o) {
    if (!o.growing()) {
      slots_ = o.slots_;
      used_ = o.used_;
      return;
    }
    Rehash(o.slots_.size());
    o.ForEach([this](const Key& k, const Value& v) { At(Insert(k)).value = v; });
  }
  FlatMap(FlatMap&& o) noexcept { *this = std::move(o); }
  FlatMap& operator=(const FlatMap& o) {
    if (this != &o) *this = FlatMap(o);
    return *this;
  }
  FlatMap& operator=(FlatMap&& o) noexcept {
    if (this == &o) return *this;
    DropOld();
    slots_ = std::move(o.slots_);
    old_ = std::move(o.old_);
    used_ = std::exchange(o.used_, 0);
    from_ = std::exchange(o.from_, 0);
    moved_ = std::exchange(o.moved_, 0);
    given_back_ = std::exchange(o.given_back_, 0);
    return *this;
  }

  // How clustered the table is: the longest run of used slots, and the mean number of slots
  // a lookup of a missing key visits (over every home slot). Linear probing degrades
  // sharply once runs grow; tests use this to check that eviction keeps them short. (Of the
  // new array only, while growing.)
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
    if (growing()) MoveOver(~size_t{0});
    n = std::max(n, used_ * 100 / 70 + 1);
    Slots old = std::move(slots_);
    slots_ = Slots(n);
    used_ = 0;
    old.Drain([&](Slot& s) {
      if (s.tag != kUsed) return;
      Rehome(s);
      ++used_;
    });
  }
  // Shrinks a table that is mostly empty (after sweeping or eviction).
  void MaybeShrink() {
    if (slots_.size() > 16 && used_ < slots_.size() / 8) Rehash(std::max<size_t>(16, used_ * 9 / 4));
  }

 private:
  // EraseAt for a relocatable key and value: the erased entry is destroyed, the entries that
  // move back are copied as bytes (a moved-from copy left behind is not destroyed: it was
  // relocated), and the last hole becomes an empty slot.
  bool EraseRelocating(size_t i) {
    std::destroy_at(&slots_[i]);
    auto [hole, refilled] = ShiftBack(i, [this](size_t to, size_t from) {
      std::memcpy(static_cast<void*>(&slots_[to]), static_cast<const void*>(&slots_[from]), sizeof(Slot));
    });
    ::new (static_cast<void*>(&slots_[hole])) Slot();
    --used_;
    return refilled;
  }
  // The backward shift once slot i's entry is gone: each later entry of its run that may fill
  // the hole is handed to move(hole, j), and its slot becomes the hole. Returns the last hole
  // and whether slot i was filled again.
  template <class Move>
  std::pair<size_t, bool> ShiftBack(size_t i, Move&& move) {
    size_t hole = i;
    bool refilled = false;
    for (size_t j = Next(i); slots_[j].tag == kUsed; j = Next(j)) {
      size_t home = Home(HashAt(j));
      // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
      bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      move(hole, j);
      refilled = refilled || hole == i;
      hole = j;
    }
    return {hole, refilled};
  }
  // kMoved: in the old array while growing, an entry erased there (a tombstone).
  enum Tag : uint8_t { kEmpty, kUsed, kMoved };
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
  static size_t HomeIn(size_t hash, size_t n) {
    __extension__ typedef unsigned __int128 U128;
    uint64_t h = static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>((static_cast<U128>(h) * n) >> 64);
  }

  // The slot at position i: the new array's, then the old one's.
  Slot& At(size_t i) { return i < slots_.size() ? slots_[i] : old_[i - slots_.size()]; }
  const Slot& At(size_t i) const { return i < slots_.size() ? slots_[i] : old_[i - slots_.size()]; }

  // While growing, the old array is moved over from position from_ (an empty one) round to
  // from_ again; moved_ positions are done, and a step ends only after an empty position.
  // So no run of entries straddles the border: a key whose home lies in the moved part is
  // not in the old array at all, and a lookup never reads a moved position (nor its memory,
  // given back as the move goes).
  bool Moved(size_t i) const { return (i >= from_ ? i - from_ : i + old_.size() - from_) < moved_; }
  // The key's slot in the old array, or kNone; `maybe_new` is set when the key may be in the
  // new array instead: its home has moved, or its run goes on into the moved part (at from_,
  // where the move began: InsertOld put it in the new array then). A run that ends at an
  // empty unmoved position holds every key of that home there is: no erase in the old array
  // empties a position (it leaves a tombstone) and nothing is put in the new array past one.
  template <class Match>
  size_t FindOld(size_t hash, Match& match, bool& maybe_new) const {
    size_t n = old_.size(), i = HomeIn(hash, n);
    for (size_t probes = 0; probes < n; ++probes) {
      if (Moved(i)) {
        maybe_new = true;
        return kNone;
      }
      const Slot& s = old_[i];
      if (s.tag == kEmpty) return kNone;
      if (s.tag == kUsed) {
        bool same = true;
        if constexpr (kKeepsHash) same = s.hash == hash;
        if (same && match(s.key, s.value)) return slots_.size() + i;
      }
      if (++i == n) i = 0;
    }
    return kNone;
  }
  // While growing, a key whose place in the old array has not moved yet goes there (a few
  // percent above its 70 %, for a while): the new array then fills in position order as the
  // move goes - homes keep their order, both arrays being ranges of one hash - and its memory
  // is touched as the old one's is given back, as in a rehash at once; new keys spread over
  // the whole new array would have both arrays resident together.
  size_t InsertOld(Key& key, size_t hash) {
    const size_t n = old_.size();
    size_t i = HomeIn(hash, n);
    // A moved position's memory may be given back: never read, never written.
    while (!Moved(i) && old_[i].tag != kEmpty) i = i + 1 == n ? 0 : i + 1;
    if (Moved(i)) return kNone;
    old_[i].key = std::move(key);
    old_[i].tag = kUsed;
    old_[i].value = Value();
    if constexpr (kKeepsHash) old_[i].hash = hash;
    ++used_;
    return slots_.size() + i;
  }
  void Grow(size_t n) {
    if (growing()) MoveOver(~size_t{0});  // not expected: the last growth ends long before
    if (used_ < kMoveAtOnce) {
      Rehash(n);
      return;
    }
    old_ = std::move(slots_);
    slots_ = Slots(n);
    prefaulted_ = 0;
    from_ = 0;
    while (old_[from_].tag != kEmpty) ++from_;  // at most 70 % full: there is one
    moved_ = 0;
    given_back_ = 0;
    MoveOver(kMovePerInsert);
  }
  // Moves the entry of `s`, a slot of another array, into this table's array.
  void Rehome(Slot& s) {
    size_t hash = HashOf(s);
    size_t i = Home(hash);
    while (slots_[i].tag == kUsed) i = Next(i);
    slots_[i].key = std::move(s.key);
    slots_[i].tag = kUsed;
    slots_[i].value = std::move(s.value);
    if constexpr (kKeepsHash) slots_[i].hash = hash;
  }
  // Moves at least `positions` old positions over (then on to the next empty one), or all.
  void MoveOver(size_t positions) {
    const size_t n = old_.size();
    size_t i = from_ + moved_ >= n ? from_ + moved_ - n : from_ + moved_;
    for (size_t done = 0; moved_ < n;) {
      Slot& s = old_[i];
      bool empty = s.tag == kEmpty;
      if (s.tag == kUsed) Rehome(s);
      std::destroy_at(&s);
      ++moved_;
      ++done;
      if (++i == n) i = 0;
      if (empty && done >= positions) break;
    }
    if (moved_ < n) {
      GiveBackMoved();
      PrefaultAhead();
      return;
    }
    old_.ReleaseDestroyed();
    from_ = moved_ = given_back_ = 0;
  }
  // Gives back the memory of moved positions, 2 MiB at a time, in each of the two stretches
  // the move covers (from_ to the end, then the start up to from_).
  void GiveBackMoved() {
    const size_t step = std::max<size_t>(1, (size_t{2} << 20) / sizeof(Slot)), n = old_.size();
    if (moved_ - given_back_ < step) return;
    size_t a = from_ + given_back_, b = from_ + moved_;  // in positions past from_, unwrapped
    auto discard = [&](size_t lo, size_t hi) {
      if (hi > lo) Slots::Alloc::Discard(old_.begin(), n, lo * sizeof(Slot), hi * sizeof(Slot));
    };
    if (a < n) discard(a, std::min(b, n));
    if (b > n) discard(a > n ? a - n : 0, b - n);
    given_back_ = moved_;
  }
  // Asks the Prefaulter for the new array's memory a few megabytes ahead of where the move
  // writes: the old array's moved positions have their homes below the same share of it
  // (both are ranges of one hash), so that is where entries land next. Sixteen megabytes
  // ahead, not four: the Prefaulter shares its core with the matching thread, and at four
  // a botnet's replay had the scoring thread zeroing huge pages itself (4 % of all samples
  // on its core; at sixteen, under 1 %).
  void PrefaultAhead() {
    if constexpr (!PlainSlots()) {
      return;  // such an array was written whole when it was made
    } else {
      if (!Slots::Alloc::Mapped(slots_.size())) return;
      constexpr size_t kAhead = kPrefaultAhead;
      const size_t total = slots_.size() * sizeof(Slot), n = old_.size();
      size_t done = from_ + moved_ >= n ? total : (from_ + moved_) * slots_.size() / n * sizeof(Slot);
      if (prefaulted_ >= std::min(total, done + kAhead)) return;
      size_t to = std::min(total, done + 2 * kAhead);
      Prefaulter::Ahead(slots_.begin(), prefaulted_, to);
      prefaulted_ = to;
    }
  }
  // Ends a move without finishing it (the table is emptied or dropped).
  void DropOld() {
    if (!growing()) return;
    for (size_t i = 0; i < old_.size(); ++i)
      if (!Moved(i)) std::destroy_at(&old_[i]);
    old_.ReleaseDestroyed();
    from_ = moved_ = given_back_ = 0;
  }

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
    // Frees the memory of an array whose every slot has been destroyed already.
    void ReleaseDestroyed() {
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
  Slots old_;               // while growing: the array before, its entries moving over
  size_t used_ = 0;         // entries in both
  size_t from_ = 0, moved_ = 0, given_back_ = 0;  // of old_, see Moved
  size_t prefaulted_ = 0;   // while growing: bytes of slots_ asked of the Prefaulter
};

}  // namespace relayban
