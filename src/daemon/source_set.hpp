// SourceSet: the log files (FileTail, woken by inotify on their directories) and journald
// readers a configuration follows, behind one interface: the loop says what woke up, and Read
// hands out at most a budget of lines per turn, round robin over the sources that have some,
// so a burst of a million lines is read over many turns while the loop stays responsive.
// Keeps the readers of sources it already follows across a reload. Loop thread only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jail_activation.hpp"
#include "relayban/core/result.hpp"
#include "relayban/source/file_tail.hpp"
#include "relayban/source/journal_source.hpp"
#include "relayban/source/journald_losses.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class SourceSet {
 public:
  using Log = std::function<void(int priority, const std::string&)>;
  // A line and the engine source it belongs to.
  using OnLine = std::function<void(int engine_source, std::string_view line)>;
  // Asks the engine for a source id: (jails, stamp format) -> id.
  using AddSource = std::function<Result<int>(const std::vector<std::string>& jails, StampFormat stamp)>;

  SourceSet(size_t max_line, Log log) : max_line_(max_line), log_(std::move(log)) {}
  ~SourceSet();
  SourceSet(const SourceSet&) = delete;
  SourceSet& operator=(const SourceSet&) = delete;

  // The inotify descriptor, created on first use; -1 if inotify is unavailable.
  Result<int> Open();
  int inotify_fd() const { return inotify_; }

  // Follows what `plan` names. A file or journal already followed keeps its reader and
  // position; a new file starts at its saved position, or at its end when `initial` (old
  // lines are history) and from its start otherwise (it appeared while we ran).
  void Follow(const ActivationPlan& plan, const AddSource& add, const Progress& saved, bool initial);

  // journald's reports of lines it dropped (JournaldLosses), read from `journal` ("" the
  // system journal, else a directory); none without one. The reader of the same journal is
  // kept; a new one starts at the end. Its descriptor is among journal_fds().
  using OnLoss = std::function<void(const JournaldLoss&)>;
  void WatchLosses(const std::optional<std::string>& journal, OnLoss on_loss);
  // Hands out the reports that arrived (on the loop's wake-up, and every tick).
  void PollLosses();

  // The loop's wake-ups.
  void OnInotify();
  void OnJournalReady(int fd);
  void MarkAllReady();  // the safety net of every tick, and after a lost inotify event
  // Hands out up to `budget` lines from the sources that have some, and stops early once
  // `stop` says so (asked between reads). Returns the count.
  size_t Read(size_t budget, const OnLine& on_line, const std::function<bool()>& stop = nullptr);
  bool Pending() const { return !ready_.empty(); }

  Progress progress() const;
  std::vector<int> journal_fds() const;
  std::vector<std::string> journal_jails() const;  // the jails a journal feeds now
  size_t file_count() const { return files_.size(); }
  // For status: every source with its jails and whether it is open.
  struct SourceInfo {
    std::string name;
    std::vector<std::string> jails;
    bool open;
    std::optional<uint64_t> read, size;  // a file: how far the newest generation is read, its size
    size_t generations = 0;              // a file: generations open (more than 1: rotated, unread)
    uint64_t dropped = 0;                // a file: generations closed unread (too many at once)
    int engine_source = -1;
    bool journal = false;
  };
  std::vector<SourceInfo> Describe() const;
  // Whether a glob now matches files that are not followed yet.
  bool FollowsAll(const std::vector<std::string>& paths) const;

 private:
  struct File {
    std::unique_ptr<FileTail> tail;
    std::vector<std::string> jails;
    int engine_source = 0;
    bool ready = false;
  };
  struct Journal {
    std::unique_ptr<JournalSource> reader;
    std::vector<std::string> jails;
    int engine_source = 0;
    bool ready = false;
  };
  void MarkReady(const std::string& key, bool journal);

  size_t max_line_;
  Log log_;
  int inotify_ = -1;
  std::map<int, std::string> watches_;  // inotify watch -> directory
  std::map<std::string, File> files_;   // by path
  std::map<std::string, Journal> journals_;  // by JournalSource::name()
  std::deque<std::pair<std::string, bool>> ready_;  // (key, is journal), each once
  std::unique_ptr<JournaldLosses> losses_;
  OnLoss on_loss_;
};

}  // namespace relayban
