// CapturingRegex: an RE2 regex for submatch extraction at the start of a text, faster than
// RE2::Match on the whole regex when the regex has a head without groups.
//
// RE2 reports the submatches of the highest-priority path, the one a backtracking engine
// would find first. For a regex cut into head·body at the top level, that path is the
// head's own highest-priority path h followed by the body's highest-priority path from where
// h ends, whenever the body matches there. So the head runs on RE2's DFA, which gives h's end
// without captures, and only the body runs on a capturing engine (OnePass or BitState, several
// times the DFA's cost per byte). If the body does not match after h, the whole regex runs.
// On a long line, where RE2 would capture with its NFA, the capturing engine is our
// CaptureProgram, after RE2's DFA has said the line matches.
#pragma once

#include <re2/re2.h>

#include "relayban/filter/capture_program.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace relayban {

// Where `regex` (RE2 syntax) can be cut: the start of the first top-level item that holds a
// capturing group, so the head before it holds no group and the body all of them. 0 when it
// cannot be cut: no group, a group first, a top-level `|`, an unscoped flag group such as
// `(?i)` before the groups, or a `\Q` quoted run.
size_t CaptureSplitPoint(std::string_view regex);

// A run of bytes that every match of `regex` (RE2 syntax, case-sensitive) contains, read
// from its top level only: of those, the one with the most capitals and punctuation for its
// length (the rarest in mail logs); empty when there is none or the regex is not understood here
// (case folding, `\Q`, `\x..` escapes, a top-level `|`).
std::string RequiredLiteral(std::string_view regex);

// True if `regex` has an alternative `|` outside any group (or cannot be told: a `\Q` run).
bool HasTopLevelAlternative(std::string_view regex);

class CapturingRegex {
 public:
  CapturingRegex(const std::string& regex, const RE2::Options& options);

  const RE2& whole() const { return whole_; }
  bool is_split() const { return head_ != nullptr; }
  bool head_is_literal() const { return head_is_literal_; }
  // Whether lines are captured by a CaptureProgram (the regex is understood there).
  bool has_program() const { return program_ != nullptr; }

  // From this many bytes (from where capturing starts) on, RE2's DFA first says whether the
  // line matches at all before a CaptureProgram captures (a long crafted line that does not
  // match is the DFA's quickest); below it the program captures at once, and RE2 is asked
  // only where the program finds nothing.
  static constexpr size_t kLongText = 1024;

  // Like whole().Match(text, 0, text.size(), RE2::ANCHOR_START, groups, n), except that
  // groups[0] then spans only the body. A head that does not match, or a whole regex that
  // RE2's DFA refuses, ends it before any capturing engine runs.
  bool MatchExact(const re2::StringPiece& text, re2::StringPiece* groups, int n) const;

 private:
  // Captures with `re` from `start`, after its DFA has said it matches there.
  bool Capture(const RE2& re, const CaptureProgram* program, const re2::StringPiece& text, size_t start,
               re2::StringPiece* groups, int n) const;

  RE2 whole_;
  std::unique_ptr<RE2> head_, body_;        // both null when the regex is not cut
  std::unique_ptr<CaptureProgram> program_;  // the body's, or the whole's when not cut; may be null
  bool head_is_literal_ = false;             // the head matches one fixed string only
};

}  // namespace relayban
