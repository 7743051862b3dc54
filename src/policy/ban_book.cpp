#include "relayban/policy/ban_book.hpp"

#include <algorithm>

namespace relayban {
std::optional<BanTerm> MemoryBanBook::Find(const Prefix& target, Time now) const {
  const Term* t = terms_.Get(target);
  if (!t) return std::nullopt;
  Time end = t->end_sec == kForever ? Time::max() : Time(Seconds(t->end_sec));
  if (end <= now) return std::nullopt;
  return BanTerm{end, Seconds(t->duration_s)};
}

void MemoryBanBook::Record(const Order& order) {
  if (order.action == Order::Action::kUnban) {
    terms_.Erase(order.target);
    return;
  }
  Term& t = terms_[order.target];
  t.duration_s = static_cast<uint32_t>(std::min<int64_t>(order.duration.count(), 0xFFFFFFFEll));
  t.end_sec = order.duration.count() == 0 ? kForever : SecondsOf(order.at + order.duration);
}

void MemoryBanBook::Expire(Time now, size_t max_slots) {
  terms_.Settle(max_slots);  // a growth the inserts left unfinished, as much again
  uint32_t sec = SecondsOf(now);
  if (max_slots == 0) {  // the whole table, from its start
    expire_at_ = 0;
    max_slots = ~size_t{0};
  }
  for (size_t k = 0; k < max_slots; ++k) {
    if (expire_at_ >= terms_.capacity()) {
      expire_at_ = 0;
      terms_.MaybeShrink();
      return;
    }
    size_t i = expire_at_;
    bool ended = terms_.Used(i) && terms_.ValueAt(i).end_sec != kForever && terms_.ValueAt(i).end_sec <= sec;
    // An erase may move a later entry into slot i: look at it again before going on.
    if (!(ended && terms_.EraseAt(i))) ++expire_at_;
  }
}

}  // namespace relayban
