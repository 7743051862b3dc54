#include "relayban/engine/engine.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "relayban/core/bytes.hpp"
#include "relayban/core/text.hpp"
#include "relayban/engine/parsed_lines.hpp"
#include "relayban/filter/correlator.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"
#include "relayban/score/account_history.hpp"
#include "relayban/score/rule_tracker.hpp"

namespace relayban {
namespace {

constexpr int kAuthFailure = 0, kAuthSuccess = 1, kRelay = 2;
constexpr size_t kEvidenceRing = 2048;       // matched lines kept per jail for evidence
constexpr size_t kEvidenceLines = 10;        // lines of evidence per decision
constexpr size_t kEvidenceLineBytes = 400;   // of each line
constexpr size_t kMaxRecipientsPerLine = 1000;
constexpr size_t kSweepSlice = 65536;  // slots per table per tick
constexpr uint8_t kJournalVersion = 1;

std::string_view DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

// An envelope address as keyed: without <> and blanks around it, lower-case, capped. Writes
// into `out` so a reused string keeps its buffer (no allocation per line).
void CleanAddress(std::string_view s, std::string& out) {
  if (s.empty()) {  // most lines capture no sender, many no recipient
    out.clear();
    return;
  }
  while (!s.empty() && (s.front() == '<' || s.front() == ' ')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '>' || s.back() == ' ' || s.back() == ',')) s.remove_suffix(1);
  s = s.substr(0, 320);
  out.resize(s.size());
  LowerAsciiInto(s, out.data());
}

std::string Substitute(const std::string& arg, const std::map<std::string, std::string>& values) {
  std::string out;
  for (size_t i = 0; i < arg.size();) {
    if (arg[i] == '{') {
      size_t close = arg.find('}', i);
      if (close != std::string::npos) {
        auto it = values.find(arg.substr(i + 1, close - i - 1));
        if (it != values.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += arg[i++];
  }
  return out;
}

// The value a `distinct` rule counts for this event, hashed; nullopt if the event lacks it.
// Field::kNone counts every event alike. An account is its `account_hash` (StringHash, which
// the engine has made for the account tables already).
std::optional<uint64_t> DistinctValue(Field f, const Event& ev, std::string_view recipient_domain,
                                      uint64_t account_hash) {
  std::string_view text;
  switch (f) {
    case Field::kNone: return 0;
    case Field::kAccount:
      if (ev.account.empty()) return std::nullopt;
      return account_hash;
    case Field::kIp:
      if (!ev.ip) return std::nullopt;
      return IpAddressHash{}(*ev.ip);
    case Field::kIpPrefix:
      if (!ev.ip) return std::nullopt;
      return IpAddressHash{}(ev.ip->Masked(ev.ip->is_v4() ? 24 : 64));
    case Field::kSender: text = ev.sender; break;
    case Field::kSenderDomain: text = DomainOf(ev.sender); break;
    case Field::kRecipient: text = ev.recipient; break;
    case Field::kRecipientDomain: text = recipient_domain; break;
  }
  if (text.empty()) return std::nullopt;
  return Hash64(text);
}

// A hook run with its placeholders replaced inside each argument.
HookRun MakeHook(const std::vector<std::string>& argv, const std::string& ip, const std::string& account,
                 const std::string& jail, const std::string& rule, Seconds duration) {
  std::map<std::string, std::string> values{{"ip", ip}, {"account", account}, {"jail", jail}, {"rule", rule},
                                            {"duration", std::to_string(duration.count())}};
  HookRun h{{}, jail, rule, account};
  for (const auto& a : argv) h.argv.push_back(Substitute(a, values));
  return h;
}

}  // namespace

struct Engine::Impl {
  struct Rule {
    const RuleSpec* spec;
    uint32_t id = 0;  // unique across jails
    uint64_t kinds = 0;
    int table = -1;  // key ip: its jail's table and lane (IpTable)
    size_t lane = 0;
    AccountWindows account_windows;
    bool confirmed = false;  // counts auth_success or relay: a real use of the account
    std::string reason;
    // Made once, shared by every ban order the rule gives (lasting texts: no count to keep
    // per order): its name, and an address verdict's reason ("name: reason").
    SharedText name, ip_reason;
    uint64_t verdicts = 0;
    // The threshold follows the account's history (relative, new_network): the window keeps
    // up to kDynamicCap values and the comparison is made per event.
    bool dynamic = false;
    static constexpr int kDynamicCap = 5000;
    static int Cap(const RuleSpec* s) {
      return s->relative_factor > 0 || s->new_network_factor > 0 ? std::max(s->threshold, kDynamicCap) : s->threshold;
    }
    // Each table gets its own eviction phase (see KeyedWindows): a botnet's lines bring a
    // new address, and often a new account name, to every rule at once.
    Rule(const RuleSpec* s, size_t max_keys, uint32_t rule_id)
        : spec(s),
          id(rule_id),
          account_windows(Cap(s), s->window, s->distinct != Field::kNone, max_keys, 2 * rule_id + 1),
          name(SharedText::Lasting(s->name)),
          dynamic(s->relative_factor > 0 || s->new_network_factor > 0) {}
  };
  // Tables keyed by a 64-bit hash the engine made itself (no string per line): mixed once more.
  struct MixHash {
    size_t operator()(uint64_t h) const noexcept { return static_cast<size_t>((h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull); }
  };
  // (message id, recipient) pairs already counted as relayed: each deferral of a message logs
  // another delivery line, which must not count again. Oldest first; bounded like the
  // correlator, and kept as long as a queue keeps a message (5 days in Postfix and Exim).
  struct RelaySeen {
    size_t cap;
    // Open addressing, not a node per pair: at the cap every delivery line erases one pair
    // and inserts another (a stolen account relaying to a million domains).
    FlatMap<uint64_t, uint8_t, MixHash> keys;
    std::deque<std::pair<Time, uint64_t>> order;
    static constexpr Seconds kMaxAge{5 * 86400};
    bool Seen(std::string_view id, std::string_view recipient, Time t) {
      while (!order.empty() && (order.size() >= cap || order.front().first < t - kMaxAge)) {
        keys.Erase(order.front().second);
        order.pop_front();
      }
      // Both hashed apart and mixed: no string is built per delivery line.
      uint64_t h = std::hash<std::string_view>{}(id) * 0x9E3779B97F4A7C15ull ^ std::hash<std::string_view>{}(recipient);
      size_t hash = MixHash{}(h);
      if (keys.Find(h, hash) != keys.kNone) return true;
      keys.Insert(h, hash);
      order.emplace_back(t, h);
      return false;
    }
  };
  // The counts of a jail's address rules: rules that count the same events share a table,
  // a lane each (up to three), so a line from a new address costs one lookup, one insert
  // and one eviction for all of them. During one event `slot` holds the address's place.
  struct IpTable {
    uint64_t kinds = 0;
    std::vector<Rule*> rules;
    std::unique_ptr<IpWindows> one;        // a rule alone
    std::unique_ptr<IpPairWindows> two;    // two
    std::unique_ptr<IpLaneWindows> three;  // three
    static constexpr size_t kNoSlot = ~size_t{0};
    size_t slot = kNoSlot;
    template <class F>
    auto With(F&& f) {
      return one ? f(*one) : two ? f(*two) : f(*three);
    }
    template <class F>
    auto With(F&& f) const {
      return one ? f(*one) : two ? f(*two) : f(*three);
    }
  };
  struct Jail {
    const JailSpec* spec;
    SharedText name;  // shared by its ban orders (a lasting text)
    std::vector<std::unique_ptr<Rule>> rules;
    // Per event kind: the rules that count it, in order, and of those the account-keyed ones
    // (an event is offered to its kind's few rules only).
    std::array<std::vector<Rule*>, 64> by_kind;
    std::array<std::vector<const Rule*>, 64> account_by_kind;
    std::vector<IpTable> ip_tables;
    Correlator correlator;
    RelaySeen relayed;
    // Per connection (`conn` and address): what its lines counted, until the summary
    // line that closes it (Postfix "disconnect ... auth=0/3") counts only the rest.
    // Keyed by a hash of connection and address (no string per line: under a flood every
    // line opens a connection of its own).
    FlatMap<uint64_t, int, MixHash> tally;
    // The last matched lines, chained per address key and per account: the evidence of a
    // verdict is a walk down its key's chain. A fixed ring; a slot reused drops its links.
    struct Seen {
      uint64_t seq = 0, prev_ip = 0, prev_account = 0;
      size_t account_hash = 0;  // StringHash of account: its link goes without hashing it again
      int source = -1, kind = 0;
      std::optional<IpAddress> ip;
      std::string account, line;
    };
    std::vector<Seen> seen;
    // Per address key: the last accounts (hashed) it failed on, for `sprayed_from` rules
    // (kept only when the jail has one). At most kSprayKeys addresses, the oldest go first.
    struct FailedOn {
      std::array<std::pair<uint64_t, Time>, 8> recent{};
      uint8_t n = 0;
      IpAddress ip;
    };
    Seconds spray_within{0};
    // A ring of kSprayKeys addresses in the order they first failed, and where each is in
    // it: a new address takes the oldest's place (a botnet's every line is one), with no
    // node made or freed.
    FlatMap<IpAddress, uint32_t, IpAddressHash> failed_on;
    std::vector<FailedOn> failed_ring;
    size_t failed_oldest = 0;  // once the ring is full
    uint64_t seen_next = 1;
    std::vector<uint64_t> events;  // per kind id
    // Each line links itself in and the ring slot it takes unlinks an old one: flat tables
    // (at most kEvidenceRing keys each), no node per line.
    FlatMap<IpAddress, uint64_t, IpAddressHash> seen_by_ip;
    FlatMap<std::string, uint64_t, StringHash> seen_by_account;
    explicit Jail(const JailSpec* s)
        : spec(s), name(SharedText::Lasting(s->name)), correlator(s->correlate_entries, s->correlate_age), relayed{std::max<size_t>(s->correlate_entries, 1), {}, {}} {}
  };
  // Parse (on the matching thread, for a busy daemon or `check`) reads filters and format
  // of every line while OnParsed (the scoring thread) writes last and counts: those two
  // start a cache line of their own, or each line would move one line between the cores
  // twice (as current_line did, below).
  struct Source {
    std::unique_ptr<FilterSet> filters;
    std::vector<int> filter_global;            // local filter index -> global filter index
    std::vector<std::vector<int>> filter_jails;  // local filter index -> jails using it
    std::vector<std::vector<int>> pattern_kind;  // local filter, pattern -> kind id
    StampFormat format;
    alignas(64) Time last{};
    EngineCounts::Source counts;
  };
  struct Standing {
    int jail;
    const Rule* rule;
    Time until;
    SharedText account, reason;
    Time since{};  // when the verdict fired
  };
  std::unordered_map<std::string, Time> forgiven;             // account -> when
  std::unordered_set<std::string> allowed;                    // accounts: {allow: [...]}
  std::unordered_map<IpAddress, Time, IpAddressHash> exempt;  // address -> when its ban was lifted

  Config config;  // own copy: specs are referenced by pointer
  EngineOptions options;
  std::unique_ptr<MemoryBanBook> own_book;  // when options.book is not given
  std::vector<std::string> kinds;
  std::vector<std::string> jail_names;
  std::vector<std::string> filter_names;
  std::vector<const FilterSpec*> filter_specs;
  // Outage guards of patterns that have one, by global filter and pattern.
  struct Outage {
    std::unordered_map<IpAddress, Time, IpAddressHash> seen;  // address -> its latest line
    Time paused_until{};
  };
  std::unordered_map<uint64_t, Outage> outages;
  // Counts a line of connection `conn` for its summary, or, for a summary pattern, lowers
  // `count` by what the connection's lines counted. False when nothing is left to count.
  // `key` is TallyKey(conn, ip), made once per line for this and PrefetchFor.
  bool Tally(Jail& jail, int filter, int pattern, uint64_t key, int& count);
  static uint64_t TallyKey(std::string_view conn, std::string_view ip) {
    return ShortTextHash(conn.substr(0, 32)) * 0x9E3779B97F4A7C15ull ^ ShortTextHash(ip.substr(0, 64));
  }
  // Starts loading the slots an event of `kind` from `ip` (on a connection, tallied under
  // `tally_key`) will look up in `jail`'s tables: under a flood every one is a miss in
  // memory, and issued together, before any is read, they overlap instead of adding up.
  void PrefetchFor(const Jail& jail, int kind, const IpAddress* key, size_t key_hash, bool tallied,
                   uint64_t tally_key) const;
  // The same for the tables keyed by the event's account: the book and the account rules.
  void PrefetchAccount(const Jail& jail, int kind, size_t account_hash) const;
  // Whether AccountOf(jail, raw) is `raw` itself, byte for byte.
  bool AccountAsCaptured(const Jail& jail, std::string_view raw) const;
  // StringHash of an event's account, computed once for the book's and the account rules'
  // tables (an event is prefetched and scored with the same account, often once per
  // recipient): the last account hashed and its hash.
  size_t AccountHash(std::string_view account) const {
    if (account.size() != hashed_account_.size() || account != hashed_account_) {
      hashed_account_.assign(account);
      hashed_account_hash_ = StringHash{}(account);
    }
    return hashed_account_hash_;
  }
  mutable std::string hashed_account_;
  mutable size_t hashed_account_hash_ = StringHash{}(std::string_view{});
  // What Parse made on the matching thread for the event OnParsed hands to Process, taken by
  // Process for that very event only (`event`): the account's hash, and the address's
  // ignore-list answer, key and key hash (PatternHit). Either may be missing: a correlated
  // line may carry another account or address than the one captured.
  struct Hint {
    const Event* event = nullptr;
    bool has_account = false, has_key = false;
    size_t account_hash = 0;
    bool ignored = false;
    IpAddress key;
    size_t key_hash = 0;
  } hint;
  // The line being read (empty while replaying the journal): evidence for what it decides.
  int current_source = -1;
  std::string_view current_line;
  void Remember(Jail& jail, const Event& ev, const std::optional<IpAddress>& ip_key, size_t account_hash);
  // `sprayed_from`: notes a failure naming an account from an address; whether an event
  // comes from an address that failed on enough other accounts lately.
  // (The account by its AccountHash, made once per event for every table keyed by it.)
  static void NoteFailure(Jail& jail, const IpAddress& ip, uint64_t account_hash, Time t);
  static bool Sprayed(const Jail& jail, const Rule& rule, const IpAddress& ip, uint64_t account_hash, Time t);
  // The lines behind a decision of `rule` on the address or the account (Order::evidence):
  // copied, or only counted while lines_wanted is false.
  EvidenceLines EvidenceOf(const Jail& jail, const Rule& rule, const IpAddress* ip, const std::string* account) const;
  // Calls f(seen) for each of those lines, newest first.
  template <class F>
  void ForEachEvidence(const Jail& jail, const Rule& rule, const IpAddress* ip, const std::string* account, F&& f) const;
  // Engine::SetEvidenceLines.
  bool lines_wanted = true;
  // Whether the guard of this pattern holds the event back (it counts the address first).
  bool OutageHolds(int filter, int pattern, const IpAddress* ip, Time t, EngineOutput& out);
  std::vector<std::unique_ptr<Jail>> jails;
  // Read by Parse for every line, on the matching thread: not in a cache line that the
  // scoring thread writes (current_line just above, for every line, was: the line went
  // between the cores twice a line, and `check` on a botnet's million lines was 3-5 %
  // slower for it).
  alignas(64) std::vector<Source> sources;
  alignas(64) BanPolicy policy;
  AccountBook accounts;
  // Per-account habits (relative and new_network rules), and the accounts that logged in
  // from a new network lately: account -> until when their thresholds are lowered.
  AccountHistory history;
  bool uses_history = false;
  Seconds new_network_warmup{0}, new_network_for{0};
  std::unordered_map<std::string, Time> new_network_until;
  // The threshold an account rule holds `account` to now, and why (empty: its own).
  int Threshold(const Rule& rule, const std::string& account, Time t, std::string& why);
  // Account verdicts in force: account -> rule -> verdict.
  std::unordered_map<std::string, std::map<const Rule*, Standing>> standing;
  EngineStats stats;
  std::function<void(const Event&)> observer;
  std::vector<PatternHit> hits;       // scratch (OnLine)
  std::deque<std::string> rewritten;  // scratch (OnLine): an RFC 5424 line rewritten for the filters
  Time last_sweep{};
  Time newest{};  // the latest log time of an event: the clock windows count on

  explicit Impl(Config c, EngineOptions o)
      : config(std::move(c)),
        options(std::move(o)),
        own_book(options.book ? nullptr : std::make_unique<MemoryBanBook>()),
        policy(config.ignore, config.ban, config.ipv6_prefix, options.book ? *options.book : *own_book,
               config.max_tracked),
        accounts(config.max_tracked),
        history(config.max_tracked) {
    allowed.insert(config.allowed_accounts.begin(), config.allowed_accounts.end());
  }

  int KindId(const std::string& name) {
    auto it = std::find(kinds.begin(), kinds.end(), name);
    if (it != kinds.end()) return static_cast<int>(it - kinds.begin());
    kinds.push_back(name);
    return static_cast<int>(kinds.size() - 1);
  }
  int FilterId(const std::string& name) {
    auto it = std::find(filter_names.begin(), filter_names.end(), name);
    if (it != filter_names.end()) return static_cast<int>(it - filter_names.begin());
    filter_names.push_back(name);
    filter_specs.push_back(&config.filters.at(name));
    return static_cast<int>(filter_names.size() - 1);
  }

  void Process(const Event& ev, EngineOutput& out);
  void AccountVerdictNow(const Jail& jail, Rule& rule, int jail_index, const std::string& account, Time t,
                         const std::string& why, std::string_view hook_ip, EngineOutput& out, bool report);
  // `account` and `reason` are SharedText (copied into the order) or, for a verdict's
  // fan-out, SharedTextCopies (taken from copies counted for all its bans).
  template <class Text>
  void Emit(const Jail& jail, const Rule& rule, const IpAddress& ip, Time t, Text& account, Text& reason,
            EngineOutput& out, const EvidenceLines& evidence);
  void Emit(const Jail& jail, const Rule& rule, const IpAddress& ip, Time t, const SharedText& account,
            const SharedText& reason, EngineOutput& out, const EvidenceLines& evidence) {
    Emit<const SharedText>(jail, rule, ip, t, account, reason, out, evidence);
  }
  // The address keys a jail's orders just banned, and for how long. Once no slot of the
  // jail's address tables is held (ForgetBanned), a table whose every window the ban
  // outlasts forgets the address: in a live daemon the ban blocks it, so nothing it counted
  // there would still be inside a window when the ban ends (a shorter ban leaves its counts
  // be: the address may come back within them). A replay or a dry run then counts as the
  // daemon would have, and under a botnet whose every address is banned within a few lines,
  // the tables hold the few addresses not yet decided, not the last 200,000.
  struct Banned {
    const Jail* jail;
    IpAddress key;
    Seconds duration;  // 0: permanent
  };
  std::vector<Banned> banned_now;
  void ForgetBanned();
  // In a journal's replay: a verdict on `ip` at `t` whose ban the ledger holds.
  void ReplayedBan(const Jail& jail, const IpAddress& ip, Time t);
  void AccountOf(const Jail& jail, std::string_view raw, std::string& out) const;
  Event scratch;  // reused for every hit, so its strings keep their buffers
  std::function<void(Time, std::string_view)> journal;
  ByteWriter record;  // reused for every journal record
  bool replaying = false;
  bool fleet_counting = false;
  void Record(const Event& ev);
  void PushFleetCount(const Jail& jail, const Rule& rule, const std::string& subject, const Event& ev,
                      std::string_view rdomain, int local_count, EngineOutput& out);
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(const Config& config, EngineOptions options) {
  auto impl = std::make_unique<Impl>(config, std::move(options));
  for (const char* k : kStandardKinds) impl->KindId(k);
  for (const auto& [name, f] : impl->config.filters)
    for (const auto& k : f.kinds) impl->KindId(k);
  uint32_t next_rule_id = 0, next_table_id = 0;
  for (const JailSpec& j : impl->config.jails) {
    if (!impl->options.jails.empty() &&
        std::find(impl->options.jails.begin(), impl->options.jails.end(), j.name) == impl->options.jails.end())
      continue;
    if (impl->options.only_enabled && j.enabled == Enabled::kNo) continue;
    auto jail = std::make_unique<Impl::Jail>(&j);
    for (const RuleSpec& r : j.rules) {
      auto rule = std::make_unique<Impl::Rule>(&r, impl->config.max_tracked, next_rule_id++);
      for (const auto& e : r.events) {
        int id = impl->KindId(e);
        if (id >= 64) return Fail(Error{"too many event kinds (at most 64)", r.where});
        rule->kinds |= uint64_t{1} << id;
        rule->confirmed = rule->confirmed || id == kAuthSuccess || id == kRelay;
      }
      std::string what = r.distinct == Field::kNone ? "events" : std::string("distinct ") + FieldName(r.distinct);
      rule->reason = std::to_string(r.threshold) + " " + what + " within " + FormatDuration(r.window);
      if (r.sprayed_accounts > 0) {
        rule->reason += " from an address that failed on " + std::to_string(r.sprayed_accounts) +
                        " other account" + (r.sprayed_accounts > 1 ? "s" : "") + " within " + FormatDuration(r.sprayed_within);
        jail->spray_within = std::max(jail->spray_within, r.sprayed_within);
      }
      rule->ip_reason = SharedText::Lasting(r.name + ": " + rule->reason);
      if (r.relative_factor > 0 || r.new_network_factor > 0) impl->uses_history = true;
      if (r.new_network_factor > 0) {
        impl->new_network_for = std::max(impl->new_network_for, r.new_network_for);
        impl->new_network_warmup = impl->new_network_warmup.count() == 0 ? r.new_network_warmup
                                                                           : std::min(impl->new_network_warmup, r.new_network_warmup);
      }
      if (r.key == RuleKey::kIp) {
        auto t = std::find_if(jail->ip_tables.begin(), jail->ip_tables.end(), [&](const Impl::IpTable& x) {
          return x.kinds == rule->kinds && x.rules.size() < IpLaneWindows::kLanes;
        });
        if (t == jail->ip_tables.end()) t = jail->ip_tables.insert(t, Impl::IpTable{rule->kinds, {}, nullptr, nullptr, nullptr});
        rule->table = static_cast<int>(t - jail->ip_tables.begin());
        rule->lane = t->rules.size();
        t->rules.push_back(rule.get());
      }
      for (int k = 0; k < 64; ++k)
        if ((rule->kinds >> k) & 1) {
          jail->by_kind[static_cast<size_t>(k)].push_back(rule.get());
          if (r.key == RuleKey::kAccount) jail->account_by_kind[static_cast<size_t>(k)].push_back(rule.get());
        }
      jail->rules.push_back(std::move(rule));
    }
    for (Impl::IpTable& t : jail->ip_tables) {
      auto spec = [](const Impl::Rule* r) {
        return WindowSpec{r->spec->threshold, r->spec->window, r->spec->distinct != Field::kNone};
      };
      size_t phase = 2 * next_table_id++, max_keys = impl->config.max_tracked;
      if (t.rules.size() == 1)
        t.one = std::make_unique<IpWindows>(std::array<WindowSpec, 1>{spec(t.rules[0])}, max_keys, phase);
      else if (t.rules.size() == 2)
        t.two = std::make_unique<IpPairWindows>(std::array<WindowSpec, 2>{spec(t.rules[0]), spec(t.rules[1])}, max_keys, phase);
      else
        t.three = std::make_unique<IpLaneWindows>(
            std::array<WindowSpec, 3>{spec(t.rules[0]), spec(t.rules[1]), spec(t.rules[2])}, max_keys, phase);
    }
    for (const auto& f : j.filters) impl->FilterId(f);
    impl->jail_names.push_back(j.name);
    impl->jails.push_back(std::move(jail));
  }
  for (const auto& name : impl->options.jails)
    if (std::find(impl->jail_names.begin(), impl->jail_names.end(), name) == impl->jail_names.end())
      return Fail("no jail named '" + name + "' in the configuration");
  impl->stats.events.assign(impl->kinds.size(), 0);
  for (auto& j : impl->jails) j->events.assign(impl->kinds.size(), 0);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<int> Engine::AddSource(const std::vector<std::string>& jail_list, StampFormat format) {
  Impl& m = *impl_;
  Impl::Source src;
  src.format = format;
  std::vector<int> jail_ids;
  for (size_t j = 0; j < m.jail_names.size(); ++j)
    if (jail_list.empty() || std::find(jail_list.begin(), jail_list.end(), m.jail_names[j]) != jail_list.end())
      jail_ids.push_back(static_cast<int>(j));
  std::vector<const FilterSpec*> specs;
  for (int j : jail_ids) {
    for (const auto& fname : m.jails[static_cast<size_t>(j)]->spec->filters) {
      int global = m.FilterId(fname);
      auto it = std::find(src.filter_global.begin(), src.filter_global.end(), global);
      size_t local;
      if (it == src.filter_global.end()) {
        local = src.filter_global.size();
        src.filter_global.push_back(global);
        src.filter_jails.emplace_back();
        specs.push_back(m.filter_specs[static_cast<size_t>(global)]);
        std::vector<int> kinds;
        for (const auto& p : specs.back()->patterns) kinds.push_back(m.KindId(p.kind));
        src.pattern_kind.push_back(std::move(kinds));
      } else {
        local = static_cast<size_t>(it - src.filter_global.begin());
      }
      src.filter_jails[local].push_back(j);
    }
  }
  auto set = FilterSet::Build(specs);
  if (!set) return Fail(set.error());
  src.filters = std::move(set.value());
  m.stats.events.resize(m.kinds.size(), 0);
  for (auto& j : m.jails) j->events.resize(m.kinds.size(), 0);
  m.sources.push_back(std::move(src));
  return static_cast<int>(m.sources.size() - 1);
}

void Engine::SetEventObserver(std::function<void(const Event&)> observer) { impl_->observer = std::move(observer); }

void Engine::SetEvidenceLines(bool wanted) { impl_->lines_wanted = wanted; }

void Engine::SetJournal(std::function<void(Time, std::string_view)> record) { impl_->journal = std::move(record); }

Seconds Engine::LongestWindow() const {
  Seconds longest{0};
  for (const auto& j : impl_->jails) {
    longest = std::max(longest, j->spec->correlate_age);
    for (const auto& r : j->rules) longest = std::max(longest, r->spec->window);
  }
  return longest;
}

// A journal record: version, log time, jail and kind by name (ids differ between engines),
// then the event's fields.
void Engine::Impl::Record(const Event& ev) {
  record.clear();
  record.Byte(kJournalVersion);
  record.Varint(static_cast<uint64_t>(std::max<int64_t>(0, ev.time.time_since_epoch().count())));
  record.Bytes(jail_names[static_cast<size_t>(ev.jail)]);
  record.Bytes(kinds[static_cast<size_t>(ev.kind)]);
  if (!ev.ip) {
    record.Byte(0);
  } else {
    record.Byte(ev.ip->is_v4() ? 4 : 6);
    record.str().append(reinterpret_cast<const char*>(ev.ip->bytes().data()), ev.ip->is_v4() ? 4 : 16);
  }
  for (const std::string* f : {&ev.account, &ev.sender, &ev.recipient, &ev.id, &ev.session}) record.Bytes(*f);
  record.Varint(static_cast<uint64_t>(ev.count));
  journal(ev.time, record.str());
}

void Engine::Forgive(const std::string& account, Time at) {
  Impl& m = *impl_;
  m.standing.erase(account);
  for (auto& jail : m.jails)
    for (auto& rule : jail->rules)
      if (rule->spec->key == RuleKey::kAccount) rule->account_windows.Erase(account);
  m.accounts.ClearVerdicts(account);
  Time& f = m.forgiven[account];
  f = std::max(f, at);
}

void Engine::Exempt(const IpAddress& ip, Time at) {
  auto& ex = impl_->exempt;
  if (ex.size() >= 100000)  // lifted by hand, one by one: a bound that is never reached in use
    for (auto it = ex.begin(); it != ex.end();) it = it->second < at - std::chrono::hours(24 * 30) ? ex.erase(it) : std::next(it);
  Time& e = ex[ip];
  e = std::max(e, at);
}

bool Engine::Replay(std::string_view data) {
  Impl& m = *impl_;
  ByteReader r(data);
  auto version = r.Byte();
  if (!version || *version != kJournalVersion) return false;
  auto us = r.Varint();
  auto jail = r.Bytes(256);
  auto kind = r.Bytes(256);
  auto family = r.Byte();
  if (!us || !jail || !kind || !family) return false;
  Event& ev = m.scratch;
  ev.time = Time(Micros(static_cast<int64_t>(*us)));
  auto j = std::find(m.jail_names.begin(), m.jail_names.end(), *jail);
  auto k = std::find(m.kinds.begin(), m.kinds.end(), *kind);
  ev.ip.reset();
  if (*family == 4 || *family == 6) {
    std::array<uint8_t, 16> bytes{};
    for (int i = 0; i < (*family == 4 ? 4 : 16); ++i) {
      auto b = r.Byte();
      if (!b) return false;
      bytes[static_cast<size_t>(i)] = *b;
    }
    ev.ip = *family == 4 ? IpAddress::V4(uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | bytes[3])
                         : IpAddress::V6(bytes);
  } else if (*family != 0) {
    return false;
  }
  for (std::string* f : {&ev.account, &ev.sender, &ev.recipient, &ev.id, &ev.session}) {
    auto v = r.Bytes(4096);
    if (!v) return false;
    f->assign(*v);
  }
  auto count = r.Varint();
  if (!count || !r.done()) return false;
  if (j == m.jail_names.end() || k == m.kinds.end()) return false;
  ev.jail = static_cast<int>(j - m.jail_names.begin());
  ev.kind = static_cast<int>(k - m.kinds.begin());
  ev.count = static_cast<int>(std::min<uint64_t>(*count, 100));
  ev.filter = ev.pattern = 0;
  Impl::Jail& jl = *m.jails[static_cast<size_t>(ev.jail)];
  if (!ev.id.empty() || !ev.session.empty()) {
    JoinedFields f{ev.ip, ev.account, ev.sender};
    jl.correlator.Join(ev.id, ev.session, ev.time, f);
  }
  m.replaying = true;
  EngineOutput none;
  m.Process(ev, none);
  m.replaying = false;
  return true;
}
const EngineStats& Engine::stats() const { return impl_->stats; }

std::vector<std::pair<std::string, std::string>> Engine::TakeAccountHistory(size_t limit, bool all) {
  if (all) impl_->history.MarkAllChanged();
  return impl_->history.TakeChanged(limit);
}
bool Engine::RestoreAccountHistory(std::string_view account, std::string_view bytes) {
  return impl_->history.Restore(account, bytes);
}
bool Engine::MergeAccountHistory(std::string_view account, std::string_view bytes) {
  return impl_->history.Merge(account, bytes);
}
void Engine::AccountHistoryUnsaved(const std::string& account) { impl_->history.MarkChanged(account); }
bool Engine::uses_account_history() const { return impl_->uses_history; }

std::optional<AccountHistory::Usual> Engine::AccountHabits(const std::string& account, Time now) const {
  if (!impl_->uses_history) return std::nullopt;
  AccountHistory::Usual u = impl_->history.UsualDay(account, now);
  if (u.days == 0 && u.today == 0 && u.relays_today == 0 && u.login_hours.empty() && u.usual == 0) return std::nullopt;
  return u;
}

EngineCounts Engine::counts() const {
  const Impl& m = *impl_;
  EngineCounts c;
  for (const auto& src : m.sources) c.sources.push_back(src.counts);
  for (const auto& j : m.jails) {
    for (size_t k = 0; k < j->events.size() && k < m.kinds.size(); ++k)
      if (j->events[k] > 0) c.events.push_back({j->spec->name, m.kinds[k], j->events[k]});
    for (const auto& r : j->rules) c.verdicts.push_back({j->spec->name, r->spec->name, r->spec->key, r->verdicts});
  }
  return c;
}
BanPolicy& Engine::policy() { return impl_->policy; }
const AccountBook& Engine::accounts() const { return impl_->accounts; }
const std::vector<std::string>& Engine::kind_names() const { return impl_->kinds; }
const std::vector<std::string>& Engine::jail_names() const { return impl_->jail_names; }
const std::vector<std::string>& Engine::filter_names() const { return impl_->filter_names; }

EngineEvictions Engine::evictions() const {
  const Impl& m = *impl_;
  EngineEvictions e;
  for (const auto& j : m.jails) {
    e.correlation += j->correlator.evicted();
    for (const auto& r : j->rules) e.windows += r->account_windows.evicted();
    for (const auto& t : j->ip_tables) e.windows += t.With([](const auto& w) { return w.evicted(); });
  }
  e.accounts = m.accounts.evicted();
  e.offences = m.policy.offences().evicted();
  return e;
}

void Engine::Impl::AccountOf(const Jail& jail, std::string_view raw, std::string& out) const {
  // Accounts are keyed lower-case; "(unknown)" and "<>" mean no account was given.
  // (AccountAsCaptured tells, without copying, when all this leaves `raw` as it is: a rule
  // changed here changes there.)
  while (!raw.empty() && (raw.front() == '<' || raw.front() == ' ')) raw.remove_prefix(1);
  while (!raw.empty() && (raw.back() == '>' || raw.back() == ' ')) raw.remove_suffix(1);
  if (raw.empty() || raw == "(unknown)" || raw.size() > 256) {
    out.clear();
    return;
  }
  CleanAddress(raw, out);
  if (!jail.spec->account_domain.empty() && out.find('@') == std::string::npos) {
    out += '@';
    out += jail.spec->account_domain;
  }
}

bool Engine::Impl::AccountAsCaptured(const Jail& jail, std::string_view raw) const {
  // What AccountOf would trim, lower, refuse or add to, checked without copying.
  if (raw.empty() || raw.size() > 256 || raw == "(unknown)") return false;
  if (raw.front() == '<' || raw.front() == ' ') return false;
  if (raw.back() == '>' || raw.back() == ' ' || raw.back() == ',') return false;
  if (HasUpperAscii(raw)) return false;
  return jail.spec->account_domain.empty() || raw.find('@') != std::string_view::npos;
}

void Engine::OnLine(int source, std::string_view line, Time now, EngineOutput& out) {
  Impl& m = *impl_;
  m.hits.clear();
  if (!m.rewritten.empty()) m.rewritten.clear();
  ParsedLine parsed = Parse(source, line, now, m.hits, m.rewritten);
  Prefetch(source, parsed, m.hits.data());
  OnParsed(source, line, parsed, m.hits.data(), out);
}

Engine::ParsedLine Engine::Parse(int source, std::string_view line, Time now, std::vector<PatternHit>& hits,
                                 std::deque<std::string>& rewritten, StampMemo* memo) const {
  const Impl& m = *impl_;
  const Impl::Source& src = m.sources[static_cast<size_t>(source)];
  ParsedLine p;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > m.config.max_line || !IsCleanText(line)) {
    p.outcome = ParsedLine::Outcome::kUnclean;
    return p;
  }
  auto shape = DetectStamp(line, src.format);
  if (!shape) {
    p.outcome = line.empty() ? ParsedLine::Outcome::kEmpty : ParsedLine::Outcome::kNoStamp;
    return p;
  }
  std::string_view message = line.substr(shape->length);
  if (shape->format == StampFormat::kRfc5424) {
    // The filters see RFC 5424's header as a classic syslog line's: rewritten into storage of
    // the caller's, where the hits view it (a deque's elements stay put as it grows).
    rewritten.emplace_back();
    if (!Rfc5424Message(message, rewritten.back())) {
      p.outcome = ParsedLine::Outcome::kNoStamp;
      return p;
    }
    message = rewritten.back();
  }
  size_t first = hits.size();
  p.rejected = src.filters->Match(message, hits);
  p.first_hit = static_cast<uint32_t>(first);
  p.hit_count = static_cast<uint32_t>(hits.size() - first);
  if (p.hit_count == 0) {
    p.outcome = p.rejected > 0 ? ParsedLine::Outcome::kAmbiguous : ParsedLine::Outcome::kNoHit;
    return p;
  }
  std::string_view stamp = line.substr(0, shape->length);
  std::optional<Time> t;
  if (memo && memo->engine == this && memo->source == source && memo->now == now && memo->text == stamp) {
    t = memo->time;
  } else {
    t = DecodeStamp(line, *shape, now, m.options.zone);
    if (memo && t) {
      memo->engine = this;
      memo->source = source;
      memo->now = now;
      memo->text.assign(stamp);
      memo->time = *t;
    }
  }
  if (!t) {
    p.outcome = ParsedLine::Outcome::kBadStamp;
    return p;
  }
  for (size_t h = first; h < hits.size(); ++h) {
    PatternHit& hit = hits[h];
    const Captures& c = hit.captures;
    if (!c.ip.empty()) hit.address = IpAddress::ParseLogged(c.ip);
    if (hit.address) {
      hit.ignored = m.policy.IsIgnored(*hit.address);
      if (!hit.ignored) {
        hit.key = m.policy.TargetFor(*hit.address).address();
        hit.key_hash = IpAddressHash{}(hit.key);
      }
    }
    if (!c.conn.empty()) hit.tally_key = Impl::TallyKey(c.conn, c.ip);
    if (!c.id.empty()) hit.id_hash = StringHash{}(c.id.substr(0, 128));
    const auto& jails_of_filter = src.filter_jails[static_cast<size_t>(hit.filter)];
    if (!c.account.empty() && !jails_of_filter.empty()) {
      hit.account_as_captured = m.AccountAsCaptured(*m.jails[static_cast<size_t>(jails_of_filter.front())], c.account);
      if (hit.account_as_captured) hit.account_hash = StringHash{}(c.account);
    }
  }
  p.outcome = ParsedLine::Outcome::kHits;
  p.time = *t;
  return p;
}

void Engine::OnParsed(int source, std::string_view line, const ParsedLine& parsed, const PatternHit* hits,
                      EngineOutput& out) {
  Impl& m = *impl_;
  Impl::Source& src = m.sources[static_cast<size_t>(source)];
  EngineCounts::Source& sc = src.counts;
  ++m.stats.lines;
  ++sc.lines;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  m.stats.ambiguous += static_cast<uint64_t>(parsed.rejected);
  switch (parsed.outcome) {
    case ParsedLine::Outcome::kEmpty:
    case ParsedLine::Outcome::kNoHit:
      return;
    case ParsedLine::Outcome::kUnclean:
      ++m.stats.skipped;
      ++sc.unclean;
      return;
    case ParsedLine::Outcome::kNoStamp:
      ++m.stats.skipped;
      ++sc.no_stamp;
      return;
    case ParsedLine::Outcome::kAmbiguous:
      ++m.stats.skipped;
      ++sc.ambiguous;
      return;
    case ParsedLine::Outcome::kBadStamp:
      ++m.stats.skipped;
      ++sc.bad_field;
      return;
    case ParsedLine::Outcome::kHits:
      break;
  }
  const Time t = parsed.time;
  src.last = t;
  bool yielded = false;
  m.current_source = source;
  m.current_line = line;
  for (uint32_t h = 0; h < parsed.hit_count; ++h) {
    const PatternHit& hit = hits[parsed.first_hit + h];
    const Captures& c = hit.captures;
    Event& ev = m.scratch;
    ev.ip.reset();
    ev.count = 1;
    ev.account.clear();
    ev.recipient.clear();
    ev.time = t;
    ev.filter = src.filter_global[static_cast<size_t>(hit.filter)];
    ev.pattern = hit.pattern;
    ev.kind = src.pattern_kind[static_cast<size_t>(hit.filter)][static_cast<size_t>(hit.pattern)];
    if (!c.ip.empty()) {
      ev.ip = hit.address;  // parsed by Parse
      if (!ev.ip) continue;  // a captured address that does not parse drops the event
    }
    if (!c.count.empty()) {
      int n = 1;
      auto [p, ec] = std::from_chars(c.count.data(), c.count.data() + c.count.size(), n);
      ev.count = (ec == std::errc() && n >= 1) ? std::min(n, 100) : 1;
    }
    const auto& jails_of_filter = src.filter_jails[static_cast<size_t>(hit.filter)];
    if (m.OutageHolds(ev.filter, ev.pattern, ev.ip ? &*ev.ip : nullptr, t, out)) {
      // Not counted, but its connection's summary must not count it either.
      for (int j : jails_of_filter)
        if (!c.conn.empty())
          (void)m.Tally(*m.jails[static_cast<size_t>(j)], ev.filter, ev.pattern, hit.tally_key, ev.count);
      continue;
    }
    CleanAddress(c.sender, ev.sender);
    // (Most patterns capture neither: clear() is a store, assign() a call.)
    if (c.id.empty()) ev.id.clear();
    else ev.id.assign(c.id.substr(0, 128));
    if (c.session.empty()) ev.session.clear();
    else ev.session.assign(c.session.substr(0, 128));
    for (size_t ji = 0; ji < jails_of_filter.size(); ++ji) {
      int j = jails_of_filter[ji];
      Impl::Jail& jail = *m.jails[static_cast<size_t>(j)];
      // Most filters feed one jail: only copy the event when another jail still needs it.
      std::optional<Event> copy;
      if (ji + 1 < jails_of_filter.size()) copy.emplace(ev);
      Event& je = copy ? *copy : ev;
      je.jail = j;
      // (The slots looked up next were prefetched lines ago: Engine::Prefetch.)
      uint64_t tally_key = hit.tally_key;
      if (!c.conn.empty() && !m.Tally(jail, je.filter, je.pattern, tally_key, je.count)) {
        yielded = true;  // a summary of attempts already counted
        continue;
      }
      // Cleaned and hashed by Parse, on the matching thread, when it is the captured text.
      Impl::Hint& hint = m.hint;
      hint.has_account = ji == 0 && hit.account_as_captured;
      if (hint.has_account) {
        je.account.assign(c.account);
        hint.account_hash = hit.account_hash;
      } else {
        m.AccountOf(jail, c.account, je.account);
      }
      hint.has_key = hit.address.has_value();
      hint.ignored = hit.ignored;
      hint.key = hit.key;
      hint.key_hash = hit.key_hash;
      if (!c.id.empty() || !c.session.empty()) {
        JoinedFields f{je.ip, std::move(je.account), std::move(je.sender)};
        jail.correlator.JoinHashed(c.id.substr(0, 128), hit.id_hash, c.session.substr(0, 128), je.time, f);
        je.ip = f.ip;
        je.account = std::move(f.account);
        je.sender = std::move(f.sender);
        // Correlation may have brought the account or the address of another line.
        hint.has_account = hint.has_account && je.account == c.account;
        hint.has_key = hint.has_key && je.ip == hit.address;
      }
      if (!je.account.empty() && !hint.has_account) m.PrefetchAccount(jail, je.kind, m.AccountHash(je.account));
      hint.event = &je;
      // One line may list several recipients (Sendmail "to=<a>,<b>", Exim "for a b").
      std::string_view rcpts = c.recipient;
      size_t emitted = 0;
      do {
        size_t cut = rcpts.find_first_of(", ");
        std::string_view one = rcpts.substr(0, cut);
        rcpts = cut == std::string_view::npos ? std::string_view{} : rcpts.substr(cut + 1);
        if (one.empty() && !c.recipient.empty()) continue;
        CleanAddress(one, je.recipient);
        yielded = true;
        m.Process(je, out);
      } while (!rcpts.empty() && ++emitted < kMaxRecipientsPerLine);
      m.hint.event = nullptr;
    }
  }
  m.current_line = {};
  if (yielded) {
    ++m.stats.matched;
    ++sc.matched;
    sc.newest = std::max(sc.newest, t);
  } else {
    ++m.stats.skipped;
    ++sc.bad_field;
  }
  m.newest = std::max(m.newest, t);
  if (t - m.last_sweep > std::chrono::minutes(10)) OnTick(t);
}

void Engine::Prefetch(int source, const ParsedLine& parsed, const PatternHit* hits) const {
  if (parsed.outcome != ParsedLine::Outcome::kHits) return;
  const Impl& m = *impl_;
  const Impl::Source& src = m.sources[static_cast<size_t>(source)];
  for (uint32_t h = 0; h < parsed.hit_count; ++h) {
    const PatternHit& hit = hits[parsed.first_hit + h];
    const auto f = static_cast<size_t>(hit.filter);
    int kind = src.pattern_kind[f][static_cast<size_t>(hit.pattern)];
    const auto& jails_of_filter = src.filter_jails[f];
    const IpAddress* key = hit.address && !hit.ignored ? &hit.key : nullptr;
    for (size_t ji = 0; ji < jails_of_filter.size(); ++ji) {
      const Impl::Jail& jail = *m.jails[static_cast<size_t>(jails_of_filter[ji])];
      m.PrefetchFor(jail, kind, key, hit.key_hash, !hit.captures.conn.empty(), hit.tally_key);
      // A queue id's entry (under a flood of messages every one is new: a miss in memory).
      if (!hit.captures.id.empty()) jail.correlator.Prefetch(hit.id_hash);
      // (The account's hash is known only where it is the captured text: the first jail's.)
      if (ji == 0 && hit.account_as_captured) m.PrefetchAccount(jail, kind, hit.account_hash);
    }
    if (key) m.policy.Prefetch(*hit.address);
    if (hit.account_as_captured) m.accounts.PrefetchSpare(ParsedLines::kAhead);  // a new name a line, as far ahead
  }
}

void Engine::Impl::NoteFailure(Jail& jail, const IpAddress& ip, uint64_t account_hash, Time t) {
  constexpr size_t kSprayKeys = 65536;
  size_t ip_hash = IpAddressHash{}(ip);
  size_t slot = jail.failed_on.Find(ip, ip_hash);
  uint32_t at;
  if (slot != jail.failed_on.kNone) {
    at = jail.failed_on.ValueAt(slot);
  } else {
    if (jail.failed_ring.size() < kSprayKeys) {
      at = static_cast<uint32_t>(jail.failed_ring.size());
      jail.failed_ring.emplace_back();
    } else {
      at = static_cast<uint32_t>(jail.failed_oldest);
      jail.failed_oldest = (jail.failed_oldest + 1) % kSprayKeys;
      jail.failed_on.Erase(jail.failed_ring[at].ip);
      jail.failed_ring[at] = Jail::FailedOn{};
    }
    jail.failed_ring[at].ip = ip;
    jail.failed_on.ValueAt(jail.failed_on.Insert(ip, ip_hash)) = at;
  }
  Jail::FailedOn& f = jail.failed_ring[at];
  uint64_t h = account_hash;
  for (uint8_t i = 0; i < f.n; ++i)
    if (f.recent[i].first == h) {
      f.recent[i].second = t;
      return;
    }
  if (f.n < f.recent.size()) {
    f.recent[f.n++] = {h, t};
    return;
  }
  auto oldest = std::min_element(f.recent.begin(), f.recent.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  *oldest = {h, t};
}

bool Engine::Impl::Sprayed(const Jail& jail, const Rule& rule, const IpAddress& ip, uint64_t account_hash, Time t) {
  const uint32_t* where = jail.failed_on.Get(ip);
  if (!where) return false;
  const Jail::FailedOn& f = jail.failed_ring[*where];
  uint64_t own = account_hash;
  int others = 0;
  for (uint8_t i = 0; i < f.n; ++i) {
    const auto& [h, at] = f.recent[i];
    if (h != own && at >= t - rule.spec->sprayed_within && at <= t) ++others;
  }
  return others >= rule.spec->sprayed_accounts;
}

void Engine::Impl::PrefetchFor(const Jail& jail, int kind, const IpAddress* key, size_t key_hash, bool tallied,
                               uint64_t tally_key) const {
  if (tallied) jail.tally.Prefetch(tally_key);
  if (!key) return;
  uint64_t bit = uint64_t{1} << kind;
  for (const IpTable& t : jail.ip_tables)
    if ((t.kinds & bit) != 0) t.With([&](const auto& w) { w.PrefetchHashed(key_hash); });
  if (options.evidence) jail.seen_by_ip.PrefetchHashed(key_hash);
}

void Engine::Impl::PrefetchAccount(const Jail& jail, int kind, size_t hash) const {
  accounts.PrefetchHashed(hash);
  if (kind >= 64) return;
  for (const Rule* r : jail.account_by_kind[static_cast<size_t>(kind)]) r->account_windows.PrefetchHashed(hash);
}

void Engine::Impl::Remember(Jail& jail, const Event& ev, const std::optional<IpAddress>& ip_key, size_t account_hash) {
  if (jail.seen.empty()) jail.seen.resize(kEvidenceRing);
  Jail::Seen& s = jail.seen[jail.seen_next % kEvidenceRing];
  if (s.seq != 0) {  // the slot's old line goes: so do the links that end at it
    if (s.ip)
      if (size_t i = jail.seen_by_ip.Find(*s.ip); i != jail.seen_by_ip.kNone && jail.seen_by_ip.ValueAt(i) == s.seq)
        jail.seen_by_ip.EraseAt(i);
    if (!s.account.empty())
      if (size_t i = jail.seen_by_account.Find(s.account, s.account_hash);
          i != jail.seen_by_account.kNone && jail.seen_by_account.ValueAt(i) == s.seq)
        jail.seen_by_account.EraseAt(i);
  }
  s.seq = jail.seen_next++;
  s.source = current_source;
  s.kind = ev.kind;
  s.line.assign(current_line.substr(0, kEvidenceLineBytes));
  s.ip = ip_key;
  s.prev_ip = 0;
  if (ip_key) {
    uint64_t& head = jail.seen_by_ip[*ip_key];
    s.prev_ip = head;
    head = s.seq;
  }
  s.account.assign(ev.account);
  s.prev_account = 0;
  if (!ev.account.empty()) {
    s.account_hash = account_hash;
    size_t i = jail.seen_by_account.Find(ev.account, s.account_hash);
    if (i == jail.seen_by_account.kNone) i = jail.seen_by_account.Insert(ev.account, s.account_hash);
    uint64_t& head = jail.seen_by_account.ValueAt(i);
    s.prev_account = head;
    head = s.seq;
  }
}

template <class F>
void Engine::Impl::ForEachEvidence(const Jail& jail, const Rule& rule, const IpAddress* ip, const std::string* account,
                                   F&& f) const {
  uint64_t seq = 0;
  if (ip) {
    if (const uint64_t* head = jail.seen_by_ip.Get(*ip)) seq = *head;
  } else if (account) {
    if (const uint64_t* head = jail.seen_by_account.Get(*account)) seq = *head;
  }
  // A line may sit in the chain more than once (one per recipient it listed).
  const std::string* last = nullptr;
  for (size_t n = 0; seq != 0 && n < kEvidenceLines && !jail.seen.empty();) {
    const Jail::Seen& s = jail.seen[seq % kEvidenceRing];
    if (s.seq != seq) break;  // overwritten: older lines are gone
    if ((rule.kinds & (uint64_t{1} << s.kind)) != 0 && (!last || *last != s.line)) {
      f(s);
      last = &s.line;
      ++n;
    }
    seq = ip ? s.prev_ip : s.prev_account;
  }
}

EvidenceLines Engine::Impl::EvidenceOf(const Jail& jail, const Rule& rule, const IpAddress* ip,
                                       const std::string* account) const {
  if (!lines_wanted) {
    size_t n = 0;
    ForEachEvidence(jail, rule, ip, account, [&](const Jail::Seen&) { ++n; });
    return EvidenceLines::Counted(n);
  }
  std::vector<Evidence> out;
  ForEachEvidence(jail, rule, ip, account, [&](const Jail::Seen& s) { out.push_back({s.source, s.line}); });
  std::reverse(out.begin(), out.end());
  return out;
}

bool Engine::Impl::Tally(Jail& jail, int filter, int pattern, uint64_t key, int& count) {
  constexpr size_t kMaxTally = 65536;  // connections whose summary never came: dropped at once
  if (filter_specs[static_cast<size_t>(filter)]->patterns[static_cast<size_t>(pattern)].summary) {
    if (size_t i = jail.tally.Find(key); i != jail.tally.kNone) {
      count -= jail.tally.ValueAt(i);
      jail.tally.EraseAt(i);
    }
    return count > 0;
  }
  if (jail.tally.size() >= kMaxTally) jail.tally.Reset();
  jail.tally[key] += count;
  return true;
}

bool Engine::Impl::OutageHolds(int filter, int pattern, const IpAddress* ip, Time t, EngineOutput& out) {
  const PatternSpec& spec = filter_specs[static_cast<size_t>(filter)]->patterns[static_cast<size_t>(pattern)];
  const OutageGuard& g = spec.outage;
  if (g.addresses <= 0 || replaying) return false;
  Outage& o = outages[(static_cast<uint64_t>(filter) << 32) | static_cast<uint32_t>(pattern)];
  if (t < o.paused_until) {
    ++stats.outage_suppressed;
    return true;
  }
  if (!ip) return false;
  o.seen[*ip] = t;
  if (o.seen.size() > static_cast<size_t>(g.addresses)) {
    // Drop what is older than the window first; still too many: an outage.
    for (auto it = o.seen.begin(); it != o.seen.end();) it = it->second < t - g.within ? o.seen.erase(it) : std::next(it);
    if (o.seen.size() > static_cast<size_t>(g.addresses)) {
      o.paused_until = t + g.pause;
      ++stats.outages;
      ++stats.outage_suppressed;
      out.notices.push_back("filter " + filter_names[static_cast<size_t>(filter)] + " pattern #" + std::to_string(pattern) +
                            " (" + spec.kind + "): " + std::to_string(o.seen.size()) + " addresses within " +
                            FormatDuration(g.within) + " - taken as an outage of the server, not " +
                            std::to_string(o.seen.size()) + " attackers; not counted for " + FormatDuration(g.pause));
      o.seen.clear();
      return true;
    }
  }
  return false;
}

template <class Text>
void Engine::Impl::Emit(const Jail& jail, const Rule& rule, const IpAddress& ip, Time t, Text& account, Text& reason,
                        EngineOutput& out, const EvidenceLines& evidence) {
  if (replaying) {  // the journal rebuilds counts; the bans are the ledger's
    ReplayedBan(jail, ip, t);
    return;
  }
  auto order = policy.Ban(ip, rule.spec->ban, t, jail.name, rule.name, account, reason);
  if (!order) return;
  order->evidence = evidence;
  banned_now.push_back({&jail, order->target.address(), order->duration});
  if (!jail.spec->on_ban.empty())
    out.hooks.push_back(MakeHook(jail.spec->on_ban, order->target.ToString(), order->account, jail.spec->name,
                                 rule.spec->name, order->duration));
  out.orders.push_back(std::move(*order));
}

void Engine::Impl::Process(const Event& ev, EngineOutput& out) {
  // A message is relayed once per recipient, however many delivery attempts it takes.
  if (ev.kind == kRelay && !ev.id.empty() && !ev.recipient.empty() &&
      jails[static_cast<size_t>(ev.jail)]->relayed.Seen(ev.id, ev.recipient, ev.time)) {
    ++stats.relay_repeats;
    return;
  }
  if (!replaying) {
    ++stats.events[static_cast<size_t>(ev.kind)];
    ++jails[static_cast<size_t>(ev.jail)]->events[static_cast<size_t>(ev.kind)];
    if (observer) observer(ev);
    if (journal) Record(ev);
  }
  Jail& jail = *jails[static_cast<size_t>(ev.jail)];
  uint64_t bit = uint64_t{1} << ev.kind;
  std::string_view rdomain = DomainOf(ev.recipient);
  // Mail for our own domains is delivered here, not relayed.
  bool local = ev.kind == kRelay && std::find(jail.spec->local_domains.begin(), jail.spec->local_domains.end(),
                                              rdomain) != jail.spec->local_domains.end();
  // The account as the account tables hash it, made once an event (distinct accounts are
  // counted by it too).
  const bool hinted = hint.event == &ev;
  const size_t account_hash =
      ev.account.empty() ? 0 : hinted && hint.has_account ? hint.account_hash : AccountHash(ev.account);
  if (!ev.account.empty()) {
    auto outcome = ev.kind == kAuthSuccess        ? AccountBook::Outcome::kAuthSuccess
                   : ev.kind == kAuthFailure      ? AccountBook::Outcome::kAuthFailure
                   : (ev.kind == kRelay && !local) ? AccountBook::Outcome::kRelay
                                                  : AccountBook::Outcome::kOther;
    accounts.Record(ev.account, account_hash, outcome, local ? 0 : bit, ev.ip,
                    outcome == AccountBook::Outcome::kRelay ? rdomain : std::string_view{}, ev.time);
  }
  if (local) return;
  if (uses_history && !ev.account.empty()) {
    if (ev.kind == kRelay && !rdomain.empty()) {
      history.Relayed(ev.account, Hash64(rdomain), ev.time);
      history.RelayCounted(ev.account, ev.time);
    } else if (ev.kind == kAuthSuccess && ev.ip) {
      IpAddress net = ev.ip->Masked(ev.ip->is_v4() ? 24 : 64);
      if (history.LoggedIn(ev.account, IpAddressHash{}(net), ev.time, new_network_warmup) && new_network_for.count() > 0) {
        new_network_until[ev.account] = ev.time + new_network_for;
        ++stats.new_networks;
      }
    }
  }
  // A relay that correlation could not tie to an account is not an authenticated relay.
  if (ev.kind == kRelay && ev.account.empty()) return;

  // The key of per-IP rules: nothing for an ignored address, else its ban target's address.
  std::optional<IpAddress> ip_key;
  size_t ip_hash = 0;  // IpAddressHash of ip_key: every address table hashes its key alike
  if (hinted && hint.has_key) {
    if (!hint.ignored) {
      ip_key = hint.key;
      ip_hash = hint.key_hash;
    }
  } else if (ev.ip && !policy.IsIgnored(*ev.ip)) {
    ip_key = policy.TargetFor(*ev.ip).address();
    ip_hash = IpAddressHash{}(*ip_key);
  }
  if (options.evidence && !replaying && !current_line.empty()) Remember(jail, ev, ip_key, account_hash);
  if (jail.spray_within.count() > 0 && ev.kind == kAuthFailure && ip_key && !ev.account.empty())
    NoteFailure(jail, *ip_key, account_hash, ev.time);

  // While an account verdict stands, any address that logs in as the account or relays
  // through it is banned at once.
  if (ev.ip && !ev.account.empty() && (ev.kind == kAuthSuccess || ev.kind == kRelay)) {
    if (auto it = standing.find(ev.account); it != standing.end()) {
      for (auto v = it->second.begin(); v != it->second.end();) {
        if (v->second.until <= ev.time) {
          v = it->second.erase(v);
          continue;
        }
        auto ex = exempt.empty() ? exempt.end() : exempt.find(*ev.ip);
        if (!policy.IsBanned(*ev.ip, ev.time) && (ex == exempt.end() || ex->second < v->second.since)) {
          const Jail& vj = *jails[static_cast<size_t>(v->second.jail)];
          Emit(vj, *v->second.rule, *ev.ip, ev.time, v->second.account, v->second.reason, out,
               EvidenceOf(vj, *v->second.rule, nullptr, &ev.account));
        }
        ++v;
      }
      if (it->second.empty()) standing.erase(it);
    }
  }

  // Under a flood every key is new and each table lookup a miss in memory: start them all.
  if (ip_key)
    for (IpTable& t : jail.ip_tables)
      if ((t.kinds & bit) != 0) t.With([&](auto& w) { w.PrefetchHashed(ip_hash); });
  // The account's standing verdicts, looked up once for all the rules (an account under
  // attack is asked about by each account rule on every line of the flood), again only after
  // a verdict added one. The map's elements stay put when it grows; its iterators would not.
  std::map<const Rule*, Standing>* stands = nullptr;
  bool stands_known = false;
  auto standing_of_account = [&]() {
    if (!stands_known) {
      auto it = standing.empty() ? standing.end() : standing.find(ev.account);
      stands = it == standing.end() ? nullptr : &it->second;
      stands_known = true;
    }
    return stands;
  };
  static const std::vector<Rule*> kNoRules;
  for (Rule* rp : ev.kind < 64 ? jail.by_kind[static_cast<size_t>(ev.kind)] : kNoRules) {
    Rule& rule = *rp;
    auto value = DistinctValue(rule.spec->distinct, ev, rdomain, account_hash);
    if (!value) continue;
    bool fleet = fleet_counting && rule.spec->scope == RuleScope::kFleet;
    if (rule.spec->key == RuleKey::kIp) {
      if (!ip_key) continue;
      // The address's place in its table, found (or made) once for all the table's rules
      // and released after the last of them.
      IpTable& table = jail.ip_tables[static_cast<size_t>(rule.table)];
      if (table.slot == IpTable::kNoSlot)
        table.slot = table.With([&](auto& w) { return w.SlotHashed(*ip_key, ip_hash, ev.time); });
      if (fleet) {
        // Counted here too (for when Redis goes away), but the fleet decides.
        int n = table.With([&](auto& w) { return w.ObserveAt(table.slot, rule.lane, *value, ev.count, ev.time); });
        if (!replaying) PushFleetCount(jail, rule, ip_key->ToString(), ev, rdomain, n, out);
        continue;
      }
      if (!table.With([&](auto& w) { return w.AddAt(table.slot, rule.lane, *value, ev.count, ev.time); })) continue;
      ++stats.verdicts;
      if (!replaying) ++rule.verdicts;
      if (!ev.account.empty()) accounts.AddTargeted(ev.account, rule.spec->name);
      if (replaying) {
        ReplayedBan(jail, *ev.ip, ev.time);
        continue;
      }
      // Banned already, at least as long: no order, so no reason or evidence to build.
      if (policy.AlreadyCovered(*ev.ip, rule.spec->ban, ev.time)) continue;
      Emit(jail, rule, *ev.ip, ev.time, {}, rule.ip_reason, out,
           EvidenceOf(jail, rule, &*ip_key, nullptr));
    } else {
      if (ev.account.empty()) continue;
      if (rule.spec->sprayed_accounts > 0 && (!ip_key || !Sprayed(jail, rule, *ip_key, account_hash, ev.time))) continue;
      // A known bulk sender or roaming user: what it does is not abuse (failures naming it are).
      if (rule.confirmed && !allowed.empty() && allowed.count(ev.account) > 0) continue;
      if (!forgiven.empty())
        if (auto f = forgiven.find(ev.account); f != forgiven.end() && ev.time < f->second) continue;
      // While this rule's verdict on the account stands, new addresses are banned above;
      // counting on would only repeat the verdict, its fan-out and its hook.
      if (auto* st = standing_of_account()) {
        auto v = st->find(&rule);
        if (v != st->end() && v->second.until > ev.time) continue;
      }
      if (fleet) {
        int n = rule.account_windows.ObserveHashed(ev.account, account_hash, *value, ev.count, ev.time);
        if (!replaying) PushFleetCount(jail, rule, ev.account, ev, rdomain, n, out);
        continue;
      }
      std::string why;
      if (rule.dynamic) {
        int n = rule.account_windows.ObserveHashed(ev.account, account_hash, *value, ev.count, ev.time);
        int limit = Threshold(rule, ev.account, ev.time, why);
        if (n < limit) continue;
        rule.account_windows.Erase(ev.account);
        why = std::to_string(limit) + " " + (rule.spec->distinct == Field::kNone ? "events" : std::string("distinct ") + FieldName(rule.spec->distinct)) +
              " within " + FormatDuration(rule.spec->window) + " (" + why + ")";
      } else if (!rule.account_windows.AddHashed(ev.account, account_hash, *value, ev.count, ev.time)) {
        continue;
      }
      // The address for the rule's on_account hook, written only where there is one (a
      // flood of failures naming one account gives a verdict every few lines).
      char hook_ip[IpAddress::kMaxText];
      size_t hook_ip_size = !rule.spec->on_account.empty() && ev.ip ? ev.ip->WriteText(hook_ip) : 0;
      AccountVerdictNow(jail, rule, ev.jail, ev.account, ev.time, why, std::string_view(hook_ip, hook_ip_size), out, true);
      stands_known = false;
    }
  }
  for (IpTable& t : jail.ip_tables)
    if (t.slot != IpTable::kNoSlot) {
      t.With([&](auto& w) { w.Release(t.slot); });
      t.slot = IpTable::kNoSlot;
    }
  if (!banned_now.empty()) ForgetBanned();
}

void Engine::Impl::ReplayedBan(const Jail& jail, const IpAddress& ip, Time t) {
  // A ban this verdict made when it was live (the ledger's began at its second) made the
  // engine forget the address then: so it does now, or the counts after a restart would not
  // be the ones before it.
  if (auto held = policy.Held(ip); held && SecondsOf(held->start) == SecondsOf(t))
    banned_now.push_back({&jail, policy.TargetFor(ip).address(), held->duration});
}

void Engine::Impl::ForgetBanned() {
  for (const Banned& b : banned_now)
    for (const auto& j : jails)
      if (j.get() == b.jail)
        for (IpTable& t : j->ip_tables)
          t.With([&](auto& w) {
            if (b.duration.count() == 0 || b.duration >= w.horizon()) w.Erase(b.key);
          });
  banned_now.clear();
}

// An account rule's verdict: the account is marked, every address that used it for the rule's
// kinds in the window is banned, and (with `report`) the verdict is reported and its hook run.
void Engine::Impl::AccountVerdictNow(const Jail& jail, Rule& rule, int jail_index, const std::string& account, Time t,
                                     const std::string& why, std::string_view hook_ip, EngineOutput& out, bool report) {
  ++stats.verdicts;
  if (!replaying) ++rule.verdicts;
  // Only a rule that counts what the account did (logins, relays) says it was stolen; one
  // that counts failures naming it says it was attacked.
  if (rule.confirmed) accounts.AddVerdict(account, rule.spec->name);
  else accounts.AddTargeted(account, rule.spec->name);
  // Made once for all the verdict's bans.
  // (Built in one string: a flood of failures naming one account gives a verdict every
  // few lines, and the chain of additions allocated at each step.)
  const std::string& reached = why.empty() ? rule.reason : why;
  std::string text;
  text.reserve(rule.spec->name.size() + 10 + std::min<size_t>(account.size(), 80) + 3 + 9 + reached.size());
  text += rule.spec->name;
  text += ": account ";
  AppendPrintable(text, account, 80);
  text += " reached ";
  text += reached;
  SharedText reason = std::move(text);
  SharedText account_text = account;
  // Fan out to every address that used the account for this rule's kinds in the window.
  // While the bans of this rule's previous verdict on the account run, the addresses it
  // reached are banned: a repeated verdict only adds those seen since (a spray over many
  // addresses would otherwise go over all of them again at every verdict).
  // (Log times are whole seconds: of the addresses seen in the previous verdict's second,
  // only those used after it are new.)
  Time since = t - rule.spec->window;
  std::optional<uint32_t> after;
  if (auto previous = accounts.MarkFired(account, rule.id, t);
      previous && (rule.spec->ban.count() == 0 || (rule.spec->ban.count() > 0 && previous->at + rule.spec->ban > t)) &&
      previous->at >= since) {
    since = previous->at;
    after = previous->seq;
  }
  // Addresses seen before the account was forgiven are not part of the new abuse.
  if (!forgiven.empty())
    if (auto f = forgiven.find(account); f != forgiven.end() && f->second > since) {
      since = f->second;
      after.reset();
    }
  auto ips = accounts.IpsSince(account, since, rule.kinds, after);
  for (const IpAddress& ip : ips) policy.Prefetch(ip);
  // The orders' places too, for writing: the thread that reports them read them last, so
  // each first store would wait on that core's cache (a botnet's fan-out, order by order).
  if (!replaying) {
    size_t need = out.orders.size() + ips.size();
    if (out.orders.capacity() < need) out.orders.reserve(std::max(need, 2 * out.orders.capacity()));
    const char* to = reinterpret_cast<const char*>(out.orders.data() + out.orders.size());
    for (size_t b = 0; b < ips.size() * sizeof(Order); b += 64) __builtin_prefetch(to + b, 1);
  }
  EvidenceLines evidence = EvidenceOf(jail, rule, nullptr, &account);
  {
    SharedTextCopies account_copies(account_text, ips.size()), reason_copies(reason, ips.size());
    for (const IpAddress& ip : ips) Emit(jail, rule, ip, t, account_copies, reason_copies, out, evidence);
  }
  if (rule.confirmed && !replaying && report)
    out.verdicts.push_back(
        AccountVerdict{t, jail.spec->name, rule.spec->name, account, reason, rule.spec->ban, ips.size(), evidence});
  if (rule.confirmed && rule.spec->ban.count() >= 0) {
    Time until = rule.spec->ban.count() == 0 ? Time::max() : t + rule.spec->ban;
    standing[account][&rule] = Standing{jail_index, &rule, until, account_text, reason, t};
  }
  if (!rule.spec->on_account.empty() && !replaying && report)
    out.hooks.push_back(MakeHook(rule.spec->on_account, std::string(hook_ip), account,
                                 jail.spec->name, rule.spec->name, rule.spec->ban));
}

void Engine::Impl::PushFleetCount(const Jail& jail, const Rule& rule, const std::string& subject, const Event& ev,
                                  std::string_view rdomain, int local_count, EngineOutput& out) {
  FleetCount c;
  c.jail = jail.spec->name;
  c.rule = rule.spec->name;
  c.key = rule.spec->key;
  c.subject = subject;
  c.count = ev.count;
  c.time = ev.time;
  c.threshold = rule.spec->threshold;
  c.window = rule.spec->window;
  if (ev.ip) c.ip = ev.ip->ToString();
  c.local_count = local_count;
  // The distinct value as the fleet compares it: addresses as written, names hashed (they
  // are attacker text and need not be readable in Redis).
  char hex[17];
  auto hashed = [&hex](std::string_view text) {
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Hash64(text)));
    return std::string(hex);
  };
  switch (rule.spec->distinct) {
    case Field::kNone: break;
    case Field::kIp: c.value = ev.ip ? ev.ip->ToString() : ""; break;
    case Field::kIpPrefix: c.value = ev.ip ? ev.ip->Masked(ev.ip->is_v4() ? 24 : 64).ToString() : ""; break;
    case Field::kAccount: c.value = hashed(ev.account); break;
    case Field::kSender: c.value = hashed(ev.sender); break;
    case Field::kSenderDomain: c.value = hashed(DomainOf(ev.sender)); break;
    case Field::kRecipient: c.value = hashed(ev.recipient); break;
    case Field::kRecipientDomain: c.value = hashed(rdomain); break;
  }
  if (rule.spec->distinct != Field::kNone && c.value.empty()) return;
  out.fleet_counts.push_back(std::move(c));
}

void Engine::SetFleetCounting(bool on) { impl_->fleet_counting = on; }
bool Engine::fleet_counting() const { return impl_->fleet_counting; }
bool Engine::has_fleet_rules() const {
  for (const auto& j : impl_->jails)
    for (const auto& r : j->rules)
      if (r->spec->scope == RuleScope::kFleet) return true;
  return false;
}

bool Engine::FleetVerdict(const std::string& jail_name, const std::string& rule_name, const std::string& subject, Time at,
                          int count, bool won, EngineOutput& out, const std::string& ip, bool here_only) {
  Impl& m = *impl_;
  for (size_t ji = 0; ji < m.jails.size(); ++ji) {
    Impl::Jail& jail = *m.jails[ji];
    if (jail.spec->name != jail_name) continue;
    for (auto& rp : jail.rules) {
      Impl::Rule& rule = *rp;
      if (rule.spec->name != rule_name || rule.spec->scope != RuleScope::kFleet) continue;
      std::string what = rule.spec->distinct == Field::kNone ? "events" : std::string("distinct ") + FieldName(rule.spec->distinct);
      std::string why = std::to_string(count) + " " + what + " within " + FormatDuration(rule.spec->window) +
                        (here_only ? " on this host (the fleet's Redis was away or behind)" : " across the fleet");
      if (rule.spec->key == RuleKey::kIp) {
        auto key = IpAddress::Parse(subject);
        if (!key || !won) return false;
        // Its count restarts, as after a local verdict.
        jail.ip_tables[static_cast<size_t>(rule.table)].With([&](auto& w) { w.EraseLane(*key, rule.lane); });
        ++m.stats.verdicts;
        ++rule.verdicts;
        m.Emit(jail, rule, *key, at, {}, rule.spec->name + ": " + why, out, m.EvidenceOf(jail, rule, &*key, nullptr));
        m.ForgetBanned();
        return true;
      }
      if (subject.empty()) return false;
      // Counting here would only repeat it; the fleet's verdict stands for every host.
      rule.account_windows.Erase(subject);
      m.AccountVerdictNow(jail, rule, static_cast<int>(ji), subject, at, why, ip, out, won);
      m.ForgetBanned();
      return true;
    }
  }
  return false;
}

int Engine::Impl::Threshold(const Rule& rule, const std::string& account, Time t, std::string& why) {
  const RuleSpec& r = *rule.spec;
  int limit = r.threshold;
  if (r.relative_factor > 0) {
    AccountHistory::Usual u = history.UsualDay(account, t);
    char factor[32];
    std::snprintf(factor, sizeof factor, "%g", r.relative_factor);
    if (Seconds(int64_t{u.days} * 86400) < r.relative_warmup) {
      limit = std::max(limit, r.while_warming);
      why = "its history is warming up: " + std::to_string(u.days) + " of " + FormatDuration(r.relative_warmup);
    } else {
      int relative = static_cast<int>(std::ceil(r.relative_factor * u.usual));
      if (relative > limit) {
        limit = relative;
        why = std::string(factor) + " x its usual day of " + std::to_string(u.usual) + " outside domains";
      } else {
        why = "the floor; " + std::string(factor) + " x its usual day of " + std::to_string(u.usual) + " is less";
      }
    }
  }
  if (r.new_network_factor > 0) {
    auto it = new_network_until.find(account);
    if (it != new_network_until.end() && it->second > t) {
      limit = std::max(1, static_cast<int>(limit * r.new_network_factor));
      char factor[32];
      std::snprintf(factor, sizeof factor, "%g", r.new_network_factor);
      why += std::string(why.empty() ? "" : "; ") + "x " + factor + " after a login from a network it never used";
    }
  }
  return std::min(limit, Rule::kDynamicCap);
}

void Engine::OnTick(Time now) {
  Impl& m = *impl_;
  // Windows count on the logs' own time: a backlog of old lines read now must not have its
  // keys swept as idle by the wall clock.
  if (m.newest != Time{} && m.newest < now) now = m.newest;
  m.last_sweep = now;
  // A bounded slice of every table per tick: a table of a million keys is swept over
  // several ticks instead of stalling one.
  for (auto& j : m.jails) {
    for (auto& r : j->rules) r->account_windows.Sweep(now, kSweepSlice);
    for (auto& t : j->ip_tables) t.With([&](auto& w) { w.Sweep(now, kSweepSlice); });
  }
  if (m.own_book) m.own_book->Expire(now, kSweepSlice);
  for (auto it = m.new_network_until.begin(); it != m.new_network_until.end();)
    it = it->second <= now ? m.new_network_until.erase(it) : std::next(it);
  for (auto it = m.standing.begin(); it != m.standing.end();) {
    for (auto v = it->second.begin(); v != it->second.end();) {
      if (v->second.until <= now) v = it->second.erase(v);
      else ++v;
    }
    if (it->second.empty()) it = m.standing.erase(it);
    else ++it;
  }
}

}  // namespace relayban
