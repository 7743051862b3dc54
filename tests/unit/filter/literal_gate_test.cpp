#include "relayban/filter/literal_gate.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace relayban;

TEST_CASE("the literal gate finds a literal wherever it is, and only then") {
  std::mt19937 rng(99);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  // A small alphabet, so that literals and their byte pairs occur by chance all the time.
  const std::string alphabet = "ab=, :<";
  auto random_text = [&](int max_len) {
    std::string s;
    for (int n = pick(max_len + 1); n > 0; --n) s += alphabet[static_cast<size_t>(pick(7))];
    return s;
  };
  int found = 0, not_found = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::string> lits;
    for (int k = 1 + pick(5); k > 0; --k) {
      std::string l = random_text(6);
      while (l.size() < 2) l += alphabet[static_cast<size_t>(pick(7))];
      lits.push_back(l);
    }
    // Every other round without AVX2, so both vector paths are checked on this machine; and
    // with random byte counts, so other pairs are chosen (which must not change any answer).
    LiteralGate::ByteCounts counts{};
    for (auto& c : counts) c = static_cast<uint64_t>(pick(1000));
    auto gate = LiteralGate::Build(lits, round % 2 == 0, round % 3 == 0 ? nullptr : &counts);
    REQUIRE(gate);
    for (int t = 0; t < 20; ++t) {
      std::string text = random_text(80);
      bool want = false;
      for (const auto& l : lits) want = want || text.find(l) != std::string::npos;
      INFO("text '" << text << "'");
      REQUIRE(gate->MayMatch(text) == want);
      uint64_t want_bits = 0;
      for (size_t k = 0; k < gate->literals().size(); ++k)
        if (text.find(gate->literals()[k]) != std::string::npos) want_bits |= uint64_t{1} << k;
      REQUIRE(gate->Found(text) == want_bits);
      for (const auto& l : lits) REQUIRE(gate->IndexOf(l) >= 0);
      (want ? found : not_found)++;
    }
  }
  CHECK(found > 5000);
  CHECK(not_found > 5000);
}

TEST_CASE("the literal gate is refused for too short literals or too many first bytes") {
  CHECK_FALSE(LiteralGate::Build({}));
  CHECK_FALSE(LiteralGate::Build({"abc", "x"}));
  // Literals made of one repeated byte each: every one brings its own first byte.
  std::vector<std::string> many;
  for (size_t i = 0; i <= LiteralGate::kMaxFirstBytes; ++i) many.push_back(std::string(3, static_cast<char>('A' + i)));
  CHECK_FALSE(LiteralGate::Build(many));
  many.pop_back();
  auto gate = LiteralGate::Build(many);
  REQUIRE(gate);
  CHECK(gate->MayMatch("a line long enough for the vector path with XXX in it"));
  CHECK_FALSE(gate->MayMatch("a line long enough for the vector path without it"));
  CHECK(gate->IndexOf("nope") == -1);
}
