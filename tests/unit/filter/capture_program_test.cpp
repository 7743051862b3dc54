#include "relayban/filter/capture_program.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "relayban/config/config_loader.hpp"
#include "relayban/filter/capturing_regex.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"
#include "unit/filter/regex_gen.hpp"

using namespace relayban;
using relayban::testing::RegexGen;

namespace {

RE2::Options Latin1() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  return o;
}

// Runs the program and RE2 on text from start; fails the test where they differ. Returns
// whether RE2 matched.
bool SameAsRe2(const CaptureProgram& prog, const RE2& re, const std::string& text, size_t start) {
  int n = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
  bool m_got = prog.Match(text, start, got.data(), n);
  bool m_want = re.Match(text, start, text.size(), RE2::ANCHOR_START, want.data(), n);
  INFO("regex " << re.pattern() << "  text '" << text << "' from " << start);
  REQUIRE(m_got == m_want);
  if (!m_want) return false;
  for (int g = 0; g < n; ++g) {
    INFO("group " << g);
    REQUIRE(got[static_cast<size_t>(g)].data() == want[static_cast<size_t>(g)].data());
    REQUIRE(got[static_cast<size_t>(g)].size() == want[static_cast<size_t>(g)].size());
  }
  return true;
}

// The messages of the sample logs (their stamps cut off).
std::vector<std::string> SampleMessages() {
  std::vector<std::string> messages;
  for (const auto& f : std::filesystem::directory_iterator(std::string(RELAYBAN_SOURCE_DIR) + "/tests/data/samples")) {
    if (f.path().extension() != ".log") continue;
    std::ifstream in(f.path());
    std::string line;
    while (std::getline(in, line)) {
      auto shape = DetectStamp(line, StampFormat::kAuto);
      messages.push_back(shape ? line.substr(shape->length) : line);
    }
  }
  return messages;
}

// CapturingRegex (whose groups[0] may span only the body) against RE2 on the whole regex:
// the same answer and the same groups.
void SameThroughCapturingRegex(const CapturingRegex& cr, const std::string& text, int n) {
  std::vector<re2::StringPiece> exact(static_cast<size_t>(n)), want(static_cast<size_t>(n));
  bool m_exact = cr.MatchExact(text, exact.data(), n);
  bool m_want = cr.whole().Match(text, 0, text.size(), RE2::ANCHOR_START, want.data(), n);
  INFO("text '" << text << "'");
  REQUIRE(m_exact == m_want);
  for (int j = 1; m_want && j < n; ++j) {
    REQUIRE(exact[static_cast<size_t>(j)].data() == want[static_cast<size_t>(j)].data());
    REQUIRE(exact[static_cast<size_t>(j)].size() == want[static_cast<size_t>(j)].size());
  }
}

}  // namespace

TEST_CASE("a capture program finds exactly RE2's submatches (random regexes and texts)") {
  RegexGen gen(20261201, true);
  int compiled = 0, refused = 0, matched = 0, long_matched = 0;
  gen.ForEachRegex(20000, 6, [&](const std::string& re_text) {
    RE2 re(re_text, Latin1());
    if (!re.ok()) return;
    auto prog = CaptureProgram::Compile(re_text);
    if (prog == nullptr) {
      ++refused;
      return;
    }
    ++compiled;
    REQUIRE(prog->groups() == re.NumberOfCapturingGroups());
    for (int t = 0; t < 40; ++t) {
      std::string text = gen.Text();
      // Some texts are long runs of short random pieces: the runs a crafted line is made of.
      if (t % 4 == 3) {
        std::string piece = gen.Text() + gen.Text();
        for (int k = gen.Pick(60); k > 0; --k) text += gen.Pick(3) == 0 ? gen.Text() : piece;
      }
      size_t start = t % 5 == 4 ? static_cast<size_t>(gen.Pick(static_cast<int>(text.size()) + 1)) : 0;
      if (SameAsRe2(*prog, re, text, start)) {
        ++matched;
        long_matched += text.size() > 40;
      }
    }
  });
  // Most random regexes are understood (those refused hold \b, or repeat what can be empty),
  // and the comparison ran on many matching texts, long ones among them.
  // (Seen: 9,243 compiled, 8,251 refused, 41,577 matched, 10,646 of them long.)
  CHECK(compiled > 6000);
  CHECK(refused > 1000);
  CHECK(matched > 25000);
  CHECK(long_matched > 6000);
}

TEST_CASE("a capture program refuses what it does not read as RE2 does") {
  for (const char* re : {R"(a\bb)", "(?i)ab", "(?i:a)b", R"(\x41)", R"(\pN)", "[[:alpha:]]", "(a*)*", "(?:a?)+",
                         "a{2000}", "a{,3}", "[a-b-c]", R"(\Qa\E)", R"(\Aa)", "a|(", R"(\n)"})
    CHECK(CaptureProgram::Compile(re) == nullptr);
  // Nesting deeper than the parser recurses (found by the fuzzer: a stack overflow).
  CHECK(CaptureProgram::Compile(std::string(5000, '(') + "a" + std::string(5000, ')')) == nullptr);
  std::string deep = "a";
  for (int i = 0; i < 60; ++i) deep = "(?:" + deep + ")";
  CHECK(CaptureProgram::Compile(deep) != nullptr);
  for (const char* re : {"a(b)c", "[]a]+", "[^]a]*", "[a-]", R"([\\-])", "(?P<ip>[0-9.]{2,45})$", ".*?x", "(?:ab)+"})
    CHECK(CaptureProgram::Compile(re) != nullptr);
}

TEST_CASE("a capture program says when a text would make its visited bitmap too big") {
  auto small = CaptureProgram::Compile("a(b*)c");
  REQUIRE(small != nullptr);
  CHECK(small->Fits(16384));
  // Hundreds of alternatives, each a join: a bitmap row each.
  std::string many = "(x";
  for (int i = 0; i < 600; ++i) many += "(?:a|b" + std::to_string(i) + ")";
  many += ")";
  auto big = CaptureProgram::Compile(many);
  REQUIRE(big != nullptr);
  CHECK(big->Fits(1024));
  CHECK_FALSE(big->Fits(1 << 20));
  // CapturingRegex then leaves the line to RE2, with the same result.
  CapturingRegex cr("y" + many, Latin1());
  REQUIRE(cr.has_program());
  std::string text = "yx" + std::string(100000, 'a');
  re2::StringPiece g[2];
  REQUIRE(cr.MatchExact(text, g, 2));
  CHECK(g[1].size() == 601);
}

TEST_CASE("a run reads a long line once, however often it is entered") {
  // (?:x.*)* on a line of x: every x enters the run again. Each position is read once per
  // entry at most, so this answers at once instead of in time quadratic in the line.
  std::string re_text = "(?:x(.*))*y";
  auto prog = CaptureProgram::Compile(re_text);
  REQUIRE(prog != nullptr);
  RE2 re(re_text, Latin1());
  std::string text(20000, 'x');
  CHECK_FALSE(SameAsRe2(*prog, re, text, 0));
  text += "y";
  CHECK(SameAsRe2(*prog, re, text, 0));
}

TEST_CASE("the shipped patterns are understood, and capture long crafted lines as RE2 does") {
  std::vector<Error> errors;
  auto config = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(config);
  std::vector<std::string> messages = SampleMessages();
  int patterns = 0, compared = 0, long_compared = 0;
  for (const auto& [name, filter] : config->filters) {
    for (const PatternSpec& p : filter.patterns) {
      std::string expanded = ExpandPatternMacros(p.regex);
      INFO(name << ": " << p.regex);
      CapturingRegex cr(expanded, Latin1());
      REQUIRE(cr.has_program());
      ++patterns;
      auto whole = CaptureProgram::Compile(expanded);
      REQUIRE(whole != nullptr);
      int n = cr.whole().NumberOfCapturingGroups() + 1;
      std::vector<re2::StringPiece> g(static_cast<size_t>(n));
      for (const std::string& m : messages) {
        if (!cr.whole().Match(m, 0, m.size(), RE2::ANCHOR_START, g.data(), n)) continue;
        SameAsRe2(*whole, cr.whole(), m, 0);
        ++compared;
        // Each capture in turn stuffed with the pattern's own text, the message's, and the
        // bytes around the capture, past the length where the program takes over.
        for (int k = 1; k < n; ++k) {
          if (g[static_cast<size_t>(k)].data() == nullptr) continue;
          size_t at = static_cast<size_t>(g[static_cast<size_t>(k)].data() - m.data()) + g[static_cast<size_t>(k)].size();
          std::string around = m.substr(at >= 12 ? at - 12 : 0, 24);
          for (const std::string& stuff : {p.regex, m, around}) {
            std::string crafted = m;
            std::string fill;
            while (fill.size() < CapturingRegex::kLongText + 200) fill += stuff;
            crafted.insert(at, fill);
            SameAsRe2(*whole, cr.whole(), crafted, 0);
            SameThroughCapturingRegex(cr, crafted, n);
            ++long_compared;
          }
        }
      }
    }
  }
  CHECK(patterns > 40);
  CHECK(compared > 100);
  CHECK(long_compared > 500);
}

TEST_CASE("every one-byte change of a matching sample line is captured as RE2 captures it") {
  // The program compares a pattern's fixed words whole: a changed byte anywhere in one, at
  // its first, last or any middle place, must fail it as RE2 fails it.
  std::vector<Error> errors;
  auto config = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(config);
  std::vector<std::string> messages = SampleMessages();
  int changed = 0, failed = 0;
  for (const auto& [name, filter] : config->filters) {
    for (const PatternSpec& p : filter.patterns) {
      std::string expanded = ExpandPatternMacros(p.regex);
      INFO(name << ": " << p.regex);
      CapturingRegex cr(expanded, Latin1());
      auto whole = CaptureProgram::Compile(expanded);
      REQUIRE(whole != nullptr);
      int n = cr.whole().NumberOfCapturingGroups() + 1;
      for (const std::string& m : messages) {
        if (!cr.whole().Match(m, 0, m.size(), RE2::ANCHOR_START, nullptr, 0)) continue;
        for (size_t at = 0; at < m.size(); ++at) {
          for (char to : {'X', static_cast<char>(m[at] ^ 0x01)}) {
            std::string t = m;
            t[at] = to;
            if (!SameAsRe2(*whole, cr.whole(), t, 0)) ++failed;
            SameThroughCapturingRegex(cr, t, n);
            ++changed;
          }
        }
      }
    }
  }
  CHECK(changed > 20000);
  CHECK(failed > 5000);  // many changes land in a fixed word
}

TEST_CASE("a pattern's fixed words become whole strings, however the builder orders them") {
  // Each run of one-byte classes that nothing else jumps into is one string; a split's
  // branches and what a repeat returns to start strings of their own.
  auto prog = CaptureProgram::Compile(R"(: warning: (?P<ip>[0-9.]+)\]: SASL [A-Z]+ authentication failed: [^,]*(?:, sasl_username=(?P<account>.*))?$)");
  REQUIRE(prog != nullptr);
  for (const char* word : {": warning: ", "]: SASL ", " authentication failed: ", ", sasl_username="})
    CHECK(prog->words().find(word) != std::string::npos);
  auto alt = CaptureProgram::Compile("status=(?:sent|deferred|bounced) (?P<rest>.*)");
  REQUIRE(alt != nullptr);
  for (const char* word : {"status=", "sent", "deferred", "bounced"}) CHECK(alt->words().find(word) != std::string::npos);
}
