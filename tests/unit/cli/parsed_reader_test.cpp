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

using namespace relayban;

namespace {

const Time kNow = Time(Micros(int64_t{1795000000} * 1000000));  // 2026-11-18

std::unique_ptr<Engine> Shipped(int& source) {
  std::vector<Error> errors;
  auto c = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(c);
  auto e = Engine::Create(*c, {});
  REQUIRE(e);
  auto s = (*e)->AddSource({}, StampFormat::kAuto);
  REQUIRE(s);
  source = *s;
  return std::move(e.value());
}

std::string Describe(const Order& o) {
  std::ostringstream s;
  s << o.at.time_since_epoch().count() << " " << o.jail << "/" << o.rule << " " << o.target.ToString() << " "
    << o.duration.count() << " " << o.account << " " << o.reason;
  return s.str();
}

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
  auto engine = Shipped(source);
  Outcome o;
  EngineOutput out;
  for (const auto& p : paths) {
    auto r = ReadLogLines(p, 16384, [&](std::string_view line, uint64_t) {
      ++o.delivered;
      engine->OnLine(source, line, kNow, out);
      for (const auto& d : out.orders) o.orders.push_back(Describe(d));
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
  auto engine = Shipped(source);
  Outcome o;
  EngineOutput out;
  result = ReadParsedLines(*engine, source, paths, 16384, kNow,
                           [&](std::string_view line, const Engine::ParsedLine& parsed, const PatternHit* hits) {
                             ++o.delivered;
                             engine->OnParsed(source, line, parsed, hits, out);
                             for (const auto& d : out.orders) o.orders.push_back(Describe(d));
                             out.clear();
                           });
  o.stats = engine->stats();
  o.counts = engine->counts().sources.at(static_cast<size_t>(source));
  return o;
}

// Every sample log of every mail system, and lines the engine refuses in each way.
std::string Samples() {
  std::string all;
  for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(RELAYBAN_SOURCE_DIR) / "tests/data/samples"))
    if (f.path().extension() == ".log") {
      std::ifstream in(f.path());
      all += std::string(std::istreambuf_iterator<char>(in), {});
      if (!all.empty() && all.back() != '\n') all += '\n';
    }
  all += "\n";                                                      // empty
  all += "no stamp at all: authentication failed\n";               // no stamp
  all += "Nov 18 10:00:00 mx1 postfix/smtpd[1]: \x01 bad\n";        // not clean text
  all += std::string(20000, 'x') + "\n";                            // overlong
  all += "Nov 18 10:00:01 mx1 postfix/smtpd[7]: warning: unknown[203.0.113.9]: SASL LOGIN authentication "
         "failed: UGFzc3dvcmQ6, sasl_username=crlf@example.com\r\n";  // CRLF
  // RFC 5424: rewritten for the filters on the scoring side.
  all += "<38>1 2026-11-18T10:00:02Z mx1 postfix/smtpd 4242 - - warning: unknown[203.0.113.10]: SASL LOGIN "
         "authentication failed: UGFzc3dvcmQ6, sasl_username=rfc@example.com\n";
  return all;
}

// Failures from many addresses on a few accounts: verdicts and bans across batches.
std::string Botnet(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += "Nov 18 10:" + std::to_string(10 + i / 6000) + ":00 mx1 postfix/smtpd[" + std::to_string(1000 + i) +
         "]: warning: unknown[10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
         std::to_string(i % 256) + "]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user" +
         std::to_string(i % 7) + "@example.com\n";
  return s;
}

}  // namespace

TEST_CASE("lines matched on the reading thread are scored as OnLine scores them, in order, across batches") {
  std::string samples = Samples();
  // Several files, thousands of lines each (a batch holds 2,048), the samples between them.
  TempFile a(samples + Botnet(5000)), b(Botnet(3000) + samples), c(samples);
  std::vector<std::string> paths{a.path, b.path, c.path};
  Outcome want = LineByLine(paths);
  Result<void> r;
  Outcome got = TwoThreads(paths, r);
  REQUIRE(r);
  REQUIRE(want.orders.size() > 1000);  // the botnet is banned, not just read
  CHECK(got.orders == want.orders);
  CHECK(got.delivered == want.delivered);
  CHECK(got.stats.lines == want.stats.lines);
  CHECK(got.stats.matched == want.stats.matched);
  CHECK(got.stats.skipped == want.stats.skipped);
  CHECK(got.stats.ambiguous == want.stats.ambiguous);
  CHECK(got.stats.events == want.stats.events);
  CHECK(got.stats.verdicts == want.stats.verdicts);
  CHECK(got.counts.unclean == want.counts.unclean);
  CHECK(got.counts.no_stamp == want.counts.no_stamp);
  CHECK(got.counts.bad_field == want.counts.bad_field);
  CHECK(got.counts.ambiguous == want.counts.ambiguous);
  CHECK(got.counts.matched == want.counts.matched);
  // Each way of refusing a line was met.
  CHECK(want.counts.unclean >= 2);
  CHECK(want.counts.no_stamp >= 1);
  CHECK(want.stats.matched > 5000 + 3000);
}

TEST_CASE("an RFC 5424 line and a CRLF line are matched on the reading thread like any other") {
  std::string samples = Samples();
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
  TempFile a(Botnet(3000));
  std::string missing = a.path + "-missing";
  TempFile c(Botnet(10));
  Result<void> r;
  Outcome got = TwoThreads({a.path, missing, c.path}, r);
  REQUIRE(!r);
  CHECK(r.error().ToString().find(missing) != std::string::npos);
  CHECK(got.delivered == 3000);
  CHECK(got.stats.lines == 3000);
}
