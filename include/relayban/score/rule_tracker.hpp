// Scoring: one window table per rule counts, per key (an IP or an account), the events of the
// rule's kinds in a sliding window on the log's own time - or the distinct values of one
// field. Crossing the threshold is a verdict. Memory per key is bounded by the threshold;
// the number of keys by max_keys (the least recently seen are evicted first, and counted).
// Keys live in a flat open-addressing table: a million tracked addresses must fit in tens
// of megabytes, not hundreds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/text.hpp"

namespace relayban {

// Counter state of one key: up to `threshold` (value, second) items, oldest first. One item
// is kept inline - most keys never see a second event - more on the heap.
class WindowState {
 public:
  WindowState() = default;
  WindowState(WindowState&& o) noexcept { *this = std::move(o); }
  WindowState& operator=(WindowState&& o) noexcept;
  WindowState(const WindowState&) = delete;
  WindowState& operator=(const WindowState&) = delete;
  ~WindowState() { Release(); }

  // Records `weight` occurrences (count mode) or one distinct value (distinct mode) at `sec`
  // and returns the number now inside the window ending at `sec`.
  int Add(uint32_t value, int weight, uint32_t sec, bool distinct, int threshold, uint32_t window);
  uint32_t last() const { return last_; }

 private:
  struct Item {
    uint32_t value;
    uint32_t sec;
  };
  Item* items() { return cap_ > 1 ? heap_ : &one_; }
  void Release() {
    if (cap_ > 1) delete[] heap_;
    cap_ = 1;
    n_ = 0;
  }
  void Reserve(uint16_t want);

  uint32_t last_ = 0;
  uint16_t n_ = 0;
  uint16_t cap_ = 1;
  union {
    Item one_;
    Item* heap_;
  };
};

template <class Key, class KeyHash>
class KeyedWindows {
 public:
  KeyedWindows(int threshold, Seconds window, bool distinct, size_t max_keys)
      : threshold_(threshold), window_(static_cast<uint32_t>(window.count())), distinct_(distinct), max_keys_(max_keys) {}

  // True when this observation crosses the threshold for `key`; the key's count restarts.
  template <class K>
  bool Add(const K& key, uint64_t value_hash, int weight, Time t) {
    uint32_t sec = ToSec(t);
    size_t i = Find(key);
    if (i == kNone) {
      if (used_ >= max_keys_) EvictOldest();
      i = Insert(Key(key));
    }
    int n = slots_[i].state.Add(static_cast<uint32_t>(value_hash ^ (value_hash >> 32)), weight, sec, distinct_,
                                threshold_, window_);
    if (n >= threshold_) {
      Erase(i);
      return true;
    }
    return false;
  }
  // Drops keys with nothing inside the window ending at `now`.
  void Sweep(Time now) {
    uint32_t sec = ToSec(now);
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].tag == kUsed && slots_[i].state.last() + window_ < sec) Erase(i);
    if (used_ < slots_.size() / 8) Rehash(std::max<size_t>(16, used_ * 5 / 3));
  }
  size_t size() const { return used_; }
  size_t evicted() const { return evicted_; }

 private:
  static constexpr size_t kNone = ~size_t{0};
  enum Tag : uint8_t { kEmpty, kUsed, kDeleted };
  struct Slot {
    Key key{};
    Tag tag = kEmpty;
    WindowState state;
  };

  static uint32_t ToSec(Time t) {
    auto s = std::chrono::floor<Seconds>(t.time_since_epoch()).count();
    return s < 0 ? 0 : static_cast<uint32_t>(s);
  }
  // The home slot of a hash: multiply-shift range reduction, so the table need not have a
  // power-of-two size and can grow by half instead of doubling.
  size_t Home(size_t hash) const {
    __extension__ typedef unsigned __int128 U128;
    uint64_t h = static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>((static_cast<U128>(h) * slots_.size()) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
  template <class K>
  size_t Find(const K& key) const {
    if (slots_.empty()) return kNone;
    for (size_t i = Home(KeyHash{}(key)), probes = 0; probes < slots_.size(); i = Next(i), ++probes) {
      if (slots_[i].tag == kEmpty) return kNone;
      if (slots_[i].tag == kUsed && slots_[i].key == key) return i;
    }
    return kNone;
  }
  size_t Insert(Key key) {
    // Up to 85 % full; grow to 60 % full.
    if ((used_ + deleted_ + 1) * 100 > slots_.size() * 85) Rehash(std::max<size_t>(16, (used_ + 1) * 5 / 3));
    size_t i = Home(KeyHash{}(key));
    while (slots_[i].tag == kUsed) i = Next(i);
    if (slots_[i].tag == kDeleted) --deleted_;
    slots_[i].key = std::move(key);
    slots_[i].tag = kUsed;
    slots_[i].state = WindowState();
    ++used_;
    return i;
  }
  void Erase(size_t i) {
    slots_[i].tag = kDeleted;
    slots_[i].state = WindowState();
    slots_[i].key = Key{};
    --used_;
    ++deleted_;
  }
  void Rehash(size_t n) {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(n);
    used_ = deleted_ = 0;
    for (auto& s : old) {
      if (s.tag != kUsed) continue;
      size_t i = Home(KeyHash{}(s.key));
      while (slots_[i].tag == kUsed) i = Next(i);
      slots_[i].key = std::move(s.key);
      slots_[i].tag = kUsed;
      slots_[i].state = std::move(s.state);
      ++used_;
    }
  }
  void EvictOldest() {
    // Evict the least recently seen eighth at once so the cost is amortised.
    std::vector<uint32_t> lasts;
    lasts.reserve(used_);
    for (const auto& s : slots_)
      if (s.tag == kUsed) lasts.push_back(s.state.last());
    if (lasts.empty()) return;
    size_t nth = std::max<size_t>(1, lasts.size() / 8);
    std::nth_element(lasts.begin(), lasts.begin() + static_cast<long>(nth - 1), lasts.end());
    uint32_t cutoff = lasts[nth - 1];
    for (size_t i = 0; i < slots_.size() && used_ >= max_keys_; ++i) {
      if (slots_[i].tag == kUsed && slots_[i].state.last() <= cutoff) {
        Erase(i);
        ++evicted_;
      }
    }
  }

  int threshold_;
  uint32_t window_;
  bool distinct_;
  size_t max_keys_;
  std::vector<Slot> slots_;
  size_t used_ = 0, deleted_ = 0, evicted_ = 0;
};

using IpWindows = KeyedWindows<IpAddress, IpAddressHash>;
using AccountWindows = KeyedWindows<std::string, StringHash>;

}  // namespace relayban
