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
    if (auto it = entries_.find(key); it != entries_.end()) FillFrom(fields, it->second.fields);
  }
  if (!fields.ip && fields.account.empty() && fields.sender.empty()) return;
  for (std::string_view key : {session, id})
    if (!key.empty()) Store(key, fields, t);
}

void Correlator::Store(std::string_view key, const JoinedFields& f, Time t) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    // `f` already holds the entry's fields with this line's own values taking precedence, so
    // a reused key (a Sendmail pid after its process ended) takes the newer values.
    it->second.fields = f;
    return;
  }
  // Ids come from log text; cap their length so a hostile line cannot grow memory.
  if (key.size() > 128) return;
  entries_.emplace(std::string(key), Entry{f, t});
  order_.emplace_back(std::string(key), t);
  while (entries_.size() > max_entries_ && !order_.empty()) {
    entries_.erase(order_.front().first);
    order_.pop_front();
    ++evicted_;
  }
}

void Correlator::Expire(Time now) {
  while (!order_.empty() && order_.front().second + max_age_ < now) {
    if (auto it = entries_.find(order_.front().first); it != entries_.end() && it->second.stored == order_.front().second)
      entries_.erase(it);
    order_.pop_front();
  }
}

}  // namespace relayban
