#include "relayban/score/account_book.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
Time T(int s) { return Time(Micros(int64_t{1764150000 + s} * 1000000)); }
using O = AccountBook::Outcome;
}  // namespace

TEST_CASE("an account's counters, domains and addresses add up") {
  AccountBook b(100);
  auto ip1 = IpAddress::Parse("82.128.32.42");
  auto ip2 = IpAddress::Parse("198.51.100.23");
  b.Record("test", O::kAuthSuccess, 2, ip1, "", T(0));
  b.Record("test", O::kRelay, 4, ip1, "msn.com", T(1));
  b.Record("test", O::kRelay, 4, ip1, "msn.com", T(2));
  b.Record("test", O::kRelay, 4, ip2, "aol.com", T(3));
  b.Record("test", O::kAuthFailure, 1, IpAddress::Parse("203.0.113.1"), "", T(4));
  auto snap = b.Snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].auth_success == 1);
  CHECK(snap[0].auth_failure == 1);
  CHECK(snap[0].relayed == 3);
  CHECK(snap[0].recipient_domains == 2);
  CHECK(snap[0].ips == 3);
  CHECK(snap[0].last_ip == ip2);  // a failed login is not a use of the account
}

TEST_CASE("fan-out returns the addresses seen with the given kinds since a time") {
  AccountBook b(100);
  b.Record("test", O::kRelay, 4, IpAddress::Parse("192.0.2.1"), "x.org", T(0));
  b.Record("test", O::kAuthFailure, 1, IpAddress::Parse("192.0.2.2"), "", T(100));
  b.Record("test", O::kRelay, 4, IpAddress::Parse("192.0.2.3"), "y.org", T(100));
  auto ips = b.IpsSince("test", T(50), 4);
  REQUIRE(ips.size() == 1);
  CHECK(ips[0].ToString() == "192.0.2.3");
  CHECK(b.IpsSince("test", T(0), 4).size() == 2);
  CHECK(b.IpsSince("nobody", T(0), 4).empty());
}

TEST_CASE("invented account names cannot grow the book past its cap") {
  AccountBook b(50);
  for (int i = 0; i < 1000; ++i) b.Record("user" + std::to_string(i), O::kAuthFailure, 1, std::nullopt, "", T(i));
  CHECK(b.size() == 50);
  CHECK(b.evicted() == 950);
}

TEST_CASE("verdicts are listed once per rule") {
  AccountBook b(10);
  b.Record("a", O::kRelay, 4, std::nullopt, "x.org", T(0));
  b.AddVerdict("a", "relay-flood");
  b.AddVerdict("a", "relay-flood");
  b.AddVerdict("missing", "x");
  CHECK(b.Snapshot()[0].verdicts == std::vector<std::string>{"relay-flood"});
}
