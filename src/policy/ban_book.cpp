#include "relayban/policy/ban_book.hpp"

#include <algorithm>

namespace relayban {

std::optional<BanTerm> MemoryBanBook::Held(const Prefix& target) const {
  size_t hash = PrefixHash{}(target);
  size_t i = terms_.Find(target, hash);
  last_ = {true, target, hash, i};
  if (i == terms_.kNone) return std::nullopt;
  const Term* t = &terms_.ValueAt(i);
  Time start{Seconds(t->start_sec)};
  if (t->duration_s == 0) return BanTerm{start, Time::max(), Seconds(0), false};
  return BanTerm{start, Time(Seconds(t->end_sec())), Seconds(t->duration_s), true};
}

bool MemoryBanBook::Drop(size_t i) {
  last_.valid = false;
  const Term t = terms_.ValueAt(i);
  Prefix target = terms_.KeyAt(i);
  bool moved = terms_.EraseAt(i);
  if (t.duration_s != 0) ReportEnded(target, Time(Seconds(t.start_sec)));
  return moved;
}

bool MemoryBanBook::Lift(const Prefix& target) {
  size_t i = terms_.Find(target);
  if (i == terms_.kNone) return false;
  Drop(i);
  return true;
}

void MemoryBanBook::Record(const Order& order) {
  if (order.action == Order::Action::kUnban) {
    Lift(order.target);
    return;
  }
  // Looked up by the Held just before (BanPolicy::Ban), or once here for the lookup and the
  // insert.
  size_t hash, i;
  if (last_.valid && last_.target == order.target) {
    hash = last_.hash;
    i = last_.slot;
  } else {
    hash = PrefixHash{}(order.target);
    i = terms_.Find(order.target, hash);
  }
  last_.valid = false;
  if (i == terms_.kNone) {
    i = terms_.Insert(order.target, hash);
  } else if (const Term& old = terms_.ValueAt(i); old.duration_s != 0) {
    ReportEnded(order.target, Time(Seconds(old.start_sec)));  // replaced: an offence that ended
  }
  Term& t = terms_.ValueAt(i);
  t.start_sec = SecondsOf(order.at);
  t.duration_s = static_cast<uint32_t>(std::min<int64_t>(order.duration.count(), 0xFFFFFFFFll));
}

void MemoryBanBook::Expire(Time now, size_t max_slots) {
  last_.valid = false;  // Settle moves entries
  terms_.Settle(max_slots);  // a growth the inserts left unfinished, as much again
  uint64_t sec = SecondsOf(now);
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
    bool ended = terms_.Used(i) && terms_.ValueAt(i).duration_s != 0 && terms_.ValueAt(i).end_sec() <= sec;
    // An erase may move a later entry into slot i: look at it again before going on.
    if (!(ended && Drop(i))) ++expire_at_;
  }
}

}  // namespace relayban
