// AccountHistory: what each account usually does, over the last four weeks - distinct outside
// recipient domains per day and in the day's busiest hour, recipients relayed (its volume) per day, the networks (/24, /64) and
// the hours of the day (UTC) it logs in from - so rules can hold
// an account to its own habits: a limit relative to its usual day, and a login from a network
// it never used. Kept across restarts by the daemon (Serialize/Restore, in the state
// database); counting is idempotent (distinct sets for domains; for volume and login hours, a
// log-time mark: what is not newer than the last event counted is not counted again), so a
// journal replayed over a restored history counts nothing twice. Pure: time is passed in.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/flat_map.hpp"
#include "relayban/core/text.hpp"

namespace relayban {

class AccountHistory {
 public:
  static constexpr int kDays = 28;             // days of daily counts kept
  static constexpr size_t kMaxNetworks = 64;   // networks remembered per account (the oldest go)
  static constexpr size_t kMaxToday = 65536;   // distinct domains counted in one day

  explicit AccountHistory(size_t max_accounts) : max_accounts_(max_accounts) {}

  // An outside recipient domain (hashed) relayed through the account at `t`.
  void Relayed(const std::string& account, uint64_t domain, Time t);
  // Relays (one per recipient) of the account at `t`, its volume; each event once.
  void RelayCounted(const std::string& account, Time t);
  // A successful login from `network` (hashed /24 or /64) at `t`. Returns true when the
  // account has at least `warmup` days of history and never logged in from that network.
  bool LoggedIn(const std::string& account, uint64_t network, Time t, Seconds warmup);

  struct Usual {
    int days = 0;       // days since the account was first seen (0: unknown)
    int usual = 0;      // distinct outside domains of its usual busy day before today (the upper
                        // quartile of its active days in the last four weeks)
    int today = 0;      // distinct outside domains today so far
    int usual_hour = 0;    // distinct outside domains in the busiest hour of its usual busy day
                           // (the upper quartile of its active days' busiest hours)
    int usual_relays = 0;  // recipients relayed on its usual busy day (upper quartile, as above)
    int relays_today = 0;
    std::vector<int> login_hours;  // the hours (UTC) it usually logs in: each has at least a
                                   // twentieth of its logins (and two)
  };
  Usual UsualDay(const std::string& account, Time t) const;

  // Accounts changed since the last call (at most `limit`), each serialized; for the store.
  std::vector<std::pair<std::string, std::string>> TakeChanged(size_t limit);
  // Marks every account (or one) as changed: all of them are handed out again.
  void MarkAllChanged();
  void MarkChanged(const std::string& account);
  // Merges an account serialized by TakeChanged into what is held for it: per day the larger
  // count, the earlier first day, the union of networks (and of today's domains). For
  // history read from old logs (relayban history-import) meeting what the daemon kept.
  bool Merge(std::string_view account, std::string_view bytes);
  // Puts back an account serialized by TakeChanged; false (and nothing changed) for bytes
  // that do not parse.
  bool Restore(std::string_view account, std::string_view bytes);
  size_t size() const { return accounts_.size(); }
  uint64_t refused() const { return refused_; }  // accounts not tracked: the table was full

 private:
  struct Entry {
    uint32_t first_day = 0, last_day = 0;
    std::array<uint32_t, kDays> day{};      // which day each slot counts (slot = day % kDays)
    std::array<uint32_t, kDays> domains{};  // distinct outside domains that day
    std::unordered_set<uint64_t> today;     // the domains of last_day's slot, for idempotence
    std::vector<std::pair<uint64_t, uint32_t>> networks;  // network, last day used
    std::array<uint32_t, kDays> relays{};   // recipients relayed that day
    std::array<uint32_t, kDays> peak{};     // distinct outside domains in that day's busiest hour
    uint32_t hour = 0;                      // the hour (since the epoch) `this_hour` counts
    std::unordered_set<uint64_t> this_hour;  // its domains, for idempotence
    std::array<uint32_t, 24> hours{};       // logins per hour of the day (UTC), halved when large
    // The newest event counted of each kind, and how many were counted at that instant (a
    // message to many recipients logs them in one second); after a restore, that many
    // events at the mark are the journal replayed (skip), the rest new.
    struct Mark {
      int64_t until_us = 0;
      uint32_t at_mark = 0, skip = 0;
      bool Fresh(int64_t us);
    };
    Mark relays_mark, logins_mark;
    bool changed = false;
  };
  static uint32_t DayOf(Time t) { return SecondsOf(t) / 86400; }
  static std::optional<Entry> Parse(std::string_view bytes);
  Entry* Get(const std::string& account, uint32_t day);
  static void Roll(Entry& e, uint32_t day);

  size_t max_accounts_;
  Entry* Find(std::string_view account);
  const Entry* Find(std::string_view account) const;
  // A flat index of entries that stay put: the history is asked for every login and relay,
  // and a node-based map's lookup in a few thousand entries of 700 bytes cost two misses a
  // node (its hash is kept after the entry), a tenth of a busy server's scoring.
  FlatMap<std::string, std::unique_ptr<Entry>, StringHash> accounts_;
  std::vector<std::string> changed_;
  uint64_t refused_ = 0;
  uint32_t swept_day_ = 0;
};

}  // namespace relayban
