// Validated configuration as plain value types. config/ turns YAML into these; every other
// stage receives only the part it needs and never sees YAML. Below every stage but core, so
// that filters, scoring and policy can take their specs while config/ checks regexes with
// filter/. A Config that exists has passed every check of the loader, so its users need
// not re-validate.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <string>
#include <vector>

#include "relayban/core/duration.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/core/result.hpp"

namespace relayban {

// How a log's lines are stamped (filter/timestamp.hpp reads them).
enum class StampFormat : uint8_t {
  kAuto,     // detect per line among the formats below
  kSyslog,   // "Nov  4 09:11:01 " (RFC 3164): local time, no year
  kRfc3339,  // "2025-11-26T10:04:01.123456+01:00 " or "+0100" or "Z"
  kExim,     // "2025-11-26 10:02:12[.345|,345][ +0100] " (Exim mainlog, log4j): local time
  kTai64n,   // "@400000006926d45a000003e8 " (daemontools multilog)
  kRfc5424,  // "<34>1 2025-11-26T10:04:01.123Z host app 1234 - - " (RFC 5424 syslog): the
             // header is rewritten to "host app[1234]: " for the filters
  kNone,     // no stamp: the line's time is the time it was read
};

// The standard event kinds; filters may declare more under `kinds:`. `context` is a line
// that only carries fields for correlation (a client address, a session's account).
inline constexpr const char* kStandardKinds[] = {"auth_failure",  "auth_success",   "relay",  "relay_denied",
                                                 "bad_recipient", "protocol_abuse", "context"};

// Capture names a pattern may use. `session` and `id` join lines of one connection or
// message; `count` is how many attempts one line stands for (Dovecot "3 attempts").
// `conn`: the connection a `summary` line closes (a Postfix smtpd pid); never joins fields.
inline constexpr const char* kCaptureNames[] = {"ip", "account", "sender", "recipient", "id", "session", "count", "conn"};

// A pattern whose lines also appear when the server itself fails (Postfix's "Connection lost
// to authentication server" is an attacker's own retries under Dovecot's penalty - or the
// auth server down): when more than `addresses` distinct addresses yield it within
// `within`, it is taken as an outage and yields nothing for `pause`.
struct OutageGuard {
  int addresses = 0;  // 0: no guard
  Seconds within{60};
  Seconds pause{600};
};

struct PatternSpec {
  std::string kind;                 // event kind this pattern yields
  std::string regex;                // RE2 syntax, macros not yet expanded, anchored at start
  std::vector<std::string> unique;  // literals that must occur exactly once in the line
  OutageGuard outage;
  // A summary closes a connection (`conn`) and states its `count`: it counts only what the
  // connection's own lines of the same event did not count already.
  bool summary = false;
  SourceLocation where;
};

struct FilterSpec {
  std::string name;
  std::vector<std::string> kinds;  // extra kinds this filter declares
  std::vector<PatternSpec> patterns;
  std::vector<PatternSpec> ignore;  // a line matching one of these yields nothing from this filter
  SourceLocation where;
};

enum class RuleKey : uint8_t { kIp, kAccount };
enum class Field : uint8_t { kNone, kIp, kIpPrefix, kAccount, kSender, kRecipient, kRecipientDomain, kSenderDomain };
const char* FieldName(Field f);

// `scope: fleet`: the rule's windows are counted across the hosts of a fleet (through Redis;
// locally while Redis is away). `host` (the default): on this host alone.
enum class RuleScope : uint8_t { kHost, kFleet };

struct RuleSpec {
  std::string name;
  RuleKey key = RuleKey::kIp;
  RuleScope scope = RuleScope::kHost;
  std::vector<std::string> events;
  Field distinct = Field::kNone;
  int threshold = 0;
  Seconds window{0};
  Seconds ban{0};
  std::vector<std::string> on_account;  // argv, placeholders {ip} {account} {jail} {rule} {duration}
  // `sprayed_from: {accounts: N, within: 1h}`: an event counts only when its address failed
  // on at least N other accounts within that time before: the password a spray found.
  int sprayed_accounts = 0;
  Seconds sprayed_within{0};
  // `relative` (account rules): the threshold follows the account's own usual day - factor
  // times the distinct outside domains of its usual busy day (the upper quartile of its
  // active days in the last four weeks),
  // never below `threshold` (the floor). Until the account has `warmup` of history, the
  // threshold is `while_warming`. factor 0: off.
  double relative_factor = 0;
  Seconds relative_warmup{7 * 86400};
  int while_warming = 0;
  // `new_network` (account rules): after a login from a network (/24, /64) the account never
  // used in its history (of at least `warmup`), the threshold is multiplied by `factor` for
  // `for`. factor 0: off.
  double new_network_factor = 0;
  Seconds new_network_for{86400};
  Seconds new_network_warmup{7 * 86400};
  SourceLocation where;
};

struct LogSpec {
  std::string path;                        // file path or glob; empty for a journal source
  std::vector<std::string> journal_match;  // e.g. "_SYSTEMD_UNIT=postfix@-.service"
  std::string journal_directory;           // journal files to read instead of the system journal
  StampFormat stamp = StampFormat::kAuto;
  SourceLocation where;
};

enum class Enabled : uint8_t { kAuto, kYes, kNo };

struct JailSpec {
  std::string name;
  Enabled enabled = Enabled::kAuto;
  // With `enabled: auto`, files whose presence says the mail system is installed. Without
  // them a jail is on when one of its logs exists - not enough when the log is mail.log,
  // which every mail system shares.
  std::vector<std::string> detect;
  std::vector<LogSpec> logs;
  std::vector<std::string> filters;
  std::vector<RuleSpec> rules;
  std::string account_domain;  // appended to bare account names ("test" -> "test@example.com")
  std::vector<std::string> local_domains;  // a `relay` event to one of these is local delivery
  size_t correlate_entries = 100000;
  Seconds correlate_age{3600};
  std::vector<std::string> on_ban;  // argv run for every ban of this jail
  SourceLocation where;
};

struct BanSpec {
  Seconds default_duration{3600};
  double factor = 2.0;
  Seconds max{30 * 86400};
};

struct FirewallSpec {
  std::string backend = "nftables";  // nftables | dry-run
  std::string table = "relayban";
  std::vector<std::string> hooks{"input"};
  std::string verdict = "drop";  // drop | reject
  bool own_table = true;  // owner|persist where the kernel has it (6.9+); false: anyone may change it
};

// How hooks (on_ban, on_account) run: at most max_running at once, max_queued waiting (the
// rest dropped and counted), each group killed after `timeout`.
struct HookSpec {
  Seconds timeout{10};
  size_t max_running = 16;
  size_t max_queued = 1000;
};

// `metrics:` Prometheus metrics. Off unless the section is given; then the textfile for
// node_exporter's textfile collector is on by default, the HTTP listener only when asked.
struct MetricsSpec {
  bool on = false;
  std::string textfile;  // written atomically every `every`; empty: none
  Seconds every{10};
  std::string listen;    // "127.0.0.1:9687", "[::1]:9687"; empty: no HTTP listener
};
// "127.0.0.1:9687" or "[::1]:9687": a literal address and a port from 1 to 65535.
std::optional<std::pair<IpAddress, uint16_t>> ParseListenAddress(std::string_view text);
inline constexpr const char* kDefaultMetricsTextfile = "/var/lib/prometheus/node-exporter/relayban.prom";

// `digest:` what `relayban digest --mail` sends.
// A recipient handed to sendmail as an argument: a local user or user@domain of letters,
// digits and . _ + - only (never starting with '-', so never an option).
bool MailAddressOk(std::string_view address);
struct DigestSpec {
  std::vector<std::string> mail_to{"root"};
  std::string sendmail = "/usr/sbin/sendmail";
};

// `fleet:` many hosts sharing bans through Redis. Off unless the section is given.
struct FleetSpec {
  bool on = false;
  std::string redis;          // "10.0.0.5:6379", "[2001:db8::5]:6379", "redis.internal:6379"
                              // (resolved at start and reload) or a Unix socket's path
  std::string name;           // the fleet's name: letters, digits, . _ -
  std::string host;           // this host's name in the fleet; empty: the machine's host name
  std::string user;           // the Redis ACL user; empty: the default user
  std::string password_file;  // its password (first line); empty: none
  std::string key_file;       // the shared HMAC key every host signs and checks events with
  Seconds max_remote_ban{7 * 86400};
  size_t rate = 2000;         // remote bans applied per second at most (on average) ...
  size_t burst = 100000;      // ... and at once
  size_t outbox = 100000;     // decisions kept while Redis is away
  SourceLocation where;
};
// A fleet or host name: 1 to 64 of letters, digits, '.', '_' and '-'.
bool FleetNameOk(std::string_view name);
// ADDRESS:PORT (a literal address or a host name) or an absolute path (a Unix socket).
bool FleetRedisAddressOk(std::string_view text);

struct Config {
  std::string file;  // the main file it was loaded from
  std::string state_dir = "/var/lib/relayban";
  std::string control_socket = "/run/relayban/control.sock";
  std::string control_group;
  std::vector<Prefix> ignore;
  FirewallSpec firewall;
  BanSpec ban;
  int ipv6_prefix = 64;         // IPv6 clients are scored and banned per /64 by default
  size_t max_line = 16384;      // longer lines are skipped, never matched
  size_t max_tracked = 200000;  // keys per rule before the oldest are evicted
  // `accounts: {allow: [...]}`: accounts (lower-case, as `relayban accounts` shows them) that
  // no rule counting what an account did (logins, relays) may give a verdict: known bulk
  // senders and roaming users. Failures naming them still count against the addresses.
  std::vector<std::string> allowed_accounts;
  HookSpec hooks;
  MetricsSpec metrics;
  // One JSON line per ban, unban and account verdict; empty: none.
  std::string decision_log;
  DigestSpec digest;
  FleetSpec fleet;
  std::vector<JailSpec> jails;
  std::map<std::string, FilterSpec> filters;
  // Rules written once and used by many jails (`rules: [{use: NAME}]`), by name; each with
  // where it was defined.
  std::map<std::string, std::pair<std::vector<RuleSpec>, SourceLocation>> rule_sets;

  const JailSpec* FindJail(const std::string& name) const;
};

}  // namespace relayban
