// CaptureProgram: the submatches of a regex, found by a memoised backtracker of our own
// instead of RE2's engines. Part of the filter stage: CapturingRegex hands it every line whose
// pattern it understands (a long one once RE2's DFA has said it matches).
//
// RE2 reports the submatches of the highest-priority path (the one a backtracking engine
// finds first). On a text of 16 KiB its NFA walks every live thread on every byte: 0.5-2 ms
// for a crafted line. This engine walks the same paths in the same priority order, but visits
// each (instruction, position) at most once and reads a run of one class (`.*`, `[^ ]+`) with
// a plain loop, trying what follows only where its first byte can start: a crafted line
// costs tens of microseconds. A chain of fixed bytes is compared at once: on a short line
// that makes it cheaper than RE2's one-pass engine, which takes a step per byte. It
// understands a subset of RE2's syntax (the one the shipped filters use) and refuses the
// rest, which then stays with RE2.
#pragma once

#include <re2/stringpiece.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace relayban {

class CaptureProgram {
 public:
  // The program for `regex` (RE2 syntax, Latin-1, case-sensitive, as PatternOptions compiles
  // it), or null when it uses anything not understood here: flag groups, `\b`, `\pN`, `\x..`,
  // POSIX classes, repeats of what can match empty, repeat counts above 1000, or a program of
  // more than kMaxInstructions.
  static std::unique_ptr<CaptureProgram> Compile(std::string_view regex);

  static constexpr size_t kMaxInstructions = 4000;

  // Like RE2::Match(text, start, text.size(), RE2::ANCHOR_START, groups, n): groups[0] is the
  // match, groups[k] the k-th capturing group (null data when it did not take part). `^` is
  // the start of `text`, `$` its end. Memory: a scratch bitmap of (joins x text) bits, kept
  // per thread.
  bool Match(std::string_view text, size_t start, re2::StringPiece* groups, int n) const;

  // Whether a text of `size` bytes keeps the visited bitmap within kMaxVisitedBytes (a regex
  // with thousands of joins on a long line would not: RE2 captures it instead).
  bool Fits(size_t size) const {
    return static_cast<size_t>(memo_rows_) * ((size + 64) / 64) * 8 <= kMaxVisitedBytes;
  }
  static constexpr size_t kMaxVisitedBytes = 4 << 20;

  int groups() const { return groups_; }
  // The fixed byte chains compared whole, end to end (for tests).
  const std::string& words() const { return words_; }
  size_t size() const { return insts_.size(); }

 private:
  enum class Op : uint8_t { kClass, kString, kRun, kSplit, kSave, kBegin, kEnd, kMatch };
  struct Inst {
    Op op = Op::kMatch;
    uint32_t next = 0;
    uint32_t alt = 0;       // kSplit: the lower-priority branch
    uint32_t arg = 0;       // kClass, kRun: class; kSave: slot
    uint32_t min = 0;       // kRun: fewest bytes; kString: where it starts in words_
    uint32_t max = 0;       // kRun: most bytes (kUnbounded: no limit); kString: its length
    int32_t memo = -1;      // row in the visited bitmap, or -1 (reached from one place only)
    bool mark_run = false;  // kRun: the positions it reads are marked too (unbounded, min <= 1)
    int stop = -1;          // kRun: the one byte its class leaves out, if so (found by memchr)
  };
  static constexpr uint32_t kUnbounded = UINT32_MAX;
  using ByteSet = std::array<bool, 256>;

  struct Builder;
  friend struct Builder;

  std::vector<Inst> insts_;
  std::vector<ByteSet> classes_;
  // kString: a chain of one-byte classes that nothing else jumps into, compared at once (the
  // fixed words of a log line were an instruction each). All of them, end to end.
  std::string words_;
  // Per run: what follows it must start with a byte of prefix[0], then one of prefix[1]...
  // (as far as that is certain; empty when it can match at once). A position where the text
  // does not fit is not tried.
  static constexpr size_t kPrefix = 8;
  struct Follow {
    std::array<ByteSet, kPrefix> prefix;
    size_t length = 0;
    int single = -1;  // the one byte prefix[0] allows, if it allows one only (found by memrchr)
    // The first levels that allow one byte each (what follows is fixed text, most often):
    // compared at once, not a level at a time.
    size_t fixed = 0;
    std::array<char, kPrefix> text{};
  };
  std::vector<Follow> follow_;  // per instruction (filled for runs only)
  uint32_t start_ = 0;
  int groups_ = 0;
  int memo_rows_ = 0;
};

}  // namespace relayban
