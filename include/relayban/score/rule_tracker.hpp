// Scoring: one RuleTracker per rule counts, per key (an IP or an account), the events of the
// rule's kinds in a sliding window on the log's own time - or the distinct values of one
// field. Crossing the threshold is a verdict. Memory per key is bounded by the threshold;
// the number of keys by max_keys (the least recently seen are evicted first, and counted).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/text.hpp"

namespace relayban {

// Counter state of one key: up to `threshold` (value, second) items, oldest first.
class WindowState {
 public:
  // Records `weight` occurrences (count mode) or one distinct value (distinct mode) at `sec`
  // and returns the number now inside the window ending at `sec`. On reaching `threshold`
  // the caller clears the state.
  int Add(uint32_t value, int weight, uint32_t sec, bool distinct, int threshold, uint32_t window);
  uint32_t last() const { return last_; }
  void Clear() { items_.clear(); }

 private:
  struct Item {
    uint32_t value;
    uint32_t sec;
  };
  std::vector<Item> items_;
  uint32_t last_ = 0;
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
    auto it = map_.find(key);
    if (it == map_.end()) {
      if (map_.size() >= max_keys_) EvictOldest();
      it = map_.emplace(Key(key), WindowState{}).first;
    }
    int n = it->second.Add(static_cast<uint32_t>(value_hash ^ (value_hash >> 32)), weight, sec, distinct_, threshold_, window_);
    if (n >= threshold_) {
      map_.erase(it);
      return true;
    }
    return false;
  }
  // Drops keys with nothing inside the window ending at `now`.
  void Sweep(Time now) {
    uint32_t sec = ToSec(now);
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.last() + window_ < sec) it = map_.erase(it);
      else ++it;
    }
  }
  size_t size() const { return map_.size(); }
  size_t evicted() const { return evicted_; }

 private:
  static uint32_t ToSec(Time t) {
    auto s = std::chrono::floor<Seconds>(t.time_since_epoch()).count();
    return s < 0 ? 0 : static_cast<uint32_t>(s);
  }
  void EvictOldest() {
    // Evict the least recently seen eighth at once so the cost is amortised.
    std::vector<uint32_t> lasts;
    lasts.reserve(map_.size());
    for (const auto& [k, v] : map_) lasts.push_back(v.last());
    size_t nth = std::max<size_t>(1, lasts.size() / 8);
    std::nth_element(lasts.begin(), lasts.begin() + static_cast<long>(nth - 1), lasts.end());
    uint32_t cutoff = lasts[nth - 1];
    for (auto it = map_.begin(); it != map_.end() && map_.size() >= max_keys_;) {
      if (it->second.last() <= cutoff) {
        it = map_.erase(it);
        ++evicted_;
      } else {
        ++it;
      }
    }
  }

  int threshold_;
  uint32_t window_;
  bool distinct_;
  size_t max_keys_;
  std::unordered_map<Key, WindowState, KeyHash, std::equal_to<>> map_;
  size_t evicted_ = 0;
};

using IpWindows = KeyedWindows<IpAddress, IpAddressHash>;
using AccountWindows = KeyedWindows<std::string, StringHash>;

}  // namespace relayban
