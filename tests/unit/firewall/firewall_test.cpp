// The dry-run firewall and the test fake behave like the interface says.
#include <catch2/catch.hpp>

#include "fakes/fake_firewall.hpp"
#include "relayban/firewall/firewall.hpp"

using namespace relayban;

TEST_CASE("the dry-run firewall reports what it would do and changes nothing else") {
  std::vector<std::string> log;
  auto fw = MakeDryRunFirewall([&](const std::string& l) { log.push_back(l); });
  REQUIRE(fw->EnsureTable());
  auto r = fw->Apply({{FirewallOrder::Kind::kBan, *Prefix::Parse("192.0.2.1"), Seconds(3600)},
                      {FirewallOrder::Kind::kBan, *Prefix::Parse("2001:db8::/64"), Seconds(0)},
                      {FirewallOrder::Kind::kUnban, *Prefix::Parse("192.0.2.9"), Seconds(0)}});
  REQUIRE(r);
  CHECK(r->added == 2);
  CHECK(r->removed == 0);
  REQUIRE(log.size() == 4);
  CHECK(log[1] == "dry-run: would ban 192.0.2.1 for 1h");
  CHECK(log[2] == "dry-run: would ban 2001:db8::/64 permanently");
  CHECK(log[3] == "dry-run: would unban 192.0.2.9");
  auto l = fw->List();
  REQUIRE(l);
  CHECK(l->size() == 2);
  CHECK(fw->Describe() == "dry-run");
}

TEST_CASE("the fake firewall records orders and fails when told to") {
  testing::FakeFirewall fw;
  fw.fail_next = 1;
  auto r = fw.Apply({{FirewallOrder::Kind::kBan, *Prefix::Parse("192.0.2.1"), Seconds(60)}});
  CHECK_FALSE(r);
  CHECK(fw.bans.empty());
  REQUIRE(fw.Apply({{FirewallOrder::Kind::kBan, *Prefix::Parse("192.0.2.1"), Seconds(60)}}));
  CHECK(fw.bans.size() == 1);
  CHECK(fw.apply_calls == 2);
  CHECK(fw.applied.size() == 1);  // only what took effect
}
