// Worst-case lines for every shipped pattern: for each pattern, a sample line it matches is
// taken from the sample logs, and each of its captures in turn is stuffed with the pattern's
// own literals and separators, repeated until the line is just under max_line; the slowest
// variant is kept. Prints MB/s of the filter set of that pattern's filter (literal gate,
// dispatch and RE2, as a jail reads) on it, and writes the lines for `relayban check`.
//   build/tests/bench/crafted_bench etc/relayban/relayban.yaml tests/data/samples [OUT.log]
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "relayban/config/config_loader.hpp"
#include "relayban/filter/capturing_regex.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"

using namespace relayban;

namespace {

// Runs of literal text in a regex (outside classes), unescaped: what a crafted line repeats.
std::vector<std::string> Literals(const std::string& re) {
  std::vector<std::string> out;
  std::string run;
  auto flush = [&] {
    if (run.size() >= 2) out.push_back(run);
    run.clear();
  };
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      char n = re[++i];
      if (std::string(".[]()|*+?{}^$\\/-<>=:,@").find(n) != std::string::npos) run += n;
      else flush();
      continue;
    }
    if (c == '[') {
      flush();
      while (i < re.size() && re[i] != ']') i += re[i] == '\\' ? 2 : 1;
      continue;
    }
    if (std::string("()|*+?{}^$.").find(c) != std::string::npos) {
      if ((c == '*' || c == '+' || c == '?' || c == '{') && !run.empty()) run.pop_back();  // quantified
      flush();
      if (c == '(' && i + 2 < re.size() && re[i + 1] == '?') {
        i += 2;  // (?: or (?P<name>
        if (re[i] == 'P' && i + 1 < re.size() && re[i + 1] == '<') i = re.find('>', i);
      }
      if (c == '{') i = re.find('}', i);
      continue;
    }
    run += c;
  }
  flush();
  return out;
}

double MBps(const FilterSet& set, const std::vector<std::string>& msgs) {
  std::vector<PatternHit> hits;
  size_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  do {
    for (const auto& m : msgs) {
      hits.clear();
      set.Match(m, hits);
      bytes += m.size();
    }
  } while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(150));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(bytes) / s / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crafted_bench CONFIG SAMPLES_DIR [OUT.log]\n");
    return 2;
  }
  std::vector<Error> errors;
  auto config = LoadConfig(argv[1], errors);
  if (!config) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  // Every sample message (stamp removed), with its stamp for writing lines back; from the
  // sample logs and the golden files beside them.
  std::vector<std::pair<std::string, std::string>> samples;
  std::vector<std::filesystem::path> files;
  for (std::string dir : {std::string(argv[2]), std::string("tests/golden")})
    if (std::filesystem::is_directory(dir))
      for (const auto& f : std::filesystem::directory_iterator(dir))
        if (f.path().extension() == ".log" || f.path().extension() == ".golden") files.push_back(f.path());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      // A golden file's log lines start with "> ".
      if (f.extension() == ".golden") {
        if (line.rfind("> ", 0) != 0) continue;
        line.erase(0, 2);
      }
      auto shape = DetectStamp(line, StampFormat::kAuto);
      if (shape) samples.emplace_back(line.substr(0, shape->length), line.substr(shape->length));
    }
  }
  std::ofstream out(argc > 3 ? argv[3] : "/dev/null");
  const size_t target = config->max_line - 64;
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  std::printf("%-28s %-15s %8s %9s  %s\n", "pattern", "kind", "bytes", "MB/s", "stuffed capture");
  double worst = 1e18;
  for (const auto& [fname, f] : config->filters) {
    auto set = FilterSet::Build({&f});
    if (!set) {
      std::fprintf(stderr, "%s: %s\n", fname.c_str(), set.error().ToString().c_str());
      return 1;
    }
    for (size_t pi = 0; pi < f.patterns.size(); ++pi) {
      CapturingRegex re(ExpandPatternMacros(f.patterns[pi].regex), o);
      int n = re.whole().NumberOfCapturingGroups() + 1;
      re2::StringPiece g[32];
      const std::pair<std::string, std::string>* sample = nullptr;
      for (const auto& s : samples)
        if (re.MatchExact(s.second, g, n)) {
          sample = &s;
          break;
        }
      std::string name = fname + "#" + std::to_string(pi);
      if (!sample) {
        std::printf("%-28s %-15s %8s %9s  (no sample line matches)\n", name.c_str(), f.patterns[pi].kind.c_str(), "-", "-");
        continue;
      }
      re.MatchExact(sample->second, g, n);
      // Three kinds of stuffing: every literal of the pattern; the literals but those a
      // `unique` rule counts (a line repeating those is refused at once); and the
      // punctuation of the literals alone.
      std::vector<std::string> poisons(3);
      for (const auto& l : Literals(f.patterns[pi].regex)) {
        poisons[0] += l;
        bool counted = false;
        for (const auto& u : f.patterns[pi].unique) counted = counted || l.find(u) != std::string::npos || u.find(l) != std::string::npos;
        if (!counted) poisons[1] += l;
        for (char ch : l)
          if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != ' ') poisons[2] += ch;
      }
      // Each capture in turn gets a stuffing repeated; the slowest line is kept.
      double slowest = 1e18;
      std::string crafted, which;
      for (const std::string& poison : poisons) {
        if (poison.empty()) continue;
        for (int k = 1; k < n; ++k) {
          if (!g[k].data()) continue;
          size_t at = static_cast<size_t>(g[k].data() - sample->second.data()) + g[k].size();
          std::string m = sample->second;
          std::string stuff;
          while (m.size() + stuff.size() + poison.size() < target) stuff += poison;
          m.insert(at, stuff);
          double mbps = MBps(**set, {m});
          if (mbps < slowest) {
            slowest = mbps;
            crafted = m;
            which = re.whole().CapturingGroupNames().count(k) ? re.whole().CapturingGroupNames().at(k) : std::to_string(k);
          }
        }
      }
      if (crafted.empty()) continue;
      worst = std::min(worst, slowest);
      out << sample->first << crafted << "\n";
      std::printf("%-28s %-15s %8zu %9.1f  %s\n", name.c_str(), f.patterns[pi].kind.c_str(), crafted.size(), slowest,
                  which.c_str());
    }
  }
  std::printf("slowest: %.1f MB/s\n", worst);
  return 0;
}
