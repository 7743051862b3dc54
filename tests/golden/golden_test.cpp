// Golden files: every shipped filter against log lines with their expected events.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "relayban/config/config_loader.hpp"
#include "relayban/engine/engine.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"

using namespace relayban;

namespace {

const Time kNow = Time(Micros(int64_t{1795000000} * 1000000));  // 2026-11-18
constexpr const char* kVictim = "198.51.100.250";

struct Case {
  int line_no;
  std::string line;
  std::vector<std::string> expected;  // "kind ip=... account=..." or "none"
};

std::vector<Case> ReadGolden(const std::filesystem::path& p) {
  std::vector<Case> cases;
  std::ifstream in(p);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) {
    ++n;
    if (l.rfind("> ", 0) == 0) cases.push_back({n, l.substr(2), {}});
    else if (l.rfind("= ", 0) == 0 && !cases.empty()) cases.back().expected.push_back(l.substr(2));
  }
  return cases;
}

// The event in the golden notation; empty fields are left out.
std::string Describe(const Engine& e, const Event& ev, std::vector<std::string>& ips) {
  if (ev.ip) ips.push_back(ev.ip->ToString());
  std::string s = e.kind_names()[static_cast<size_t>(ev.kind)];
  if (ev.ip) s += " ip=" + ev.ip->ToString();
  if (!ev.account.empty()) s += " account=" + ev.account;
  if (!ev.sender.empty()) s += " sender=" + ev.sender;
  if (!ev.recipient.empty()) s += " recipient=" + ev.recipient;
  if (ev.count != 1) s += " count=" + std::to_string(ev.count);
  return s;
}

// The shipped configuration; with `only_filter`, one jail that runs just that filter, so a
// filter no shipped jail uses by default is tested too.
std::unique_ptr<Engine> ShippedEngine(int& source, const std::string& only_filter = "") {
  std::vector<Error> errors;
  auto c = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(c);
  if (!only_filter.empty()) {
    JailSpec j = c->jails.front();
    j.name = "golden";
    j.filters = {only_filter};
    j.local_domains.clear();
    c->jails = {j};
  }
  auto e = Engine::Create(*c, {});
  REQUIRE(e);
  auto s = (*e)->AddSource({}, StampFormat::kAuto);
  REQUIRE(s);
  source = *s;
  return std::move(e.value());
}

}  // namespace

TEST_CASE("every shipped filter yields exactly the golden events") {
  std::filesystem::path dir = std::filesystem::path(RELAYBAN_SOURCE_DIR) / "tests" / "golden";
  std::vector<std::filesystem::path> files;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".golden") files.push_back(f.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 11);

  std::vector<Error> errors;
  auto config = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(config);
  std::set<std::string> covered;
  for (const auto& file : files) {
    std::string filter = file.stem().string();
    REQUIRE(config->filters.count(filter) == 1);
    covered.insert(filter);
    int source = 0;
    auto engine = ShippedEngine(source, filter);
    std::vector<std::string> got, ips;
    engine->SetEventObserver([&](const Event& ev) { got.push_back(Describe(*engine, ev, ips)); });
    EngineOutput out;
    for (const Case& c : ReadGolden(file)) {
      got.clear();
      engine->OnLine(source, c.line, kNow, out);
      std::vector<std::string> want = c.expected;
      if (want.size() == 1 && want[0] == "none") want.clear();
      INFO(file.filename().string() << ":" << c.line_no << ": " << c.line);
      CHECK(got == want);
      for (const auto& ip : ips) CHECK(ip != kVictim);
      ips.clear();
    }
    for (const auto& o : out.orders) CHECK(o.target.ToString() != kVictim);
  }
  // Every shipped filter has a golden file.
  for (const auto& [name, spec] : config->filters) {
    INFO("filter without golden file: " << name);
    CHECK(covered.count(name) == 1);
  }
}

TEST_CASE("hostile lines repeated many times never ban the injected address") {
  std::filesystem::path dir = std::filesystem::path(RELAYBAN_SOURCE_DIR) / "tests" / "golden";
  int source = 0;
  auto engine = ShippedEngine(source);
  EngineOutput out;
  int hostile = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".golden") continue;
    for (const Case& c : ReadGolden(f.path())) {
      if (c.line.find(kVictim) == std::string::npos) continue;
      ++hostile;
      for (int i = 0; i < 50; ++i) engine->OnLine(source, c.line, kNow, out);
    }
  }
  CHECK(hostile >= 15);
  CHECK_FALSE(out.orders.empty());  // the real senders of those lines do get banned
  for (const auto& o : out.orders) CHECK(o.target.ToString() != kVictim);
}

namespace {
// Every log line the repository has: golden cases, the samples and the stories.
std::vector<std::string> AllSampleMessages() {
  std::vector<std::string> files;
  for (const auto& dir : {std::string(RELAYBAN_SOURCE_DIR) + "/tests/golden", std::string(RELAYBAN_SOURCE_DIR) + "/tests/data",
                          std::string(RELAYBAN_SOURCE_DIR) + "/tests/data/samples"}) {
    if (!std::filesystem::exists(dir)) continue;
    for (const auto& f : std::filesystem::directory_iterator(dir))
      if (f.path().extension() == ".golden" || f.path().extension() == ".log") files.push_back(f.path());
  }
  std::vector<std::string> messages;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string l;
    while (std::getline(in, l)) {
      if (f.size() > 7 && f.substr(f.size() - 7) == ".golden") {
        if (l.rfind("> ", 0) != 0) continue;
        l = l.substr(2);
      }
      auto shape = DetectStamp(l, StampFormat::kAuto);
      messages.push_back(shape ? l.substr(shape->length) : l);
    }
  }
  return messages;
}

std::string DescribeHits(const std::vector<PatternHit>& hits, int rejected) {
  std::ostringstream s;
  for (const auto& h : hits)
    s << h.filter << "/" << h.pattern << " ip=" << h.captures.ip << " account=" << h.captures.account
      << " sender=" << h.captures.sender << " recipient=" << h.captures.recipient << " id=" << h.captures.id
      << " session=" << h.captures.session << " count=" << h.captures.count << "; ";
  s << "rejected=" << rejected;
  return s.str();
}
}  // namespace

TEST_CASE("trying the patterns named by their literals gives exactly what the Set gives") {
  std::vector<Error> errors;
  auto c = LoadConfig(std::string(RELAYBAN_SOURCE_DIR) + "/etc/relayban/relayban.yaml", errors);
  REQUIRE(c);
  auto messages = AllSampleMessages();
  REQUIRE(messages.size() > 300);
  // Each jail's filters as a log of its own would have them, and every filter together.
  std::vector<std::vector<const FilterSpec*>> groups;
  std::vector<const FilterSpec*> all;
  for (const auto& j : c->jails) {
    std::vector<const FilterSpec*> g;
    for (const auto& f : j.filters) g.push_back(&c->filters.at(f));
    groups.push_back(g);
  }
  for (const auto& [name, f] : c->filters) all.push_back(&f);
  groups.push_back(all);
  size_t compared_hits = 0;
  for (const auto& g : groups) {
    auto by_literals = FilterSet::Build(g, true);
    auto by_set = FilterSet::Build(g, false);
    REQUIRE(by_literals);
    REQUIRE(by_set);
    // Four rounds: past the first lines, after which the gate picks its pairs anew.
    for (int round = 0; round < 4; ++round) {
      for (const auto& m : messages) {
        std::vector<PatternHit> a, b;
        int ra = (*by_literals)->Match(m, a);
        int rb = (*by_set)->Match(m, b);
        INFO(m);
        REQUIRE(DescribeHits(a, ra) == DescribeHits(b, rb));
        compared_hits += a.size();
      }
    }
  }
  CHECK(compared_hits > 200);
}
