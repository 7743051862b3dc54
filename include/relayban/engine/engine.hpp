// Engine: joins filters -> scoring -> policy. It is fed lines with the time they were read
// and returns ban orders and hook runs; it never touches the OS. The daemon and
// `relayban check` drive the same Engine, so a replay decides exactly as live reading did.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/spec/spec.hpp"
#include "relayban/core/result.hpp"
#include "relayban/filter/timestamp.hpp"
#include "relayban/policy/ban_policy.hpp"
#include "relayban/score/account_book.hpp"
#include "relayban/score/account_history.hpp"

namespace relayban {

// One event as a filter yielded it, after address parsing and correlation.
struct Event {
  Time time{};
  int jail = 0;
  int filter = 0;   // index into Engine::filter_names()
  int pattern = 0;  // index within the filter
  int kind = 0;     // index into Engine::kind_names()
  std::optional<IpAddress> ip;
  std::string account, sender, recipient, id;
  std::string session;  // the connection or process that joins lines (Sendmail pid, OpenSMTPD session)
  int count = 1;
};

// A hook to run: argv with its placeholders already replaced, one argument each.
struct HookRun {
  std::vector<std::string> argv;
  std::string jail, rule, account;
};

// An account-keyed rule that counts what the account did (logins, relays) reached its
// threshold: the account is very likely stolen. Its bans follow as orders.
struct AccountVerdict {
  Time at{};
  std::string jail, rule, account, reason;
  Seconds ban{0};
  size_t addresses = 0;  // addresses banned for it now
  EvidenceLines evidence;  // with EngineOptions::evidence
};

// An event counted by a `scope: fleet` rule while fleet counting is on: the daemon adds it to
// the fleet's window for (jail, rule, key) and, if that crosses the threshold there first,
// hands the verdict back (Engine::FleetVerdict).
struct FleetCount {
  std::string jail, rule;
  RuleKey key = RuleKey::kIp;
  std::string subject;  // the address key (as written) or the account
  std::string value;    // the distinct value's text (hashed for names); empty: the event counts
  std::string ip;       // the event's client address (for the {ip} of a hook), if any
  int local_count = 0;  // what this host alone counted for the key (at most the threshold):
                        // decides when the count cannot reach Redis
  int count = 1;
  Time time{};
  int threshold = 0;
  Seconds window{0};
};

struct EngineOutput {
  std::vector<Order> orders;
  std::vector<AccountVerdict> verdicts;
  std::vector<HookRun> hooks;
  std::vector<std::string> notices;  // for the log: an outage guard that tripped
  std::vector<FleetCount> fleet_counts;
  bool empty() const { return orders.empty() && verdicts.empty() && hooks.empty() && notices.empty() && fleet_counts.empty(); }
  void clear() {
    orders.clear();
    verdicts.clear();
    hooks.clear();
    notices.clear();
    fleet_counts.clear();
  }
};

struct EngineStats {
  uint64_t lines = 0;
  uint64_t matched = 0;  // lines that yielded at least one event
  uint64_t skipped = 0;  // lines refused: too long, not clean text, no valid stamp, bad field
  uint64_t ambiguous = 0;  // lines a `unique` rule refused (likely injection attempts)
  std::vector<uint64_t> events;  // per kind id
  uint64_t verdicts = 0;
  uint64_t relay_repeats = 0;       // delivery attempts of a (message, recipient) already counted
  uint64_t outages = 0;             // times an outage guard tripped (see OutageGuard)
  uint64_t outage_suppressed = 0;   // events it held back
  uint64_t new_networks = 0;        // logins from a network the account never used (new_network rules)
};

// Entries dropped because a bounded structure was full (least recently seen first).
struct EngineEvictions {
  uint64_t windows = 0;      // rule keys (addresses, accounts) over max_tracked
  uint64_t accounts = 0;     // accounts of the account book
  uint64_t correlation = 0;  // queue ids and sessions over correlate.max_entries
  uint64_t offences = 0;     // escalation histories
};

// Counters for metrics, finer than EngineStats: per source (what became of its lines) and
// per jail (events by kind, verdicts by rule). Replayed journal records count nowhere.
struct EngineCounts {
  struct Source {
    uint64_t lines = 0, matched = 0;
    // Skipped lines by reason: too long or not clean text; no valid stamp; a field that
    // did not parse (address, stamp); refused by a `unique` pattern (likely injection).
    uint64_t unclean = 0, no_stamp = 0, bad_field = 0, ambiguous = 0;
    Time newest{};  // the stamp of its newest matched line
  };
  struct Events {
    std::string jail, kind;
    uint64_t count = 0;
  };
  struct Verdicts {
    std::string jail, rule;
    RuleKey key = RuleKey::kIp;
    uint64_t count = 0;
  };
  std::vector<Source> sources;  // by source id (AddSource)
  std::vector<Events> events;   // kinds seen at least once
  std::vector<Verdicts> verdicts;  // every rule of every jail
};

struct EngineOptions {
  std::vector<std::string> jails;  // which jails to run; empty = every jail in the config
  bool only_enabled = false;       // skip jails with `enabled: false`
  LocalZone zone = UtcZone();
  // What is banned: the daemon's ledger, which must outlive the engine. Without one the
  // engine keeps its own MemoryBanBook on the log's time (check, tests).
  BanBook* book = nullptr;
  // Keep the last matched lines per key and give every order the lines that led to it
  // (Order::evidence): `check` shows them. Off in the daemon until they are stored there.
  bool evidence = false;
};

struct PatternHit;  // relayban/filter/filter_set.hpp

class Engine {
 public:
  ~Engine();
  static Result<std::unique_ptr<Engine>> Create(const Config& config, EngineOptions options);

  // Declares a log source feeding `jails` (names; empty = every jail of the engine) whose
  // lines carry stamps of `format`. Returns the id to pass to OnLine.
  Result<int> AddSource(const std::vector<std::string>& jails, StampFormat format);

  // Processes one line (without its newline). `now` is when it was read: the time of a line
  // without a stamp, and the reference for the missing year of syslog stamps.
  void OnLine(int source, std::string_view line, Time now, EngineOutput& out);

  // OnLine in two steps, for a reader that matches lines on one thread while the engine
  // scores them on another. Parse touches no scoring state; it appends the line's pattern
  // hits, whose captures view `line` (or, for an RFC 5424 line, its rewriting for the
  // filters, added to `rewritten`), to `hits`. OnParsed then does the rest, in the order
  // the lines were read, with the line, its hits and `rewritten` still alive (Parse also
  // parses each hit's address, PatternHit::address, off the scoring thread). Parse may run
  // on another thread than OnParsed, but on one thread at a time: the filters learn from
  // the lines they see.
  struct ParsedLine {
    enum class Outcome : uint8_t { kEmpty, kUnclean, kNoStamp, kAmbiguous, kNoHit, kBadStamp, kHits };
    Outcome outcome = Outcome::kEmpty;
    int rejected = 0;  // hits refused by a `unique` rule
    Time time{};
    uint32_t first_hit = 0, hit_count = 0;  // in the `hits` given to Parse
  };
  // The last stamp Parse decoded, for the next line of a batch: a log writes many lines a
  // second, and a line whose stamp bytes (and `now`) are the same decodes the same.
  struct StampMemo {
    const Engine* engine = nullptr;  // whose zone decoded it; null: nothing remembered
    int source = -1;
    Time now{};
    std::string text;  // the stamp's bytes and the blanks after it
    Time time{};
  };
  ParsedLine Parse(int source, std::string_view line, Time now, std::vector<PatternHit>& hits,
                   std::deque<std::string>& rewritten, StampMemo* memo = nullptr) const;
  void OnParsed(int source, std::string_view line, const ParsedLine& parsed, const PatternHit* hits,
                EngineOutput& out);
  // Starts loading the table slots scoring this parsed line will look up (its connection's
  // tally, its address's windows, ban and offences, its account's book entry and windows),
  // changing nothing. Called a few lines ahead of OnParsed: under a botnet every key is new
  // and each lookup a miss in memory, which then overlaps the lines scored meanwhile.
  void Prefetch(int source, const ParsedLine& parsed, const PatternHit* hits) const;
  // Housekeeping: evicts idle scoring state and forgets ended bans. Idle is counted on the
  // logs' time: `now` or, if earlier, the newest line's stamp.
  void OnTick(Time now);

  // Called for every event before scoring (used by `check --events`).
  void SetEventObserver(std::function<void(const Event&)> observer);
  // With EngineOptions::evidence: whether orders get their lines (the default) or only how
  // many there were (EvidenceLines::Counted). The daemon writes a second's first records
  // with their lines and, past that share, only their number: meanwhile copying a
  // botnet's lines for each ban was for nothing.
  void SetEvidenceLines(bool wanted);

  // The event journal: every event scored is handed to `record` as a compact record (with
  // its log time), so that a later engine - after a reload or a restart - can Replay the
  // journal of the last window and hold exactly the counts, distinct sets, account book and
  // correlation this one held. Bans are not in the journal: the ban ledger keeps them.
  void SetJournal(std::function<void(Time, std::string_view record)> record);
  // Scores a journal record as the engine that wrote it did, but orders no ban and runs no
  // hook (the bans it led to are in force already, or were lifted or ended). Records of
  // jails or event kinds this engine does not have are skipped. Returns whether it was used.
  bool Replay(std::string_view record);
  // An admin forgave `account` at `at`: its standing verdicts end, its account-keyed counts
  // restart, and events before `at` (a journal replayed later) never count for it again.
  void Forgive(const std::string& account, Time at);
  // An admin lifted the ban of `ip` at `at`: account verdicts that stood before then do not
  // ban it again (a new verdict may).
  void Exempt(const IpAddress& ip, Time at);
  // Per-account history (relative and new_network rules), kept by the daemon across restarts
  // and reloads: the accounts changed since the last call, serialized (at most `limit`; with
  // `all`, every account), and putting one back. Restore before replaying the journal.
  std::vector<std::pair<std::string, std::string>> TakeAccountHistory(size_t limit, bool all = false);
  bool RestoreAccountHistory(std::string_view account, std::string_view bytes);
  bool MergeAccountHistory(std::string_view account, std::string_view bytes);
  void AccountHistoryUnsaved(const std::string& account);  // a write failed: hand it out again
  bool uses_account_history() const;
  // What the account's history says it usually does (nothing without history rules, or for
  // an account it does not know).
  std::optional<AccountHistory::Usual> AccountHabits(const std::string& account, Time now) const;
  // The longest window of any rule: how far back the journal must reach.
  Seconds LongestWindow() const;

  // Fleet counting: while on, `scope: fleet` rules hand their events out as FleetCounts and
  // give no verdict of their own (they keep counting here, so that when it goes off - Redis
  // away - the local counts take over at once).
  void SetFleetCounting(bool on);
  bool fleet_counting() const;
  bool has_fleet_rules() const;
  // A fleet rule's verdict: `count` events (or distinct values) across the fleet reached its
  // threshold for `subject` (an address or an account). `won` when this host raised it (its
  // report and hook run here); false for an account verdict raised by another host (this
  // host bans the addresses it saw use the account). False if no such fleet rule.
  // `ip`: the address of the event that crossed the threshold, for the {ip} of on_account.
  // `here_only`: counted on this host alone (the count could not reach Redis).
  bool FleetVerdict(const std::string& jail, const std::string& rule, const std::string& subject, Time at, int count,
                    bool won, EngineOutput& out, const std::string& ip = "", bool here_only = false);

  // The ban policy: the ignore list for manual bans, past offences at start-up.
  BanPolicy& policy();
  const EngineStats& stats() const;
  EngineCounts counts() const;
  EngineEvictions evictions() const;
  const AccountBook& accounts() const;
  const std::vector<std::string>& kind_names() const;
  const std::vector<std::string>& jail_names() const;
  const std::vector<std::string>& filter_names() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace relayban
