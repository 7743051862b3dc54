#include "relayban/filter/correlator.hpp"

#include <catch2/catch.hpp>

using namespace relayban;

namespace {
Time T(int s) { return Time(Micros(int64_t{1764150000 + s} * 1000000)); }
}

TEST_CASE("later lines of a message inherit the address and account of its first line") {
  Correlator c(100, Seconds(3600));
  JoinedFields first{IpAddress::Parse("198.51.100.23"), "sales@example.com", ""};
  c.Join("4A1B2C3D4E", "", T(0), first);
  JoinedFields later{};
  c.Join("4A1B2C3D4E", "", T(2), later);
  REQUIRE(later.ip);
  CHECK(later.ip->ToString() == "198.51.100.23");
  CHECK(later.account == "sales@example.com");
}

TEST_CASE("a session key links to a message key") {
  Correlator c(100, Seconds(3600));
  JoinedFields auth{IpAddress::Parse("198.51.100.23"), "sales@example.com", ""};
  c.Join("", "41022", T(0), auth);
  JoinedFields from{IpAddress::Parse("198.51.100.23"), "", "kb@philadefender.org"};
  c.Join("5AQACv2P041022", "41022", T(1), from);
  JoinedFields to{};
  c.Join("5AQACv2P041022", "", T(2), to);
  CHECK(to.account == "sales@example.com");
  CHECK(to.sender == "kb@philadefender.org");
}

TEST_CASE("a reused key takes the newer values") {
  Correlator c(100, Seconds(3600));
  JoinedFields a{IpAddress::Parse("192.0.2.1"), "alice@example.com", ""};
  c.Join("", "777", T(0), a);
  JoinedFields b{IpAddress::Parse("192.0.2.2"), "bob@example.com", ""};
  c.Join("", "777", T(10), b);
  JoinedFields q{};
  c.Join("", "777", T(11), q);
  CHECK(q.account == "bob@example.com");
}

TEST_CASE("entries expire by age and by count") {
  Correlator c(2, Seconds(60));
  JoinedFields a{IpAddress::Parse("192.0.2.1"), "a", ""};
  c.Join("id1", "", T(0), a);
  JoinedFields late{};
  c.Join("id1", "", T(120), late);
  CHECK(late.account.empty());
  for (int i = 0; i < 5; ++i) {
    JoinedFields f{IpAddress::Parse("192.0.2.1"), "x", ""};
    c.Join("k" + std::to_string(i), "", T(200), f);
  }
  CHECK(c.size() == 2);
  CHECK(c.evicted() == 3);
}

TEST_CASE("overlong keys are not stored") {
  Correlator c(10, Seconds(60));
  JoinedFields a{IpAddress::Parse("192.0.2.1"), "a", ""};
  c.Join(std::string(500, 'k'), "", T(0), a);
  CHECK(c.size() == 0);
}

TEST_CASE("at its cap the oldest ids go, and an entry taken again holds only its new message's fields") {
  // A flood of messages that never complete: 1,000 ids through a table of 100. Every
  // position is freed and taken again nine times; what an id joins must be its own. Ids of
  // two lengths, and the last hundred longer than any before (the index holds views of the
  // entries' own keys: a longer one taken into a freed position moves its bytes).
  Correlator c(100, Seconds(3600));
  auto id = [](int i) {
    std::string s = "Q" + std::to_string(100000 + i);
    return i >= 900 ? s + std::string(110, 'x') : i % 2 ? s + "-long-queue-id" : s;
  };
  for (int i = 0; i < 1000; ++i) {
    JoinedFields f{IpAddress::V4(0xC6336400u + static_cast<uint32_t>(i % 200)), "user" + std::to_string(i) + "@example.com",
                   i % 2 ? "" : "s" + std::to_string(i) + "@example.org"};
    c.Join(id(i), "", T(i), f);
  }
  CHECK(c.size() == 100);
  CHECK(c.evicted() == 900);
  for (int i = 0; i < 1000; ++i) {
    JoinedFields q{};
    c.Join(id(i), "", T(1000), q);
    INFO("id " << id(i));
    if (i < 900) {
      CHECK(q.account.empty());
      CHECK_FALSE(q.ip);
    } else {
      CHECK(q.account == "user" + std::to_string(i) + "@example.com");
      CHECK(q.sender == (i % 2 ? "" : "s" + std::to_string(i) + "@example.org"));
      REQUIRE(q.ip);
      CHECK(*q.ip == IpAddress::V4(0xC6336400u + static_cast<uint32_t>(i % 200)));
    }
  }
  // Expiry by age frees positions as well: an hour later the old ids are gone, new ones
  // join.
  JoinedFields fresh{IpAddress::Parse("192.0.2.9"), "late@example.com", ""};
  c.Join("LATE", "", T(5000), fresh);
  CHECK(c.size() == 1);
  JoinedFields q{};
  c.Join("LATE", "", T(5001), q);
  CHECK(q.account == "late@example.com");
}
