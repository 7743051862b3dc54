// The control protocol: request text to typed requests, and back.
#include "relayban/control/protocol.hpp"

#include <catch2/catch.hpp>

using namespace relayban;
using C = ControlRequest::Command;

TEST_CASE("every command parses, with its fields and defaults") {
  auto r = ParseControlRequest(R"({"cmd":"ban","target":"192.0.2.1","for":"10m","reason":"web log","force":true})");
  REQUIRE(r);
  CHECK(r->command == C::kBan);
  CHECK(r->target == "192.0.2.1");
  CHECK(r->duration == std::optional<std::string>("10m"));
  CHECK(r->reason == "web log");
  CHECK(r->jail == "manual");
  CHECK(r->force);
  auto u = ParseControlRequest(R"({"cmd":"unban","all":true})");
  REQUIRE(u);
  CHECK(u->all);
  auto s = ParseControlRequest(R"({"cmd":"status","jail":"postfix"})");
  REQUIRE(s);
  CHECK(s->command == C::kStatus);
  CHECK(s->jail == "postfix");
  for (const char* cmd : {"list", "accounts", "reload"}) CHECK(ParseControlRequest(std::string(R"({"cmd":")") + cmd + "\"}"));
  auto f = ParseControlRequest(R"({"cmd":"forgive","target":"test@example.com"})");
  REQUIRE(f);
  CHECK(f->command == C::kForgive);
  CHECK(f->target == "test@example.com");
  ControlRequest back;
  back.command = C::kForgive;
  back.target = "a b\"c";
  auto again = ParseControlRequest(FormatControlRequest(back));
  REQUIRE(again);
  CHECK(again->command == C::kForgive);
  CHECK(again->target == back.target);
}

TEST_CASE("a request written by the client is read back the same") {
  ControlRequest in;
  in.command = C::kBan;
  in.target = "2001:db8::/64";
  in.duration = "0";
  in.jail = "web";
  in.reason = "say \"why\"\n";
  auto out = ParseControlRequest(FormatControlRequest(in));
  REQUIRE(out);
  CHECK(out->command == C::kBan);
  CHECK(out->target == in.target);
  CHECK(out->duration == in.duration);
  CHECK(out->jail == "web");
  CHECK(out->reason == in.reason);
  CHECK_FALSE(out->force);
}

TEST_CASE("malformed requests are refused with a message, never an exception") {
  for (const char* bad : {"", "not json", "[1,2]", "{}", R"({"cmd":5})", R"({"cmd":"nosuch"})", R"({"cmd":"ban"})",
                          R"({"cmd":"ban","target":5})", R"({"cmd":"ban","target":"x","force":"yes"})",
                          R"({"cmd":"unban"})", "\xff\xfe", R"({"cmd":"status","jail":["a"]})", R"({"cmd":"forgive"})"}) {
    auto r = ParseControlRequest(bad);
    INFO(bad);
    CHECK_FALSE(r);
    CHECK_FALSE(r.error().message.empty());
  }
  auto long_target = ParseControlRequest(R"({"cmd":"forgive","target":")" + std::string(2000, 'a') + "\"}");
  REQUIRE_FALSE(long_target);
  CHECK(long_target.error().message == "the target is too long");
  CHECK(ErrorAnswer("no\xff") == "{\"error\":\"no\xEF\xBF\xBD\",\"ok\":false}");  // valid UTF-8 out
}
