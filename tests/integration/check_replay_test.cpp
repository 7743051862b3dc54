// `relayban check` end to end: the real configuration, real files, the JSON report, and the
// built binary's exit codes. No firewall is involved.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/check_command.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/engine/engine.hpp"
#include "source/local_zone.hpp"

using namespace relayban;
using nlohmann::json;

namespace {

const std::string kSrc = RELAYBAN_SOURCE_DIR;
const std::string kConfig = kSrc + "/etc/relayban/relayban.yaml";
const Time kNow = Time(Micros(int64_t{1795737600} * 1000000));  // 2026-11-27T00:00:00Z

json CheckJson(std::vector<std::string> logs, std::vector<std::string> jails = {}) {
  CheckOptions o;
  o.config = kConfig;
  o.logs = std::move(logs);
  o.jails = std::move(jails);
  o.json = true;
  std::ostringstream out, err;
  int rc = RunCheck(o, kNow, out, err);
  INFO(err.str());
  REQUIRE(rc == 0);
  return json::parse(out.str());
}

// `check`'s text report on `logs`.
std::string CheckText(std::vector<std::string> logs, std::vector<std::string> jails = {}) {
  CheckOptions o;
  o.config = kConfig;
  o.logs = std::move(logs);
  o.jails = std::move(jails);
  std::ostringstream out, err;
  int rc = RunCheck(o, kNow, out, err);
  INFO(err.str());
  REQUIRE(rc == 0);
  return out.str();
}

std::map<std::string, json> DecisionsByTarget(const json& j) {
  std::map<std::string, json> m;
  for (const auto& d : j["decisions"]) m[d["target"].get<std::string>()] = d;
  return m;
}

json Account(const json& j, const std::string& name) {
  for (const auto& a : j["accounts"])
    if (a["account"] == name) return a;
  return json();
}

// `check --json --events` on `log`: one JSON object per event.
std::vector<json> Events(const std::string& log, std::vector<std::string> jails = {}) {
  CheckOptions o;
  o.config = kConfig;
  o.logs = {log};
  o.jails = std::move(jails);
  o.json = true;
  o.events = true;
  std::ostringstream out, err;
  REQUIRE(RunCheck(o, kNow, out, err) == 0);
  std::vector<json> events;
  std::istringstream lines(out.str());
  std::string l;
  while (std::getline(lines, l)) events.push_back(json::parse(l));
  return events;
}

struct Run {
  int rc;
  std::string out;
};
Run Shell(const std::string& cmd) {
  Run r{0, {}};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST_CASE("the qmail story: the spammer's addresses are banned and test gets a verdict, alice none") {
  json j = CheckJson({kSrc + "/tests/data/qmail-story.log", kSrc + "/tests/data/qmail-story-syslog.log"});
  auto d = DecisionsByTarget(j);
  REQUIRE(d.count("82.128.32.42"));
  CHECK(d["82.128.32.42"]["rule"] == "relay-flood");
  CHECK(d["82.128.32.42"]["account"] == "test");
  CHECK(d["82.128.32.42"]["jail"] == "qmail");
  CHECK(d["82.128.32.42"]["duration_s"] == 86400);
  CHECK(d["82.128.32.42"]["at"] == "2026-11-26T10:20:01Z");
  // The same account from a second address after the verdict: banned at once.
  REQUIRE(d.count("41.203.7.99"));
  CHECK(d["41.203.7.99"]["account"] == "test");
  CHECK(d.count("203.0.113.5"));   // relay probing
  CHECK(d.count("203.0.113.40"));  // password guessing through vchkpw
  CHECK_FALSE(d.count("192.0.2.140"));  // alice
  CHECK(d.size() == 4);
  json test = Account(j, "test");
  REQUIRE(test.is_object());
  CHECK(test["relayed"] == 302);
  CHECK(test["recipient_domains"].get<int>() >= 250);
  CHECK(test["last_ip"] == "41.203.7.99");
  // Over 150 outside domains in a day: relay-daily too (the limit while its history warms up).
  CHECK(test["verdicts"] == json::array({"relay-flood", "relay-daily", "relay-volume"}));
  json alice = Account(j, "alice@example.com");
  CHECK(alice["relayed"] == 3);
  CHECK(alice["verdicts"].empty());
  CHECK(j["skipped"] == 0);
  CHECK(j["events"]["relay"] == 305);
}

TEST_CASE("a stolen Postfix submission account is caught through queue-id correlation") {
  json j = CheckJson({kSrc + "/tests/data/postfix-stolen-account.log"}, {"postfix"});
  auto d = DecisionsByTarget(j);
  for (const char* ip : {"198.51.100.23", "2001:db8:bad::/64", "203.0.113.150"}) {
    INFO(ip);
    REQUIRE(d.count(ip));
    CHECK(d[ip]["account"] == "sales@example.com");
    CHECK(d[ip]["rule"] == "relay-flood");
  }
  CHECK(d.count("203.0.113.66"));      // the password sprayer
  CHECK_FALSE(d.count("192.0.2.55"));  // bob
  CHECK_FALSE(d.count("192.0.2.90"));  // the forwarding MX: relays without an account
  CHECK(d.size() == 4);
  json sales = Account(j, "sales@example.com");
  CHECK(sales["relayed"] == 50);
  CHECK(sales["ips"] == 3);
  CHECK(Account(j, "bob@example.com")["verdicts"].empty());
}

TEST_CASE("the text report prints every ban of a verdict with its own address and the verdict's reason") {
  const std::string log = kSrc + "/tests/data/postfix-stolen-account.log";
  json j = CheckJson({log}, {"postfix"});
  std::string text = CheckText({log}, {"postfix"});
  size_t bans = 0;
  for (size_t at = text.find("  ban "); at != std::string::npos; at = text.find("  ban ", at + 1)) ++bans;
  CHECK(bans == j["decisions"].size());
  for (const auto& d : j["decisions"]) {
    std::string target = d["target"];
    INFO(target);
    size_t at = text.find("  ban " + target + " ");
    REQUIRE(at != std::string::npos);
    size_t start = text.rfind('\n', at) + 1;  // the ban's line (its time first) and its reason's
    std::string line = text.substr(start, text.find('\n', text.find('\n', at) + 1) - start);
    CHECK(line.find(d["jail"].get<std::string>() + "/" + d["rule"].get<std::string>()) != std::string::npos);
    if (!d["account"].is_null()) CHECK(line.find("account " + d["account"].get<std::string>()) != std::string::npos);
    CHECK(line.find(d["reason"].get<std::string>()) != std::string::npos);
    CHECK(line.find(d["at"].get<std::string>()) != std::string::npos);
  }
}

TEST_CASE("the text report writes a long IPv6 prefix whole, not cut to its column") {
  std::string log = (std::filesystem::temp_directory_path() / ("relayban-v6-" + std::to_string(getpid()) + ".log")).string();
  {
    std::ofstream f(log);
    for (int i = 0; i < 5; ++i)
      f << "Nov 26 23:50:0" << i << " mx1 postfix/smtpd[" << 100 + i
        << "]: warning: unknown[2001:db8:0:32::" << i + 1 << "]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n";
  }
  std::string text = CheckText({log}, {"postfix"});
  std::filesystem::remove(log);
  INFO(text);
  CHECK(text.find("  ban 2001:db8:0:32::/64  for ") != std::string::npos);
}

TEST_CASE("the binary's report is the same to a pipe, a file and a file opened for appending") {
  // The decisions are streamed through a buffer, hooks and account verdicts spooled; to
  // standard output a spool goes by sendfile, to a file opened for appending the kernel
  // refuses that and it is copied by hand: the same bytes either way.
  const std::string bin = RELAYBAN_BINARY;
  const std::string args = " -c " + kConfig + " -j postfix " + kSrc + "/tests/data/postfix-stolen-account.log";
  auto dir = std::filesystem::temp_directory_path() / ("relayban-out-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto read = [](const std::filesystem::path& f) {
    std::ifstream in(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const std::string& json : {std::string(), std::string(" --json")}) {
    INFO(json);
    const std::string cmd = bin + " check" + json + args;
    auto piped = Shell("(" + cmd + " 2>/dev/null)");
    REQUIRE(piped.rc == 0);
    CHECK(piped.out.find(json.empty() ? "  ban " : "\"decisions\"") != std::string::npos);
    REQUIRE(Shell("(" + cmd + " > " + (dir / "new.txt").string() + " 2>/dev/null)").rc == 0);
    std::ofstream(dir / "appended.txt") << "before\n";
    REQUIRE(Shell("(" + cmd + " >> " + (dir / "appended.txt").string() + " 2>/dev/null)").rc == 0);
    CHECK(read(dir / "new.txt") == piped.out);
    CHECK(read(dir / "appended.txt") == "before\n" + piped.out);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a replay's text report lists its decisions first and ends with a summary that counts them") {
  // Streamed as they come (no temporary file of a million decisions), so the summary follows.
  std::string text = CheckText({kSrc + "/tests/data/postfix-stolen-account.log"}, {"postfix"});
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() > 5);
  CHECK(lines.front() == "Decisions:");
  size_t items = 0, last_item = 0, accounts = 0, summary = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind("  20", 0) == 0 && (l.find("  ban ") != std::string::npos || l.find("  account verdict ") != std::string::npos)) {
      ++items;
      last_item = i;
    }
    if (l.rfind("Accounts: ", 0) == 0) accounts = i;
    if (l.rfind("Lines: ", 0) == 0) summary = i;
  }
  REQUIRE(items >= 2);
  CHECK(last_item < accounts);
  CHECK(accounts < summary);
  CHECK(lines[summary + 1].rfind("Events: ", 0) == 0);
  CHECK(lines.back() == "Decisions: " + std::to_string(items));

  auto quiet = std::filesystem::temp_directory_path() / ("relayban-quiet-" + std::to_string(::getpid()) + ".log");
  std::ofstream(quiet) << "Nov 26 10:20:00 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]\n";
  std::string none = CheckText({quiet.string()}, {"postfix"});
  std::filesystem::remove(quiet);
  CHECK(none.rfind("Accounts: 0\n", 0) == 0);
  CHECK(none.find("Decisions:\n") == std::string::npos);
  CHECK(none.size() > 13);
  CHECK(none.substr(none.size() - 13) == "Decisions: 0\n");
}

TEST_CASE("check --events lists each matched line's event as JSON Lines") {
  int n = 0, relays = 0;
  for (const json& e : Events(kSrc + "/tests/data/postfix-stolen-account.log", {"postfix"})) {
    ++n;
    CHECK(e.contains("file"));
    CHECK(e["line"].get<int>() > 0);
    CHECK(e["filter"] == "postfix");
    if (e["kind"] == "relay" && !e["account"].is_null()) {
      ++relays;
      CHECK(!e["id"].is_null());
      CHECK(!e["ip"].is_null());
    }
  }
  CHECK(relays == 52);
  CHECK(n == 95);
}

TEST_CASE("the sample logs of every mail system: every extracted address is the expected one, never the injected one") {
  std::filesystem::path dir = std::filesystem::path(kSrc) / "tests" / "data" / "samples";
  REQUIRE(std::filesystem::exists(dir / "postfix.expect.tsv"));
  int checked = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".log") continue;
    auto tsv = f.path();
    tsv.replace_extension(".expect.tsv");
    if (!std::filesystem::exists(tsv)) continue;
    std::vector<std::vector<std::string>> rows;
    std::ifstream in(tsv);
    std::string row;
    std::getline(in, row);
    while (std::getline(in, row)) {
      std::vector<std::string> cols;
      std::stringstream ss(row);
      std::string c;
      while (std::getline(ss, c, '\t')) cols.push_back(c);
      cols.resize(9);
      rows.push_back(cols);
    }
    for (const json& e : Events(f.path().string())) {
      size_t line = e["line"].get<size_t>();
      REQUIRE(line >= 1);
      REQUIRE(line <= rows.size());
      const auto& r = rows[line - 1];
      std::string want = r[3].substr(0, r[3].find(' '));
      INFO(f.path().filename().string() << ":" << line << " " << e.dump());
      if (!e["ip"].is_null()) {
        CHECK(e["ip"] != r[7]);
        if (!want.empty() && want != "-") CHECK(e["ip"] == want);
        ++checked;
      }
    }
  }
  CHECK(checked >= 90);
}

TEST_CASE("the binary: missing logs, bad configs, stdin and --version") {
  const std::string bin = RELAYBAN_BINARY;
  auto missing = Shell(bin + " check -c " + kConfig + " /nonexistent/mail.log");
  CHECK(missing.rc == 66);
  CHECK(missing.out.find("/nonexistent/mail.log: cannot open log: No such file or directory") != std::string::npos);
  // A missing log after a good one: found before anything is written, not after the good
  // one's decisions went out.
  for (const std::string& json : {std::string(), std::string(" --json")}) {
    auto later = Shell("(" + bin + " check" + json + " -c " + kConfig + " " + kSrc +
                       "/tests/data/postfix-stolen-account.log /nonexistent/mail.log 2>/dev/null)");
    CHECK(later.rc == 66);
    CHECK(later.out.empty());
  }

  auto dir = std::filesystem::temp_directory_path() / ("relayban-cli-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bad.yaml") << "jails:\n  j:\n    filters: [nosuch]\n    rulez: []\n";
  auto bad = Shell(bin + " config-test -c " + (dir / "bad.yaml").string());
  CHECK(bad.rc == 78);
  CHECK(bad.out.find("bad.yaml:4:5: unknown key 'rulez'") != std::string::npos);
  CHECK(bad.out.find("bad.yaml:3:15: jail 'j' uses unknown filter 'nosuch'") != std::string::npos);
  auto bad_check = Shell(bin + " check -c " + (dir / "bad.yaml").string() + " /dev/null");
  CHECK(bad_check.rc == 78);

  auto good = Shell(bin + " config-test -c " + kConfig);
  CHECK(good.rc == 0);
  CHECK(good.out.find("OK") != std::string::npos);

  auto piped = Shell("cat " + kSrc + "/tests/data/postfix-stolen-account.log | " + bin + " check --json -c " + kConfig +
                     " -j postfix -");
  CHECK(piped.rc == 0);
  CHECK(json::parse(piped.out)["lines"] == 129);

  auto unknown_jail = Shell(bin + " check -c " + kConfig + " -j nosuch /dev/null");
  CHECK(unknown_jail.rc == 78);
  CHECK(unknown_jail.out.find("no jail named 'nosuch'") != std::string::npos);

  auto version = Shell(bin + " --version");
  CHECK(version.rc == 0);
  CHECK(version.out.rfind("relayban ", 0) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("check on binary garbage counts it as skipped and bans nobody") {
  auto dir = std::filesystem::temp_directory_path() / ("relayban-garbage-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "garbage.log", std::ios::binary);
    std::string s;
    for (int i = 0; i < 200000; ++i) s += static_cast<char>((i * 7919) % 256);
    f << s << "\n";
    f << "Nov 26 10:05:00 mx1 postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: "
      << std::string(2 << 20, 'x') << "\n";
    f << "Nov 26 10:05:00 mx1 postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL LOGIN auth\n";
    const char nul[] = "Nov 26 10:05:00 mx1 postfix/smtpd[1]: warning: unknown[203.0.113.9]\x00\x01: SASL\n";
    f.write(nul, sizeof nul - 1);
    f << "Nov 26 10:05:00 mx1 postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: x";
  }
  json j = CheckJson({(dir / "garbage.log").string()});
  CHECK(j["decisions"].empty());
  CHECK(j["matched"] == 1);  // only the last, well-formed line (without its newline)
  CHECK(j["skipped"].get<int>() >= 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("check --explain-misses lists the lines that look like authentication failures and yielded nothing") {
  auto path = std::filesystem::temp_directory_path() / "relayban-misses.log";
  std::ofstream(path) << "Dec  1 10:00:00 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication "
                         "failed: UGFzc3dvcmQ6, sasl_username=known\n"  // yields an event: not listed
                      << "Dec  1 10:00:01 mx1 mailserverd[2]: imap login failed for x from 192.0.2.2\n"  // no mail program
                      << "Dec  1 10:00:02 mx1 dovecot: auth: ldap(d5,192.0.2.3,<abcdEFGH1237>): invalid credentials\n"
                      << "Dec  1 10:00:03 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.4]\n"  // no failure
                      << "Dec  1 10:00:04 mx1 smtpd[3]: 1a2b3c4d5e6f7a8b smtp event=failed-command address=192.0.2.5 "
                         "command=\"AUTH LOGIN\" result=\"535 Authentication failed\"\n";
  CheckOptions o;
  o.config = kConfig;
  o.logs = {path.string()};
  o.explain_misses = true;
  o.json = true;
  std::ostringstream out, err;
  REQUIRE(RunCheck(o, kNow, out, err) == 0);
  std::vector<int> lines;
  std::istringstream in(out.str());
  for (std::string l; std::getline(in, l);) lines.push_back(json::parse(l)["line"].get<int>());
  CHECK(lines == std::vector<int>{3, 5});
  o.json = false;
  std::ostringstream text;
  REQUIRE(RunCheck(o, kNow, text, err) == 0);
  CHECK(text.str().find("2 lines look like authentication failures but yielded no event") != std::string::npos);
  std::filesystem::remove(path);
  CHECK(LooksLikeAuthFailure("Jan 1 00:00:00 h cyrus/imap[1]: badlogin: x [192.0.2.1] plain [SASL(-13): authentication failure]"));
  CHECK_FALSE(LooksLikeAuthFailure("Jan 1 00:00:00 h kernel: usb 1-1: new device, login failed"));
}

TEST_CASE("a replay's report holds every verdict and ban in the order the engine made them, over thousands of lines") {
  // The report is formatted on a thread of its own, from chunks of lines' output handed over
  // and recycled: what it writes must be what one engine, fed line by line, decided, in
  // that order (a verdict before its bans, one line's output before the next's).
  std::string log = (std::filesystem::temp_directory_path() / ("relayban-order-" + std::to_string(getpid()) + ".log")).string();
  std::vector<std::string> lines;
  for (int i = 0; i < 6000; ++i) {
    char line[200];
    std::snprintf(line, sizeof line,
                  "Nov 26 10:%02d:%02d mx1 postfix/smtpd[%d]: warning: unknown[10.%d.%d.%d]: SASL LOGIN authentication "
                  "failed: UGFzc3dvcmQ6, sasl_username=user%d@example.com",
                  i / 600, i / 10 % 60, 1000 + i % 50, i / 60000, i / 250 % 240, i % 250 + 1, i % 30);
    lines.push_back(line);
    if (i % 40 == 0) {  // logins of 20 stolen accounts from ever new networks: verdicts among the bans
      std::snprintf(line, sizeof line,
                    "Nov 26 10:%02d:%02d mx1 postfix/submission/smtpd[%d]: %010X: client=unknown[172.%d.%d.9], "
                    "sasl_method=LOGIN, sasl_username=stolen%d@example.com",
                    i / 600, i / 10 % 60, 3000 + i % 50, 0x4A000000 + i, 16 + i / 40 % 16, i / 40 % 250, i / 40 % 20);
      lines.push_back(line);
    }
  }
  {
    std::ofstream f(log);
    for (const auto& l : lines) f << l << "\n";
  }
  std::vector<std::string> want_text, want_bans, want_verdicts;
  {
    std::vector<Error> errors;
    auto config = LoadConfig(kConfig, errors);
    REQUIRE(config);
    EngineOptions eo;
    eo.jails = {"postfix"};
    eo.zone = HostLocalZone();
    auto engine = Engine::Create(*config, eo);
    REQUIRE(engine);
    auto source = (*engine)->AddSource({}, StampFormat::kAuto);
    REQUIRE(source);
    EngineOutput out;
    for (const auto& l : lines) {
      (*engine)->OnLine(*source, l, kNow, out);
      for (const auto& v : out.verdicts) {
        want_text.push_back("verdict " + v.account);
        want_verdicts.push_back(v.account);
      }
      for (const auto& o : out.orders) {
        want_text.push_back("ban " + o.target.ToString());
        want_bans.push_back(o.target.ToString());
      }
      out.clear();
    }
  }
  REQUIRE(want_bans.size() > 3000);  // enough to pass through every chunk many times
  REQUIRE(want_verdicts.size() >= 20);
  std::string text = CheckText({log}, {"postfix"});
  json j = CheckJson({log}, {"postfix"});
  std::filesystem::remove(log);
  std::vector<std::string> got_text;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (size_t at = l.find("  account verdict "); at != std::string::npos && l.rfind("  20", 0) == 0) {
      std::string rest = l.substr(at + 18);
      got_text.push_back("verdict " + rest.substr(0, rest.find("  ")));
    } else if (size_t b = l.find("  ban "); b != std::string::npos && l.rfind("  20", 0) == 0) {
      std::string rest = l.substr(b + 6);
      got_text.push_back("ban " + rest.substr(0, rest.find(' ')));
    }
  }
  CHECK(got_text == want_text);
  std::vector<std::string> got_bans, got_verdicts;
  for (const auto& d : j["decisions"]) got_bans.push_back(d["target"]);
  for (const auto& v : j["account_verdicts"]) got_verdicts.push_back(v["account"]);
  CHECK(got_bans == want_bans);
  CHECK(got_verdicts == want_verdicts);
}
