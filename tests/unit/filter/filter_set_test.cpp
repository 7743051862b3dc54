#include "relayban/filter/filter_set.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
FilterSpec Filter(std::string name, std::vector<std::pair<std::string, std::string>> patterns,
                  std::vector<std::string> ignore = {}) {
  FilterSpec f;
  f.name = std::move(name);
  for (auto& [kind, re] : patterns) f.patterns.push_back(PatternSpec{kind, re, {}, {}, {}});
  for (auto& re : ignore) f.ignore.push_back(PatternSpec{"", re, {}, {}, {}});
  return f;
}
}  // namespace

TEST_CASE("a pattern yields its named captures") {
  auto f = Filter("t", {{"auth_failure", R"({host} app{pid}: fail user=(?P<account>\S+) from {ip}$)"}});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match("mx1 app[12]: fail user=bob from 192.0.2.9", hits);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].captures.ip == "192.0.2.9");
  CHECK(hits[0].captures.account == "bob");
  CHECK(hits[0].captures.sender.empty());
}

TEST_CASE("patterns are anchored at the start of the message") {
  auto f = Filter("t", {{"auth_failure", R"(fail from {ip}$)"}});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match("user said fail from 198.51.100.250", hits);
  CHECK(hits.empty());
}

TEST_CASE("only the first matching pattern of a filter yields an event") {
  auto f = Filter("t", {{"auth_failure", R"(x {ip})"}, {"protocol_abuse", R"(x {ip})"}});
  auto g = Filter("u", {{"relay", R"(x {ip})"}});
  auto set = FilterSet::Build({&f, &g});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match("x 192.0.2.1", hits);
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].filter == 0);
  CHECK(hits[0].pattern == 0);
  CHECK(hits[1].filter == 1);
}

TEST_CASE("a unique literal that repeats rejects the line") {
  auto f = Filter("t", {{"relay_denied", R"(from <.*> remote <.*:{ip}> rcpt <.*>$)"}});
  f.patterns[0].unique = {"> remote <", "> rcpt <"};
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  CHECK((*set)->Match("from <a> remote <h:203.0.113.7> rcpt <x> remote <h:198.51.100.250> rcpt <y>", hits) == 1);
  CHECK(hits.empty());
  CHECK((*set)->Match("from <a> remote <h:203.0.113.7> rcpt <y>", hits) == 0);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].captures.ip == "203.0.113.7");
}

TEST_CASE("an ignore regex silences its filter only") {
  auto f = Filter("t", {{"auth_failure", R"(failed: .* {ip}$)"}}, {R"(^failed: server down)"});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match("failed: server down 192.0.2.1", hits);
  CHECK(hits.empty());
  (*set)->Match("failed: bad password 192.0.2.1", hits);
  CHECK(hits.size() == 1);
}

TEST_CASE("a regex RE2 rejects is reported with its location and RE2's message") {
  FilterSpec f;
  f.name = "bad";
  f.patterns.push_back(PatternSpec{"auth_failure", "(unclosed", {}, {}, false, {"f.yaml", 3, 16}});
  auto set = FilterSet::Build({&f});
  REQUIRE_FALSE(set);
  CHECK(set.error().where.line == 3);
  CHECK(set.error().ToString().find("f.yaml:3:16: regex rejected by RE2: missing )") == 0);
}

TEST_CASE("unknown capture names are refused") {
  PatternSpec p{"auth_failure", "(?P<ipaddr>x)", {}, {}};
  auto r = FilterSet::CheckRegex(p, false);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("unknown capture name 'ipaddr'") != std::string::npos);
}

TEST_CASE("a backtracking-bomb pattern and input finish in linear time") {
  auto f = Filter("t", {{"auth_failure", R"((?:a|a)*(?:a|a)*b {ip})"}});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match(std::string(100000, 'a'), hits);
  CHECK(hits.empty());
}

TEST_CASE("the literal after the host token is found only where it is certain") {
  auto lit = [](const char* re) { return LiteralAfterHost(ExpandPatternMacros(re)); };
  CHECK(lit(R"({host} postfix(?:-[^/ ]+)?/smtpd{pid}: x)") == "postfix");
  CHECK(lit(R"({host} dovecot: auth)") == "dovecot: auth");
  CHECK(lit(R"({host} sm-mta\[[0-9]+\])") == "sm-mta[");        // escaped punctuation is literal
  CHECK(lit(R"({host} qmail-smtpd?: x)") == "qmail-smtp");      // 'd' is optional
  CHECK(lit(R"({host} ab+c)") == "a");                           // repeated: not certain
  CHECK(lit(R"({host} \d+ x)").empty());
  CHECK(lit(R"({host} (?:a|b) x)").empty());
  CHECK(lit(R"({host} a x|b)").empty());                          // top-level alternative
  CHECK(lit(R"(\S+ postfix)").empty());                           // not the {host} macro
  CHECK(lit(R"({host}postfix)").empty());
  CHECK(lit(R"((?:{host} )?postfix/smtpd{pid}: x)") == "postfix/smtpd");  // a line may lack the host
  CHECK(lit(R"((?:{host} )?(?:a|b) x)").empty());
}

TEST_CASE("a pattern with an optional host matches lines with and without one, through the gate") {
  auto f = Filter("t", {{"auth_failure", R"((?:{host} )?postfix/smtpd{pid}: fail {ip}$)"}});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  for (const char* line : {"mx1 postfix/smtpd[1]: fail 192.0.2.1", "postfix/smtpd[1]: fail 192.0.2.1"}) {
    std::vector<PatternHit> hits;
    (*set)->Match(line, hits);
    INFO(line);
    REQUIRE(hits.size() == 1);
    CHECK(hits[0].captures.ip == "192.0.2.1");
  }
  std::vector<PatternHit> hits;
  (*set)->Match("mx1 other: postfix/smtpd[1]: fail 192.0.2.1", hits);  // not at the start
  CHECK(hits.empty());
}

TEST_CASE("the literal gate after the host token keeps every line that matches") {
  auto f = Filter("t", {{"auth_failure", R"({host} postfix/smtpd{pid}: fail {ip}$)"},
                        {"auth_failure", R"({host} sm-mta{pid}: fail {ip}$)"}});
  auto set = FilterSet::Build({&f});
  REQUIRE(set);
  std::vector<PatternHit> hits;
  (*set)->Match("mx1 postfix/smtpd[1]: fail 192.0.2.1", hits);
  (*set)->Match("mx1 sm-mta[2]: fail 192.0.2.2", hits);
  (*set)->Match("mx1 dovecot: fail 192.0.2.3", hits);
  (*set)->Match("mx1  postfix/smtpd[1]: fail 192.0.2.4", hits);  // two spaces: no host token
  (*set)->Match(" postfix/smtpd[1]: fail 192.0.2.5", hits);      // empty host token
  (*set)->Match("nospace", hits);
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].captures.ip == "192.0.2.1");
  CHECK(hits[1].captures.ip == "192.0.2.2");
}
