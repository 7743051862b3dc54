// The digest of the decision log: the period, counts by rule and jail, networks, stolen
// accounts with their evidence, and hostile or broken lines.
#include "report/digest.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
Time At(const char* iso) { return *ParseIso8601(iso); }
}  // namespace

TEST_CASE("ISO 8601 stamps as the decision log writes them parse back, anything else does not") {
  REQUIRE(ParseIso8601("2026-12-01T09:15:11Z"));
  CHECK(FormatIso8601(*ParseIso8601("2026-12-01T09:15:11Z")) == "2026-12-01T09:15:11Z");
  CHECK_FALSE(ParseIso8601("2026-12-01 09:15:11Z"));
  CHECK_FALSE(ParseIso8601("2026-13-01T09:15:11Z"));
  CHECK_FALSE(ParseIso8601("2026-12-01T09:15:1xZ"));
  CHECK_FALSE(ParseIso8601(""));
}

TEST_CASE("the digest counts the period's bans by rule and jail, their networks, verdicts and actions by hand") {
  DigestBuilder b(At("2026-12-01T00:00:00Z"), At("2026-12-02T00:00:00Z"));
  // Before the period: left out.
  b.Add(R"({"time":"2026-11-30T23:59:59Z","action":"ban","target":"198.51.100.1","jail":"postfix","rule":"auth-bruteforce","origin":"rule"})");
  b.Add(R"({"time":"2026-12-01T01:00:00Z","action":"ban","target":"203.0.113.7","jail":"postfix","rule":"auth-bruteforce","origin":"rule"})");
  b.Add(R"({"time":"2026-12-01T02:00:00Z","action":"ban","target":"203.0.113.9","jail":"dovecot","rule":"auth-bruteforce","origin":"rule"})");
  b.Add(R"({"time":"2026-12-01T03:00:00Z","action":"ban","target":"2001:db8:1:2::/64","jail":"postfix","rule":"auth-bruteforce","origin":"rule"})");
  b.Add(R"({"time":"2026-12-01T03:00:00Z","action":"ban","target":"192.0.2.99","jail":"manual","rule":"manual","origin":"manual","by":"uid 0 pid 7","reason":"web log"})");
  b.Add(R"({"time":"2026-12-01T04:00:00Z","action":"account_verdict","account":"test","jail":"postfix","rule":"relay-flood","reason":"20 domains","addresses":2,"evidence":[{"log":"/var/log/mail.log","line":"to=<a@b.example>"}]})");
  b.Add(R"({"time":"2026-12-01T05:00:00Z","action":"unban","target":"203.0.113.7","by":"uid 0 pid 8"})");
  b.Add(R"({"time":"2026-12-01T05:00:00Z","action":"forgive","account":"test","by":"uid 0 pid 9"})");
  Digest d = b.Finish();
  CHECK(d.bans == 4);
  CHECK(d.manual_bans == 1);
  CHECK(d.unbans == 1);
  CHECK(d.bans_by_rule == std::map<std::string, uint64_t>{{"dovecot/auth-bruteforce", 1}, {"manual/manual", 1},
                                                          {"postfix/auth-bruteforce", 2}});
  CHECK(d.bans_by_jail["postfix"] == 2);
  REQUIRE(d.top_networks.size() == 3);
  CHECK(d.top_networks[0] == std::make_pair(std::string("203.0.113.0/24"), uint64_t{2}));
  CHECK(std::find(d.top_networks.begin(), d.top_networks.end(), std::make_pair(std::string("2001:db8:1::/48"), uint64_t{1})) !=
        d.top_networks.end());
  REQUIRE(d.verdicts.size() == 1);
  CHECK(d.verdicts[0].account == "test");
  CHECK(d.verdicts[0].evidence == std::vector<std::string>{"to=<a@b.example>"});
  CHECK(d.admin_actions.size() == 3);
  std::string text = DigestText(d, "mx1");
  CHECK(text.find("4 bans (1 by hand), 1 unbans, 1 account verdicts") != std::string::npos);
  CHECK(text.find("       2  postfix/auth-bruteforce") != std::string::npos);
  CHECK(text.find("| to=<a@b.example>") != std::string::npos);
  CHECK(DigestJson(d)["account_verdicts"][0]["rule"] == "relay-flood");
}

TEST_CASE("broken lines are counted, and control characters in a record never reach the digest") {
  DigestBuilder b(At("2026-12-01T00:00:00Z"), At("2026-12-02T00:00:00Z"));
  b.Add("not json");
  b.Add(R"({"action":"ban"})");
  b.Add(R"({"time":"2026-12-01T01:00:00Z","action":"explode"})");
  b.Add(R"({"time":"2026-12-01T01:00:00Z","action":"account_verdict","account":"evil\u001b[2J\nSubject: x","jail":"j","rule":"r"})");
  Digest d = b.Finish();
  CHECK(d.bad_lines == 3);
  REQUIRE(d.verdicts.size() == 1);
  CHECK(d.verdicts[0].account.find('\n') == std::string::npos);
  CHECK(d.verdicts[0].account.find('\x1b') == std::string::npos);
  CHECK(DigestText(d, "mx1").find("\nSubject: x") == std::string::npos);
}
