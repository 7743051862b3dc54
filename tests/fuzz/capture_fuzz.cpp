// libFuzzer target: CaptureProgram must find exactly RE2's submatches. The input is a regex,
// a newline, then the text (which may hold more newlines); a regex RE2 refuses, or the
// program does not understand, is skipped.
#include <re2/re2.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/filter/capture_program.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  if (nl == std::string_view::npos || nl > 2000) return 0;
  std::string regex(input.substr(0, nl));
  std::string text(input.substr(nl + 1));
  auto prog = relayban::CaptureProgram::Compile(regex);
  if (prog == nullptr) return 0;
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  o.set_max_mem(64 << 20);
  RE2 re(regex, o);
  if (!re.ok()) return 0;
  int n = re.NumberOfCapturingGroups() + 1;
  if (prog->groups() != n - 1) std::abort();
  // From the start, and from a point in the text (as after a regex's head).
  for (size_t start : {size_t{0}, text.size() / 3}) {
    std::vector<re2::StringPiece> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    bool m_got = prog->Match(text, start, got.data(), n);
    bool m_want = re.Match(text, start, text.size(), RE2::ANCHOR_START, want.data(), n);
    if (m_got != m_want) std::abort();
    for (int g = 0; m_want && g < n; ++g)
      if (got[static_cast<size_t>(g)].data() != want[static_cast<size_t>(g)].data() ||
          got[static_cast<size_t>(g)].size() != want[static_cast<size_t>(g)].size())
        std::abort();
  }
  return 0;
}
