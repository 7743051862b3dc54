#include "relayban/fleet/fleet_event.hpp"

#include <catch2/catch.hpp>

#include "relayban/fleet/redis_link.hpp"

using namespace relayban;

namespace {

constexpr const char* kKey = "0123456789abcdef0123456789abcdef";

FleetEvent Ban() {
  FleetEvent e;
  e.kind = FleetEvent::Kind::kBan;
  e.host = "mx1";
  e.id = "mx1-17";
  e.target = *Prefix::Parse("203.0.113.7");
  e.at_ms = 1'800'000'000'000;
  e.until_ms = e.at_ms + 3'600'000;
  e.jail = "postfix";
  e.rule = "auth-bruteforce";
  e.account = "alice@example.org";
  e.reason = "5 auth_failure within 10m";
  e.origin = "rule";
  return e;
}

void Set(FleetFields& f, const std::string& name, const std::string& value) {
  for (auto& [k, v] : f)
    if (k == name) v = value;
}

// Signs fields (without a mac) as a holder of the fleet "prod"'s key would, written out here
// rather than through the encoder: the tests need events the encoder would never make.
FleetFields Resign(FleetFields f) {
  std::string c;
  auto put = [&c](const std::string& v) { c += std::to_string(v.size()) + ":" + v + ","; };
  put("relayban-fleet");
  put("prod");
  for (const auto& [k, v] : f) {
    put(k);
    put(v);
  }
  f.emplace_back("mac", HmacSha256Hex(kKey, c));
  return f;
}

}  // namespace

TEST_CASE("a signed event decodes to what was encoded") {
  auto f = EncodeFleetEvent(Ban(), "prod", kKey);
  REQUIRE(f.back().first == "mac");
  auto e = DecodeFleetEvent(f, "prod", kKey);
  REQUIRE(e);
  CHECK(e->kind == FleetEvent::Kind::kBan);
  CHECK(e->host == "mx1");
  CHECK(e->target.ToString() == "203.0.113.7");
  CHECK(e->until_ms == Ban().until_ms);
  CHECK(e->account == "alice@example.org");
  CHECK(e->reason == "5 auth_failure within 10m");
  FleetEvent u;
  u.kind = FleetEvent::Kind::kUnban;
  u.host = "mx2";
  u.id = "mx2-1";
  u.target = *Prefix::Parse("2001:db8:1::/48");
  u.at_ms = 5;
  auto d = DecodeFleetEvent(EncodeFleetEvent(u, "prod", kKey), "prod", kKey);
  REQUIRE(d);
  CHECK(d->kind == FleetEvent::Kind::kUnban);
  CHECK(d->target.ToString() == "2001:db8:1::/48");
}

TEST_CASE("any change to a signed event, another key or another fleet is refused") {
  auto good = EncodeFleetEvent(Ban(), "prod", kKey);
  for (const char* field : {"v", "type", "host", "id", "target", "at", "until", "jail", "rule", "account", "reason", "origin"}) {
    auto f = good;
    Set(f, field, field == std::string("target") ? "203.0.113.8" : "9");
    auto e = DecodeFleetEvent(f, "prod", kKey);
    CHECK_FALSE(e);
    if (!e) CHECK(e.error().message == "bad mac");
  }
  CHECK_FALSE(DecodeFleetEvent(good, "prod", "another key of enough length"));
  CHECK_FALSE(DecodeFleetEvent(good, "staging", kKey));
  // Fields moved between name and value keep no MAC: "ab"+"c" is not "a"+"bc".
  auto f = good;
  f.insert(f.begin(), {"extra", "field"});
  CHECK_FALSE(DecodeFleetEvent(f, "prod", kKey));
  auto no_mac = good;
  no_mac.pop_back();
  CHECK(DecodeFleetEvent(no_mac, "prod", kKey).error().message == "no mac");
}

TEST_CASE("signed but malformed events are refused all the same") {
  auto refused = [](FleetEvent e, const std::string& why) {
    auto r = DecodeFleetEvent(EncodeFleetEvent(e, "prod", kKey), "prod", kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == why);
  };
  FleetEvent e = Ban();
  e.account = "evil\naccount";
  refused(e, "bad account");
  e = Ban();
  e.reason = std::string(600, 'x');
  refused(e, "bad reason");
  e = Ban();
  e.jail = "";
  refused(e, "bad jail");
  e = Ban();
  e.origin = "fleet";
  refused(e, "bad origin");
  e = Ban();
  e.host = std::string(65, 'h');
  refused(e, "bad host");
  e = Ban();
  e.until_ms = e.at_ms - 1;
  refused(e, "bad until");
}

TEST_CASE("a target that is not an address or prefix is refused even with a good MAC") {
  auto f = EncodeFleetEvent(Ban(), "prod", kKey);
  f.pop_back();
  Set(f, "target", "203.0.113.7; nft flush ruleset");
  auto e = DecodeFleetEvent(Resign(f), "prod", kKey);
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "bad target");
}

TEST_CASE("an event with a field twice, or too many fields, is refused even when signed") {
  auto f = EncodeFleetEvent(Ban(), "prod", kKey);
  f.pop_back();
  auto twice = f;
  twice.insert(twice.begin() + 4, {"target", "198.51.100.1"});
  auto e = DecodeFleetEvent(Resign(twice), "prod", kKey);
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "bad target");
  auto many = f;
  for (int i = 0; i < 5; ++i) many.emplace_back("x" + std::to_string(i), "y");
  e = DecodeFleetEvent(Resign(many), "prod", kKey);
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "too many fields");
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2") {
  CHECK(HmacSha256Hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("packed fields come back whole, and broken packing is refused") {
  FleetFields f{{"a", "1"}, {"reason", "with: colons, 12:34 and\nnewlines"}, {"empty", ""}};
  auto back = UnpackFields(PackFields(f));
  REQUIRE(back);
  CHECK(*back == f);
  CHECK_FALSE(UnpackFields("5:ab"));
  CHECK_FALSE(UnpackFields("1:a"));
  CHECK_FALSE(UnpackFields("x:a1:b"));
  CHECK_FALSE(UnpackFields("99999999:a"));
  CHECK(UnpackFields("")->empty());
}

TEST_CASE("stream ids parse and compare as numbers") {
  CHECK(ParseStreamId("1700000000000-5") == std::make_pair<uint64_t, uint64_t>(1700000000000, 5));
  CHECK(*ParseStreamId("9-0") < *ParseStreamId("10-0"));
  for (const char* bad : {"", "-", "1-", "-1", "1-2-3", "a-1", "1"}) CHECK_FALSE(ParseStreamId(bad));
}

TEST_CASE("Redis addresses: literal address and port, or a Unix socket") {
  auto a = RedisAddress::Parse("10.0.0.5:6379");
  REQUIRE(a);
  CHECK(a->ToString() == "10.0.0.5:6379");
  auto b = RedisAddress::Parse("[2001:db8::5]:6380");
  REQUIRE(b);
  CHECK(b->ToString() == "[2001:db8::5]:6380");
  auto c = RedisAddress::Parse("/run/redis/redis-server.sock");
  REQUIRE(c);
  CHECK(c->path == "/run/redis/redis-server.sock");
  for (const char* bad : {"redis.example:6379", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "2001:db8::5:6379",
                          "[2001:db8::5]", "relative.sock"})
    CHECK_FALSE(RedisAddress::Parse(bad));
}

TEST_CASE("a command is encoded as an array of bulk strings, whatever its bytes") {
  CHECK(EncodeRedisCommand({"SET", "k", "a\r\nb"}) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
}
