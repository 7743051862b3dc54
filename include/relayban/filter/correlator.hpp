// Correlator: joins the lines of one message or session. Postfix logs the account on the
// `client=` line and each recipient on a later `to=` line with the same queue id; Exim and
// Sendmail do the same with their message ids, OpenSMTPD with a session id. Memory is bounded
// by a count and an age; the oldest entries go first. One Correlator per jail.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/text.hpp"

namespace relayban {

struct JoinedFields {
  std::optional<IpAddress> ip;
  std::string account;
  std::string sender;
};

class Correlator {
 public:
  Correlator(size_t max_entries, Seconds max_age) : max_entries_(max_entries), max_age_(max_age) {}

  // Fills the empty members of `fields` from what earlier lines stored under `session` and
  // then `id`, and stores the merged result under both (an empty key is skipped).
  void Join(std::string_view id, std::string_view session, Time t, JoinedFields& fields) {
    JoinHashed(id, StringHash{}(id), session, t, fields);
  }
  // The same, given StringHash{}(id) (made on the matching thread).
  void JoinHashed(std::string_view id, size_t id_hash, std::string_view session, Time t, JoinedFields& fields);
  // Starts loading where a lookup of the id of hash `id_hash` begins (see FlatMap::Prefetch).
  void Prefetch(size_t id_hash) const { index_.PrefetchHashed(id_hash); }
  size_t size() const { return index_.size(); }
  size_t evicted() const { return evicted_; }

 private:
  struct Entry {
    JoinedFields fields;
    Time stored;
    std::string key;  // what the index's view of it shows
    size_t hash = 0;  // StringHash of key
  };
  // `hash` is StringHash{}(key).
  void Store(std::string_view key, size_t hash, const JoinedFields& f, Time t);
  void Expire(Time now);
  // Forgets the oldest entry; its position is free for the next.
  void EraseOldest();

  size_t max_entries_;
  Seconds max_age_;
  // Flat, not a node per entry: under a flood of messages that never complete every line
  // stores one id and evicts another. The index's slots hold a view of the entry's own key
  // and its position in entries_ (a slot of 32 bytes: a missing id - every line of such a
  // flood - probes a run of slots); an entry never moves (a deque grows at its end) and
  // leaves the index before its key changes, and a position freed is taken again with its
  // strings' memory.
  FlatMap<std::string_view, uint32_t, StringHash> index_;
  std::deque<Entry> entries_;  // grows in chunks: no pause moving them all
  std::vector<uint32_t> free_;
  // The stored entries' positions in the order they were stored (each once: an entry leaves
  // only from the front), for eviction and expiry without a key copied or hashed again.
  std::deque<uint32_t> order_;
  size_t evicted_ = 0;
};

}  // namespace relayban
