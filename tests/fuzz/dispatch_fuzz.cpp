// libFuzzer target: the literal shortcuts (host literal, literal gate, patterns tried by the
// literals they require) must give exactly what the RE2::Set alone gives, for any line.
// Every shipped filter together, and each jail's filters as its own log would have them.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/config/config_loader.hpp"
#include "relayban/filter/filter_set.hpp"
#include "relayban/filter/timestamp.hpp"

namespace {
struct Pair {
  std::unique_ptr<relayban::FilterSet> fast, reference;
};

std::vector<Pair> Build() {
  std::vector<relayban::Error> errors;
  const char* path = std::getenv("RELAYBAN_FUZZ_CONFIG");
  static auto config = relayban::LoadConfig(path ? path : RELAYBAN_FUZZ_CONFIG, errors);
  if (!config) std::abort();
  std::vector<std::vector<const relayban::FilterSpec*>> groups(1);
  for (const auto& [name, f] : config->filters) groups[0].push_back(&f);
  for (const auto& j : config->jails) {
    groups.emplace_back();
    for (const auto& f : j.filters) groups.back().push_back(&config->filters.at(f));
  }
  std::vector<Pair> pairs;
  for (const auto& g : groups) {
    auto fast = relayban::FilterSet::Build(g, true);
    auto reference = relayban::FilterSet::Build(g, false);
    if (!fast || !reference) std::abort();
    pairs.push_back({std::move(fast.value()), std::move(reference.value())});
  }
  return pairs;
}

bool Same(const std::vector<relayban::PatternHit>& a, const std::vector<relayban::PatternHit>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto &x = a[i].captures, &y = b[i].captures;
    if (a[i].filter != b[i].filter || a[i].pattern != b[i].pattern || x.ip != y.ip || x.account != y.account ||
        x.sender != y.sender || x.recipient != y.recipient || x.id != y.id || x.session != y.session ||
        x.count != y.count)
      return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<Pair> pairs = Build();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (true) {
    size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    // As the engine hands it over (the stamp taken off), and as it is.
    auto shape = relayban::DetectStamp(line, relayban::StampFormat::kAuto);
    for (std::string_view message : {shape ? line.substr(shape->length) : line, line}) {
      for (auto& p : pairs) {
        std::vector<relayban::PatternHit> a, b;
        int ra = p.fast->Match(message, a);
        int rb = p.reference->Match(message, b);
        if (ra != rb || !Same(a, b)) std::abort();
      }
    }
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  return 0;
}
