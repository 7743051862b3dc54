// Rotation decisions for a followed log file, pure so they are unit-tested without files:
// given what we have open and what the path now names, what to do next.
#pragma once

#include <cstdint>
#include <optional>

namespace relayban {

struct FileIdentity {
  uint64_t dev = 0, ino = 0, size = 0;
  bool operator==(const FileIdentity& o) const { return dev == o.dev && ino == o.ino; }
};

enum class TailAction : uint8_t {
  kKeepReading,      // same file: read from our offset
  kRewind,           // same file, now shorter than our offset (copytruncate): read from 0
  kSwitchToNew,      // the path names another file (rename+create, delete+recreate): finish
                     // the old one, then read the new one from its start
  kWaitForFile,      // the path names nothing (deleted, rotated away, not created yet)
};

// `open` is the file we have open (nullopt if none), `offset` how far we read it, `at_path`
// what the path names now (nullopt if nothing).
TailAction DecideTail(const std::optional<FileIdentity>& open, uint64_t offset, const std::optional<FileIdentity>& at_path);

// Where to start reading a file at start-up: `saved` is the position from the state store,
// `now` what the path names. Returns the offset: the saved one when it is the same file and
// not shorter, 0 for a different file (rotated while we were down) or a shorter one, and the
// end of the file when there is no saved position (first start: old lines are history).
uint64_t StartOffset(const std::optional<FileIdentity>& saved, uint64_t saved_offset, const FileIdentity& now);

}  // namespace relayban
