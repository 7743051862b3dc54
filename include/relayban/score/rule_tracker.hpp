// Scoring: window tables count, per key (an IP or an account), the events of a rule's kinds
// in a sliding window on the log's own time - or the distinct values of one field. A table
// has a lane per rule: one for an account rule, up to three for address rules of a jail
// that count the same events (one lookup per line for all of them). Crossing the threshold is a verdict. Memory per key is bounded by the threshold;
// the number of keys by max_keys (the least recently seen are evicted first, and counted).
// Keys live in a FlatMap: a million tracked addresses must fit in tens of megabytes, not
// hundreds.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/key_string.hpp"
#include "relayban/core/text.hpp"
#include "relayban/score/eviction.hpp"

namespace relayban {

// Counter state of one key: up to `threshold` (value, second) items, oldest first. One item
// is kept inline - most keys never see a second event - more on the heap.
class WindowState {
 public:
  WindowState() = default;
  WindowState(WindowState&& o) noexcept { *this = std::move(o); }
  // Inline: a table's erase moves the entries after the hole back, a lane at a time.
  WindowState& operator=(WindowState&& o) noexcept {
    if (this == &o) return *this;
    Release();
    last_ = o.last_;
    n_ = o.n_;
    extra_ = o.extra_;
    if (extra_ > 0) heap_ = o.heap_;
    else one_ = o.one_;
    o.extra_ = 0;
    o.n_ = 0;
    return *this;
  }
  WindowState(const WindowState&) = delete;
  WindowState& operator=(const WindowState&) = delete;
  ~WindowState() { Release(); }

  // Records `weight` occurrences (count mode) or one distinct value (distinct mode) at `sec`
  // and returns the number now inside the window ending at `sec`.
  int Add(uint32_t value, int weight, uint32_t sec, bool distinct, int threshold, uint32_t window);
  // How many Add would find inside the window ending at `sec`, without adding.
  int Count(uint32_t sec, uint32_t window) const;
  uint32_t last() const { return last_; }
  bool empty() const { return n_ == 0; }
  // Back to the empty state (all zero bytes).
  void Reset() {
    Release();
    last_ = 0;
    one_ = {};
  }
  // Counts from nothing again, keeping its room: a key whose count restarts at each verdict
  // (an address spraying on, banned already) fills it again without a new allocation.
  void Restart() { n_ = 0; }
  // Items it has room for: 1 (inline), then at least eight or the threshold at once.
  int capacity() const { return extra_ + 1; }

 private:
  struct Item {
    uint32_t value;
    uint32_t sec;
  };
  Item* items() { return extra_ > 0 ? heap_ : &one_; }
  void Release() {
    if (extra_ > 0) delete[] heap_;
    extra_ = 0;
    n_ = 0;
  }
  // Room for `want` items; doubling, but never past `limit` (the threshold).
  void Reserve(uint16_t want, int limit);
  static constexpr int kFirstHeap = 8;

  uint32_t last_ = 0;
  uint16_t n_ = 0;
  uint16_t extra_ = 0;  // capacity less one: all zero bytes are an empty state (ZeroIsDefault)
  union {
    Item one_{};
    Item* heap_;
  };
};

// What one lane of a table counts: `threshold` events (or distinct values) in `window`.
struct WindowSpec {
  int threshold;
  Seconds window;
  bool distinct;
};

// The counts of one key for each of a table's N lanes (rules). Rules of a jail that count
// the same events by address share one table, a lane each: under a flood every line brings
// a new address, and one lookup, one insert and one eviction serve all of them.
template <size_t N>
struct WindowRow {
  WindowState lane[N];
  bool empty() const {
    for (const WindowState& w : lane)
      if (!w.empty()) return false;
    return true;
  }
  uint32_t last() const {
    uint32_t l = 0;
    for (const WindowState& w : lane) l = std::max(l, w.last());
    return l;
  }
};

template <class Key, class KeyHash, size_t N = 1>
class KeyedWindows {
 public:
  // `phase` (0 to kPhases - 1) lowers where this table starts evicting by phase/64 of
  // max_keys: the tables of one jail all see a botnet's new addresses line by line, and with
  // one cap they would all evict at the same line, their pauses adding up in one turn.
  static constexpr size_t kPhases = 8;
  static constexpr size_t kLanes = N;
  // At the cap the least recently seen 1/kEvictShare of max_keys goes at once. A quarter, not
  // an eighth: the pass that erases them streams the whole table, and under a flood of new
  // addresses (a key per line, three such tables) eviction was a sixth of the scoring
  // thread's time; a quarter halves the passes per key (the scoring thread's CPU 8 % less
  // on a million-address botnet), and every table still keeps at least the most recent
  // three quarters of its cap.
  static constexpr size_t kEvictShare = 4;
  // The phase also sets the table's first size, so tables of one jail grow (a rehash of up
  // to a million keys, tens of milliseconds) at different lines, not all at once.
  KeyedWindows(const std::array<WindowSpec, N>& lanes, size_t max_keys, size_t phase = 0)
      : max_keys_(max_keys), evict_at_(max_keys - (phase % kPhases) * (max_keys / 64)) {
    for (size_t l = 0; l < N; ++l) {
      threshold_[l] = lanes[l].threshold;
      window_[l] = static_cast<uint32_t>(lanes[l].window.count());
      distinct_[l] = lanes[l].distinct;
      horizon_ = std::max(horizon_, window_[l]);
    }
    // Spread over one growth step (a table grows by about 1.575 times): 32 to 46 slots.
    map_.Rehash(static_cast<size_t>(32.0 * std::pow(1.575, static_cast<double>(phase % kPhases) / kPhases)));
  }
  // A table of one lane.
  KeyedWindows(int threshold, Seconds window, bool distinct, size_t max_keys, size_t phase = 0)
      : KeyedWindows(std::array<WindowSpec, 1>{WindowSpec{threshold, window, distinct}}, max_keys, phase) {}
  size_t capacity() const { return map_.capacity(); }
  // The longest window of its lanes.
  Seconds horizon() const { return Seconds(horizon_); }

  // True when this observation crosses the threshold for `key`; the key's count restarts.
  template <class K>
  bool Add(const K& key, uint64_t value_hash, int weight, Time t) {
    return AddHashed(key, KeyHash{}(key), value_hash, weight, t);
  }
  // The same, given KeyHash{}(key) (a caller that hashed the key once for several tables).
  template <class K>
  bool AddHashed(const K& key, size_t key_hash, uint64_t value_hash, int weight, Time t) {
    newest_ = std::max(newest_, SecondsOf(t));
    size_t i = SlotFor(key, key_hash);
    bool crossed = AddAt(i, 0, value_hash, weight, t);
    Release(i);
    return crossed;
  }
  // Records the observation and returns how many the key has inside the window (at most
  // the threshold); the key is kept whatever the count (escalation history).
  template <class K>
  int Observe(const K& key, uint64_t value_hash, int weight, Time t) {
    return ObserveAt(Slot(key, t), 0, value_hash, weight, t);
  }
  // How many the key has inside the window ending at `t` (lane 0), without recording.
  template <class K>
  int Count(const K& key, Time t) const {
    const Row* row = map_.Get(key);
    return row ? row->lane[0].Count(SecondsOf(t), window_[0]) : 0;
  }
  template <class K>
  int ObserveHashed(const K& key, size_t key_hash, uint64_t value_hash, int weight, Time t) {
    newest_ = std::max(newest_, SecondsOf(t));
    return ObserveAt(SlotFor(key, key_hash), 0, value_hash, weight, t);
  }

  // Lane by lane (several rules, one lookup): Slot finds or inserts `key` - evicting first
  // at the cap - and its position holds until the next Slot or Release on this table;
  // Release ends the use, erasing a key none of whose lanes counts anything.
  template <class K>
  size_t Slot(const K& key, Time t) {
    newest_ = std::max(newest_, SecondsOf(t));
    return SlotFor(key);
  }
  // The same, given KeyHash{}(key).
  template <class K>
  size_t SlotHashed(const K& key, size_t key_hash, Time t) {
    newest_ = std::max(newest_, SecondsOf(t));
    return SlotFor(key, key_hash);
  }
  // True when the lane crosses its threshold; the lane's count restarts.
  bool AddAt(size_t slot, size_t lane, uint64_t value_hash, int weight, Time t) {
    WindowState& w = map_.ValueAt(slot).lane[lane];
    if (w.Add(Fold(value_hash), weight, SecondsOf(t), distinct_[lane], threshold_[lane], window_[lane]) < threshold_[lane])
      return false;
    w.Restart();
    return true;
  }
  int ObserveAt(size_t slot, size_t lane, uint64_t value_hash, int weight, Time t) {
    return map_.ValueAt(slot).lane[lane].Add(Fold(value_hash), weight, SecondsOf(t), distinct_[lane], threshold_[lane],
                                            window_[lane]);
  }
  void Release(size_t slot) {
    if (map_.ValueAt(slot).empty()) map_.EraseAt(slot);
  }
  template <class K>
  void Prefetch(const K& key) const {
    map_.Prefetch(key);
  }
  void PrefetchHashed(size_t key_hash) const { map_.PrefetchHashed(key_hash); }
  // Forgets what was counted for `key`, in every lane or in one.
  template <class K>
  void Erase(const K& key) {
    if (size_t i = map_.Find(key); i != map_.kNone) map_.EraseAt(i);
  }
  template <class K>
  void EraseLane(const K& key, size_t lane) {
    if (size_t i = map_.Find(key); i != map_.kNone) {
      map_.ValueAt(i).lane[lane].Reset();
      Release(i);
    }
  }
  // Drops counts with nothing inside their lane's window ending at `now`, and keys left with
  // none, visiting at most `max_slots` slots from where the previous call stopped (0 = the
  // whole table), so a tick over a table of a million keys costs a bounded slice. Shrinks
  // the table when a full pass found it mostly empty.
  void Sweep(Time now, size_t max_slots = 0) {
    map_.Settle(max_slots);  // a growth the inserts left unfinished, as much again
    uint32_t sec = SecondsOf(now);
    if (max_slots == 0) {  // the whole table, from its start
      sweep_at_ = 0;
      max_slots = ~size_t{0};
    }
    for (size_t k = 0; k < max_slots; ++k) {
      if (sweep_at_ >= map_.capacity()) {
        sweep_at_ = 0;
        map_.MaybeShrink();
        return;
      }
      size_t i = sweep_at_;
      ++stats_.slots_visited;
      // An erase may move a later entry into slot i: look at it again before going on.
      if (!(map_.Used(i) && Idle(map_.ValueAt(i), sec) && map_.EraseAt(i))) ++sweep_at_;
    }
  }
  size_t size() const { return map_.size(); }
  size_t evicted() const { return stats_.evicted; }
  size_t max_keys() const { return max_keys_; }

  // What eviction and sweeping cost, for tests that check the work is amortised (keys
  // removed per run, slots visited) rather than timing it.
  struct Stats {
    uint64_t evicted = 0;        // keys removed because the table was at max_keys
    uint64_t eviction_runs = 0;  // times the cap was hit (each removes max_keys/kEvictShare)
    uint64_t slots_visited = 0;  // by eviction and sweeping together
  };
  const Stats& stats() const { return stats_; }
  using Row = WindowRow<N>;
  typename FlatMap<Key, Row, KeyHash>::Clustering Measure() const { return map_.Measure(); }

 private:
  template <class K>
  size_t SlotFor(const K& key) {
    return SlotFor(key, KeyHash{}(key));  // once, for the lookup and the insert
  }
  template <class K>
  size_t SlotFor(const K& key, size_t hash) {
    size_t i = map_.Find(key, hash);
    if (i != Map::kNone) return i;
    if (map_.size() >= evict_at_) EvictOldest();
    return map_.Insert(Key(key), hash);
  }
  // Empties the lanes with nothing inside their window ending at `sec`; true when none is left.
  bool Idle(Row& row, uint32_t sec) const {
    bool idle = true;
    for (size_t l = 0; l < N; ++l) {
      if (row.lane[l].empty()) continue;
      if (row.lane[l].last() + window_[l] < sec) row.lane[l].Reset();
      else idle = false;
    }
    return idle;
  }
  static uint32_t Fold(uint64_t h) { return static_cast<uint32_t>(h ^ (h >> 32)); }
  void EvictOldest() {
    // The least recently seen quarter goes at once: about one sequential pass per
    // max_keys/kEvictShare new keys, so a flood of new keys costs O(1) amortised per key.
    ++stats_.eviction_runs;
    size_t keep = evict_at_ - max_keys_ / kEvictShare;
    if (map_.size() <= keep) return;
    auto cost = relayban::EvictOldest(
        map_.capacity(), map_.size() - keep, newest_, horizon_, stats_.eviction_runs,
        [&](size_t i) { return map_.Used(i); }, [&](size_t i) { return map_.ValueAt(i).last(); },
        [&](size_t i) { return static_cast<uint64_t>(map_.HashAt(i)); }, [&](size_t i) { return map_.EraseAt(i); });
    stats_.evicted += cost.evicted;
    stats_.slots_visited += cost.positions_visited;
  }

  using Map = FlatMap<Key, Row, KeyHash>;
  int threshold_[N];
  uint32_t window_[N];
  bool distinct_[N];
  uint32_t horizon_ = 0;  // the longest lane window
  size_t max_keys_;
  size_t evict_at_;  // max_keys_, less this table's phase
  Map map_;
  size_t sweep_at_ = 0;  // where the next bounded Sweep goes on
  uint32_t newest_ = 0;  // the latest second any key was seen
  Stats stats_;
};

// A table's mapped array of WindowState slots is not written before entries land in it.
template <>
struct ZeroIsDefault<WindowState> : std::true_type {};
template <size_t N>
struct ZeroIsDefault<WindowRow<N>> : std::true_type {};
// A window holds its items inline or through a pointer to its own heap block: its bytes may
// move (a table's erase shifts entries back by copies, not three move assignments a key).
template <>
struct Relocatable<WindowState> : std::true_type {};
template <size_t N>
struct Relocatable<WindowRow<N>> : std::true_type {};

using IpWindows = KeyedWindows<IpAddress, IpAddressHash>;
// Two or three address rules of one jail counting the same events (the shipped rule set's
// brute force, slow brute force and spraying rules all count auth_failure). A slot is 24
// bytes of address and 16 per lane.
using IpPairWindows = KeyedWindows<IpAddress, IpAddressHash, 2>;
using IpLaneWindows = KeyedWindows<IpAddress, IpAddressHash, 3>;
using AccountWindows = KeyedWindows<KeyString, StringHash>;
// PrefixHash remixed (a bijection of it): for a table filled in another PrefixHash table's
// slot order - the escalation history, told of every ban a ledger walks through when it
// lifts them all - whose keys would otherwise come sorted by home position and pile up in
// one run of a linear-probing table.
struct RemixedPrefixHash {
  size_t operator()(const Prefix& p) const noexcept {
    uint64_t h = PrefixHash{}(p);
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};
using PrefixWindows = KeyedWindows<Prefix, RemixedPrefixHash>;

}  // namespace relayban
