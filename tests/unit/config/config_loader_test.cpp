#include "relayban/config/config_loader.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace relayban;

namespace {

std::vector<Error> Errors(const std::string& yaml) {
  std::vector<Error> errors;
  auto c = LoadConfigText(yaml, "t.yaml", ".", errors);
  if (c) CHECK(errors.empty());
  return errors;
}

bool Has(const std::vector<Error>& errors, const std::string& text, int line, int column) {
  for (const auto& e : errors)
    if (e.message.find(text) != std::string::npos && e.where.line == line && e.where.column == column &&
        e.where.file == "t.yaml")
      return true;
  return false;
}

const char* kFilter = R"(
filters:
  f:
    patterns:
      - {event: auth_failure, regex: 'x {ip}'}
)";

std::string Dump(const std::vector<Error>& errors) {
  std::string s;
  for (const auto& e : errors) s += e.ToString() + "\n";
  return s;
}

}  // namespace

TEST_CASE("the shipped configuration loads without errors") {
  std::vector<Error> errors;
  auto c = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  INFO(Dump(errors));
  REQUIRE(c);
  for (const char* jail : {"qmail", "postfix", "dovecot", "exim", "sendmail", "courier", "cyrus", "opensmtpd"})
    CHECK(c->FindJail(jail));
  CHECK(c->FindJail("qmail")->filters == std::vector<std::string>{"qmail-chkuser", "vpopmail-vchkpw"});
}

TEST_CASE("a misspelt key is an error at its line and column") {
  auto e = Errors("state_dri: /tmp\n");
  INFO(Dump(e));
  CHECK(Has(e, "unknown key 'state_dri'", 1, 1));
}

TEST_CASE("a misspelt key inside a rule is an error") {
  auto e = Errors(std::string(kFilter) + R"(
jails:
  j:
    filters: [f]
    rules:
      - {name: r, key: ip, events: [auth_failure], threshold: 5, windw: 10m}
)");
  INFO(Dump(e));
  CHECK(Has(e, "unknown key 'windw'", 11, 66));
  CHECK(Has(e, "rule has no 'window'", 11, 9));
}

TEST_CASE("unknown filters, kinds and captures are errors") {
  auto e = Errors(R"(
filters:
  f:
    patterns:
      - {event: auth_fail, regex: 'x {ip}'}
      - {event: auth_failure, regex: 'x (?P<user>\S+)'}
jails:
  j:
    filters: [f, nosuch]
    rules:
      - {name: r, key: ip, events: [auth_failures], threshold: 5, window: 10m}
)");
  INFO(Dump(e));
  CHECK(Has(e, "unknown event kind 'auth_fail'", 5, 17));
  CHECK(Has(e, "unknown capture name 'user'", 6, 38));
  CHECK(Has(e, "unknown filter 'nosuch'", 9, 18));
  CHECK(Has(e, "unknown event kind 'auth_failures'", 11, 9));
}

TEST_CASE("bad durations, CIDRs, thresholds and regexes are errors") {
  auto e = Errors(std::string("ignore: [10.0.0.1/8, 300.1.1.1]\n") + kFilter + R"(
  g:
    patterns:
      - {event: auth_failure, regex: '(unclosed'}
jails:
  j:
    filters: [f]
    rules:
      - {name: r, key: ip, events: [auth_failure], threshold: 0, window: 10min, ban: 1h}
      - {name: s, key: host, events: [auth_failure], threshold: 5, window: 10m}
)");
  INFO(Dump(e));
  CHECK(Has(e, "bad address or CIDR '10.0.0.1/8'", 1, 10));
  CHECK(Has(e, "bad address or CIDR '300.1.1.1'", 1, 22));
  CHECK(Has(e, "regex rejected by RE2: missing )", 10, 38));
  CHECK(Has(e, "threshold must be between 1 and 10000", 15, 63));
  CHECK(Has(e, "bad duration '10min'", 15, 74));
  CHECK(Has(e, "key must be ip or account", 16, 24));
}

TEST_CASE("a repeated key is an error, not silently ignored") {
  auto e = Errors(std::string(kFilter) + "jails:\n  a: {filters: [f]}\njails:\n  b: {filters: [nosuch]}\n");
  INFO(Dump(e));
  CHECK(Has(e, "duplicate key 'jails' (first at line 6)", 8, 1));
}

TEST_CASE("a YAML syntax error names its position") {
  auto e = Errors("jails:\n  j: [unclosed\n");
  REQUIRE(e.size() == 1);
  CHECK(e[0].message.find("YAML syntax error") == 0);
  CHECK(e[0].where.line >= 2);
}

TEST_CASE("a lock hook on failed logins is refused: failures can be forged") {
  auto e = Errors(std::string(kFilter) + R"(
jails:
  j:
    filters: [f]
    rules:
      - {name: r, key: account, events: [auth_failure], threshold: 5, window: 10m, on_account: [/sbin/lock, "{account}"]}
)");
  INFO(Dump(e));
  CHECK(Has(e, "on_account needs key: account and events that prove use", 11, 9));
}

TEST_CASE("hook placeholders are checked") {
  auto e = Errors(std::string(kFilter) + R"(
jails:
  j:
    filters: [f]
    on_ban: [/bin/x, "{address}"]
)");
  INFO(Dump(e));
  CHECK(Has(e, "unknown placeholder {address}", 10, 13));
}

TEST_CASE("journal matches must use trusted fields") {
  auto e = Errors(std::string(kFilter) + R"(
jails:
  j:
    filters: [f]
    logs: [{journal: {match: [SYSLOG_IDENTIFIER=postfix]}}]
)");
  INFO(Dump(e));
  CHECK(Has(e, "must be a trusted field", 10, 30));
}

TEST_CASE("includes are read relative to the main file and their errors name them") {
  auto dir = std::filesystem::temp_directory_path() / ("relayban-cfg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "jails.d");
  std::ofstream(dir / "main.yaml") << "include: [jails.d/*.yaml]\n" << kFilter;
  std::ofstream(dir / "jails.d" / "a.yaml") << "jails:\n  a:\n    filters: [f]\n";
  std::ofstream(dir / "jails.d" / "b.yaml") << "jails:\n  b:\n    filterz: [f]\n";
  std::vector<Error> errors;
  auto c = LoadConfig((dir / "main.yaml").string(), errors);
  CHECK_FALSE(c);
  REQUIRE(errors.size() >= 1);
  CHECK(errors[0].where.file == (dir / "jails.d" / "b.yaml").string());
  CHECK(errors[0].where.line == 3);
  std::filesystem::remove(dir / "jails.d" / "b.yaml");
  errors.clear();
  c = LoadConfig((dir / "main.yaml").string(), errors);
  REQUIRE(c);
  CHECK(c->FindJail("a"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a missing configuration file is a clear error") {
  std::vector<Error> errors;
  CHECK_FALSE(LoadConfig("/nonexistent/relayban.yaml", errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].ToString() == "/nonexistent/relayban.yaml: cannot read configuration file: No such file or directory");
}

TEST_CASE("rule sets are written once and used by jails, with only, except and a jail's own version") {
  std::vector<Error> errors;
  auto c = LoadConfigText(std::string(kFilter) + R"(
ban: {default: 2h}
rule_sets:
  base:
    - {name: a, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
    - {name: b, key: ip, events: [auth_failure], threshold: 20, window: 1d}
    - {name: c, key: account, events: [auth_failure], distinct: ip, threshold: 10, window: 1h, ban: 1d}
jails:
  all:
    filters: [f]
    rules: [{use: base}]
  some:
    filters: [f]
    rules: [{use: base, only: [a, c]}]
  most:
    filters: [f]
    rules:
      - {use: base, except: [a]}
      - {name: b, key: ip, events: [auth_failure], threshold: 3, window: 1h, ban: 1h}
      - {name: d, key: ip, events: [auth_failure], threshold: 9, window: 1h, ban: 1h}
)", "t.yaml", ".", errors);
  INFO((errors.empty() ? "" : errors[0].ToString()));
  REQUIRE(c);
  auto names = [&](const char* jail) {
    std::vector<std::string> out;
    for (const auto& r : c->FindJail(jail)->rules) out.push_back(r.name);
    return out;
  };
  CHECK(names("all") == std::vector<std::string>{"a", "b", "c"});
  CHECK(c->FindJail("all")->rules[1].ban == Seconds(7200));  // the global default, as for a jail's own rule
  CHECK(names("some") == std::vector<std::string>{"a", "c"});
  CHECK(names("most") == std::vector<std::string>{"b", "c", "d"});  // b replaced in place
  CHECK(c->FindJail("most")->rules[0].threshold == 3);
  CHECK(c->FindJail("all")->rules[1].threshold == 20);  // the set itself is unchanged
}

TEST_CASE("rule set mistakes are errors at their line") {
  auto e = Errors(std::string(kFilter) + R"(rule_sets:
  base:
    - {name: a, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
    - {name: a, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
  notalist: {name: x}
jails:
  j:
    filters: [f]
    rules:
      - {use: nosuch}
      - {use: base, only: [zz]}
      - {use: base, sometimes: true}
      - {name: a, key: ip, events: [auth_failure], threshold: 5, window: 10m, ban: 1h}
      - {use: base}
)");
  auto has = [&](const std::string& text) {
    return std::any_of(e.begin(), e.end(), [&](const Error& x) { return x.message.find(text) != std::string::npos; });
  };
  CHECK(has("rule name 'a' is used twice in rule set 'base'"));
  CHECK(has("rule set 'notalist' must be a list of rules"));
  CHECK(has("unknown rule set 'nosuch'"));
  CHECK(has("rule set 'base' has no rule 'zz'"));
  CHECK(has("unknown key 'sometimes'"));
  CHECK(has("rule name 'a' is used twice in jail 'j'"));  // a jail's own rule first, then the set's: a clash
}

TEST_CASE("accounts.allow takes names, lower-cased, and says where a bad one is") {
  std::vector<Error> errors;
  auto c = LoadConfigText(std::string(kFilter) + "accounts: {allow: [News@Example.org, roaming]}\n", "t.yaml", ".", errors);
  REQUIRE(c);
  CHECK(c->allowed_accounts == std::vector<std::string>{"news@example.org", "roaming"});
  auto e = Errors(std::string(kFilter) + "accounts: {allow: [\"\"], deny: [x]}\n");
  INFO(Dump(e));
  CHECK(Has(e, "accounts.allow: an account name must be 1-256 characters", 6, 19));
  CHECK(Has(e, "unknown key 'deny'", 6, 25));
}

TEST_CASE("sprayed_from needs accounts and a duration, each error at its place") {
  auto e = Errors(std::string(kFilter) + R"(
jails:
  j:
    filters: [f]
    rules:
      - {name: a, key: account, events: [auth_success], threshold: 1, window: 1h, sprayed_from: 3}
      - {name: b, key: account, events: [auth_success], threshold: 1, window: 1h, sprayed_from: {accounts: 0, within: 15m}}
)");
  INFO(Dump(e));
  CHECK(Has(e, "sprayed_from must be a mapping: {accounts: N, within: 1h}", 11, 97));
  CHECK(Has(e, "sprayed_from.accounts must be between 1 and 64, not 0", 12, 108));
  CHECK(e.size() == 2);
}

TEST_CASE("metrics: absent is off, true or an empty mapping turns the textfile on, listen and every are checked") {
  std::vector<Error> e;
  auto off = LoadConfigText(kFilter, "t.yaml", ".", e);
  REQUIRE(off);
  CHECK_FALSE(off->metrics.on);
  auto on = LoadConfigText(std::string(kFilter) + "metrics: true\n", "t.yaml", ".", e);
  REQUIRE(on);
  CHECK(on->metrics.on);
  CHECK(on->metrics.textfile == kDefaultMetricsTextfile);
  CHECK(on->metrics.listen.empty());
  auto custom = LoadConfigText(std::string(kFilter) + "metrics: {textfile: false, every: 30s, listen: '[::1]:9687'}\n",
                               "t.yaml", ".", e);
  REQUIRE(custom);
  CHECK(custom->metrics.textfile.empty());
  CHECK(custom->metrics.every == Seconds(30));
  CHECK(custom->metrics.listen == "[::1]:9687");
  auto bad = Errors(std::string(kFilter) + "metrics: {listen: 'localhost:9687', textfile: relayban.txt, every: 0s, port: 1}\n");
  CHECK(Has(bad, "metrics.listen must be ADDRESS:PORT", 6, 19));
  CHECK(Has(bad, "metrics.textfile must be an absolute path ending in .prom", 6, 47));
  CHECK(Has(bad, "metrics.every must be from 1s to 1h", 6, 68));
  CHECK(Has(bad, "unknown key 'port' in metrics", 6, 72));
}

TEST_CASE("decision_log and digest: paths must be absolute, recipients plain addresses") {
  std::vector<Error> e;
  auto c = LoadConfigText(std::string(kFilter) + "decision_log: /var/log/relayban/decisions.log\n"
                                                 "digest: {mail_to: [postmaster@example.org, root]}\n",
                          "t.yaml", ".", e);
  REQUIRE(c);
  CHECK(c->decision_log == "/var/log/relayban/decisions.log");
  CHECK(c->digest.mail_to == std::vector<std::string>{"postmaster@example.org", "root"});
  auto bad = Errors(std::string(kFilter) + "decision_log: decisions.log\n"
                                           "digest: {mail_to: ['-oQ/tmp', 'a b@example.org'], sendmail: sendmail}\n");
  CHECK(Has(bad, "decision_log must be an absolute path", 6, 15));
  CHECK(Has(bad, "'-oQ/tmp' is not a plain mail address", 7, 19));
  CHECK(Has(bad, "'a b@example.org' is not a plain mail address", 7, 19));
  CHECK(Has(bad, "digest.sendmail must be an absolute path", 7, 61));
}

TEST_CASE("listen addresses are literal with a port, and mail recipients cannot be options or carry odd bytes") {
  auto v4 = ParseListenAddress("127.0.0.1:9687");
  REQUIRE(v4);
  CHECK(v4->first.ToString() == "127.0.0.1");
  CHECK(v4->second == 9687);
  auto v6 = ParseListenAddress("[::1]:80");
  REQUIRE(v6);
  CHECK(v6->first.ToString() == "::1");
  for (const char* bad : {"::1:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "host:80", "127.0.0.1:8x", ":80", ""})
    CHECK_FALSE(ParseListenAddress(bad));
  CHECK(MailAddressOk("root"));
  CHECK(MailAddressOk("post.master+relayban@example.org"));
  for (const char* bad : {"", "-oQ/tmp", "a@b@c", "a b", "a\nb", "x@", "@x", "a;rm", "$(id)"}) CHECK_FALSE(MailAddressOk(bad));
}

TEST_CASE("fleet is off unless given, and its settings are checked with their places") {
  std::vector<Error> e;
  auto off = LoadConfigText(kFilter, "t.yaml", ".", e);
  REQUIRE(off);
  CHECK_FALSE(off->fleet.on);
  auto on = LoadConfigText(std::string(kFilter) +
                               "fleet: {redis: \"10.0.0.5:6379\", name: prod, host: mx1, user: mx1,\n"
                               "        password_file: /etc/relayban/fleet.password, key_file: /etc/relayban/fleet.key,\n"
                               "        max_remote_ban: 1d, rate: 500, burst: 5000, outbox: 1000}\n",
                           "t.yaml", ".", e);
  REQUIRE(on);
  CHECK(e.empty());
  CHECK(on->fleet.on);
  CHECK(on->fleet.redis == "10.0.0.5:6379");
  CHECK(on->fleet.name == "prod");
  CHECK(on->fleet.max_remote_ban == Seconds{86400});
  CHECK(on->fleet.rate == 500);
  CHECK(on->fleet.outbox == 1000);
  for (const char* ok : {"redis.internal:6379", "[::1]:6379", "/run/redis/redis-server.sock", "localhost:1"})
    CHECK(FleetRedisAddressOk(ok));
  for (const char* bad : {"redis.internal", "redis internal:6379", "-x:6379", "redis:0", "redis:65536", "redis:", "relative.sock"})
    CHECK_FALSE(FleetRedisAddressOk(bad));
  auto errors = Errors(std::string(kFilter) + "fleet:\n  redis: redis.example\n  name: \"a b\"\n  key_file: k\n  tls: yes\n");
  CHECK(Has(errors, "unknown key 'tls'", 10, 3));
  errors = Errors(std::string(kFilter) + "fleet:\n  redis: redis.example\n  name: \"a b\"\n  key_file: k\n");
  CHECK(Has(errors, "fleet.redis must be ADDRESS:PORT", 7, 10));
  CHECK(Has(errors, "fleet.name must be", 8, 9));
  CHECK(Has(errors, "fleet.key_file must be an absolute path", 9, 13));
  errors = Errors(std::string(kFilter) + "fleet: {name: prod}\n");
  CHECK(Has(errors, "fleet needs redis", 6, 8));
  CHECK(Has(errors, "fleet needs key_file", 6, 8));
}

TEST_CASE("scope is host or fleet, and fleet does not mix with per-host history") {
  std::vector<Error> e;
  auto c = LoadConfigText(std::string(kFilter) + "jails:\n  j:\n    filters: [f]\n    rules:\n"
                          "      - {name: r, key: ip, events: [auth_failure], threshold: 3, window: 1m, ban: 1h, scope: fleet}\n",
                          "t.yaml", ".", e);
  REQUIRE(c);
  CHECK(c->jails[0].rules[0].scope == RuleScope::kFleet);
  auto errors = Errors(std::string(kFilter) + "jails:\n  j:\n    filters: [f]\n    rules:\n"
                       "      - {name: r, key: ip, events: [auth_failure], threshold: 3, window: 1m, ban: 1h, scope: world}\n");
  CHECK(Has(errors, "scope must be host or fleet", 10, 94));
  errors = Errors(std::string(kFilter) + "jails:\n  j:\n    filters: [f]\n    rules:\n"
                  "      - {name: r, key: account, events: [auth_failure], distinct: ip, threshold: 3, window: 1d, ban: 1h,\n"
                  "         relative: {factor: 5}, scope: fleet}\n");
  INFO(Dump(errors));
  CHECK(Has(errors, "scope: fleet cannot be combined with relative", 11, 40));
}

TEST_CASE("a client reads only the socket's path from the main file, past errors elsewhere") {
  auto dir = std::filesystem::temp_directory_path() / ("relayban-sock-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "jails.d");
  auto main = (dir / "main.yaml").string();
  std::ofstream(dir / "jails.d" / "broken.yaml") << "jails:\n  x: {filters: [nosuch], logs: [/nonexistent]}\n";
  std::ofstream(main) << "include: [jails.d/*.yaml]\ncontrol_socket: /run/x/control.sock\nmax_tracked: 5\n";
  std::vector<Error> errors;
  CHECK_FALSE(LoadConfig(main, errors));  // the whole configuration has an error
  errors.clear();
  auto socket = LoadControlSocket(main, errors);
  INFO(Dump(errors));
  REQUIRE(socket);
  CHECK(*socket == "/run/x/control.sock");
  // Not set: the default, as the daemon would use.
  std::ofstream(main) << "state_dir: /var/lib/x\n";
  socket = LoadControlSocket(main, errors);
  REQUIRE(socket);
  CHECK(*socket == Config{}.control_socket);
  // An error in the main file's YAML, or in the setting itself, is shown where it is.
  std::ofstream(main) << "state_dir: /x\ncontrol_socket: [a, b]\n";
  CHECK_FALSE(LoadControlSocket(main, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("control_socket must be a string") != std::string::npos);
  CHECK(errors[0].where.line == 2);
  errors.clear();
  std::ofstream(main) << "control_socket: [unclosed\n";
  CHECK_FALSE(LoadControlSocket(main, errors));
  CHECK(errors.size() == 1);
  errors.clear();
  std::ofstream(main) << "- control_socket: /run/x/control.sock\n";  // a list, not settings
  CHECK_FALSE(LoadControlSocket(main, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("must be a map of settings") != std::string::npos);
  CHECK(errors[0].where.line == 1);
  errors.clear();
  std::ofstream(main) << "# nothing set\n";  // an empty file: the default
  socket = LoadControlSocket(main, errors);
  REQUIRE(socket);
  CHECK(*socket == Config{}.control_socket);
  CHECK(errors.empty());
  CHECK_FALSE(LoadControlSocket((dir / "missing.yaml").string(), errors));
  CHECK(errors.size() == 1);
  std::filesystem::remove_all(dir);
}
