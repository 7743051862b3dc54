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
  void Join(std::string_view id, std::string_view session, Time t, JoinedFields& fields);
  size_t size() const { return index_.size(); }
  size_t evicted() const { return evicted_; }

 private:
  struct Entry {
    JoinedFields fields;
    Time stored;
  };
  void Store(std::string_view key, const JoinedFields& f, Time t);
  void Expire(Time now);
  // Forgets `key` (only if it was stored at `*stored`, when given); its entry's position is
  // free for the next.
  void EraseKey(const std::string& key, const Time* stored);

  size_t max_entries_;
  Seconds max_age_;
  // Flat, not a node per entry: under a flood of messages that never complete every line
  // stores one id and evicts another. The index's slots hold a position in entries_, not
  // the entry (a slot of 48 bytes, not 136: a missing id - every line of such a flood -
  // probes a run of slots), and a position freed is taken again with its strings' memory.
  FlatMap<std::string, uint32_t, StringHash> index_;
  std::deque<Entry> entries_;  // grows in chunks: no pause moving them all
  std::vector<uint32_t> free_;
  std::deque<std::pair<std::string, Time>> order_;  // insertion order, for eviction
  size_t evicted_ = 0;
};

}  // namespace relayban
