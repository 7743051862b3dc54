// The daemon's turns match their lines on the matching thread while the loop scores the
// batch before: what it decides must be what OnLine, line by line, decides, and every line
// a turn read is scored before the turn ends.
#include "daemon/line_matcher.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "unit/engine/sample_lines.hpp"

using namespace relayban;

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

struct Scored {
  std::vector<std::string> orders;
  std::vector<int> sources;  // of each line scored, in order
  EngineStats stats;
  std::vector<EngineCounts::Source> counts;
};

// Two sources of the shipped engine; line i comes from source i % 2.
std::unique_ptr<Engine> TwoSources(int (&sources)[2]) {
  auto engine = ShippedEngine(sources[0]);
  auto second = engine->AddSource({}, StampFormat::kAuto);
  REQUIRE(second);
  sources[1] = *second;
  return engine;
}

Scored Finish(const Engine& engine, Scored s) {
  s.stats = engine.stats();
  s.counts = engine.counts().sources;
  return s;
}

Scored LineByLine(const std::vector<std::string>& lines) {
  int sources[2];
  auto engine = TwoSources(sources);
  Scored s;
  EngineOutput out;
  for (size_t i = 0; i < lines.size(); ++i) {
    s.sources.push_back(sources[i % 2]);
    engine->OnLine(sources[i % 2], lines[i], kSampleNow, out);
    for (const auto& o : out.orders) s.orders.push_back(DescribeOrder(o));
    out.clear();
  }
  return Finish(*engine, s);
}

// Turns of `turn_lines(k)` lines each, through `matcher`.
template <class TurnLines>
Scored InTurns(const std::vector<std::string>& lines, LineMatcher& matcher, TurnLines turn_lines) {
  int sources[2];
  auto engine = TwoSources(sources);
  Scored s;
  EngineOutput out;
  size_t i = 0;
  for (size_t turn = 0; i < lines.size(); ++turn) {
    size_t read = 0;  // added this turn
    size_t scored_before = s.sources.size();
    matcher.Begin(*engine, kSampleNow, [&](int source, std::string_view line, const Engine::ParsedLine& parsed,
                                           const PatternHit* hits) {
      s.sources.push_back(source);
      engine->OnParsed(source, line, parsed, hits, out);
      for (const auto& o : out.orders) s.orders.push_back(DescribeOrder(o));
      out.clear();
    });
    for (size_t n = turn_lines(turn); n > 0 && i < lines.size(); --n, ++i, ++read)
      matcher.Add(sources[i % 2], lines[i]);
    matcher.Finish();
    // Every line the turn read was scored in it: none waits for the next turn.
    REQUIRE(s.sources.size() - scored_before == read);
  }
  return Finish(*engine, s);
}

void CheckSame(const Scored& got, const Scored& want) {
  CHECK(got.orders == want.orders);
  CHECK(got.sources == want.sources);
  CheckSameScoring(got.stats, want.stats);
  REQUIRE(got.counts.size() == want.counts.size());
  for (size_t k = 0; k < got.counts.size(); ++k) CheckSameScoring(got.counts[k], want.counts[k]);
}

}  // namespace

TEST_CASE("the daemon's turns match on the matching thread and score as OnLine scores, in order, each turn whole") {
  std::string samples = SampleLines();
  std::vector<std::string> lines = Lines(samples + BotnetLines(3000) + samples + BotnetLines(500));
  Scored want = LineByLine(lines);
  REQUIRE(want.orders.size() > 500);  // the botnet is banned, not just read
  REQUIRE(want.counts.size() == 2);
  CHECK(want.counts[0].unclean >= 1);
  CHECK(want.counts[1].unclean >= 1);
  // Small batches (7 lines or 900 bytes: the 20,000-byte line is a batch alone) and turns of
  // 1 to 300 lines: batches go to the thread, and each turn's rest is matched by the loop.
  LineMatcher matcher(7, 900);
  uint32_t x = 12345;
  Scored got = InTurns(lines, matcher, [&](size_t) {
    x = x * 1103515245u + 12345u;
    return 1 + (x >> 8) % 300;
  });
  CheckSame(got, want);
  CHECK(matcher.batches_on_thread() + matcher.batches_taken_back() > 100);
  CHECK(matcher.batches_inline() > 10);
}

TEST_CASE("batches the matching thread has not started when they are due are matched by the loop, in order") {
  std::string samples = SampleLines();
  std::vector<std::string> lines = Lines(samples + BotnetLines(3000) + samples);
  Scored want = LineByLine(lines);
  LineMatcher matcher(7, 900);
  // Held, the thread starts nothing: every batch handed over is taken back.
  matcher.Hold(true);
  Scored got = InTurns(lines, matcher, [](size_t turn) { return turn < 10 ? 100 : 1000; });
  CheckSame(got, want);
  CHECK(matcher.batches_on_thread() == 0);
  CHECK(matcher.batches_taken_back() > 400);
  // Released in the middle of a turn's batches: the thread and the loop share them, one
  // matching at a time and in order (under TSan, a race here is reported).
  LineMatcher shared(7, 900);
  uint64_t turns = 0;
  got = InTurns(lines, shared, [&](size_t) {
    shared.Hold(++turns % 2 == 0);
    return 500;
  });
  CheckSame(got, want);
  CHECK(shared.batches_on_thread() + shared.batches_taken_back() > 400);
  CHECK(shared.batches_taken_back() > 0);
}

TEST_CASE("a turn of fewer lines than a batch is matched on the loop's own thread") {
  std::vector<std::string> lines = Lines(BotnetLines(40));
  Scored want = LineByLine(lines);
  LineMatcher matcher;  // 256 lines a batch
  Scored got = InTurns(lines, matcher, [](size_t) { return 10; });
  CheckSame(got, want);
  CHECK(matcher.batches_on_thread() + matcher.batches_taken_back() == 0);
  CHECK(matcher.batches_inline() == 4);
}

TEST_CASE("a turn of many batches with the default sizes scores every line before it ends") {
  std::vector<std::string> lines = Lines(BotnetLines(5000));
  Scored want = LineByLine(lines);
  LineMatcher matcher;
  Scored got = InTurns(lines, matcher, [](size_t) { return 2000; });
  CheckSame(got, want);
  // Turns of 2,000, 2,000 and 1,000 lines: 7, 7 and 3 full batches of 256 go to the
  // thread, and each turn's last 208, 208 and 232 lines are matched by the loop.
  CHECK(matcher.batches_on_thread() + matcher.batches_taken_back() == 17);
  CHECK(matcher.batches_inline() == 3);
}
