// The account table: cells cut and made printable, and the row `relayban check` writes
// straight into its buffer is the row the control client builds from texts.
#include "report/tables.hpp"

#include <random>

#include <catch2/catch.hpp>

using namespace relayban;

TEST_CASE("a cell is padded, cut with a tilde, and shows attacker bytes as question marks") {
  CHECK(Cell("abc", 6) == "abc   ");
  CHECK(Cell("abcdef", 6) == "abcd~ ");
  CHECK(Cell("abcde", 6) == "abcde ");
  CHECK(Cell("abcde", 5) == "abc~ ");
  CHECK(Cell("a\x1b[31mb\n", 12) == "a?[31mb?    ");
  CHECK(Cell(std::string(300, 'x'), 400) == std::string(200, 'x') + "..." + std::string(197, ' '));
  CHECK(Cell(std::string(300, 'x'), 203) == std::string(200, 'x') + ".~ ");
  CHECK(Cell(std::string(300, 'x'), 202) == std::string(200, 'x') + "~ ");
}

TEST_CASE("an account row appended from its view is the row built from its texts, for any view") {
  std::mt19937_64 rng(20261204);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  auto text = [&](size_t max) {
    std::string s(pick(max + 1), ' ');
    for (char& c : s) c = pick(4) == 0 ? static_cast<char>(pick(256)) : static_cast<char>('a' + pick(26));
    return s;
  };
  std::string out, scratch;
  for (int round = 0; round < 5000; ++round) {
    AccountView a;
    a.account = text(round % 10 == 0 ? 260 : 40);
    a.auth_success = pick(3) == 0 ? pick(UINT64_MAX) : pick(1000);
    a.auth_failure = pick(100000000);
    a.relayed = pick(2) ? 0 : pick(1u << 30);
    a.recipient_domains = pick(5000);
    a.ips = pick(300000);
    if (pick(3) != 0) {
      std::array<uint8_t, 16> b{};
      for (auto& x : b) x = pick(3) == 0 ? 0 : static_cast<uint8_t>(pick(256));
      a.last_ip = pick(2) ? IpAddress::V4(static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 | b[2] << 8 | b[3]) : IpAddress::V6(b);
    }
    for (size_t k = pick(4); k > 0; --k) a.verdicts.push_back(text(30));
    for (size_t k = pick(3); k > 0; --k) a.targeted_by.push_back(text(12));
    std::string want = AccountTableRow(RowOf(a));
    size_t before = out.size();
    AppendAccountTableRow(out, a, scratch);
    REQUIRE(out.substr(before) == want);
    if (out.size() > 4096) out.clear();
  }
}
