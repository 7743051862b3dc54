// Reading logs for `check` on two cores: one thread reads and matches, the caller's scores.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/core/result.hpp"
#include "relayban/engine/engine.hpp"

namespace relayban {

// ReadLogLines for `check` on two cores: the logs `paths` are read, in order, on a thread of
// its own, which also matches each line's patterns (Engine::Parse for `source`, `now`); the
// lines come to `on_line` on the calling thread, in order, with what Parse found, for
// Engine::OnParsed. The line and its hits live until `on_line` returns. Only the reading
// thread matches. The first file that
// cannot be read ends the reading with its error (its lines read before it were handed out).
using OnParsedLine = std::function<void(std::string_view line, const Engine::ParsedLine& parsed, const PatternHit* hits)>;
Result<void> ReadParsedLines(const Engine& engine, int source, const std::vector<std::string>& paths, size_t max_line,
                             Time now, const OnParsedLine& on_line);

}  // namespace relayban
