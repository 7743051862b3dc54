// `check` reads and matches on one thread and scores on another (ReadParsedLines with
// Engine::Parse and OnParsed): what it decides must be what OnLine, line by line, decides.
#include "cli/parsed_reader.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/log_reader.hpp"
#include "relayban/config/config_loader.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/filter/filter_set.hpp"
#include "unit/engine/sample_lines.hpp"

using namespace relayban;

namespace {

struct Outcome {
  std::vector<std::string> orders;
  EngineStats stats;
  EngineCounts::Source counts;
  uint64_t delivered = 0;  // lines handed to the scoring side
};

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content) {
    char p[] = "/tmp/relayban-parsed-XXXXXX";
    int fd = mkstemp(p);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    close(fd);
    path = p;
  }
  ~TempFile() { unlink(path.c_str()); }
};

Outcome LineByLine(const std::vector<std::string>& paths) {
  int source = 0;
  auto engine = ShippedEngine(source);
  Outcome o;
  EngineOutput out;
  for (const auto& p : paths) {
    auto r = ReadLogLines(p, 16384, [&](std::string_view line, uint64_t) {
      ++o.delivered;
      engine->OnLine(source, line, kSampleNow, out);
      for (const auto& d : out.orders) o.orders.push_back(DescribeOrder(d));
      out.clear();
    });
    if (!r) break;
  }
  o.stats = engine->stats();
  o.counts = engine->counts().sources.at(static_cast<size_t>(source));
  return o;
}

Outcome TwoThreads(const std::vector<std::string>& paths, Result<void>& result) {
  int source = 0;
  auto engine = ShippedEngine(source);
  Outcome o;
  EngineOutput out;
  result = ReadParsedLines(*engine, source, paths, 16384, kSampleNow,
                           [&](std::string_view line, const Engine::ParsedLine& parsed, const PatternHit* hits) {
                             ++o.delivered;
                             engine->OnParsed(source, line, parsed, hits, out);
                             for (const auto& d : out.orders) o.orders.push_back(DescribeOrder(d));
                             out.clear();
                           });
  o.stats = engine->stats();
  o.counts = engine->counts().sources.at(static_cast<size_t>(source));
  return o;
}

}  // namespace

TEST_CASE("lines matched on the reading thread are scored as OnLine scores them, in order, across batches") {
  std::string samples = SampleLines();
  // Several files, thousands of lines each (a batch holds 2,048), the samples between them.
  TempFile a(samples + BotnetLines(5000)), b(BotnetLines(3000) + samples), c(samples);
  std::vector<std::string> paths{a.path, b.path, c.path};
  Outcome want = LineByLine(paths);
  Result<void> r;
  Outcome got = TwoThreads(paths, r);
  REQUIRE(r);
  REQUIRE(want.orders.size() > 1000);  // the botnet is banned, not just read
  CHECK(got.orders == want.orders);
  CHECK(got.delivered == want.delivered);
  CheckSameScoring(got.stats, want.stats);
  CheckSameScoring(got.counts, want.counts);
  // Each way of refusing a line was met.
  CHECK(want.counts.unclean >= 2);
  CHECK(want.counts.no_stamp >= 1);
  CHECK(want.stats.matched > 5000 + 3000);
}

TEST_CASE("an RFC 5424 line and a CRLF line are matched on the reading thread like any other") {
  std::string samples = SampleLines();
  std::string odd = samples.substr(samples.find("Nov 18 10:00:01 mx1"));
  TempFile f(odd + odd);
  Result<void> r;
  Outcome got = TwoThreads({f.path}, r);
  REQUIRE(r);
  CHECK(got.stats.lines == 4);
  CHECK(got.stats.matched == 4);
  CHECK(got.stats.skipped == 0);
}

TEST_CASE("a log that cannot be read ends the two-thread reading with its error, after the lines before it") {
  TempFile a(BotnetLines(3000));
  std::string missing = a.path + "-missing";
  TempFile c(BotnetLines(10));
  Result<void> r;
  Outcome got = TwoThreads({a.path, missing, c.path}, r);
  REQUIRE(!r);
  CHECK(r.error().ToString().find(missing) != std::string::npos);
  CHECK(got.delivered == 3000);
  CHECK(got.stats.lines == 3000);
}
