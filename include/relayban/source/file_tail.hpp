// FileTail: follows one log file across rotation and hands out complete lines only (a
// partial last line waits for its newline). It keeps every generation of the file it has
// opened - the one the path names and older ones renamed away or deleted - and reads them
// oldest first, so no line is lost when files turn over faster than they are read:
//   - rename and create, delete and recreate: the new file is opened as soon as the directory
//     reports it (OnNewFile), the old one is read to its end and closed once the writer has
//     moved on to the new one;
//   - copytruncate: when the file shrinks, the lines written between the last read and the
//     copy are read from the copy (a file beside it that holds what was read so far), then
//     the file from its start;
//   - a restart: every generation's position is saved; one rotated away while the daemon was
//     down is found again by its device and inode and read to its end first.
// The decisions are in rotation.hpp; this is the I/O. One thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/source/rotation.hpp"
#include "relayban/state/state_store.hpp"

namespace relayban {

class FileTail {
 public:
  // Lines between two looks at a poll's stop condition.
  static constexpr size_t kLinesPerLook = 32;

  FileTail(std::string path, size_t max_line) : path_(std::move(path)), max_line_(max_line) {}
  ~FileTail();
  FileTail(const FileTail&) = delete;
  FileTail& operator=(const FileTail&) = delete;

  // Opens the file at start-up: at the saved positions of its generations (as Positions gave
  // them), from the start if it is another file than any saved, at its end if nothing was
  // saved (first start: old lines are history). An empty `saved` with `from_start` reads an
  // existing file from its start (it appeared while the daemon ran).
  void Start(const std::vector<FilePosition>& saved, bool from_start = false);
  // The directory reported a file created or moved in under the path: open it now, before it
  // can be rotated away.
  void OnNewFile();
  // Reads what is new and calls `on_line` for each complete line, oldest generation first.
  // Stops after the read that reached `max_lines`, or after which `stop` (if given) says so
  // (a read is up to 64 KiB). Returns the number of lines handed out.
  size_t Poll(const std::function<void(std::string_view)>& on_line, size_t max_lines = SIZE_MAX,
              const std::function<bool()>& stop = nullptr);
  // The last Poll stopped at its limit: more may be waiting.
  bool more() const { return more_; }
  // Where each open generation was read to (after its last complete line), oldest first.
  std::vector<FilePosition> Positions() const;
  const std::string& path() const { return path_; }
  bool is_open() const { return !gens_.empty(); }
  size_t generations() const { return gens_.size(); }
  // Generations closed before they were read to their end (too many open at once).
  uint64_t dropped() const { return dropped_; }

 private:
  struct Generation {
    int fd = -1;
    FileIdentity id;
    uint64_t read_pos = 0;  // bytes read from fd
    uint64_t line_end = 0;  // offset after the last complete line
    std::string partial;
    bool discarding = false;  // inside an overlong line
    std::string tail;         // the last bytes read (at most kTail), to recognise a copy
    bool frozen = false;      // a copytruncate's copy: nobody writes it; done at its end
    int64_t rewound_ns = 0;   // when a copytruncate emptied it (0: never)
    int64_t opened_ns = 0;    // when it was opened (the kernel's coarse clock)
  };
  static constexpr size_t kTail = 64;
  // Open generations at most (each is a descriptor): past it the oldest unread one is closed
  // and counted in dropped(). Reached only when a writer outpaces the reader by this many
  // rotations (multilog's 100 KB files: about 25 MB unread).
  static constexpr size_t kMaxGenerations = 256;

  bool Open(const std::string& path, uint64_t offset, bool at_front);
  void Close(Generation& g);
  size_t Drain(Generation& g, const std::function<void(std::string_view)>& on_line, size_t max_lines,
               const std::function<bool()>& stop);
  // The file that a copytruncate copied `g` to (it holds what g read, and more), opened at
  // g's position; -1 if none found.
  int FindCopy(const Generation& g, FileIdentity& id);
  // A copy made after g was emptied by a copytruncate and before anything of it was read: the
  // lines written meanwhile are only there. Opened at its start; -1 if none.
  int FindFreshCopy(const Generation& g, FileIdentity& id);
  // Opens what the path names now as the newest generation, then the generations that were
  // created and rotated away to a name of their own (multilog's @...s, dateext's
  // name-20261201, name.3) since the newest one we had was opened - the writer outpaced us -
  // before it, oldest first. The folder is read after the path is opened: a generation
  // rotated away between the two is still found. False if the path names no file.
  bool OpenNewest();

  std::string path_;
  size_t max_line_;
  std::deque<Generation> gens_;  // oldest first; the newest is what the path named
  bool more_ = false;
  uint64_t dropped_ = 0;
  std::vector<std::pair<uint64_t, int64_t>> copies_read_;  // (inode, ctime) of fresh copies read
  std::vector<uint64_t> finished_;  // inodes of generations read to their end and closed
  int64_t started_ns_ = 0;          // when Start ran
};

}  // namespace relayban
