// Reads a log file (or standard input) in large blocks and hands out its lines without
// copying them. A line longer than `max_line` is handed out cut to max_line + 1 bytes so the
// engine counts it as skipped; the reader never buffers more than that.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "relayban/core/result.hpp"

namespace relayban {

// Calls `on_line(line, line_number)` for every line of `path` ("-" = standard input), the
// newline removed. A last line without a newline is delivered too.
Result<void> ReadLogLines(const std::string& path, size_t max_line,
                          const std::function<void(std::string_view, uint64_t)>& on_line);

}  // namespace relayban
