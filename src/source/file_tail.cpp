#include "relayban/source/file_tail.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <filesystem>

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

int64_t CoarseNow() {
  // The kernel stamps files with its coarse clock: comparing with it, an event after this
  // moment never looks earlier.
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t Ctime(const struct stat& st) { return int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec; }

// Whether `name` is what a rotator names a generation of `base`: base.3, base-20261201,
// base-2026120112, or multilog's @<24 hex>.s / .u beside `current`.
bool RotatedName(const std::string& name, const std::string& base) {
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
  };
  if (name.size() > base.size() + 1 && name.compare(0, base.size(), base) == 0 &&
      (name[base.size()] == '.' || name[base.size()] == '-'))
    return digits(std::string_view(name).substr(base.size() + 1));
  if (base == "current" && name.size() == 27 && name[0] == '@' && name[25] == '.' && (name[26] == 's' || name[26] == 'u'))
    return std::all_of(name.begin() + 1, name.begin() + 25, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  return false;
}

bool Compressed(const std::string& name) {
  for (const char* ext : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z"})
    if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0) return true;
  return false;
}

// Calls f(name, full path, stat) for every regular file in `dir`.
template <class F>
void ForEachFile(const std::string& dir, F&& f) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = dir + "/" + name;
    struct stat st {};
    if (stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    f(name, full, st);
  }
  closedir(d);
}

}  // namespace

FileTail::~FileTail() {
  for (auto& g : gens_) Close(g);
}

void FileTail::Close(Generation& g) {
  if (g.fd >= 0) close(g.fd);
  g.fd = -1;
}

bool FileTail::Open(const std::string& path, uint64_t offset, bool at_front) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  auto id = StatFd(fd);
  if (!id) {
    close(fd);
    return false;
  }
  Generation g;
  g.fd = fd;
  g.id = *id;
  g.opened_ns = CoarseNow();
  if (offset > id->size) offset = 0;
  lseek(fd, static_cast<off_t>(offset), SEEK_SET);
  g.read_pos = g.line_end = offset;
  if (at_front) gens_.push_front(std::move(g));
  else gens_.push_back(std::move(g));
  return true;
}

void FileTail::Start(const std::vector<FilePosition>& saved, bool from_start) {
  started_ns_ = CoarseNow();
  auto now = StatPath(path_);
  std::string dir = std::filesystem::path(path_).parent_path().string();
  // Generations rotated away while we were down: found again by device and inode, and read
  // from where we were before the file the path names now.
  for (const FilePosition& s : saved) {
    if (now && s.dev == now->dev && s.ino == now->ino) continue;
    ForEachFile(dir, [&](const std::string&, const std::string& full, const struct stat& st) {
      if (static_cast<uint64_t>(st.st_dev) == s.dev && static_cast<uint64_t>(st.st_ino) == s.ino &&
          static_cast<uint64_t>(st.st_size) >= s.offset)
        Open(full, s.offset, false);
    });
  }
  if (!now) return;  // picked up when it appears, from its start
  std::optional<FileIdentity> saved_id;
  uint64_t saved_offset = 0;
  for (const FilePosition& s : saved)
    if (s.dev == now->dev && s.ino == now->ino) {
      saved_id = FileIdentity{s.dev, s.ino, 0};
      saved_offset = s.offset;
    }
  uint64_t offset;
  if (saved_id) offset = StartOffset(saved_id, saved_offset, *now);
  else if (!saved.empty() || from_start) offset = 0;  // rotated while we were down, or new
  else offset = now->size;                             // first start: old lines are history
  Open(path_, offset, false);
}

void FileTail::OnNewFile() {
  auto at = StatPath(path_);
  if (!at) return;
  for (const auto& g : gens_)
    if (g.id == *at) return;  // already open
  OpenNewest();
  // Past the cap the oldest unread generations go (descriptors are not unlimited).
  while (gens_.size() > kMaxGenerations) {
    ++dropped_;
    Close(gens_.front());
    gens_.pop_front();
  }
}

bool FileTail::OpenNewest() {
  bool had = !gens_.empty();  // with nothing read yet there is nothing to have missed
  int64_t since = had ? gens_.back().opened_ns : 0;
  size_t before = gens_.size();
  bool opened = Open(path_, 0, false);
  if (!had) return opened;
  std::filesystem::path p(path_);
  std::string dir = p.parent_path().string(), base = p.filename().string();
  struct Missed {
    int64_t ctime;
    uint64_t ino;
    std::string path;
    bool operator<(const Missed& o) const { return ctime != o.ctime ? ctime < o.ctime : ino < o.ino; }
  };
  std::vector<Missed> missed;
  ForEachFile(dir, [&](const std::string& name, const std::string& full, const struct stat& st) {
    if (!RotatedName(name, base) || Compressed(name) || st.st_size == 0 || Ctime(st) < since) return;
    auto ino = static_cast<uint64_t>(st.st_ino);
    if (std::any_of(gens_.begin(), gens_.end(), [&](const Generation& g) { return g.id.ino == ino; })) return;
    if (std::find(finished_.begin(), finished_.end(), ino) != finished_.end()) return;
    missed.push_back({Ctime(st), ino, full});
  });
  // Renamed away in this order (within one tick of the clock, created in inode order).
  std::sort(missed.begin(), missed.end());
  for (const auto& m : missed) Open(m.path, 0, false);
  // The newest goes last again.
  if (opened && !missed.empty()) std::rotate(gens_.begin() + static_cast<std::ptrdiff_t>(before),
                                             gens_.begin() + static_cast<std::ptrdiff_t>(before) + 1, gens_.end());
  return opened;
}

size_t FileTail::Drain(Generation& g, const std::function<void(std::string_view)>& on_line, size_t max_lines,
                       const std::function<bool()>& stop) {
  size_t lines = 0;
  char buf[1 << 16];
  for (bool first = true;; first = false) {
    if (lines >= max_lines || (!first && stop && stop())) {
      more_ = true;
      break;
    }
    ssize_t n = read(g.fd, buf, sizeof buf);
    if (n <= 0) break;
    g.read_pos += static_cast<uint64_t>(n);
    std::string_view chunk(buf, static_cast<size_t>(n));
    // The last bytes read, to recognise the copy a copytruncate makes (of the bytes kept,
    // when the chunk is cut short below).
    auto keep_tail = [&g](std::string_view read) {
      if (read.size() >= kTail) {
        g.tail.assign(read.substr(read.size() - kTail));
      } else {
        g.tail.append(read);
        if (g.tail.size() > kTail) g.tail.erase(0, g.tail.size() - kTail);
      }
    };
    size_t lines_before = lines;
    while (!chunk.empty()) {
      // Lines crafted to be slow, or a line that makes a full table evict, can take
      // milliseconds each: the time is looked at every few lines, not only per chunk, and
      // what is left of the chunk is read again next time.
      if (lines != lines_before && g.partial.empty() && !g.discarding &&
          (lines >= max_lines || (lines % kLinesPerLook == 0 && stop && stop()))) {
        if (lseek(g.fd, -static_cast<off_t>(chunk.size()), SEEK_CUR) >= 0) {
          g.read_pos -= chunk.size();
          keep_tail(std::string_view(buf, static_cast<size_t>(n) - chunk.size()));
          more_ = true;
          g.line_end = g.read_pos;
          return lines;
        }
      }
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (!g.discarding) {
          if (g.partial.size() + chunk.size() > max_line_) {
            // Hand the engine a piece it will count as too long, then drop the rest.
            g.partial.append(chunk.substr(0, max_line_ + 1 - std::min(g.partial.size(), max_line_ + 1)));
            on_line(g.partial);
            ++lines;
            g.partial.clear();
            g.discarding = true;
          } else {
            g.partial.append(chunk);
          }
        }
        break;
      }
      std::string_view piece = chunk.substr(0, nl);
      if (!g.discarding) {
        if (g.partial.empty()) {
          on_line(piece);
        } else {
          g.partial.append(piece);
          on_line(g.partial);
          g.partial.clear();
        }
        ++lines;
      }
      g.discarding = false;
      chunk.remove_prefix(nl + 1);
    }
    keep_tail(std::string_view(buf, static_cast<size_t>(n)));
    g.line_end = g.discarding ? g.read_pos : g.read_pos - g.partial.size();
  }
  return lines;
}

int FileTail::FindCopy(const Generation& g, FileIdentity& id) {
  if (g.read_pos == 0 || g.tail.empty() || g.read_pos < g.tail.size()) return -1;
  std::filesystem::path p(path_);
  std::string dir = p.parent_path().string(), base = p.filename().string();
  int best = -1;
  int64_t best_mtime = 0, best_ctime = 0;
  ForEachFile(dir, [&](const std::string& name, const std::string& full, const struct stat& st) {
    if (name == base || name.rfind(base, 0) != 0 || Compressed(name)) return;
    if (static_cast<uint64_t>(st.st_ino) == g.id.ino || static_cast<uint64_t>(st.st_size) < g.read_pos) return;
    int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    std::string bytes(g.tail.size(), '\0');
    ssize_t n = pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(g.read_pos - g.tail.size()));
    bool same = n == static_cast<ssize_t>(bytes.size()) && bytes == g.tail;
    if (same && (best < 0 || st.st_mtime >= best_mtime)) {
      if (best >= 0) close(best);
      best = fd;
      best_mtime = st.st_mtime;
      best_ctime = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
      id = FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size)};
    } else {
      close(fd);
    }
  });
  if (best >= 0) {
    lseek(best, static_cast<off_t>(g.read_pos), SEEK_SET);
    // Read from here on: never again from its start as a "fresh" copy.
    copies_read_.emplace_back(id.ino, best_ctime);
    if (copies_read_.size() > 16) copies_read_.erase(copies_read_.begin());
  }
  return best;
}

int FileTail::FindFreshCopy(const Generation& g, FileIdentity& id) {
  std::filesystem::path p(path_);
  std::string dir = p.parent_path().string(), base = p.filename().string();
  int best = -1;
  int64_t best_ctime = 0;
  ForEachFile(dir, [&](const std::string& name, const std::string& full, const struct stat& st) {
    if (name == base || name.rfind(base, 0) != 0 || Compressed(name) || st.st_size == 0) return;
    int64_t ctime = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
    if (ctime < g.rewound_ns || ctime < best_ctime) return;
    auto ino = static_cast<uint64_t>(st.st_ino);
    if (std::any_of(gens_.begin(), gens_.end(), [&](const Generation& o) { return o.id.ino == ino; })) return;
    if (std::find(copies_read_.begin(), copies_read_.end(), std::make_pair(ino, ctime)) != copies_read_.end()) return;
    int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    if (best >= 0) close(best);
    best = fd;
    best_ctime = ctime;
    id = FileIdentity{static_cast<uint64_t>(st.st_dev), ino, static_cast<uint64_t>(st.st_size)};
  });
  if (best >= 0) {
    copies_read_.emplace_back(id.ino, best_ctime);
    if (copies_read_.size() > 16) copies_read_.erase(copies_read_.begin());
  }
  return best;
}

size_t FileTail::Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines,
                      const std::function<bool()>& stop) {
  size_t lines = 0;
  more_ = false;
  for (int round = 0; round < 64; ++round) {
    if (gens_.empty()) {
      // Nothing open: a file that does not exist yet, or one that was deleted.
      if (!StatPath(path_) || !Open(path_, 0, false)) return lines;
      continue;
    }
    Generation& g = gens_.front();
    // An older generation is finished once the writer has moved on to the next one, or when
    // too many are open; a copy at once. Seen before reading it to its end: a line written
    // to the old file just before the writer moved on is read, not lost.
    bool moved_on = false;
    if (gens_.size() > 1) {
      auto next = StatFd(gens_[1].fd);
      moved_on = g.frozen || (next && next->size > 0) || gens_[1].read_pos > 0 || gens_.size() > kMaxGenerations;
    }
    lines += Drain(g, on_line, max_lines > lines ? max_lines - lines : 0, stop);
    if (more_) return lines;
    if (gens_.size() > 1) {
      if (!moved_on) return lines;
      // The old file is finished: a last line without its newline is complete now.
      if (!g.partial.empty() && !g.discarding) {
        on_line(g.partial);
        ++lines;
      }
      finished_.push_back(g.id.ino);
      if (finished_.size() > 2 * kMaxGenerations) finished_.erase(finished_.begin());
      Close(g);
      gens_.pop_front();
      continue;
    }
    // The newest generation: what does the path name now?
    switch (DecideTail(StatFd(g.fd), g.read_pos, StatPath(path_))) {
      case TailAction::kKeepReading:
      case TailAction::kWaitForFile: {
        // Emptied by a copytruncate and nothing read since: if it was written and emptied
        // again before we looked, those lines are only in the new copy.
        if (g.read_pos != 0 || g.rewound_ns == 0) return lines;
        FileIdentity copy_id;
        int copy = FindFreshCopy(g, copy_id);
        if (copy < 0) return lines;
        Generation c;
        c.fd = copy;
        c.id = copy_id;
        c.frozen = true;
        gens_.push_front(std::move(c));
        continue;
      }
      case TailAction::kRewind: {
        // copytruncate: what was written between our last read and the copy is in the copy;
        // read it there first, then this file from its start.
        FileIdentity copy_id;
        int copy = FindCopy(g, copy_id);
        Generation from_start;
        from_start.fd = g.fd;
        from_start.id = *StatFd(g.fd);
        // The kernel stamps files with its coarse clock: a copy made after this moment never
        // looks older than it.
        struct timespec ts {};
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        from_start.rewound_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
        lseek(g.fd, 0, SEEK_SET);
        if (copy >= 0) {
          Generation c;
          c.fd = copy;
          c.id = copy_id;
          c.read_pos = g.read_pos;
          c.line_end = g.line_end;
          c.partial = std::move(g.partial);
          c.discarding = g.discarding;
          c.tail = std::move(g.tail);
          c.frozen = true;
          gens_.front() = std::move(c);
          gens_.push_back(std::move(from_start));
        } else {
          gens_.front() = std::move(from_start);
        }
        continue;
      }
      case TailAction::kSwitchToNew: {
        size_t had = gens_.size();
        if (!OpenNewest() && gens_.size() == had) return lines;
        continue;
      }
    }
  }
  more_ = true;  // generations left for the next turn
  return lines;
}

std::vector<FilePosition> FileTail::Positions() const {
  std::vector<FilePosition> out;
  for (const auto& g : gens_) out.push_back({path_, g.id.dev, g.id.ino, g.line_end});
  return out;
}

}  // namespace relayban
