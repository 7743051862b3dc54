#include "source_set.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace relayban {

SourceSet::~SourceSet() {
  if (inotify_ >= 0) close(inotify_);
}

Result<int> SourceSet::Open() {
  if (inotify_ >= 0) return inotify_;
  inotify_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_ < 0) return Fail(std::string("inotify: ") + std::strerror(errno));
  return inotify_;
}

void SourceSet::Follow(const ActivationPlan& plan, const AddSource& add, const Progress& saved, bool initial) {
  // Jails that read a journal until now: a file they switch to carries the lines already
  // read from the journal, so it is read from its end, not from its first line.
  std::vector<std::string> on_journal = journal_jails();
  std::map<std::string, File> files;
  for (const FilePlan& fp : plan.files) {
    auto id = add(fp.jails, fp.stamp);
    if (!id) {
      log_(LOG_ERR, fp.path + ": " + id.error().ToString());
      continue;
    }
    File f;
    f.jails = fp.jails;
    f.engine_source = *id;
    auto old = files_.find(fp.path);
    if (old != files_.end()) {
      f.tail = std::move(old->second.tail);  // keep reading where we were
    } else {
      f.tail = std::make_unique<FileTail>(fp.path, max_line_);
      std::vector<FilePosition> mine;
      for (const FilePosition& p : saved.files)
        if (p.path == fp.path) mine.push_back(p);
      // Without a saved position: at (re)load old lines are history; a file that appeared
      // while we ran is new from its first line.
      bool was_journal = std::any_of(fp.jails.begin(), fp.jails.end(), [&](const std::string& jail) {
        return std::find(on_journal.begin(), on_journal.end(), jail) != on_journal.end();
      });
      f.tail->Start(mine, mine.empty() && !initial && !was_journal);
    }
    // Watch the directory: it reports changes to the file, and its creation and renames.
    std::string dir = std::filesystem::path(fp.path).parent_path().string();
    bool watched = std::any_of(watches_.begin(), watches_.end(), [&](const auto& w) { return w.second == dir; });
    if (!watched && inotify_ >= 0) {
      int wd = inotify_add_watch(inotify_, dir.c_str(),
                                 IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE);
      if (wd >= 0) watches_[wd] = dir;
    }
    files.emplace(fp.path, std::move(f));
  }
  files_ = std::move(files);

  std::map<std::string, Journal> journals;
  for (const JournalPlan& jp : plan.journals) {
    auto reader = JournalSource::Open(jp.matches, jp.directory);
    if (!reader) {
      log_(LOG_ERR, reader.error().ToString());
      continue;
    }
    std::string name = (*reader)->name();
    auto id = add(jp.jails, StampFormat::kRfc3339);
    if (!id) continue;
    Journal j;
    j.jails = jp.jails;
    j.engine_source = *id;
    auto old = journals_.find(name);
    if (old != journals_.end()) {
      j.reader = std::move(old->second.reader);
    } else {
      j.reader = std::move(reader.value());
      auto c = std::find_if(saved.cursors.begin(), saved.cursors.end(), [&](const auto& kv) { return kv.first == name; });
      j.reader->Start(c != saved.cursors.end() ? std::optional<std::string>(c->second) : std::nullopt);
    }
    journals.emplace(name, std::move(j));
  }
  journals_ = std::move(journals);
  // The ready queue may name sources that are gone; they are skipped when read.
  MarkAllReady();
}

void SourceSet::MarkReady(const std::string& key, bool journal) {
  if (journal) {
    auto it = journals_.find(key);
    if (it == journals_.end() || it->second.ready) return;
    it->second.ready = true;
  } else {
    auto it = files_.find(key);
    if (it == files_.end() || it->second.ready) return;
    it->second.ready = true;
  }
  ready_.emplace_back(key, journal);
}

void SourceSet::MarkAllReady() {
  for (auto& [path, f] : files_) MarkReady(path, false);
  for (auto& [name, j] : journals_) MarkReady(name, true);
}

void SourceSet::OnInotify() {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    ssize_t n = read(inotify_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        MarkAllReady();
        continue;
      }
      auto w = watches_.find(ev->wd);
      if (w == watches_.end() || ev->len == 0) continue;
      std::string path = w->second + "/" + ev->name;
      // A new file under a followed name is opened at once: rotated away before its turn
      // to be read, it is still read.
      if (ev->mask & (IN_CREATE | IN_MOVED_TO))
        if (auto it = files_.find(path); it != files_.end()) it->second.tail->OnNewFile();
      MarkReady(path, false);
    }
  }
}

void SourceSet::WatchLosses(const std::optional<std::string>& journal, OnLoss on_loss) {
  on_loss_ = std::move(on_loss);
  if (!journal) {
    losses_.reset();
    return;
  }
  if (losses_ && losses_->directory() == *journal) return;
  auto w = JournaldLosses::Open(*journal);
  if (!w) {
    log_(LOG_INFO, "journald's reports of dropped lines are not read: " + w.error().message);
    losses_.reset();
    return;
  }
  losses_ = std::move(w.value());
  losses_->fd();  // before the start: journal files that appear later are watched too
  losses_->Start();
}

void SourceSet::PollLosses() {
  if (losses_ && on_loss_) losses_->Poll(on_loss_);
}

void SourceSet::OnJournalReady(int fd) {
  if (losses_ && losses_->fd() == fd) PollLosses();
  for (auto& [name, j] : journals_)
    if (j.reader->fd() == fd) MarkReady(name, true);
}

size_t SourceSet::Read(size_t budget, const OnLine& on_line, const std::function<bool()>& stop) {
  size_t lines = 0;
  // Each source gets its turn; one with more than the budget goes to the back.
  size_t rounds = ready_.size();
  while (rounds-- > 0 && lines < budget && !ready_.empty() && !(lines > 0 && stop && stop())) {
    auto [key, journal] = ready_.front();
    ready_.pop_front();
    bool more = false;
    if (journal) {
      auto it = journals_.find(key);
      if (it == journals_.end()) continue;
      Journal& j = it->second;
      int id = j.engine_source;
      lines += j.reader->Poll([&](std::string_view l) { on_line(id, l); }, budget - lines, stop);
      more = j.reader->more();
      j.ready = more;
    } else {
      auto it = files_.find(key);
      if (it == files_.end()) continue;
      File& f = it->second;
      int id = f.engine_source;
      lines += f.tail->Poll([&](std::string_view l) { on_line(id, l); }, budget - lines, stop);
      more = f.tail->more();
      f.ready = more;
    }
    if (more) ready_.emplace_back(key, journal);
  }
  return lines;
}

Progress SourceSet::progress() const {
  Progress p;
  for (const auto& [path, f] : files_)
    for (const auto& pos : f.tail->Positions()) p.files.push_back(pos);
  for (const auto& [name, j] : journals_)
    if (!j.reader->cursor().empty()) p.cursors.emplace_back(name, j.reader->cursor());
  return p;
}

std::vector<int> SourceSet::journal_fds() const {
  std::vector<int> out;
  for (const auto& [name, j] : journals_)
    if (j.reader->fd() >= 0) out.push_back(j.reader->fd());
  if (losses_ && losses_->fd() >= 0) out.push_back(losses_->fd());
  return out;
}

std::vector<std::string> SourceSet::journal_jails() const {
  std::vector<std::string> out;
  for (const auto& [name, j] : journals_) out.insert(out.end(), j.jails.begin(), j.jails.end());
  return out;
}

std::vector<SourceSet::SourceInfo> SourceSet::Describe() const {
  std::vector<SourceInfo> out;
  for (const auto& [path, f] : files_) {
    SourceInfo info{path, f.jails, f.tail->is_open(), std::nullopt, std::nullopt, f.tail->generations(), f.tail->dropped(),
                    f.engine_source, false};
    auto pos = f.tail->Positions();
    struct stat st {};
    if (!pos.empty() && stat(path.c_str(), &st) == 0) {
      info.read = pos.back().offset;
      info.size = static_cast<uint64_t>(st.st_size);
    }
    out.push_back(std::move(info));
  }
  for (const auto& [name, j] : journals_)
    out.push_back({name, j.jails, true, std::nullopt, std::nullopt, 0, 0, j.engine_source, true});
  return out;
}

bool SourceSet::FollowsAll(const std::vector<std::string>& paths) const {
  return std::all_of(paths.begin(), paths.end(), [&](const std::string& p) { return files_.count(p) > 0; });
}

}  // namespace relayban
