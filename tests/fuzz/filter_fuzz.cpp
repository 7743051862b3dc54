// libFuzzer target: arbitrary bytes as log lines through the shipped configuration (every
// jail, every filter), the engine and the policy. Nothing may crash, hang or ban loopback.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "relayban/config/config_loader.hpp"
#include "relayban/engine/engine.hpp"

namespace {
struct Harness {
  std::unique_ptr<relayban::Engine> engine;
  int source = 0;
  Harness() {
    std::vector<relayban::Error> errors;
    const char* path = std::getenv("RELAYBAN_FUZZ_CONFIG");
    auto config = relayban::LoadConfig(path ? path : RELAYBAN_FUZZ_CONFIG, errors);
    if (!config) std::abort();
    auto e = relayban::Engine::Create(*config, {});
    if (!e) std::abort();
    engine = std::move(e.value());
    auto s = engine->AddSource({}, relayban::StampFormat::kAuto);
    if (!s) std::abort();
    source = *s;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  static const relayban::Time kNow = relayban::Time(relayban::Micros(int64_t{1795737600} * 1000000));
  std::string_view input(reinterpret_cast<const char*>(data), size);
  relayban::EngineOutput out;
  while (!input.empty()) {
    size_t nl = input.find('\n');
    h.engine->OnLine(h.source, input.substr(0, nl), kNow, out);
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  for (const auto& o : out.orders)
    if (o.target.address().IsLoopback()) std::abort();
  return 0;
}
