// Lines and an engine for tests that score lines in two steps (Engine::Parse on one thread,
// OnParsed on another) and compare with OnLine: every sample log, lines refused in each way,
// a botnet's failures.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "relayban/config/config_loader.hpp"
#include "relayban/core/ip_address.hpp"
#include "relayban/engine/engine.hpp"

namespace relayban {

inline const Time kSampleNow = Time(Micros(int64_t{1795000000} * 1000000));  // 2026-11-18

// The shipped configuration's engine, with one source of every jail (its id in `source`).
inline std::unique_ptr<Engine> ShippedEngine(int& source) {
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

inline std::string DescribeOrder(const Order& o) {
  std::ostringstream s;
  s << o.at.time_since_epoch().count() << " " << o.jail << "/" << o.rule << " " << o.target.ToString() << " "
    << o.duration.count() << " " << o.account << " " << o.reason;
  return s.str();
}

// Every sample log of every mail system, and lines the engine refuses in each way.
inline std::string SampleLines() {
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
inline std::string BotnetLines(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += "Nov 18 10:" + std::to_string(10 + i / 6000) + ":00 mx1 postfix/smtpd[" + std::to_string(1000 + i) +
         "]: warning: unknown[10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
         std::to_string(i % 256) + "]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user" +
         std::to_string(i % 7) + "@example.com\n";
  return s;
}

// What scoring the same lines two ways must leave alike.
inline void CheckSameScoring(const EngineStats& got, const EngineStats& want) {
  CHECK(got.lines == want.lines);
  CHECK(got.matched == want.matched);
  CHECK(got.skipped == want.skipped);
  CHECK(got.ambiguous == want.ambiguous);
  CHECK(got.events == want.events);
  CHECK(got.verdicts == want.verdicts);
}
inline void CheckSameScoring(const EngineCounts::Source& got, const EngineCounts::Source& want) {
  CHECK(got.lines == want.lines);
  CHECK(got.matched == want.matched);
  CHECK(got.unclean == want.unclean);
  CHECK(got.no_stamp == want.no_stamp);
  CHECK(got.bad_field == want.bad_field);
  CHECK(got.ambiguous == want.ambiguous);
}

}  // namespace relayban
