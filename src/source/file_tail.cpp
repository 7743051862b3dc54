#include "relayban/source/file_tail.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace relayban {
namespace {
std::optional<FileIdentity> StatPath(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size)};
}
std::optional<FileIdentity> StatFd(int fd) {
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) return std::nullopt;
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size)};
}
}  // namespace

FileTail::~FileTail() { Close(); }

void FileTail::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  partial_.clear();
  discarding_ = false;
}

bool FileTail::OpenAt(uint64_t offset) {
  Close();
  fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) return false;
  auto id = StatFd(fd_);
  if (!id) {
    Close();
    return false;
  }
  id_ = *id;
  if (offset > id_.size) offset = 0;
  lseek(fd_, static_cast<off_t>(offset), SEEK_SET);
  read_pos_ = line_end_ = offset;
  return true;
}

void FileTail::Start(const std::optional<FilePosition>& saved) {
  auto now = StatPath(path_);
  if (!now) return;  // picked up when it appears, from its start
  std::optional<FileIdentity> saved_id;
  uint64_t saved_offset = 0;
  if (saved) {
    saved_id = FileIdentity{saved->dev, saved->ino, 0};
    saved_offset = saved->offset;
  }
  OpenAt(StartOffset(saved_id, saved_offset, *now));
}

size_t FileTail::Drain(const std::function<void(std::string_view)>& on_line, size_t max_lines) {
  size_t lines = 0;
  char buf[1 << 16];
  for (;;) {
    if (lines >= max_lines) {
      more_ = true;
      break;
    }
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    read_pos_ += static_cast<uint64_t>(n);
    std::string_view chunk(buf, static_cast<size_t>(n));
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (!discarding_) {
          if (partial_.size() + chunk.size() > max_line_) {
            // Hand the engine a piece it will count as too long, then drop the rest.
            partial_.append(chunk.substr(0, max_line_ + 1 - std::min(partial_.size(), max_line_ + 1)));
            on_line(partial_);
            ++lines;
            partial_.clear();
            discarding_ = true;
          } else {
            partial_.append(chunk);
          }
        }
        break;
      }
      std::string_view piece = chunk.substr(0, nl);
      if (!discarding_) {
        if (partial_.empty()) {
          on_line(piece);
        } else {
          partial_.append(piece);
          on_line(partial_);
          partial_.clear();
        }
        ++lines;
      }
      discarding_ = false;
      chunk.remove_prefix(nl + 1);
    }
    line_end_ = read_pos_ - partial_.size();
    if (discarding_) line_end_ = read_pos_;
  }
  return lines;
}

size_t FileTail::Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines) {
  size_t lines = 0;
  more_ = false;
  for (int round = 0; round < 4; ++round) {
    if (fd_ >= 0) lines += Drain(on_line, max_lines > lines ? max_lines - lines : 0);
    if (more_) return lines;
    auto action = DecideTail(StatFd(fd_), read_pos_, StatPath(path_));
    switch (action) {
      case TailAction::kKeepReading:
      case TailAction::kWaitForFile:
        return lines;
      case TailAction::kRewind:
        lseek(fd_, 0, SEEK_SET);
        read_pos_ = line_end_ = 0;
        partial_.clear();
        discarding_ = false;
        continue;
      case TailAction::kSwitchToNew:
        // The old file is finished: a last line without its newline is complete now.
        if (fd_ >= 0 && !partial_.empty() && !discarding_) {
          on_line(partial_);
          ++lines;
        }
        if (!OpenAt(0)) return lines;
        continue;
    }
  }
  return lines;
}

FilePosition FileTail::Position() const { return {path_, id_.dev, id_.ino, line_end_}; }

}  // namespace relayban
