// libFuzzer target: arbitrary bytes as a control request. Parsing must end in a request or an
// error message - never an exception, a crash or a hang - and a parsed request must survive
// being written and read back (the client's side) unchanged.
#include <cstdint>
#include <string_view>

#include "relayban/control/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = relayban::ParseControlRequest(text);
  if (!r) {
    if (r.error().message.empty()) __builtin_trap();  // a refusal always says why
    (void)relayban::ErrorAnswer(r.error().message);
    return 0;
  }
  auto again = relayban::ParseControlRequest(relayban::FormatControlRequest(*r));
  if (!again || again->command != r->command || again->target != r->target || again->jail != r->jail ||
      again->duration != r->duration || again->all != r->all)
    __builtin_trap();
  return 0;
}
