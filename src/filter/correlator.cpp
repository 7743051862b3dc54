#include "relayban/filter/correlator.hpp"

namespace relayban {
namespace {
void FillFrom(JoinedFields& f, const JoinedFields& from) {
  if (!f.ip && from.ip) f.ip = from.ip;
  if (f.account.empty()) f.account = from.account;
  if (f.sender.empty()) f.sender = from.sender;
}
}  // namespace

void Correlator::JoinHashed(std::string_view id, size_t id_hash, std::string_view session, Time t,
                            JoinedFields& fields) {
  Expire(t);
  const std::string_view keys[2] = {session, id};
  const size_t hashes[2] = {session.empty() ? 0 : StringHash{}(session), id_hash};
  for (int k = 0; k < 2; ++k) {
    if (keys[k].empty()) continue;
    if (size_t i = index_.Find(keys[k], hashes[k]); i != index_.kNone) FillFrom(fields, entries_[index_.ValueAt(i)].fields);
  }
  if (!fields.ip && fields.account.empty() && fields.sender.empty()) return;
  for (int k = 0; k < 2; ++k)
    if (!keys[k].empty()) Store(keys[k], hashes[k], fields, t);
}

void Correlator::Store(std::string_view key, size_t hash, const JoinedFields& f, Time t) {
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
    EraseOldest();
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
  e.key.assign(key.data(), key.size());
  e.hash = hash;
  index_.ValueAt(index_.Insert(std::string_view(e.key), hash)) = at;
  order_.push_back(at);
}

void Correlator::EraseOldest() {
  // Under a flood of ids that never complete every new one evicts the oldest, whose entry
  // and index slot no cache holds (entries are reused in no order): start loading the
  // entry of the kAhead-th oldest, and the index slot of the (kAhead/2)-th, whose entry
  // was asked for kAhead/2 evictions ago.
  constexpr size_t kAhead = 16;
  if (order_.size() > kAhead) {
    __builtin_prefetch(&entries_[order_[kAhead]].hash);
    __builtin_prefetch(&entries_[order_[kAhead]].stored);
    index_.PrefetchHashed(entries_[order_[kAhead / 2]].hash);
  }
  uint32_t at = order_.front();
  order_.pop_front();
  const Entry& e = entries_[at];
  size_t i = index_.FindWhere(e.hash, [at](std::string_view, uint32_t v) { return v == at; });
  if (i != index_.kNone) index_.EraseAt(i);
  free_.push_back(at);
}

void Correlator::Expire(Time now) {
  while (!order_.empty() && entries_[order_.front()].stored + max_age_ < now) EraseOldest();
}

}  // namespace relayban
