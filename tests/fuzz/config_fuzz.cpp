// libFuzzer target: arbitrary bytes as a configuration file. Loading must end in a Config or
// in errors with positions - never an exception, a crash or a hang.
#include <cstdint>
#include <string>

#include "relayban/config/config_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<relayban::Error> errors;
  auto c = relayban::LoadConfigText(text, "fuzz.yaml", "/nonexistent", errors);
  if (!c && errors.empty()) __builtin_trap();  // a refusal always says why
  return 0;
}
