#include "decision_log.hpp"

#include "job_thread.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace relayban {

namespace {

// Writes `bytes` to `fd`; returns how many went, and sets `error` (errno) if not all did. A
// record cut by a full disk is ended, so the next one starts on a line of its own (counted
// as written up to its end).
size_t WriteAll(int fd, const std::string& bytes, int& error) {
  error = 0;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = n < 0 ? errno : EIO;
    break;
  }
  if (done > 0 && done < bytes.size() && bytes[done - 1] != '\n') {
    size_t nl = bytes.find('\n', done);
    (void)!write(fd, "\n", 1);
    done = nl == std::string::npos ? bytes.size() : nl + 1;
  }
  return done;
}

}  // namespace

DecisionLog::DecisionLog(Log log, bool threaded)
    : log_(std::move(log)), writer_(threaded ? std::make_unique<JobThread>("relayban-declog", JobThread::kBackground) : nullptr) {}

DecisionLog::~DecisionLog() {
  Drain();
  Close();
}

int DecisionLog::fd() const { return writer_ ? writer_->fd() : -1; }

void DecisionLog::Poll() {
  if (writer_) writer_->Poll();
}

void DecisionLog::Settle() {
  if (!writer_ || !in_flight_) return;
  writer_->Wait();
  writer_->Poll();
}

void DecisionLog::Drain() {
  Settle();
  std::unique_ptr<JobThread> writer = std::move(writer_);  // the rest on this thread
  Flush();
  writer_ = std::move(writer);
}

void DecisionLog::SetPath(const std::string& path) {
  if (path == path_) return;
  Drain();
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
  Settle();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void DecisionLog::Add(std::string_view json) { Add(json, {}); }

void DecisionLog::Add(std::string_view head, std::string_view tail) {
  if (path_.empty()) return;
  if (buffer_.size() + head.size() + tail.size() + 1 > kMaxBuffered) {
    ++stats_.dropped;
    return;
  }
  buffer_.append(head);
  buffer_.append(tail);
  buffer_ += '\n';
  ++stats_.lines;
}

void DecisionLog::Flush() {
  Poll();
  if (buffer_.empty() || path_.empty() || in_flight_) return;
  if (fd_ < 0 && !Open()) return;
  // The buffer written last time (emptied, its memory kept) takes the new records: one
  // grown from nothing every turn cost reallocations and first touches of fresh pages, 3%
  // of the loop's time in a botnet's burst.
  std::string bytes;
  bytes.swap(buffer_);
  buffer_.swap(spare_);
  if (writer_) {
    struct Write {
      std::string bytes;
      size_t done = 0;
      int error = 0;
    };
    auto w = std::make_shared<Write>();
    w->bytes = std::move(bytes);
    in_flight_ = true;
    writer_->Submit(
        [w, fd = fd_]() -> Result<void> {
          w->done = WriteAll(fd, w->bytes, w->error);
          return {};
        },
        [this, w](const Result<void>&) {
          in_flight_ = false;
          Written(std::move(w->bytes), w->done, w->error);
        });
    return;
  }
  int error = 0;
  size_t done = WriteAll(fd_, bytes, error);
  Written(std::move(bytes), done, error);
}

void DecisionLog::Written(std::string bytes, size_t done, int error) {
  if (error) {
    ++stats_.errors;
    std::string problem = "decision log " + path_ + ": " + std::strerror(error);
    if (problem != problem_) log_(LOG_ERR, problem + " (decisions are kept in memory and retried)");
    problem_ = problem;
  }
  if (done >= bytes.size()) {
    // Kept for the records after the next write, up to a few megabytes (what a loop turn
    // of a burst writes; a bigger one, grown while the disk was slow, goes).
    if (bytes.capacity() <= kSpareAtMost && spare_.capacity() < bytes.capacity()) {
      bytes.clear();
      spare_ = std::move(bytes);
    }
    return;
  }
  // What was not written goes in front of what came meanwhile.
  bytes.erase(0, done);
  bytes += buffer_;
  buffer_ = std::move(bytes);
}

void DecisionLog::Tick() {
  if (path_.empty()) return;
  struct stat st {};
  bool moved = stat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_;
  if (fd_ >= 0 && moved) {
    Drain();  // what is owed goes to the file it was meant for (now rotated)
    Close();
    ++stats_.reopened;
    Open();
  } else if (fd_ < 0) {
    Open();
  }
  Flush();
}

}  // namespace relayban
