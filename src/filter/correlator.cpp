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
    if (const Entry* e = entries_.Get(key)) FillFrom(fields, e->fields);
  }
  if (!fields.ip && fields.account.empty() && fields.sender.empty()) return;
  for (std::string_view key : {session, id})
    if (!key.empty()) Store(key, fields, t);
}

void Correlator::Store(std::string_view key, const JoinedFields& f, Time t) {
  size_t hash = StringHash{}(key);
  if (size_t i = entries_.Find(key, hash); i != entries_.kNone) {
    // `f` already holds the entry's fields with this line's own values taking precedence, so
    // a reused key (a Sendmail pid after its process ended) takes the newer values.
    entries_.ValueAt(i).fields = f;
    return;
  }
  // Ids come from log text; cap their length so a hostile line cannot grow memory.
  if (key.size() > 128) return;
  // Room first: the insert's slot stays valid.
  while (entries_.size() >= max_entries_ && !order_.empty()) {
    entries_.Erase(order_.front().first);
    order_.pop_front();
    ++evicted_;
  }
  Entry& e = entries_.ValueAt(entries_.Insert(std::string(key), hash));
  e.fields = f;
  e.stored = t;
  order_.emplace_back(std::string(key), t);
}

void Correlator::Expire(Time now) {
  while (!order_.empty() && order_.front().second + max_age_ < now) {
    size_t i = entries_.Find(order_.front().first);
    if (i != entries_.kNone && entries_.ValueAt(i).stored == order_.front().second) entries_.EraseAt(i);
    order_.pop_front();
  }
}

}  // namespace relayban
