// ElementShadow: what the nftables adapter believes its sets hold - target -> end - to order a
// transaction (a prefix ban replaces the narrower ones inside it; delete before add where
// re-adding does not refresh the timeout). A botnet leaves a million of them, nearly all of
// one length per family (single IPv4 addresses, IPv6 /64s): those live in a FlatMap (about
// 40 bytes each, one cache miss a lookup); the few of other lengths in an ordered map, walked
// for the narrower elements inside a prefix. Not thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>

#include "relayban/core/flat_map.hpp"
#include "relayban/core/ip_address.hpp"

namespace relayban {

class ElementShadow {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;  // max() = permanent
  // PrefixHash, remixed, for every table of targets the firewall keeps (this one, a
  // transaction's own): the ban ledger's FlatMap uses PrefixHash, and its elements arrive
  // here in its slot order (a restart, a re-add after a crash). With the same hash that
  // order is sorted by home slot, which piles every insert into one ever-growing run of a
  // smaller, growing table: a million took minutes. Another hash makes the order random.
  struct Hash {
    size_t operator()(const Prefix& p) const noexcept {
      uint64_t h = PrefixHash{}(p) ^ 0x2545F4914F6CDD1Dull;
      h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
      h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
      return static_cast<size_t>(h ^ (h >> 31));
    }
  };

  void Set(const Prefix& p, TimePoint end);
  void Erase(const Prefix& p);
  std::optional<TimePoint> Get(const Prefix& p) const;
  // Starts loading where Get or Set of `p` will look: issued some elements ahead of a
  // transaction's walk, the cache misses of a million-element table overlap.
  void Prefetch(const Prefix& p) const {
    if (IsBulk(p)) bulk_.Prefetch(p);
  }
  void Clear();
  size_t size() const { return bulk_.size() + rest_.size(); }
  // Elements of this family and length.
  uint32_t Count(bool v4, int length) const { return lengths_[v4][static_cast<size_t>(length)]; }
  // Calls f(element) for every element strictly narrower than `t` and inside it. Single
  // addresses and /64s inside `t` are found by probing each candidate when there are fewer
  // candidates than such elements, else by one scan of them: a /24 costs 256 lookups, a /48
  // at most 65,536, whatever the number held.
  template <class F>
  void ForEachInside(const Prefix& t, F&& f) const;
  // Drops elements whose end is at or before `now`, visiting at most `max_visits` entries
  // from where the previous call stopped. Returns how many it dropped.
  size_t Purge(TimePoint now, size_t max_visits);

  struct Stats {
    uint64_t probes = 0;  // candidate lookups by ForEachInside
    uint64_t scans = 0;   // full passes over the bulk elements by ForEachInside
  };
  const Stats& stats() const { return stats_; }
  // How clustered the table of single addresses and /64s is (see FlatMap::Measure).
  auto Measure() const { return bulk_.Measure(); }

 private:
  // The length most elements of the family have: the daemon's ban targets.
  static int BulkLength(bool v4) { return v4 ? 32 : 64; }
  static bool IsBulk(const Prefix& p) { return p.length() == BulkLength(p.address().is_v4()); }
  // The candidate number `k` of bulk length inside `t`.
  static Prefix Candidate(const Prefix& t, uint64_t k);

  FlatMap<Prefix, TimePoint, Hash> bulk_;
  static_assert(decltype(bulk_)::PlainSlots(), "a million elements must grow without holding two tables at once");
  std::map<Prefix, TimePoint> rest_;
  std::array<std::array<uint32_t, 129>, 2> lengths_{};  // per family (v6, v4) and length
  size_t purge_slot_ = 0;                               // where the next purge goes on in bulk_
  Prefix purge_from_;                                   // and in rest_
  mutable Stats stats_;
};

template <class F>
void ElementShadow::ForEachInside(const Prefix& t, F&& f) const {
  bool v4 = t.address().is_v4();
  // Other lengths: narrower elements sort right after `t`, up to its last address.
  for (auto it = rest_.upper_bound(t); it != rest_.end(); ++it) {
    // (Addresses of the other family may sort in between: they are stepped over.)
    if (it->first.address().family() != t.address().family()) continue;
    if (!t.Contains(it->first.address())) break;
    if (it->first.length() > t.length()) f(it->first);
  }
  int bulk = BulkLength(v4);
  uint32_t held = lengths_[v4][static_cast<size_t>(bulk)];
  if (t.length() >= bulk || held == 0) return;
  int spare = bulk - t.length();
  if (spare < 63 && (uint64_t{1} << spare) <= held) {
    for (uint64_t k = 0; k < (uint64_t{1} << spare); ++k) {
      ++stats_.probes;
      Prefix c = Candidate(t, k);
      if (bulk_.Find(c) != bulk_.kNone) f(c);
    }
    return;
  }
  ++stats_.scans;
  for (size_t i = 0; i < bulk_.capacity(); ++i)
    if (bulk_.Used(i) && bulk_.KeyAt(i).address().family() == t.address().family() && t.Contains(bulk_.KeyAt(i).address()))
      f(bulk_.KeyAt(i));
}

}  // namespace relayban
