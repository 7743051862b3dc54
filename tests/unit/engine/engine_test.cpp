// The engine with a fake clock: every line carries its own stamp and `now` is a constant.
#include "relayban/engine/engine.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "relayban/config/config_loader.hpp"
#include "relayban/engine/parsed_lines.hpp"

using namespace relayban;

namespace {

const Time kNow = Time(Micros(int64_t{1795000000} * 1000000));  // 2026-11-18

const char* kConfig = R"(
ignore: [192.0.2.0/24]
ban: {default: 1h, increment: {factor: 2, max: 7d}}
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
      - {event: auth_success, regex: 'ok user=(?P<account>\S+) ip={ip}(?: id=(?P<id>\S+))?$'}
      - {event: relay, regex: 'relay id=(?P<id>\S+) to=(?P<recipient>\S+)$'}
      - {event: relay, regex: 'direct user=(?P<account>\S+) ip={ip} to=(?P<recipient>\S+)$'}
jails:
  j:
    filters: [t]
    local_domains: [example.com]
    on_ban: [/bin/echo, "{ip}", "{jail}/{rule}"]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 1h}
      - {name: flood, key: account, events: [relay], distinct: recipient_domain, threshold: 3, window: 1h, ban: 1d,
         on_account: [/usr/local/sbin/lock, "{account}", "--rule={rule}", "--from={ip}"]}
)";

struct Rig {
  MemoryBanBook book;  // what is banned, as the daemon's ledger would keep it
  std::unique_ptr<Engine> engine;
  int source = 0;
  EngineOutput out;
  std::vector<Event> events;

  explicit Rig(const char* config = kConfig, bool evidence = true) {
    std::vector<Error> errors;
    auto c = LoadConfigText(config, "test.yaml", ".", errors);
    INFO((errors.empty() ? "" : errors[0].ToString()));
    REQUIRE(c);
    EngineOptions eo;
    eo.book = &book;
    eo.evidence = evidence;
    auto e = Engine::Create(*c, eo);
    REQUIRE(e);
    engine = std::move(e.value());
    auto s = engine->AddSource({}, StampFormat::kAuto);
    REQUIRE(s);
    source = *s;
    engine->SetEventObserver([this](const Event& ev) { events.push_back(ev); });
  }
  void Feed(const std::string& line) { engine->OnLine(source, line, kNow, out); }
  std::vector<std::string> Targets() const {
    std::vector<std::string> t;
    for (const auto& o : out.orders) t.push_back(o.target.ToString());
    return t;
  }
};

}  // namespace

TEST_CASE("a burst of failures from one address bans it once, at the threshold") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:01Z fail user=b ip=203.0.113.9");
  CHECK(r.out.orders.empty());
  r.Feed("2026-11-18T10:00:02Z fail user=c ip=203.0.113.9");
  REQUIRE(r.out.orders.size() == 1);
  const Order& o = r.out.orders[0];
  CHECK(o.target.ToString() == "203.0.113.9");
  CHECK(o.rule == "brute");
  CHECK(o.jail == "j");
  CHECK(o.duration == Seconds(3600));
  CHECK(o.account.empty());
  CHECK(FormatIso8601(o.at) == "2026-11-18T10:00:02Z");
  CHECK(o.reason == "brute: 3 events within 10m");
  REQUIRE(r.out.hooks.size() == 1);
  CHECK(r.out.hooks[0].argv == std::vector<std::string>{"/bin/echo", "203.0.113.9", "j/brute"});
  r.Feed("2026-11-18T10:00:03Z fail user=d ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:04Z fail user=e ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:05Z fail user=f ip=203.0.113.9");
  CHECK(r.out.orders.size() == 1);  // already banned for longer
}

TEST_CASE("failures spread over more than the window never ban") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:06:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:12:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:18:00Z fail user=a ip=203.0.113.9");
  CHECK(r.out.orders.empty());
}

namespace {
// A configuration of one jail, j, whose filter t reads "fail user=U ip=A" (auth_failure)
// and "denied ip=A" (relay_denied), with the rules given (YAML list items).
std::string AddressRulesConfig(const char* rules) {
  return std::string(R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
      - {event: relay_denied, regex: 'denied ip={ip}$'}
jails:
  j:
    filters: [t]
    rules:
)") + rules;
}
// Every rule's verdicts so far, as "rule=count " in the configuration's order.
std::string Verdicts(const Rig& r) {
  std::string v;
  for (const auto& x : r.engine->counts().verdicts) v += x.rule + "=" + std::to_string(x.count) + " ";
  return v;
}
}  // namespace

TEST_CASE("address rules counting the same events each count and decide on their own, shared table or not") {
  // Five rules on auth_failure: the first three share a table (a lane each), the fourth and
  // the sixth another; another kind's rule has its own. Their bans are shorter than their
  // windows, so a ban leaves the address's counts be (see the next test).
  const std::string config = AddressRulesConfig(R"(
      - {name: a, key: ip, events: [auth_failure], threshold: 2, window: 10m, ban: 5m}
      - {name: b, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 5m}
      - {name: c, key: ip, events: [auth_failure], distinct: account, threshold: 2, window: 1h, ban: 5m}
      - {name: d, key: ip, events: [auth_failure], threshold: 4, window: 10m, ban: 5m}
      - {name: e, key: ip, events: [relay_denied], threshold: 2, window: 10m, ban: 5m}
      - {name: f, key: ip, events: [auth_failure], threshold: 7, window: 10m, ban: 5m}
)");
  Rig r(config.c_str());
  auto verdicts = [&] { return Verdicts(r); };
  for (int i = 0; i < 6; ++i) r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=x ip=203.0.113.9");
  CHECK(verdicts() == "a=3 b=2 c=0 d=1 e=0 f=0 ");  // a at 2, 4, 6; b at 3, 6; d at 4
  r.Feed("2026-11-18T10:00:07Z fail user=y ip=203.0.113.9");  // a and b start over, d has 3
  CHECK(verdicts() == "a=3 b=2 c=1 d=1 e=0 f=1 ");             // c: a second account; f: 7
  r.Feed("2026-11-18T10:00:08Z denied ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:08Z fail user=x ip=198.51.100.7");  // another address counts apart
  CHECK(verdicts() == "a=3 b=2 c=1 d=1 e=0 f=1 ");
  r.Feed("2026-11-18T10:00:09Z denied ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:09Z fail user=x ip=203.0.113.9");
  CHECK(verdicts() == "a=4 b=2 c=1 d=2 e=1 f=1 ");
  // Two hours on, every window has emptied: two failures are a's verdict alone (b and d
  // would need what they had counted before, c a second account within the hour).
  r.Feed("2026-11-18T12:00:00Z fail user=z ip=203.0.113.9");
  r.Feed("2026-11-18T12:00:01Z fail user=z ip=203.0.113.9");
  CHECK(verdicts() == "a=5 b=2 c=1 d=2 e=1 f=1 ");
}

TEST_CASE("a ban that outlasts every window of an address table forgets the address there, and a shorter one does not") {
  // Two tables: auth_failure (windows 10m and 24h) and relay_denied (10m). A live daemon's
  // ban blocks the address: what it counted in a table whose every window the ban outlasts
  // could not count any more when the ban ends, and the table lets it go at once.
  const std::string config = AddressRulesConfig(R"(
      - {name: fast, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 1h}
      - {name: slow, key: ip, events: [auth_failure], threshold: 5, window: 24h, ban: 1d}
      - {name: probe, key: ip, events: [relay_denied], threshold: 3, window: 10m, ban: 2h}
)");
  Rig r(config.c_str());
  auto verdicts = [&] { return Verdicts(r); };
  // fast's 1h ban is shorter than slow's 24h window: slow counts on through it.
  for (int i = 1; i <= 3; ++i) r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=x ip=203.0.113.9");
  CHECK(verdicts() == "fast=1 slow=0 probe=0 ");
  r.Feed("2026-11-18T11:00:03Z denied ip=203.0.113.9");
  r.Feed("2026-11-18T11:00:04Z fail user=x ip=203.0.113.9");
  r.Feed("2026-11-18T11:00:05Z fail user=x ip=203.0.113.9");
  CHECK(verdicts() == "fast=1 slow=1 probe=0 ");  // the fifth failure within a day
  // slow's 1d ban outlasts both auth_failure windows: that table starts the address afresh
  // (fast had two of its three again, and needs three now); so does probe's table (10m).
  r.Feed("2026-11-18T11:00:06Z fail user=x ip=203.0.113.9");
  r.Feed("2026-11-18T11:00:07Z fail user=x ip=203.0.113.9");
  CHECK(verdicts() == "fast=1 slow=1 probe=0 ");
  r.Feed("2026-11-18T11:00:08Z fail user=x ip=203.0.113.9");  // covered by slow's ban: no order
  CHECK(verdicts() == "fast=2 slow=1 probe=0 ");
  r.Feed("2026-11-18T11:00:09Z denied ip=203.0.113.9");
  r.Feed("2026-11-18T11:00:10Z denied ip=203.0.113.9");
  CHECK(verdicts() == "fast=2 slow=1 probe=0 ");  // the denial before the ban no longer counts
  r.Feed("2026-11-18T11:00:11Z denied ip=203.0.113.9");
  CHECK(verdicts() == "fast=2 slow=1 probe=1 ");
  // Another address was never banned: its counts are its own.
  for (int i = 0; i < 2; ++i) r.Feed("2026-11-18T11:00:12Z fail user=x ip=198.51.100.7");
  CHECK(verdicts() == "fast=2 slow=1 probe=1 ");
  r.Feed("2026-11-18T11:00:13Z fail user=x ip=198.51.100.7");
  CHECK(verdicts() == "fast=3 slow=1 probe=1 ");
}

TEST_CASE("ignored and loopback addresses are never banned") {
  Rig r;
  for (int i = 0; i < 10; ++i) {
    r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=a ip=192.0.2.50");
    r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=a ip=127.0.0.1");
  }
  CHECK(r.out.orders.empty());
  CHECK(r.engine->stats().events[0] == 20);
}

TEST_CASE("an account verdict bans every address that used the account and runs its hook once") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z direct user=Test ip=82.128.32.42 to=a@msn.com");
  r.Feed("2026-11-18T10:00:01Z direct user=test ip=41.0.0.7 to=b@aol.com");
  CHECK(r.out.orders.empty());
  r.Feed("2026-11-18T10:00:02Z direct user=test ip=82.128.32.42 to=c@gmx.de");
  auto t = r.Targets();
  std::sort(t.begin(), t.end());
  CHECK(t == std::vector<std::string>{"41.0.0.7", "82.128.32.42"});
  for (const auto& o : r.out.orders) {
    CHECK(o.account == "test");
    CHECK(o.rule == "flood");
    CHECK(o.duration == Seconds(86400));
  }
  int lock_hooks = 0;
  for (const auto& h : r.out.hooks)
    if (h.argv[0] == "/usr/local/sbin/lock") {
      ++lock_hooks;
      // {ip}: the address of the event that brought the verdict.
      CHECK(h.argv == std::vector<std::string>{"/usr/local/sbin/lock", "test", "--rule=flood", "--from=82.128.32.42"});
    }
  CHECK(lock_hooks == 1);
  auto accounts = r.engine->accounts().Snapshot();
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].verdicts == std::vector<std::string>{"flood"});
}

TEST_CASE("while an account verdict stands, a new address using the account is banned at once") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z direct user=test ip=82.128.32.42 to=a@msn.com");
  r.Feed("2026-11-18T10:00:01Z direct user=test ip=82.128.32.42 to=b@aol.com");
  r.Feed("2026-11-18T10:00:02Z direct user=test ip=82.128.32.42 to=c@gmx.de");
  REQUIRE(r.out.orders.size() == 1);
  r.Feed("2026-11-18T15:00:00Z ok user=test ip=198.51.100.99");
  REQUIRE(r.out.orders.size() == 2);
  CHECK(r.out.orders[1].target.ToString() == "198.51.100.99");
  CHECK(r.out.orders[1].account == "test");
  // More relaying while the verdict stands does not repeat the verdict or its hook.
  size_t hooks = r.out.hooks.size();
  r.Feed("2026-11-18T15:00:01Z direct user=test ip=198.51.100.99 to=d@web.de");
  r.Feed("2026-11-18T15:00:02Z direct user=test ip=198.51.100.99 to=e@gmx.net");
  r.Feed("2026-11-18T15:00:03Z direct user=test ip=198.51.100.99 to=f@free.fr");
  CHECK(r.out.orders.size() == 2);
  CHECK(r.out.hooks.size() == hooks);
  // After the verdict's day is over, logging in is no longer enough.
  r.Feed("2026-11-20T15:00:00Z ok user=test ip=198.51.100.100");
  CHECK(r.out.orders.size() == 2);
}

TEST_CASE("an allowed account (a known bulk sender) gets no verdict for what it does, failures naming it still count") {
  std::string config = std::string(kConfig) + "accounts: {allow: [News@Example.org]}\n";
  Rig r(config.c_str());
  for (const char* d : {"a@msn.com", "b@aol.com", "c@gmx.de", "d@web.de"})
    r.Feed(std::string("2026-11-18T10:00:00Z direct user=news@example.org ip=82.128.32.42 to=") + d);
  CHECK(r.out.orders.empty());
  // Another account doing the same is flagged.
  for (const char* d : {"a@msn.com", "b@aol.com", "c@gmx.de"})
    r.Feed(std::string("2026-11-18T10:00:01Z direct user=sales@example.org ip=41.0.0.7 to=") + d);
  CHECK(r.Targets() == std::vector<std::string>{"41.0.0.7"});
  // Guessing the allowed account's password is still a brute force.
  r.out.clear();
  for (int i = 0; i < 3; ++i) r.Feed("2026-11-18T10:00:02Z fail user=news@example.org ip=203.0.113.77");
  CHECK(r.Targets() == std::vector<std::string>{"203.0.113.77"});
}

// A jail whose one rule is a login that works from an address that just failed on two
// other accounts.
constexpr const char* kSprayConfig = R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
      - {event: auth_success, regex: 'ok user=(?P<account>\S+) ip={ip}$'}
jails:
  j:
    filters: [t]
    rules:
      - {name: spray-hit, key: account, events: [auth_success], sprayed_from: {accounts: 2, within: 15m}, threshold: 1, window: 1h, ban: 1d}
)";

TEST_CASE("sprayed_from: a login that works from an address that just failed on other accounts is a verdict") {
  Rig r(kSprayConfig);
  // An honest login after a wrong password and a mistyped name: one other account, no verdict.
  r.Feed("2026-11-18T10:00:00Z fail user=alice ip=198.51.100.5");
  r.Feed("2026-11-18T10:00:10Z fail user=alice ip=198.51.100.5");
  r.Feed("2026-11-18T10:00:20Z fail user=alcie ip=198.51.100.5");
  r.Feed("2026-11-18T10:00:30Z ok user=alice ip=198.51.100.5");
  CHECK(r.out.orders.empty());
  // A slow spray: two other accounts failed from the address, then carol's password works.
  r.Feed("2026-11-18T11:00:00Z fail user=dave ip=203.0.113.50");
  r.Feed("2026-11-18T11:05:00Z fail user=erin ip=203.0.113.50");
  r.Feed("2026-11-18T11:10:00Z ok user=carol ip=203.0.113.50");
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].target.ToString() == "203.0.113.50");
  CHECK(r.out.orders[0].account == "carol");
  CHECK(r.out.orders[0].reason.find("from an address that failed on 2 other accounts within 15m") != std::string::npos);
  auto accounts = r.engine->accounts().Snapshot();
  auto carol = std::find_if(accounts.begin(), accounts.end(), [](const AccountView& a) { return a.account == "carol"; });
  REQUIRE(carol != accounts.end());
  CHECK(carol->verdicts == std::vector<std::string>{"spray-hit"});
  // Failures older than `within` do not count.
  r.out.clear();
  r.Feed("2026-11-18T12:00:00Z fail user=dave ip=203.0.113.60");
  r.Feed("2026-11-18T12:01:00Z fail user=erin ip=203.0.113.60");
  r.Feed("2026-11-18T12:30:00Z ok user=frank ip=203.0.113.60");
  CHECK(r.out.orders.empty());
}

TEST_CASE("sprayed_from remembers the last 65,536 addresses that failed, the oldest forgotten first") {
  Rig r(kSprayConfig);
  for (const char* ip : {"203.0.113.1", "203.0.113.2"})
    for (const char* user : {"dave", "erin"}) r.Feed(std::string("2026-11-18T10:00:00Z fail user=") + user + " ip=" + ip);
  // 65,535 more addresses: 65,537 in all, so the first is the one forgotten.
  for (uint32_t i = 0; i < 65535; ++i)
    r.Feed("2026-11-18T10:01:00Z fail user=x ip=" + IpAddress::V4(0x0A000000u + i).ToString());
  std::string last = IpAddress::V4(0x0A000000u + 65534).ToString();
  r.Feed("2026-11-18T10:02:00Z fail user=y ip=" + last);  // its slot was the oldest's
  r.Feed("2026-11-18T10:03:00Z ok user=carol ip=203.0.113.1");
  CHECK(r.out.orders.empty());
  r.Feed("2026-11-18T10:03:00Z ok user=grace ip=203.0.113.2");
  r.Feed("2026-11-18T10:03:00Z ok user=frank ip=" + last);
  CHECK(r.Targets() == std::vector<std::string>{"203.0.113.2", last});
}

TEST_CASE("an ordinary user relaying a few mails gets no verdict") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z direct user=alice ip=198.51.100.5 to=a@msn.com");
  r.Feed("2026-11-18T10:30:00Z direct user=alice ip=198.51.100.5 to=b@msn.com");
  r.Feed("2026-11-18T10:40:00Z direct user=alice ip=198.51.100.5 to=c@aol.com");
  CHECK(r.out.orders.empty());
  CHECK(r.engine->accounts().Snapshot()[0].verdicts.empty());
}

TEST_CASE("relays join their account through the message id, a relay without one is not charged") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z ok user=sales ip=198.51.100.23 id=Q1");
  r.Feed("2026-11-18T10:00:01Z relay id=Q1 to=a@msn.com");
  r.Feed("2026-11-18T10:00:01Z relay id=Q1 to=b@aol.com");
  r.Feed("2026-11-18T10:00:02Z relay id=UNKNOWN to=c@gmx.de");
  r.Feed("2026-11-18T10:00:02Z relay id=UNKNOWN to=d@web.de");
  CHECK(r.out.orders.empty());
  r.Feed("2026-11-18T10:00:03Z relay id=Q1 to=e@gmx.de");
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].target.ToString() == "198.51.100.23");
  REQUIRE(r.events.size() == 6);
  CHECK(r.events[1].account == "sales");
  CHECK(r.events[1].ip->ToString() == "198.51.100.23");
  CHECK(r.events[3].account.empty());
}

TEST_CASE("mail to a local domain is not relaying") {
  Rig r;
  for (const char* to : {"a@example.com", "b@EXAMPLE.com", "c@example.com", "d@example.com"})
    r.Feed(std::string("2026-11-18T10:00:00Z direct user=alice ip=198.51.100.5 to=") + to);
  CHECK(r.out.orders.empty());
  auto accounts = r.engine->accounts().Snapshot();
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].relayed == 0);
  CHECK(accounts[0].recipient_domains == 0);
}

TEST_CASE("garbage lines are skipped and counted, never matched or banned") {
  Rig r;
  std::string nul("2026-11-18T10:00:00Z fail user=a\0b ip=203.0.113.9", 48);
  std::vector<std::string> bad = {
      nul,
      "2026-11-18T10:00:00Z fail user=\xff\xfe ip=203.0.113.9",
      "2026-11-18T10:00:00Z fail user=a ip=203.0.113.9" + std::string(1 << 20, 'A'),
      "2026-11-18T10:0",
      "2026-11-18T10:00:00Z fail user=a ip=999.1.1.1",
      "2026-11-18T10:00:00Z fail user=a ip=203.0.113.9 trailing nonsense",
      "\x01\x02\x03\x04 binary",
      "2026-13-45T10:00:00Z fail user=a ip=203.0.113.9",
  };
  for (const auto& l : bad) r.Feed(l);
  CHECK(r.out.orders.empty());
  CHECK(r.events.empty());
  CHECK(r.engine->stats().lines == bad.size());
  CHECK(r.engine->stats().skipped == 7);  // the valid line that simply does not match is not "skipped"
  CHECK(r.engine->stats().matched == 0);
}

TEST_CASE("a relay line listing several recipients yields one event each") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z ok user=sales ip=198.51.100.23 id=Q2");
  r.Feed("2026-11-18T10:00:01Z relay id=Q2 to=<a@msn.com>,<b@aol.com>,<c@gmx.de>");
  CHECK(r.events.size() == 4);
  REQUIRE(r.out.orders.size() == 1);
}

TEST_CASE("a repeated verdict on an account bans only the addresses seen since the previous one") {
  static const char* kSpray = R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
jails:
  j:
    filters: [t]
    rules:
      - {name: spray, key: account, events: [auth_failure], distinct: ip, threshold: 3, window: 1h, ban: 10m}
)";
  Rig rig(kSpray);
  rig.Feed("Nov 18 10:00:01 fail user=boss ip=203.0.113.1");
  rig.Feed("Nov 18 10:00:02 fail user=boss ip=203.0.113.2");
  rig.Feed("Nov 18 10:00:03 fail user=boss ip=203.0.113.3");
  CHECK(rig.Targets() == std::vector<std::string>{"203.0.113.1", "203.0.113.2", "203.0.113.3"});
  // The admin lets .1 go; it stays quiet. The next verdict on boss does not ban it again,
  // while .2, which goes on guessing, and the new addresses are (.2 is still banned).
  rig.book.Lift(Prefix(*IpAddress::Parse("203.0.113.1")));
  rig.out.clear();
  rig.Feed("Nov 18 10:05:01 fail user=boss ip=203.0.113.4");
  rig.Feed("Nov 18 10:05:02 fail user=boss ip=203.0.113.5");
  rig.Feed("Nov 18 10:05:03 fail user=boss ip=203.0.113.6");
  CHECK(rig.Targets() == std::vector<std::string>{"203.0.113.4", "203.0.113.5", "203.0.113.6"});
  // Once the previous verdict's bans have run out (10m), the whole window counts again: every
  // address of the last hour is banned anew, the quiet .1 too.
  rig.out.clear();
  rig.Feed("Nov 18 10:30:01 fail user=boss ip=203.0.113.7");
  rig.Feed("Nov 18 10:30:02 fail user=boss ip=203.0.113.8");
  rig.Feed("Nov 18 10:30:03 fail user=boss ip=203.0.113.9");
  auto targets = rig.Targets();
  std::sort(targets.begin(), targets.end());
  CHECK(targets == std::vector<std::string>{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5",
                                            "203.0.113.6", "203.0.113.7", "203.0.113.8", "203.0.113.9"});
}

namespace {
// An engine fed from a journal that another engine wrote.
struct Journal {
  std::vector<std::string> records;
  void Attach(Engine& e) {
    e.SetJournal([this](Time, std::string_view r) { records.emplace_back(r); });
  }
  size_t ReplayInto(Engine& e) const {
    size_t used = 0;
    for (const auto& r : records) used += e.Replay(r);
    return used;
  }
};
}  // namespace

TEST_CASE("a new engine that replays the journal counts on exactly where the old one stopped") {
  // The reference: one engine sees everything.
  Rig whole;
  // The same lines, split by a restart: the first engine journals, the second replays.
  Rig before;
  Journal journal;
  journal.Attach(*before.engine);
  std::vector<std::string> first = {
      "2026-11-18T10:00:00Z fail user=a ip=203.0.113.9",          // 1 of 3
      "2026-11-18T10:00:01Z fail user=b ip=203.0.113.9",          // 2 of 3
      "2026-11-18T10:00:02Z ok user=test ip=198.51.100.1 id=Q1",  // the account, by queue id
      "2026-11-18T10:00:03Z relay id=Q1 to=x@one.example",        // 1 of 3 distinct domains
      "2026-11-18T10:00:04Z relay id=Q1 to=y@two.example",        // 2 of 3
  };
  std::vector<std::string> second = {
      "2026-11-18T10:00:05Z fail user=c ip=203.0.113.9",      // 3 of 3: a ban only if the count survived
      "2026-11-18T10:00:06Z relay id=Q1 to=z@three.example",  // 3 of 3: the queue id must still name the account
  };
  for (const auto& l : first) {
    whole.Feed(l);
    before.Feed(l);
  }
  CHECK(before.out.orders.empty());
  CHECK(journal.records.size() == 5);
  Rig after;
  CHECK(journal.ReplayInto(*after.engine) == 5);
  CHECK(after.out.orders.empty());  // replay bans nothing
  CHECK(after.out.hooks.empty());
  for (const auto& l : second) {
    whole.Feed(l);
    after.Feed(l);
  }
  CHECK(after.Targets() == whole.Targets());
  REQUIRE(after.out.orders.size() == 2);
  CHECK(after.out.orders[0].rule == "brute");
  CHECK(after.out.orders[1].rule == "flood");
  CHECK(after.out.orders[1].account == "test");
  auto accounts = after.engine->accounts().Snapshot();
  REQUIRE(accounts.size() == 4);  // a, b, c and test
  CHECK(accounts.back().account == "test");
  CHECK(accounts.back().recipient_domains == 3);
}

TEST_CASE("a replayed journal forgets a banned address where the live engine did, and counts on as it would have") {
  // fast's 1d ban outlasts slow's hour: the live engine forgets the address's slow count.
  const std::string config = AddressRulesConfig(R"(
      - {name: fast, key: ip, events: [auth_failure], threshold: 3, window: 10m, ban: 1d}
      - {name: slow, key: ip, events: [auth_failure], threshold: 5, window: 1h, ban: 1d}
)");
  Rig whole(config.c_str());
  Rig before(config.c_str());
  Journal journal;
  journal.Attach(*before.engine);
  auto line = [](int s) { return "2026-11-18T10:00:" + std::string(s < 10 ? "0" : "") + std::to_string(s) + "Z fail user=a ip=203.0.113.9"; };
  for (int s = 0; s < 5; ++s) {  // fast's verdict and ban at the third, then two more
    whole.Feed(line(s));
    before.Feed(line(s));
  }
  REQUIRE(before.out.orders.size() == 1);
  // The restarted daemon: its ledger holds the ban, then the journal is replayed.
  Rig after(config.c_str());
  for (const Order& o : before.out.orders) after.book.Record(o);
  CHECK(journal.ReplayInto(*after.engine) == 5);
  auto slow_verdicts = [](Rig& r) {
    for (const auto& x : r.engine->counts().verdicts)
      if (x.rule == "slow") return x.count;
    return uint64_t{0};
  };
  // slow had two since the ban: three more make five. Counted on from a replay that had not
  // forgotten, slow would have crossed at the journal's fifth line and restarted there.
  for (int s = 5; s < 8; ++s) {
    whole.Feed(line(s));
    after.Feed(line(s));
  }
  CHECK(slow_verdicts(whole) == 1);
  CHECK(slow_verdicts(after) == slow_verdicts(whole));
  for (int s = 8; s < 12; ++s) {
    whole.Feed(line(s));
    after.Feed(line(s));
  }
  CHECK(slow_verdicts(after) == slow_verdicts(whole));
}

TEST_CASE("replay refuses damaged records and skips jails the new configuration lacks") {
  Rig r;
  Journal journal;
  journal.Attach(*r.engine);
  r.Feed("2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  REQUIRE(journal.records.size() == 1);
  const std::string& good = journal.records[0];
  Rig fresh;
  CHECK_FALSE(fresh.engine->Replay(""));
  CHECK_FALSE(fresh.engine->Replay(good.substr(0, good.size() - 1)));
  CHECK_FALSE(fresh.engine->Replay(good + "x"));
  std::string other_jail = good;
  other_jail[other_jail.find("\x01j") + 1] = 'k';  // the jail's name
  CHECK_FALSE(fresh.engine->Replay(other_jail));
  CHECK(fresh.engine->Replay(good));
  CHECK(r.engine->LongestWindow() == Seconds(3600));
}

TEST_CASE("every decision carries the lines that led to it: its key's, of its rule's kinds, oldest first, at most ten") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:00Z fail user=x ip=198.51.100.7");  // another address: not its evidence
  r.Feed("2026-11-18T10:00:01Z ok user=a ip=203.0.113.9");     // not a kind the rule counts
  r.Feed("2026-11-18T10:00:02Z fail user=b ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:03Z fail user=c ip=203.0.113.9");
  REQUIRE(r.out.orders.size() == 1);
  const auto& ev = r.out.orders[0].evidence;
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].line == "2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  CHECK(ev[2].line == "2026-11-18T10:00:03Z fail user=c ip=203.0.113.9");
  CHECK(ev[0].source == r.source);
  // An account verdict: the account's relay lines, the last ten, to every address it bans.
  r.out.clear();
  r.Feed("2026-11-18T11:00:00Z ok user=sales ip=203.0.113.21");
  r.Feed("2026-11-18T11:00:00Z ok user=sales ip=203.0.113.22");
  for (int i = 0; i < 12; ++i)
    r.Feed("2026-11-18T11:00:" + std::to_string(10 + i) + "Z direct user=sales ip=203.0.113.2" + std::to_string(1 + i % 2) +
           " to=x@d" + std::to_string(i % 2) + ".example");
  CHECK(r.out.orders.empty());  // two domains only
  r.Feed("2026-11-18T11:00:30Z direct user=sales ip=203.0.113.21 to=x@third.example");
  REQUIRE(r.out.orders.size() == 2);
  // The verdict's bans share its texts (made once), not copies of them.
  CHECK(r.out.orders[0].target != r.out.orders[1].target);
  CHECK(r.out.orders[0].reason.identity() != nullptr);
  CHECK(r.out.orders[0].reason.identity() == r.out.orders[1].reason.identity());
  CHECK(r.out.orders[0].account.identity() == r.out.orders[1].account.identity());
  CHECK(r.out.orders[0].rule.identity() == r.out.orders[1].rule.identity());
  // The jail's and rule's names are the configuration's, kept for good: no order counts a
  // copy of them (the verdict's own texts are counted).
  CHECK(r.out.orders[0].jail.counted_copies() == 0);
  CHECK(r.out.orders[0].rule.counted_copies() == 0);
  CHECK_FALSE(r.out.orders[0].jail.empty());
  CHECK(r.out.orders[0].reason.counted_copies() > 0);
  CHECK(r.out.orders[0].account == "sales");
  for (const auto& o : r.out.orders) {
    REQUIRE(o.evidence.size() == 10);
    CHECK(o.evidence.back().line == "2026-11-18T11:00:30Z direct user=sales ip=203.0.113.21 to=x@third.example");
    for (const auto& e : o.evidence) CHECK(e.line.find(" direct user=sales ") != std::string::npos);
  }
  // Without `evidence` (the daemon, for now) no line is kept.
  Rig off(kConfig, false);
  for (const char* b : {"a", "b", "c"}) off.Feed(std::string("2026-11-18T10:00:00Z fail user=") + b + " ip=203.0.113.9");
  REQUIRE(off.out.orders.size() == 1);
  CHECK(off.out.orders[0].evidence.empty());
}

TEST_CASE("while lines are not wanted, a decision's evidence only counts them: as many as the lines it would carry") {
  // The same lines to two engines, one counting only: an address verdict (three failures,
  // a login of another kind in between that is not its evidence) and an account verdict's
  // fan-out to two addresses (its last ten relay lines of thirteen).
  std::vector<std::string> feed = {"2026-11-18T10:00:00Z fail user=a ip=203.0.113.9",
                                   "2026-11-18T10:00:01Z ok user=a ip=203.0.113.9",
                                   "2026-11-18T10:00:02Z fail user=b ip=203.0.113.9",
                                   "2026-11-18T10:00:03Z fail user=c ip=203.0.113.9",
                                   "2026-11-18T11:00:00Z ok user=sales ip=203.0.113.21",
                                   "2026-11-18T11:00:00Z ok user=sales ip=203.0.113.22"};
  for (int i = 0; i < 12; ++i)
    feed.push_back("2026-11-18T11:00:" + std::to_string(10 + i) + "Z direct user=sales ip=203.0.113.2" +
                   std::to_string(1 + i % 2) + " to=x@d" + std::to_string(i % 2) + ".example");
  feed.push_back("2026-11-18T11:00:30Z direct user=sales ip=203.0.113.21 to=x@third.example");
  Rig lines, counted;
  counted.engine->SetEvidenceLines(false);
  for (const auto& l : feed) {
    lines.Feed(l);
    counted.Feed(l);
  }
  REQUIRE(lines.out.orders.size() == 3);
  REQUIRE(counted.out.orders.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const EvidenceLines& full = lines.out.orders[i].evidence;
    const EvidenceLines& only = counted.out.orders[i].evidence;
    CHECK(full.size() == full.count());
    CHECK(full.count() == (i == 0 ? 3u : 10u));
    CHECK(only.empty());
    CHECK(only.begin() == only.end());
    CHECK(only.count() == full.count());
  }
  REQUIRE(counted.out.verdicts.size() == 1);
  CHECK(counted.out.verdicts[0].evidence.count() == 10);
  // Wanted again: lines again.
  counted.engine->SetEvidenceLines(true);
  counted.out.clear();
  for (const char* b : {"a", "b", "c"}) counted.Feed(std::string("2026-11-18T12:00:00Z fail user=") + b + " ip=198.51.100.7");
  REQUIRE(counted.out.orders.size() == 1);
  CHECK(counted.out.orders[0].evidence.size() == 3);
}

TEST_CASE("a backlog of old lines keeps its counts through ticks on the wall clock") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z fail user=a ip=203.0.113.9");
  r.Feed("2026-11-18T10:00:01Z fail user=b ip=203.0.113.9");
  // The daemon ticks every second with the wall clock, days after these lines were written.
  for (int i = 0; i < 100; ++i) r.engine->OnTick(kNow + std::chrono::hours(24 * 5) + Seconds(i));
  r.Feed("2026-11-18T10:00:02Z fail user=c ip=203.0.113.9");
  CHECK(r.Targets() == std::vector<std::string>{"203.0.113.9"});
}

TEST_CASE("an outage guard: more distinct addresses than it allows within its window pause the pattern, and say so") {
  const char* config = R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'lost ip={ip}$', outage: {addresses: 3, within: 1m, pause: 10m}}
      - {event: auth_failure, regex: 'fail ip={ip}$'}
jails:
  j:
    filters: [t]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 100, window: 1h, ban: 1h}
)";
  Rig r(config);
  auto lost = [&](const char* at, const char* ip) { r.Feed(std::string("2026-11-18T") + at + "Z lost ip=" + ip); };
  // Three addresses, each retrying: the attacker's own failures, counted.
  lost("10:00:00", "203.0.113.1");
  lost("10:00:10", "203.0.113.2");
  lost("10:00:20", "203.0.113.3");
  lost("10:00:30", "203.0.113.1");
  CHECK(r.events.size() == 4);
  CHECK(r.out.notices.empty());
  // A fourth within the minute: the auth server is down for everyone.
  lost("10:00:40", "203.0.113.4");
  CHECK(r.events.size() == 4);
  REQUIRE(r.out.notices.size() == 1);
  CHECK(r.out.notices[0].find("4 addresses within 1m - taken as an outage of the server") != std::string::npos);
  CHECK(r.engine->stats().outages == 1);
  // Paused for 10 minutes; the other pattern still counts.
  lost("10:05:00", "203.0.113.5");
  r.Feed("2026-11-18T10:05:01Z fail ip=203.0.113.5");
  CHECK(r.events.size() == 5);
  CHECK(r.engine->stats().outage_suppressed == 2);
  // After the pause, counted again; addresses spread over more than the window never trip it.
  for (int i = 0; i < 6; ++i) {
    std::string at = "10:1" + std::to_string(1 + i) + ":00";
    lost(at.c_str(), ("198.51.100." + std::to_string(i + 1)).c_str());
  }
  CHECK(r.events.size() == 11);
  CHECK(r.engine->stats().outages == 1);
}

TEST_CASE("a summary line counts only what its connection's lines did not, and nothing an outage paused") {
  const char* config = R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'lost conn=(?P<conn>[0-9]+) ip={ip}$', outage: {addresses: 2, within: 1m, pause: 10m}}
      - {event: auth_failure, regex: 'fail conn=(?P<conn>[0-9]+) ip={ip}$'}
      - {event: auth_failure, summary: true, regex: 'bye conn=(?P<conn>[0-9]+) ip={ip} failed=(?P<count>[0-9]+)$'}
jails:
  j:
    filters: [t]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 100, window: 1h, ban: 1h}
)";
  Rig r(config);
  auto total = [&] {
    int n = 0;
    for (const auto& e : r.events) n += e.count;
    return n;
  };
  r.Feed("2026-11-18T10:00:00Z fail conn=7 ip=203.0.113.1");
  r.Feed("2026-11-18T10:00:01Z fail conn=7 ip=203.0.113.1");
  r.Feed("2026-11-18T10:00:02Z bye conn=7 ip=203.0.113.1 failed=3");
  CHECK(total() == 3);  // two lines and one the summary adds
  // The same connection number, another client: its own count, nothing carried over.
  r.Feed("2026-11-18T10:00:03Z bye conn=7 ip=203.0.113.2 failed=1");
  CHECK(total() == 4);
  // A summary of attempts all counted already yields nothing.
  r.Feed("2026-11-18T10:00:04Z fail conn=8 ip=203.0.113.3");
  auto before = r.events.size();
  r.Feed("2026-11-18T10:00:05Z bye conn=8 ip=203.0.113.3 failed=1");
  CHECK(r.events.size() == before);
  // An outage pauses the 'lost' lines; their connections' summaries must not count them.
  r.Feed("2026-11-18T10:01:00Z lost conn=20 ip=198.51.100.1");
  r.Feed("2026-11-18T10:01:01Z lost conn=21 ip=198.51.100.2");
  r.Feed("2026-11-18T10:01:02Z lost conn=22 ip=198.51.100.3");  // the third address: an outage
  REQUIRE(r.engine->stats().outages == 1);
  r.Feed("2026-11-18T10:01:03Z lost conn=23 ip=198.51.100.4");
  before = r.events.size();
  r.Feed("2026-11-18T10:01:04Z bye conn=22 ip=198.51.100.3 failed=1");
  r.Feed("2026-11-18T10:01:05Z bye conn=23 ip=198.51.100.4 failed=1");
  CHECK(r.events.size() == before);
}

TEST_CASE("an outage guard needs addresses and takes durations, with the file and line of a mistake") {
  std::vector<Error> errors;
  auto c = LoadConfigText(R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'lost ip={ip}$', outage: {addresses: 1}}
      - {event: auth_failure, regex: 'x ip={ip}$', outage: {within: soon}}
jails: {}
)", "test.yaml", ".", errors);
  CHECK_FALSE(c);
  REQUIRE(errors.size() >= 3);
  std::string all;
  for (const auto& e : errors) all += e.ToString() + "\n";
  CHECK(all.find("test.yaml:5:") != std::string::npos);
  CHECK(all.find("outage.addresses must be between 2 and 100000, not 1") != std::string::npos);
  CHECK(all.find("outage needs 'addresses'") != std::string::npos);
  CHECK(all.find("bad duration 'soon' for outage.within") != std::string::npos);
}

TEST_CASE("a relayed message counts once per recipient, however many delivery attempts it takes") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z ok user=sales ip=198.51.100.1 id=Q1");
  // Five delivery attempts to a domain that is down: one relay of x@down.example.
  for (int i = 0; i < 5; ++i) r.Feed("2026-11-18T10:0" + std::to_string(i) + ":30Z relay id=Q1 to=x@down.example");
  r.Feed("2026-11-18T10:06:00Z relay id=Q1 to=y@down.example");  // another recipient: counted
  size_t relays = std::count_if(r.events.begin(), r.events.end(), [](const Event& e) { return e.kind == 2; });
  CHECK(relays == 2);
  CHECK(r.engine->stats().relay_repeats == 4);
  // The same recipient in another message is another relay.
  r.Feed("2026-11-18T10:07:00Z ok user=sales ip=198.51.100.1 id=Q2");
  r.Feed("2026-11-18T10:07:01Z relay id=Q2 to=x@down.example");
  relays = std::count_if(r.events.begin(), r.events.end(), [](const Event& e) { return e.kind == 2; });
  CHECK(relays == 3);
  // A journal replayed into a new engine remembers what was counted: a retry after a restart
  // does not count again.
  Journal journal;
  Rig before;
  journal.Attach(*before.engine);
  before.Feed("2026-11-18T10:00:00Z ok user=sales ip=198.51.100.1 id=Q3");
  before.Feed("2026-11-18T10:00:01Z relay id=Q3 to=x@down.example");
  Rig after;
  journal.ReplayInto(*after.engine);
  after.Feed("2026-11-18T10:30:01Z relay id=Q3 to=x@down.example");
  CHECK(after.engine->stats().relay_repeats == 1);
}

TEST_CASE("forgiving an account ends its verdict, restarts its counts, and a replayed journal does not bring it back") {
  Journal journal;
  Rig r;
  journal.Attach(*r.engine);
  r.Feed("2026-11-18T10:00:00Z ok user=test ip=198.51.100.1 id=Q1");
  for (const char* d : {"one", "two", "three"}) r.Feed(std::string("2026-11-18T10:00:01Z relay id=Q1 to=x@") + d + ".example");
  REQUIRE(r.Targets() == std::vector<std::string>{"198.51.100.1"});
  auto verdicts = [](Engine& e) {
    for (const auto& a : e.accounts().Snapshot())
      if (a.account == "test") return a.verdicts;
    return std::vector<std::string>{};
  };
  CHECK(verdicts(*r.engine) == std::vector<std::string>{"flood"});
  // The verdict stands: a new address logging in as test is banned at once...
  r.Feed("2026-11-18T10:01:00Z ok user=test ip=198.51.100.2");
  CHECK(r.Targets().size() == 2);
  // ...until the admin forgives the account (the password was changed).
  Time at = Time(Micros(int64_t{1794996090} * 1000000));  // 10:01:30
  r.engine->Forgive("test", at);
  CHECK(verdicts(*r.engine).empty());
  r.Feed("2026-11-18T10:02:00Z ok user=test ip=198.51.100.3");
  CHECK(r.Targets().size() == 2);
  // A new engine replaying the journal, told of the forgiveness first, has no verdict either.
  Rig after;
  after.engine->Forgive("test", at);
  journal.ReplayInto(*after.engine);
  CHECK(verdicts(*after.engine).empty());
  after.Feed("2026-11-18T10:03:00Z ok user=test ip=198.51.100.4");
  CHECK(after.out.orders.empty());
  // New abuse after the forgiveness is counted afresh.
  after.Feed("2026-11-18T10:30:00Z ok user=test ip=198.51.100.5 id=Q9");
  for (const char* d : {"four", "five"}) after.Feed(std::string("2026-11-18T10:30:01Z relay id=Q9 to=x@") + d + ".example");
  CHECK(after.out.orders.empty());  // 2 of 3: the 3 domains before do not count
  after.Feed("2026-11-18T10:30:02Z relay id=Q9 to=x@six.example");
  CHECK(after.out.orders.size() == 1);
}

TEST_CASE("an address lifted by hand is not banned again by the account verdict that stood, a new verdict may") {
  Rig r;
  r.Feed("2026-11-18T10:00:00Z ok user=test ip=198.51.100.1 id=Q1");
  for (const char* d : {"one", "two", "three"}) r.Feed(std::string("2026-11-18T10:00:01Z relay id=Q1 to=x@") + d + ".example");
  REQUIRE(r.out.orders.size() == 1);
  r.out.clear();
  r.book.Lift(*Prefix::Parse("198.51.100.1"));
  r.engine->Exempt(*IpAddress::Parse("198.51.100.1"), Time(Micros(int64_t{1794996120} * 1000000)));  // 10:02
  r.Feed("2026-11-18T10:05:00Z ok user=test ip=198.51.100.1");  // the owner logs in again
  CHECK(r.out.orders.empty());
  r.Feed("2026-11-18T10:05:01Z ok user=test ip=198.51.100.7");  // anyone else is still banned
  CHECK(r.Targets() == std::vector<std::string>{"198.51.100.7"});
}

TEST_CASE("a brute force against an account bans the guesser and marks the account targeted, not stolen") {
  Rig r;
  for (int i = 0; i < 3; ++i) r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=alice ip=203.0.113.9");
  REQUIRE(r.Targets() == std::vector<std::string>{"203.0.113.9"});
  auto accounts = r.engine->accounts().Snapshot();
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].account == "alice");
  CHECK(accounts[0].verdicts.empty());  // nothing says the thief got in
  CHECK(accounts[0].targeted_by == std::vector<std::string>{"brute"});
  // alice logging in afterwards from her own address is not banned.
  r.Feed("2026-11-18T10:01:00Z ok user=alice ip=198.51.100.20");
  CHECK(r.Targets().size() == 1);
}

namespace {
const char* kHistoryConfig = R"(
filters:
  t:
    patterns:
      - {event: auth_success, regex: 'ok user=(?P<account>\S+) ip={ip}$'}
      - {event: relay, regex: 'direct user=(?P<account>\S+) ip={ip} to=(?P<recipient>\S+)$'}
jails:
  j:
    filters: [t]
    rules:
      - {name: relay-daily, key: account, events: [relay], distinct: recipient_domain, threshold: 10, window: 1d, ban: 1d,
         relative: {factor: 3, warmup: 3d, while_warming: 25}, new_network: {factor: 0.5, for: 1d, warmup: 3d}}
)";
// `n` outside domains relayed by `account` from `ip` on day `day` (2026-11-01 + day), from 09:00.
void Send(Rig& r, const std::string& account, const std::string& ip, int day, int n, const std::string& tag = "") {
  for (int i = 0; i < n; ++i) {
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "2026-11-%02dT%02d:%02d:00Z", 1 + day, 9 + i / 60, i % 60);
    r.Feed(std::string(stamp) + " direct user=" + account + " ip=" + ip + " to=x@d" + tag + std::to_string(i) + ".example");
  }
}
}  // namespace

TEST_CASE("relative: an account is held to its own usual day, with a floor and a warm-up") {
  Rig r(kHistoryConfig);
  // Warming up (3 days): the limit is while_warming, 25.
  Send(r, "sales", "198.51.100.5", 0, 20, "a");
  CHECK(r.out.orders.empty());
  // A busy but honest sales account: about 20 domains a day.
  for (int d = 1; d < 6; ++d) Send(r, "sales", "198.51.100.5", d, 20, std::string(1, static_cast<char>('a' + d)));
  CHECK(r.out.orders.empty());
  // A quiet account: 2 a day, then a slow spam run of 12 in a day: over its floor of 10.
  for (int d = 0; d < 6; ++d) Send(r, "quiet", "198.51.100.6", d, 2, std::string(1, static_cast<char>('a' + d)));
  CHECK(r.out.orders.empty());
  Send(r, "quiet", "198.51.100.6", 6, 12, "spam");
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].account == "quiet");
  CHECK(r.out.orders[0].reason.find("reached 10 distinct recipient_domain within 1d (the floor; 3 x its usual day of 2 is less)") !=
        std::string::npos);
  // The sales account after its warm-up: 3 x 20 = 60; 59 passes, the 60th is a verdict.
  r.out.clear();
  Send(r, "sales", "198.51.100.5", 6, 59, "g");
  CHECK(r.out.orders.empty());
  Send(r, "sales", "198.51.100.5", 6, 60, "h");
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].reason.find("reached 60 distinct recipient_domain within 1d (3 x its usual day of 20 outside domains)") !=
        std::string::npos);
}

TEST_CASE("new_network: a login from a network the account never used lowers its limits for a while") {
  Rig r(kHistoryConfig);
  for (int d = 0; d < 5; ++d) {
    r.Feed("2026-11-0" + std::to_string(1 + d) + "T08:00:00Z ok user=bob ip=198.51.100.7");
    Send(r, "bob", "198.51.100.7", d, 4, std::string(1, static_cast<char>('a' + d)));
  }
  CHECK(r.out.orders.empty());
  // Its limit is 3 x 4 = 12; from an unknown network it is halved: 6 domains are a verdict.
  r.Feed("2026-11-06T08:00:00Z ok user=bob ip=203.0.113.9");
  CHECK(r.engine->stats().new_networks == 1);
  Send(r, "bob", "203.0.113.9", 5, 5, "z");
  CHECK(r.out.orders.empty());
  Send(r, "bob", "203.0.113.9", 5, 6, "z");
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].reason.find("x 0.5 after a login from a network it never used") != std::string::npos);
  // A login from its own network again is no signal.
  r.Feed("2026-11-07T08:00:00Z ok user=bob ip=198.51.100.99");
  CHECK(r.engine->stats().new_networks == 1);
}

TEST_CASE("relative and new_network are refused on address rules, and their numbers are checked") {
  std::vector<Error> errors;
  auto c = LoadConfigText(R"(
filters:
  t:
    patterns:
      - {event: relay, regex: 'x {ip}'}
jails:
  j:
    filters: [t]
    rules:
      - {name: a, key: ip, events: [relay], threshold: 10, window: 1d, relative: {factor: 3}}
      - {name: b, key: account, events: [relay], threshold: 10, window: 1d, relative: {factor: 0}, new_network: {factor: 2}}
)", "t.yaml", ".", errors);
  CHECK_FALSE(c);
  std::string all;
  for (const auto& e : errors) all += e.ToString() + "\n";
  CHECK(all.find("rule a: relative and new_network need key: account") != std::string::npos);
  CHECK(all.find("relative.factor must be a number from 0.01 to 1000") != std::string::npos);
  CHECK(all.find("new_network.factor must be a number from 0.01 to 1") != std::string::npos);
}

namespace {

std::string FleetConfig() {
  std::string c = kConfig;
  auto put = [&c](const char* rule) { c.insert(c.find(rule) + std::string(rule).size(), " scope: fleet,"); };
  put("{name: brute,");
  put("{name: flood,");
  return c;
}

}  // namespace

TEST_CASE("fleet rules hand their events to the fleet while fleet counting is on, and decide here while it is off") {
  std::string config = FleetConfig();
  Rig r(config.c_str());
  REQUIRE(r.engine->has_fleet_rules());
  r.engine->SetFleetCounting(true);
  for (int i = 0; i < 5; ++i) r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z fail user=u" + std::to_string(i) + " ip=203.0.113.9");
  CHECK(r.out.orders.empty());  // the fleet decides
  REQUIRE(r.out.fleet_counts.size() == 5);
  const FleetCount& c = r.out.fleet_counts[0];
  CHECK(c.jail == "j");
  CHECK(c.rule == "brute");
  CHECK(c.key == RuleKey::kIp);
  CHECK(c.subject == "203.0.113.9");
  CHECK(c.value.empty());
  CHECK(c.threshold == 3);
  CHECK(c.window == Seconds(600));
  CHECK(FormatIso8601(c.time) == "2026-11-18T10:00:00Z");
  // What this host alone counted goes along (capped at the threshold): it decides when the
  // count cannot reach Redis.
  CHECK(r.out.fleet_counts[0].local_count == 1);
  CHECK(r.out.fleet_counts[1].local_count == 2);
  CHECK(r.out.fleet_counts[4].local_count == 3);
  CHECK(r.out.fleet_counts[0].ip == "203.0.113.9");
  // Distinct values go out hashed (names) so attacker text never reaches Redis.
  r.out.clear();
  r.Feed("2026-11-18T10:01:00Z direct user=test ip=82.128.32.42 to=a@msn.com");
  REQUIRE(r.out.fleet_counts.size() == 1);
  CHECK(r.out.fleet_counts[0].subject == "test");
  CHECK(r.out.fleet_counts[0].ip == "82.128.32.42");
  CHECK(r.out.fleet_counts[0].value.size() == 16);
  CHECK(r.out.fleet_counts[0].value.find("msn") == std::string::npos);

  // Redis away: the local counts (kept all along) decide at once.
  r.out.clear();
  r.engine->SetFleetCounting(false);
  r.Feed("2026-11-18T10:00:06Z fail user=z ip=203.0.113.10");
  r.Feed("2026-11-18T10:00:07Z fail user=z ip=203.0.113.10");
  r.Feed("2026-11-18T10:00:08Z fail user=z ip=203.0.113.10");
  CHECK(r.out.fleet_counts.empty());
  CHECK(r.Targets() == std::vector<std::string>{"203.0.113.10"});
}

TEST_CASE("a fleet verdict won here bans like a local one, and an account verdict heard from the fleet bans the local addresses quietly") {
  std::string config = FleetConfig();
  Rig r(config.c_str());
  r.engine->SetFleetCounting(true);
  CHECK(r.engine->FleetVerdict("j", "brute", "203.0.113.9", kNow, 3, true, r.out));
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].target.ToString() == "203.0.113.9");
  CHECK(r.out.orders[0].reason == "brute: 3 events within 10m across the fleet");
  r.out.clear();
  CHECK(r.engine->FleetVerdict("j", "brute", "203.0.113.12", kNow, 3, true, r.out, "", /*here_only=*/true));
  REQUIRE(r.out.orders.size() == 1);
  CHECK(r.out.orders[0].reason == "brute: 3 events within 10m on this host (the fleet's Redis was away or behind)");
  // Unknown or host-scoped rules are refused.
  CHECK_FALSE(r.engine->FleetVerdict("j", "nope", "203.0.113.9", kNow, 3, true, r.out));
  CHECK_FALSE(r.engine->FleetVerdict("other", "brute", "203.0.113.9", kNow, 3, true, r.out));
  // An IP verdict is only ever raised by the winner.
  CHECK_FALSE(r.engine->FleetVerdict("j", "brute", "203.0.113.11", kNow, 3, false, r.out));

  r.out.clear();
  r.Feed("2026-11-18T10:00:00Z direct user=test ip=82.128.32.42 to=a@msn.com");
  r.Feed("2026-11-18T10:00:01Z direct user=test ip=41.0.0.7 to=b@aol.com");
  r.out.clear();
  const Time at = kNow - std::chrono::minutes(66) - Seconds(38);  // 10:00:02, just after the relays
  REQUIRE(r.engine->FleetVerdict("j", "flood", "test", at, 6, false, r.out));
  auto t = r.Targets();
  std::sort(t.begin(), t.end());
  CHECK(t == std::vector<std::string>{"41.0.0.7", "82.128.32.42"});
  CHECK(r.out.verdicts.empty());  // reported by the host that won it
  for (const auto& h : r.out.hooks) CHECK(h.argv[0] != "/usr/local/sbin/lock");
  auto accounts = r.engine->accounts().Snapshot();
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].verdicts == std::vector<std::string>{"flood"});

  // The winner reports it and runs the hook.
  Rig w(config.c_str());
  w.engine->SetFleetCounting(true);
  w.Feed("2026-11-18T10:00:00Z direct user=test ip=82.128.32.42 to=a@msn.com");
  w.out.clear();
  REQUIRE(w.engine->FleetVerdict("j", "flood", "test", at, 3, true, w.out));
  CHECK(w.Targets() == std::vector<std::string>{"82.128.32.42"});
  CHECK(w.out.verdicts.size() == 1);
  int lock = 0;
  for (const auto& h : w.out.hooks) lock += h.argv[0] == "/usr/local/sbin/lock";
  CHECK(lock == 1);
}

TEST_CASE("a batch decodes each line's stamp as a line alone would, repeated stamps and a new year's eve too") {
  Rig r;
  // Syslog stamps have no year: "Jan  1" read a minute into 2027 is 2027's, read on the
  // last day of 2026 it is 2026's (2027's would be a day in the future). One batch object,
  // reused as the readers reuse it.
  const char* lines[] = {"Jan  1 00:00:01 fail user=a ip=203.0.113.9", "Jan  1 00:00:01 fail user=b ip=203.0.113.9",
                         "Dec 31 23:59:59 fail user=c ip=203.0.113.9", "Jan  1 00:00:01 fail user=d ip=203.0.113.9"};
  ParsedLines batch(100, 1 << 16);
  std::vector<Time> first;
  for (Time now : {Time(Seconds(1798761660)) /* 2027-01-01T00:01:00Z */, Time(Seconds(1798675200)) /* 2026-12-31 */}) {
    for (const char* l : lines) batch.Add(r.source, l);
    batch.Parse(*r.engine, now);
    std::vector<Time> got;
    batch.ForEach([&](int, std::string_view, const Engine::ParsedLine& p, const PatternHit*) {
      REQUIRE(p.outcome == Engine::ParsedLine::Outcome::kHits);
      got.push_back(p.time);
    });
    std::vector<Time> alone;
    for (const char* l : lines) {
      std::vector<PatternHit> hits;
      std::deque<std::string> rewritten;
      alone.push_back(r.engine->Parse(r.source, l, now, hits, rewritten).time);
    }
    CHECK(got == alone);
    CHECK(got[0] == got[1]);
    CHECK(got[0] == got[3]);
    first.push_back(got[0]);
    batch.Clear();
  }
  CHECK(first[0] == Time(Seconds(1798761601)));  // 2027-01-01T00:00:01Z
  CHECK(first[1] == Time(Seconds(1767225601)));  // 2026-01-01T00:00:01Z
}

TEST_CASE("a batch scored with each line prefetched ahead decides exactly as its lines fed one by one") {
  // Engine::Prefetch only loads memory, and the address key, its hash and the ignore-list
  // answer that Parse makes on the matching thread are those scoring would make: ignored
  // addresses (192.0.2.0/24) are never banned, IPv6 clients per /64, correlated relays under
  // the account of their login.
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) {
    std::string stamp = "2026-11-18T10:0" + std::to_string(i / 60) + ":" + (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) + "Z ";
    std::string ip = i % 4 == 0   ? "192.0.2." + std::to_string(i % 50)
                     : i % 4 == 1 ? "2001:db8:0:" + std::to_string(i % 7) + "::" + std::to_string(i)
                                  : "198.51.100." + std::to_string(i % 23);
    lines.push_back(stamp + "fail user=u" + std::to_string(i % 5) + " ip=" + ip);
    if (i % 10 == 0) lines.push_back(stamp + "ok user=thief ip=" + ip + " id=Q" + std::to_string(i));
    if (i % 10 == 0) lines.push_back(stamp + "relay id=Q" + std::to_string(i) + " to=x@d" + std::to_string(i) + ".net");
  }
  auto decisions = [](const EngineOutput& out) {
    std::vector<std::string> d;
    for (const Order& o : out.orders) d.push_back(o.target.ToString() + " " + std::string(o.rule) + " " + std::string(o.account));
    return d;
  };
  Rig one_by_one;
  for (const auto& l : lines) one_by_one.Feed(l);
  Rig batched;
  ParsedLines batch(64, 1 << 16);  // several batches, each prefetching ahead up to its end
  auto score = [&] {
    batch.Parse(*batched.engine, kNow);
    batch.ForEach(
        [&](int source, std::string_view line, const Engine::ParsedLine& p, const PatternHit* hits) {
          batched.engine->OnParsed(source, line, p, hits, batched.out);
        },
        batched.engine.get());
    batch.Clear();
  };
  for (const auto& l : lines) {
    if (batch.Full(l.size())) score();
    batch.Add(batched.source, l);
  }
  score();
  auto want = decisions(one_by_one.out);
  REQUIRE(want.size() > 20);
  CHECK(decisions(batched.out) == want);
  for (const auto& d : want) CHECK(d.rfind("192.0.2.", 0) != 0);
  CHECK(std::count(want.begin(), want.end(), "2001:db8:0:1::/64 brute ") == 1);
  CHECK(std::count_if(want.begin(), want.end(), [](const std::string& d) { return d.find(" flood thief") != std::string::npos; }) > 0);
  CHECK(batched.events.size() == one_by_one.events.size());
  CHECK(batched.engine->accounts().Snapshot().size() == one_by_one.engine->accounts().Snapshot().size());
  // An ignored address is not even counted: no verdict, however many times it fails.
  auto brute_verdicts = [](const Engine& e) {
    for (const auto& v : e.counts().verdicts)
      if (v.rule == "brute") return v.count;
    return uint64_t{0};
  };
  CHECK(brute_verdicts(*batched.engine) == brute_verdicts(*one_by_one.engine));
  uint64_t before = brute_verdicts(*batched.engine);
  for (int i = 0; i < 10; ++i) batch.Add(batched.source, "2026-11-18T10:06:00Z fail user=z ip=192.0.2.77");
  score();
  CHECK(brute_verdicts(*batched.engine) == before);
}

TEST_CASE("an account is keyed as each jail keys it, whatever the line's case, brackets or missing domain") {
  // The first jail of a filter gets the account as captured when there is nothing to clean
  // (hashed on the matching thread); every other spelling, and every other jail, is cleaned.
  Rig r(R"(
filters:
  t:
    patterns:
      - {event: auth_failure, regex: 'fail user=(?P<account>\S*) ip={ip}$'}
jails:
  first:
    filters: [t]
    account_domain: example.org
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 100, window: 10m, ban: 1h}
  second:
    filters: [t]
    rules:
      - {name: brute, key: ip, events: [auth_failure], threshold: 100, window: 10m, ban: 1h}
)");
  const char* spellings[] = {"bob", "Bob", "<bob>", "bob@example.com", "BOB@Example.COM", "bob@example.com,",
                             "<bob@example.com>", "(unknown)"};
  for (const char* s : spellings) r.Feed(std::string("2026-11-18T10:00:00Z fail user=") + s + " ip=203.0.113.9");
  std::map<std::string, int> first, second;
  for (const Event& ev : r.events) {
    std::string name = r.engine->jail_names()[static_cast<size_t>(ev.jail)];
    (name == "first" ? first : second)[ev.account]++;
  }
  CHECK(first == std::map<std::string, int>{{"bob@example.org", 3}, {"bob@example.com", 4}, {"", 1}});
  CHECK(second == std::map<std::string, int>{{"bob", 3}, {"bob@example.com", 4}, {"", 1}});
  CHECK(r.engine->accounts().View("bob@example.org")->auth_failure == 3);
  CHECK(r.engine->accounts().View("bob@example.com")->auth_failure == 8);  // both jails' events
  CHECK(r.engine->accounts().View("bob")->auth_failure == 3);
  CHECK_FALSE(r.engine->accounts().View("Bob"));
}

TEST_CASE("an account verdict's reason names the account printable and cut at 80 bytes, then what it reached") {
  Rig r;
  // 90 bytes, beginning with an "é" (two bytes past ASCII, clean UTF-8 that \S captures).
  std::string account = "x\xC3\xA9" + std::string(86, 'a') + "z";
  REQUIRE(account.size() == 90);
  for (int i = 0; i < 3; ++i)
    r.Feed("2026-11-18T10:00:0" + std::to_string(i) + "Z direct user=" + account + " ip=203.0.113.9 to=a@d" + std::to_string(i) + ".net");
  REQUIRE(!r.out.orders.empty());
  std::string want = "flood: account x??" + std::string(77, 'a') + "... reached 3 distinct recipient_domain within 1h";
  CHECK(std::string(r.out.orders[0].reason) == want);
}
