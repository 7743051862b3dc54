// Eviction of the least recently seen entries of a full table, shared by the rule windows
// and the account book. One call removes `excess` entries: it counts entries by age (seconds
// behind the newest, in buckets of 2^shift seconds so that `horizon` fits; older ones share
// the last bucket) - in a table of more than kSampleAbove positions, on an evenly spaced
// sample of kSamples of them, which tells the ages' shares within about a percent at a
// fraction of a pass - then one sequential pass erases the oldest buckets whole and, of the
// cutoff bucket, a share picked by the entries' hashes. What that pass leaves short (the
// sample's error, or the share's) a second pass takes in position order from the cutoff
// bucket, and, should the sample have put the cutoff too old, a last one from any bucket:
// exactly `excess` go, in about one pass where counting everything took two. Hashes, not positions: erasing one region of a linear-probing table would leave the
// rest locally dense. Each run uses another salt and starts at another position, so no subset
// of entries or region of the table is favoured run after run.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace relayban {

struct EvictionCost {
  uint64_t evicted = 0;
  uint64_t positions_visited = 0;
};

// `used(i)`: position i holds an entry; `last(i)`: its last-seen second; `hash(i)`: a hash of
// its key; `erase(i)`: removes it and returns true when another entry moved into position i
// (backward-shift deletion), which is then looked at too. `run` numbers the calls (salt).
template <class Used, class Last, class HashOf, class Erase>
EvictionCost EvictOldest(size_t positions, size_t excess, uint32_t newest, uint32_t horizon, uint64_t run, Used used,
                         Last last, HashOf hash, Erase erase) {
  EvictionCost cost;
  if (excess == 0 || positions == 0) return cost;
  constexpr size_t kBuckets = 4096;
  constexpr size_t kSamples = 16384, kSampleAbove = 4 * kSamples;
  int shift = 0;
  while ((horizon >> shift) >= kBuckets - 1) ++shift;
  auto bucket = [&](size_t i) {
    uint32_t l = last(i);
    uint32_t age = l < newest ? newest - l : 0;
    return std::min<size_t>(age >> shift, kBuckets - 1);
  };
  std::vector<uint32_t> count(kBuckets, 0);
  size_t total = 0;  // entries counted (all of them, or those of the sample)
  size_t step = positions > kSampleAbove ? positions / kSamples : 1;
  size_t counted_positions = 0;
  for (size_t i = step > 1 ? static_cast<size_t>((run * 0x9E3779B97F4A7C15ull) % step) : 0; i < positions; i += step) {
    ++counted_positions;
    if (used(i)) {
      ++count[bucket(i)];
      ++total;
    }
  }
  cost.positions_visited += counted_positions;
  if (total == 0) return cost;
  // The entries the table holds (estimated from the sample), and what `excess` is of them
  // in the sample's terms.
  size_t entries = step > 1 ? total * positions / counted_positions : total;
  if (step == 1) excess = std::min(excess, total);
  size_t want = step > 1 ? std::min(total, (excess * total + entries - 1) / entries) : excess;
  size_t cut = kBuckets - 1, older = 0;  // entries in buckets older than `cut`
  while (cut > 0 && older + count[cut] < want) older += count[cut--];
  // Of the cutoff bucket (in real entries: the sample's share of it, times the table).
  size_t from_cut = step > 1 ? (want - older) * entries / total : want - older;
  uint64_t in_cut = step > 1 ? uint64_t{count[cut]} * entries / total : count[cut];
  uint64_t salt = (run + 1) * 0x9E3779B97F4A7C15ull;
  auto pick = [salt](uint64_t h) {
    h = (h ^ salt) * 0xD6E8FEB86659FD93ull;
    return static_cast<uint32_t>((h ^ (h >> 32)) >> 16) & 0xFFFF;
  };
  size_t start = static_cast<size_t>((salt >> 16) % positions);
  // The first pass takes a hashed share a little above what the cutoff bucket must give;
  // the second takes what it left short, in position order; a third (only after a sample
  // that put the cutoff too old) whatever is left, in position order.
  for (int pass = 0; pass < 3 && excess > 0; ++pass) {
    // What the first pass left short comes from the cutoff bucket (the older ones are all
    // gone): however many the estimate of its share said it would give.
    if (pass == 1) from_cut = excess;
    if (pass == 2) {
      cut = 0;
      from_cut = excess;
    }
    uint32_t share = pass == 0 && in_cut > 0
                         ? static_cast<uint32_t>(std::min<uint64_t>(65536, (uint64_t{from_cut} * 68000) / in_cut + 1))
                         : 65536;
    // i walks from `start` round to start - 1 (no division per position).
    for (size_t k = 0, i = start; k < positions && excess > 0;) {
      ++cost.positions_visited;
      if (!used(i)) {
        ++k;
        if (++i == positions) i = 0;
        continue;
      }
      size_t b = bucket(i);
      if (b > cut || (b == cut && from_cut > 0 && pick(hash(i)) < share)) {
        if (b == cut) --from_cut;
        --excess;
        ++cost.evicted;
        if (erase(i)) continue;  // another entry moved into position i: look at it too
      }
      ++k;
      if (++i == positions) i = 0;
    }
  }
  return cost;
}

}  // namespace relayban
