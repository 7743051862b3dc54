#include "relayban/filter/correlator.hpp"

namespace relayban {
namespace {
void FillFrom(JoinedFields& f, const JoinedFields& from) {
  if (!f.ip && from.ip) f.ip = from.ip;
  if (f.account.empty()) f.account = from.account;
  if (f.sender.empty()) f.sender = from.sender;
}
}  // namespace

void Correlator::Join(std::string_view id, std::string_view session, Time t, JoinedFields& fields) {
  Expire(t);
  for (std::string_view key : {session, id}) {
    if (key.empty()) continue;
    if (const uint32_t* at = index_.Get(key)) FillFrom(fields, entries_[*at].fields);
  }
  if (!fields.ip && fields.account.empty() && fields.sender.empty()) return;
  for (std::string_view key : {session, id})
    if (!key.empty()) Store(key, fields, t);
}

void Correlator::Store(std::string_view key, const JoinedFields& f, Time t) {
  size_t hash = StringHash{}(key);
  if (size_t i = index_.Find(key, hash); i != index_.kNone) {
    // `f` already holds the entry's fields with this line's own values taking precedence, so
    // a reused key (a Sendmail pid after its process ended) takes the newer values.
    entries_[index_.ValueAt(i)].fields = f;
    return;
  }
  // Ids come from log text; cap their length so a hostile line cannot grow memory.
  if (key.size() > 128) return;
  // Room first: the insert's slot stays valid.
  while (index_.size() >= max_entries_ && !order_.empty()) {
    EraseKey(order_.front().first, nullptr);
    order_.pop_front();
    ++evicted_;
  }
  uint32_t at;
  if (!free_.empty()) {
    at = free_.back();
    free_.pop_back();
  } else {
    at = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  Entry& e = entries_[at];
  e.fields = f;  // into the strings a freed entry left, when they have room
  e.stored = t;
  index_.ValueAt(index_.Insert(std::string(key), hash)) = at;
  order_.emplace_back(std::string(key), t);
}

void Correlator::EraseKey(const std::string& key, const Time* stored) {
  size_t i = index_.Find(key);
  if (i == index_.kNone) return;
  uint32_t at = index_.ValueAt(i);
  if (stored && entries_[at].stored != *stored) return;
  index_.EraseAt(i);
  free_.push_back(at);
}

void Correlator::Expire(Time now) {
  while (!order_.empty() && order_.front().second + max_age_ < now) {
    EraseKey(order_.front().first, &order_.front().second);
    order_.pop_front();
  }
}

}  // namespace relayban
