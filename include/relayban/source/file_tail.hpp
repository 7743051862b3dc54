// FileTail: follows one log file across rotation - rename+create (finish the old file, then
// read the new one from its start), copytruncate (read again from the start), delete and
// recreate, a file that does not exist yet - and hands out complete lines only (a partial
// last line waits for its newline). The decisions are in rotation.hpp; this is the I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "relayban/source/rotation.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class FileTail {
 public:
  FileTail(std::string path, size_t max_line) : path_(std::move(path)), max_line_(max_line) {}
  ~FileTail();
  FileTail(const FileTail&) = delete;
  FileTail& operator=(const FileTail&) = delete;

  // Opens the file at start-up: at the saved position if it is the same file, from the
  // start if it was rotated while we were down, at its end if we never read it.
  void Start(const std::optional<FilePosition>& saved);
  // Reads what is new and calls `on_line` for each complete line; follows rotation. Stops
  // after the read that reached `max_lines` (it may hand out a few more: a read is up to
  // 64 KiB). Returns the number of lines handed out.
  size_t Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines = SIZE_MAX);
  // The last Poll stopped at its limit: more may be waiting.
  bool more() const { return more_; }
  // The position after the last complete line handed out.
  FilePosition Position() const;
  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  bool OpenAt(uint64_t offset);
  void Close();
  size_t Drain(const std::function<void(std::string_view)>& on_line, size_t max_lines);

  std::string path_;
  size_t max_line_;
  int fd_ = -1;
  FileIdentity id_;
  uint64_t read_pos_ = 0;  // bytes read from fd_
  uint64_t line_end_ = 0;  // offset after the last complete line
  std::string partial_;
  bool discarding_ = false;  // inside an overlong line
  bool more_ = false;
};

}  // namespace relayban
