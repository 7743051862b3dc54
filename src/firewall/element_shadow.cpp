#include "element_shadow.hpp"

namespace relayban {

void ElementShadow::Set(const Prefix& p, TimePoint end) {
  bool fresh;
  if (IsBulk(p)) {
    size_t i = bulk_.Find(p);
    fresh = i == bulk_.kNone;
    if (fresh) i = bulk_.Insert(p);
    bulk_.ValueAt(i) = end;
  } else {
    fresh = rest_.insert_or_assign(p, end).second;
  }
  if (fresh) ++lengths_[p.address().is_v4()][static_cast<size_t>(p.length())];
}

void ElementShadow::Erase(const Prefix& p) {
  bool gone = IsBulk(p) ? bulk_.Erase(p) : rest_.erase(p) > 0;
  if (gone) --lengths_[p.address().is_v4()][static_cast<size_t>(p.length())];
}

std::optional<ElementShadow::TimePoint> ElementShadow::Get(const Prefix& p) const {
  if (IsBulk(p)) {
    if (const TimePoint* end = bulk_.Get(p)) return *end;
    return std::nullopt;
  }
  auto it = rest_.find(p);
  if (it == rest_.end()) return std::nullopt;
  return it->second;
}

void ElementShadow::Clear() {
  bulk_.Clear();
  rest_.clear();
  lengths_ = {};
  purge_slot_ = 0;
  purge_from_ = Prefix();
}

Prefix ElementShadow::Candidate(const Prefix& t, uint64_t k) {
  const auto& b = t.address().bytes();
  if (t.address().is_v4()) {
    uint32_t base = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    return Prefix(IpAddress::V4(base + static_cast<uint32_t>(k)), 32);
  }
  // The /64s inside t: k counts in the upper 64 bits.
  uint64_t hi = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | b[static_cast<size_t>(i)];
  hi += k;
  std::array<uint8_t, 16> bytes{};
  for (int i = 7; i >= 0; --i) {
    bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(hi);
    hi >>= 8;
  }
  return Prefix(IpAddress::V6(bytes), 64);
}

size_t ElementShadow::Purge(TimePoint now, size_t max_visits) {
  bulk_.Settle(max_visits);  // a growth the inserts left unfinished, as much again
  size_t dropped = 0, visits = 0;
  // The bulk table by slot, resuming where the last call stopped.
  while (visits < max_visits && bulk_.size() > 0) {
    if (purge_slot_ >= bulk_.capacity()) {
      purge_slot_ = 0;
      break;  // a full pass: the rest of this call's visits go to the other lengths
    }
    ++visits;
    size_t i = purge_slot_;
    if (bulk_.Used(i) && bulk_.ValueAt(i) <= now) {
      --lengths_[bulk_.KeyAt(i).address().is_v4()][static_cast<size_t>(bulk_.KeyAt(i).length())];
      ++dropped;
      if (bulk_.EraseAt(i)) continue;  // a later entry moved into slot i: look at it again
    }
    ++purge_slot_;
  }
  // The other lengths, in order from where the last call stopped.
  auto it = rest_.lower_bound(purge_from_);
  for (size_t k = 0; k < max_visits && !rest_.empty(); ++k) {
    if (it == rest_.end()) it = rest_.begin();
    if (it->second <= now) {
      --lengths_[it->first.address().is_v4()][static_cast<size_t>(it->first.length())];
      it = rest_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  purge_from_ = it == rest_.end() ? Prefix() : it->first;
  return dropped;
}

}  // namespace relayban
