#include "relayban/core/ip_address.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

using relayban::IpAddress;
using relayban::Prefix;

TEST_CASE("an IPv4 address parses and prints canonically") {
  auto ip = IpAddress::Parse("192.0.2.7");
  REQUIRE(ip);
  CHECK(ip->is_v4());
  CHECK(ip->ToString() == "192.0.2.7");
}

TEST_CASE("an IPv6 address prints in its compressed form") {
  auto ip = IpAddress::Parse("2001:0db8:0000:0000:0000:ff00:0042:8329");
  REQUIRE(ip);
  CHECK_FALSE(ip->is_v4());
  CHECK(ip->ToString() == "2001:db8::ff00:42:8329");
}

TEST_CASE("an IPv4-mapped IPv6 address is keyed as IPv4") {
  auto ip = IpAddress::Parse("::ffff:192.0.2.5");
  REQUIRE(ip);
  CHECK(ip->is_v4());
  CHECK(*ip == *IpAddress::Parse("192.0.2.5"));
}

TEST_CASE("strict parsing refuses decorations and garbage") {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "[1.2.3.4]", "1.2.3.4:25", "x", "1.2.3.4 ",
                          "::g", "01.2.3.4x"})
    CHECK_FALSE(IpAddress::Parse(bad));
}

TEST_CASE("logged address forms are undone") {
  CHECK(IpAddress::ParseLogged("[192.0.2.1]")->ToString() == "192.0.2.1");
  CHECK(IpAddress::ParseLogged("192.0.2.1:5432")->ToString() == "192.0.2.1");
  CHECK(IpAddress::ParseLogged("[2001:db8::7]:25")->ToString() == "2001:db8::7");
  CHECK(IpAddress::ParseLogged("IPv6:2001:db8::1")->ToString() == "2001:db8::1");
  CHECK(IpAddress::ParseLogged("::ffff:1.2.3.4")->ToString() == "1.2.3.4");
  CHECK(IpAddress::ParseLogged("fe80::1%eth0")->ToString() == "fe80::1");
  CHECK(IpAddress::ParseLogged("2001_db8_bad__7")->ToString() == "2001:db8:bad::7");
}

TEST_CASE("logged forms that are not exactly one address are refused") {
  for (const char* bad : {"[1.2.3.4]x", "[1.2.3.4]:", "[1.2.3.4", "1.2.3.4:99999999", "a_b", "1_2_3_4", "unknown",
                          "1.2.3.4:5:6"})
    CHECK_FALSE(IpAddress::ParseLogged(bad));
}

TEST_CASE("loopback is recognised for both families") {
  CHECK(IpAddress::Parse("127.0.0.1")->IsLoopback());
  CHECK(IpAddress::Parse("127.200.0.1")->IsLoopback());
  CHECK(IpAddress::Parse("::1")->IsLoopback());
  CHECK_FALSE(IpAddress::Parse("128.0.0.1")->IsLoopback());
  CHECK_FALSE(IpAddress::Parse("::2")->IsLoopback());
}

TEST_CASE("a prefix contains exactly the addresses under its mask") {
  auto p = Prefix::Parse("192.0.2.0/24");
  REQUIRE(p);
  CHECK(p->Contains(*IpAddress::Parse("192.0.2.255")));
  CHECK_FALSE(p->Contains(*IpAddress::Parse("192.0.3.0")));
  CHECK_FALSE(p->Contains(*IpAddress::Parse("::ffff:c000:300")));
  auto v6 = Prefix::Parse("2001:db8::/64");
  REQUIRE(v6);
  CHECK(v6->Contains(*IpAddress::Parse("2001:db8::ffff:1")));
  CHECK_FALSE(v6->Contains(*IpAddress::Parse("2001:db8:0:1::1")));
  CHECK(v6->ToString() == "2001:db8::/64");
}

TEST_CASE("a CIDR with host bits set is a configuration typo") {
  CHECK_FALSE(Prefix::Parse("10.0.0.1/8"));
  CHECK(Prefix::Parse("10.0.0.1/8", true)->ToString() == "10.0.0.0/8");
  CHECK_FALSE(Prefix::Parse("10.0.0.0/33"));
  CHECK_FALSE(Prefix::Parse("10.0.0.0/"));
  CHECK_FALSE(Prefix::Parse("10.0.0.0/-1"));
  CHECK(Prefix::Parse("192.0.2.9")->is_single());
}

TEST_CASE("equal addresses hash equally and different ones usually do not") {
  relayban::IpAddressHash h;
  CHECK(h(*IpAddress::Parse("192.0.2.1")) == h(*IpAddress::Parse("::ffff:192.0.2.1")));
  CHECK(h(*IpAddress::Parse("192.0.2.1")) != h(*IpAddress::Parse("192.0.2.2")));
}

TEST_CASE("prefix containment agrees with masking, for every length") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::array<uint8_t, 16> a{}, b{};
    for (auto& x : a) x = static_cast<uint8_t>(rng());
    b = a;
    // Differ from a at one random bit, so lengths on both sides of it are tried.
    size_t bit = rng() % 128;
    b[bit / 8] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
    for (bool v4 : {true, false}) {
      IpAddress x = v4 ? IpAddress::V4((uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3])
                       : IpAddress::V6(a);
      IpAddress y = v4 ? IpAddress::V4((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3])
                       : IpAddress::V6(b);
      for (int len = 0; len <= x.max_prefix(); ++len) {
        Prefix p(x, len);
        INFO("length " << len << " differing bit " << bit);
        CHECK(p.Contains(y) == (y.Masked(len) == x.Masked(len)));
        CHECK(p.Contains(x));
      }
    }
  }
}

TEST_CASE("addresses and prefixes order by their bytes, then family and length") {
  std::mt19937_64 rng(7);
  std::vector<IpAddress> all;
  for (int i = 0; i < 2000; ++i) {
    std::array<uint8_t, 16> b{};
    // Few distinct bytes, so equal leading words are common and the second word decides.
    for (auto& x : b) x = static_cast<uint8_t>(rng() % 3 * 127);
    all.push_back(i % 2 ? IpAddress::V6(b) : IpAddress::V4(static_cast<uint32_t>(rng() % 5) << 30 | static_cast<uint32_t>(rng() % 3)));
  }
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    const auto& a = all[i];
    const auto& b = all[i + 1];
    int bytes = std::memcmp(a.bytes().data(), b.bytes().data(), 16);
    auto want = bytes != 0 ? (bytes < 0 ? std::strong_ordering::less : std::strong_ordering::greater)
                           : a.family() <=> b.family();
    CHECK((a <=> b) == want);
    CHECK((a == b) == (want == 0));
  }
  CHECK(Prefix(*IpAddress::Parse("10.0.0.0"), 8) < Prefix(*IpAddress::Parse("10.0.0.0"), 16));
  CHECK(*IpAddress::Parse("9.255.255.255") < *IpAddress::Parse("10.0.0.0"));
  CHECK(*IpAddress::Parse("10.0.0.1") < *IpAddress::Parse("10.0.1.0"));
}

TEST_CASE("an IPv4 address prints as inet_ntop prints it, for every octet value and random addresses") {
  auto ntop = [](uint32_t host_order) {
    uint32_t net = htonl(host_order);
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &net, buf, sizeof buf);
    return std::string(buf);
  };
  for (uint32_t v = 0; v < 256; ++v)
    for (uint32_t shift : {0u, 8u, 16u, 24u}) {
      uint32_t a = (v << shift) | (shift == 0 ? 0x0A000000u : 1u);
      REQUIRE(IpAddress::V4(a).ToString() == ntop(a));
    }
  std::mt19937 rng(3);
  for (int i = 0; i < 100000; ++i) {
    uint32_t a = static_cast<uint32_t>(rng());
    REQUIRE(IpAddress::V4(a).ToString() == ntop(a));
  }
  CHECK(IpAddress::V4(0).ToString() == "0.0.0.0");
  CHECK(IpAddress::V4(0xFFFFFFFFu).ToString() == "255.255.255.255");
  CHECK(Prefix(IpAddress::V4(0xC6336400u), 24).ToString() == "198.51.100.0/24");
}

TEST_CASE("an IPv6 address prints as inet_ntop prints it: zero runs, ties, embedded IPv4 forms") {
  auto check = [](const std::array<uint8_t, 16>& b) {
    char want[INET6_ADDRSTRLEN];
    REQUIRE(inet_ntop(AF_INET6, b.data(), want, sizeof want));
    IpAddress ip = IpAddress::V6(b);
    if (!ip.is_v4()) {  // an IPv4-mapped address is kept as IPv4
      INFO(want);
      CHECK(ip.ToString() == want);
    }
  };
  for (const char* text : {"::", "::1", "1::", "1::1", "::1:0:0:0:0:0", "1:0:0:1:0:0:0:1", "1:0:0:1:0:0:1:1",
                           "0:0:1::", "::1.2.3.4", "::0.0.1.0", "::ffff:0:0", "::fffe:1.2.3.4", "1::ffff:1.2.3.4",
                           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::10:0:0:1", "0:1:0:1:0:1:0:1"}) {
    std::array<uint8_t, 16> b{};
    REQUIRE(inet_pton(AF_INET6, text, b.data()) == 1);
    check(b);
  }
  std::mt19937_64 rng(11);
  for (int round = 0; round < 200000; ++round) {
    std::array<uint8_t, 16> b{};
    // Groups that are zero half the time, so runs of every length and ties are common.
    for (size_t g = 0; g < 8; ++g) {
      uint64_t r = rng();
      uint16_t v = r % 2 ? 0 : r % 7 == 0 ? 0xffff : static_cast<uint16_t>((r >> 8) >> (r % 16));
      if (g == 5 && r % 5 == 0) v = 0xffff;
      b[2 * g] = static_cast<uint8_t>(v >> 8);
      b[2 * g + 1] = static_cast<uint8_t>(v);
    }
    check(b);
  }
}

TEST_CASE("masking an address clears every bit past the length, and no other") {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 300; ++round) {
    std::array<uint8_t, 16> a{};
    for (auto& x : a) x = static_cast<uint8_t>(rng() | 0x11);
    for (bool v4 : {true, false}) {
      IpAddress x = v4 ? IpAddress::V4((uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3])
                       : IpAddress::V6(a);
      for (int len = -1; len <= x.max_prefix() + 1; ++len) {
        INFO((v4 ? "v4 " : "v6 ") << len);
        IpAddress m = x.Masked(len);
        CHECK(m.family() == x.family());
        for (int bit = 0; bit < x.max_prefix(); ++bit) {
          bool was = (x.bytes()[static_cast<size_t>(bit / 8)] >> (7 - bit % 8)) & 1;
          bool is = (m.bytes()[static_cast<size_t>(bit / 8)] >> (7 - bit % 8)) & 1;
          REQUIRE(is == (bit < len && was));
        }
      }
    }
  }
}

TEST_CASE("an IPv6 address parses exactly as inet_pton takes it") {
  // Hand-picked edges, then printed addresses cut, stretched and spliced, and random strings
  // over the characters that matter.
  std::vector<std::string> cases = {
      "::", ":", ":::", "::1", "1::", "1:", ":1", "1::1", "1:::1", "::1::", "1::2::3", "1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1:2:3:4:5:6::7:8",
      "::2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "12345::", "1234::", "0000:0000:0000:0000:0000:0000:0000:0000",
      "::1.2.3.4", "::ffff:1.2.3.4", "::FFFF:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
      "1:2:3:4:5:1.2.3.4", "::1.2.3", "::1.2.3.4.5", "::01.2.3.4", "::256.1.1.1", "::1.2.3.4:1", "1.2.3.4::",
      "::a.2.3.4", "::1234.1.1.1", "::.1.2.3", "::1.2.3.4/64", "fe80::1%eth0", "2001:DB8::AbCd", "2001:db8::g",
      "[::1]", " ::1", "::1 ", "", "2001:db8:0:0:0:0:2:1", "2001:db8::2:1", "1::2:3:4:5:6:7", "::0:0:0:0:0:0:0"};
  std::mt19937_64 rng(6);
  auto pick = [&](uint64_t n) { return static_cast<size_t>(rng() % n); };
  for (int i = 0; i < 60000; ++i) {  // printed, then mutated
    std::array<uint8_t, 16> b{};
    for (size_t g = 0; g < 8; ++g) {
      uint16_t v = pick(2) ? 0 : static_cast<uint16_t>(rng() >> pick(16));
      b[2 * g] = static_cast<uint8_t>(v >> 8);
      b[2 * g + 1] = static_cast<uint8_t>(v);
    }
    char text[INET6_ADDRSTRLEN];
    REQUIRE(inet_ntop(AF_INET6, b.data(), text, sizeof text));
    std::string t = text;
    for (size_t k = pick(3); k > 0; --k) {
      size_t at = pick(t.size() + 1);
      switch (pick(5)) {
        case 0: t.insert(at, 1, "0123456789abcdefABCDEF:.x"[pick(25)]); break;
        case 1: if (at < t.size()) t.erase(at, 1); break;
        case 2: t.insert(at, "::"); break;
        case 3: t.insert(at, std::to_string(pick(300)) + "." + std::to_string(pick(300)) + "." +
                                 std::to_string(pick(300)) + "." + std::to_string(pick(300)));
          break;
        default: if (at < t.size()) t[at] = "0123456789abcdef:."[pick(18)]; break;
      }
    }
    cases.push_back(t);
  }
  const std::string alphabet = "0123456789abcdefABCDEF::::::....g";
  for (int i = 0; i < 200000; ++i) {
    std::string t;
    for (size_t len = pick(48); len > 0; --len) t += alphabet[pick(alphabet.size())];
    cases.push_back(t);
  }
  size_t valid = 0, mapped = 0;
  for (const std::string& t : cases) {
    unsigned char want[16];
    bool ok = inet_pton(AF_INET6, t.c_str(), want) == 1;
    unsigned char quad[4];
    if (inet_pton(AF_INET, t.c_str(), quad) == 1) continue;  // a dotted quad: the IPv4 test's
    auto got = IpAddress::Parse(t);
    INFO(t);
    REQUIRE(got.has_value() == ok);
    if (!ok) continue;
    ++valid;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(want, kMapped, 12) == 0) {  // kept as the IPv4 client it is
      ++mapped;
      REQUIRE(got->is_v4());
      REQUIRE(std::memcmp(got->bytes().data(), want + 12, 4) == 0);
      continue;
    }
    REQUIRE_FALSE(got->is_v4());
    REQUIRE(std::memcmp(got->bytes().data(), want, 16) == 0);
  }
  CHECK(valid > 30000);
  CHECK(mapped >= 1);
}

TEST_CASE("an IPv4 address parses exactly as inet_pton takes it") {
  // Hand-picked edges, then random strings over the characters that matter.
  std::vector<std::string> cases = {"0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
                                    "1.2.3.04", "1.2.3.0", "0.1.2.3", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ",
                                    " 1.2.3.4", "1234.1.1.1", "1.2.3.255", "1.2.3.256", "1.2.3.999", "00.1.1.1",
                                    "192.0.2.7", "1.2.3.4x", "", ".", "1", "1.2.3.4/24", "+1.2.3.4", "1.2.3.-4"};
  std::mt19937 rng(5);
  const std::string alphabet = "0123456789..........a /";
  for (int i = 0; i < 200000; ++i) {
    std::string t;
    size_t len = rng() % 17;
    for (size_t k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    cases.push_back(t);
  }
  for (int i = 0; i < 20000; ++i) {  // well-formed, and one digit more or less here and there
    std::string t = std::to_string(rng() % 300) + "." + std::to_string(rng() % 300) + "." + std::to_string(rng() % 300) +
                    "." + std::to_string(rng() % 300);
    if (rng() % 4 == 0) t.insert(rng() % (t.size() + 1), 1, "0123456789"[rng() % 10]);
    cases.push_back(t);
  }
  size_t valid = 0;
  for (const std::string& t : cases) {
    unsigned char want[4];
    bool ok = inet_pton(AF_INET, t.c_str(), want) == 1;
    auto got = IpAddress::Parse(t);
    INFO(t);
    REQUIRE(got.has_value() == ok);
    if (!ok) continue;
    ++valid;
    REQUIRE(got->is_v4());
    REQUIRE(std::memcmp(got->bytes().data(), want, 4) == 0);
  }
  CHECK(valid > 5000);
}

TEST_CASE("an IPv6 address's halves are its bytes as two big-endian numbers, and make it again") {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 10000; ++round) {
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    b[0] |= 0x20;  // never IPv4-mapped
    IpAddress ip = IpAddress::V6(b);
    uint64_t high = 0, low = 0;
    for (size_t i = 0; i < 8; ++i) {
      high = high << 8 | b[i];
      low = low << 8 | b[8 + i];
    }
    REQUIRE(ip.high() == high);
    REQUIRE(ip.low() == low);
    REQUIRE(IpAddress::V6Words(high, low) == ip);
    REQUIRE(IpAddress::V6Words(high, low).ToString() == ip.ToString());
  }
}
