// Cost of each shipped pattern on the lines it matches: the capture pass (head on the DFA,
// body on the capturing engine) against RE2 on the whole regex. For tuning filters by hand:
//   build/tests/bench/pattern_bench etc/relayban/relayban.yaml LOG
#include <re2/re2.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "relayban/config/config_loader.hpp"
#include "relayban/filter/capturing_regex.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"

using namespace relayban;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: pattern_bench CONFIG LOG\n");
    return 2;
  }
  std::vector<Error> errors;
  auto config = LoadConfig(argv[1], errors);
  if (!config) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  // Up to 200 sample messages (stamp removed) per pattern, from the log.
  struct Pat {
    std::string name;
    std::unique_ptr<CapturingRegex> re;
    std::vector<std::string> lines;
  };
  std::vector<Pat> pats;
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  for (const auto& [fname, f] : config->filters)
    for (size_t i = 0; i < f.patterns.size(); ++i)
      pats.push_back({fname + "#" + std::to_string(i) + " " + f.patterns[i].kind,
                      std::make_unique<CapturingRegex>(ExpandPatternMacros(f.patterns[i].regex), o), {}});
  std::ifstream in(argv[2]);
  std::string line;
  while (std::getline(in, line)) {
    auto shape = DetectStamp(line, StampFormat::kAuto);
    if (!shape) continue;
    std::string msg = line.substr(shape->length);
    for (auto& p : pats)
      if (p.lines.size() < 200 && p.re->whole().Match(msg, 0, msg.size(), RE2::ANCHOR_START, nullptr, 0))
        p.lines.push_back(msg);
  }
  std::printf("%-40s %6s %5s %10s %10s  %s\n", "pattern", "lines", "cut", "cut ns", "whole ns", "required literal");
  for (auto& p : pats) {
    if (p.lines.empty()) continue;
    int n = p.re->whole().NumberOfCapturingGroups() + 1;
    re2::StringPiece g[32];
    auto time = [&](bool whole) {
      auto t0 = std::chrono::steady_clock::now();
      int rounds = 0;
      do {
        for (const auto& m : p.lines) {
          re2::StringPiece text(m);
          if (whole) p.re->whole().Match(text, 0, text.size(), RE2::ANCHOR_START, g, n);
          else p.re->MatchExact(text, g, n);
        }
        ++rounds;
      } while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100));
      return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
             (static_cast<double>(rounds) * static_cast<double>(p.lines.size()));
    };
    std::printf("%-40s %6zu %5s %10.0f %10.0f  '%s'\n", p.name.c_str(), p.lines.size(), p.re->is_split() ? "yes" : "no",
                time(false), time(true), RequiredLiteral(p.re->whole().pattern()).c_str());
  }
}
