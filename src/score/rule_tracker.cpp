#include "relayban/score/rule_tracker.hpp"

#include <algorithm>

namespace relayban {

int WindowState::Add(uint32_t value, int weight, uint32_t sec, bool distinct, int threshold, uint32_t window) {
  // Log time may step back a little (several files, clock changes): never let `last_` go back.
  last_ = std::max(last_, sec);
  uint32_t horizon = last_ >= window ? last_ - window : 0;
  // Items are kept oldest first; drop those that left the window.
  auto keep = std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.sec > horizon; });
  items_.erase(items_.begin(), keep);
  if (distinct) {
    auto it = std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.value == value; });
    if (it != items_.end()) {
      items_.erase(it);  // re-append as the newest sighting
    }
    items_.push_back({value, sec});
  } else {
    int n = std::min(weight, threshold);
    for (int i = 0; i < n; ++i) items_.push_back({0, sec});
  }
  if (items_.size() > static_cast<size_t>(threshold))
    items_.erase(items_.begin(), items_.begin() + static_cast<long>(items_.size() - static_cast<size_t>(threshold)));
  return static_cast<int>(items_.size());
}

}  // namespace relayban
