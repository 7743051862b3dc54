// libFuzzer target: the time stamp detector and decoder with every format.
#include <cstdint>
#include <string_view>

#include "relayban/filter/timestamp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relayban;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  const Time now = Time(Micros(int64_t{1795737600} * 1000000));
  for (StampFormat f : {StampFormat::kAuto, StampFormat::kSyslog, StampFormat::kRfc3339, StampFormat::kExim,
                        StampFormat::kTai64n, StampFormat::kNone}) {
    auto shape = DetectStamp(line, f);
    if (!shape) continue;
    if (shape->length > line.size()) __builtin_trap();
    (void)DecodeStamp(line, *shape, now, UtcZone());
  }
  return 0;
}
