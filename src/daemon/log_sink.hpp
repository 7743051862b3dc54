// The daemon's log sink - the one piece of global state. Lines go to stderr: with a syslog
// priority prefix ("<5>ban ...") when stderr is the journal (systemd sets JOURNAL_STREAM to
// its device and inode), else with a time stamp and the level in words, for a terminal or a
// log file.
#pragma once

#include <string>

namespace relayban {

void LogLine(int priority, const std::string& message);

}  // namespace relayban
