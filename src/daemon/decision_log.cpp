#include "decision_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace relayban {

DecisionLog::~DecisionLog() {
  Flush();
  Close();
}

void DecisionLog::SetPath(const std::string& path) {
  if (path == path_) return;
  Flush();
  Close();
  path_ = path;
  problem_.clear();
  if (!path_.empty()) Open();
}

bool DecisionLog::Open() {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  int fd = open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::string why = fd < 0 ? std::strerror(errno) : "not a regular file";
    if (fd >= 0) close(fd);
    ++stats_.errors;
    std::string problem = "decision log " + path_ + ": " + why;
    if (problem != problem_) log_(LOG_ERR, problem + " (decisions are kept in memory and retried)");
    problem_ = problem;
    return false;
  }
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (!problem_.empty()) log_(LOG_NOTICE, "decision log " + path_ + " is written again");
  problem_.clear();
  return true;
}

void DecisionLog::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void DecisionLog::Add(std::string_view json) {
  if (path_.empty()) return;
  if (buffer_.size() + json.size() + 1 > kMaxBuffered) {
    ++stats_.dropped;
    return;
  }
  buffer_.append(json);
  buffer_ += '\n';
  ++stats_.lines;
}

void DecisionLog::Flush() {
  if (buffer_.empty() || path_.empty()) return;
  if (fd_ < 0 && !Open()) return;
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    ++stats_.errors;
    std::string problem = "decision log " + path_ + ": " + (n < 0 ? std::strerror(errno) : "short write");
    if (problem != problem_) log_(LOG_ERR, problem + " (decisions are kept in memory and retried)");
    problem_ = problem;
    break;
  }
  // A record cut by a full disk is ended, so the next one starts on a line of its own.
  if (done > 0 && done < buffer_.size() && buffer_[done - 1] != '\n') {
    size_t nl = buffer_.find('\n', done);
    (void)!write(fd_, "\n", 1);
    done = nl == std::string::npos ? buffer_.size() : nl + 1;
  }
  buffer_.erase(0, done);
}

void DecisionLog::Tick() {
  if (path_.empty()) return;
  struct stat st {};
  bool moved = stat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_;
  if (fd_ >= 0 && moved) {
    Flush();  // what is owed goes to the file it was meant for (now rotated)
    Close();
    ++stats_.reopened;
    Open();
  } else if (fd_ < 0) {
    Open();
  }
  Flush();
}

}  // namespace relayban
