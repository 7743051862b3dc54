#include "relayban/score/rule_tracker.hpp"

#include <algorithm>
#include <cstring>

namespace relayban {

void WindowState::Reserve(uint16_t want, int limit) {
  if (want <= capacity()) return;
  uint16_t cap = std::max<uint16_t>(want, static_cast<uint16_t>(std::min<int>({capacity() * 2, limit, 65535})));
  Item* fresh = new Item[cap];
  std::memcpy(fresh, items(), sizeof(Item) * n_);
  if (extra_ > 0) delete[] heap_;
  heap_ = fresh;
  extra_ = static_cast<uint16_t>(cap - 1);
}

int WindowState::Count(uint32_t sec, uint32_t window) const {
  uint32_t last = std::max(last_, sec);
  uint32_t horizon = last >= window ? last - window : 0;
  const Item* it = extra_ > 0 ? heap_ : &one_;
  int n = 0;
  for (uint16_t i = 0; i < n_; ++i) n += it[i].sec > horizon;
  return n;
}

int WindowState::Add(uint32_t value, int weight, uint32_t sec, bool distinct, int threshold, uint32_t window) {
  // Log time may step back a little (several files, clock changes): never let `last_` go back.
  last_ = std::max(last_, sec);
  if (n_ == 0 && weight == 1 && threshold >= 1) {
    // The first sighting (a botnet's every line, in every lane of a new key): nothing to
    // drop, compare or make room for.
    items()[0] = {distinct ? value : 0, sec};
    n_ = 1;
    return 1;
  }
  uint32_t horizon = last_ >= window ? last_ - window : 0;
  Item* it = items();
  // Items are kept oldest first; drop those that left the window.
  uint16_t keep = 0;
  while (keep < n_ && it[keep].sec <= horizon) ++keep;
  if (keep) {
    std::memmove(it, it + keep, sizeof(Item) * (n_ - keep));
    n_ = static_cast<uint16_t>(n_ - keep);
  }
  auto push = [&](Item x) {
    if (n_ >= threshold) {  // full: drop the oldest
      std::memmove(items(), items() + 1, sizeof(Item) * (n_ - 1));
      --n_;
    }
    // Leaving the inline item, room for eight at once (or the threshold, if fewer): an address
    // that fails again and again then allocates once per ban, not once per doubling.
    if (n_ + 1 > capacity()) {
      int room = std::min<int>(std::max<int>(n_ + 1, kFirstHeap), threshold);
      Reserve(static_cast<uint16_t>(room), threshold);
    }
    items()[n_++] = x;
  };
  if (distinct) {
    it = items();
    for (uint16_t i = 0; i < n_; ++i) {
      if (it[i].value == value) {  // re-append as the newest sighting
        std::memmove(it + i, it + i + 1, sizeof(Item) * (n_ - i - 1));
        --n_;
        break;
      }
    }
    push({value, sec});
  } else {
    for (int i = 0; i < std::min(weight, threshold); ++i) push({0, sec});
  }
  return n_;
}

}  // namespace relayban
