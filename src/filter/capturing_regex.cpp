#include "relayban/filter/capturing_regex.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace relayban {

namespace {

// Calls visit(i) for every '(', ')' and '|' of `re` that is not escaped or inside a class;
// visit returns false to stop. Returns false on a `\Q` quoted run or an unterminated POSIX
// class, which callers treat as "cannot tell".
template <typename F>
bool ForEachStructuralChar(std::string_view re, F&& visit) {
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 < re.size() && re[i + 1] == 'Q') return false;
      ++i;
    } else if (c == '[') {
      // A class: "[]" or "[^]" starts with a literal ']'; "[:alpha:]" nests its own brackets.
      ++i;
      if (i < re.size() && re[i] == '^') ++i;
      if (i < re.size() && re[i] == ']') ++i;
      for (; i < re.size() && re[i] != ']'; ++i) {
        if (re[i] == '\\') ++i;
        else if (re[i] == '[' && i + 1 < re.size() && re[i + 1] == ':') {
          size_t close = re.find(":]", i + 2);
          if (close == std::string_view::npos) return false;
          i = close + 1;
        }
      }
    } else if (c == '(' || c == ')' || c == '|') {
      if (!visit(i)) return true;
    }
  }
  return true;
}

bool IsCapturingOpen(std::string_view re, size_t i) {
  if (i + 1 >= re.size() || re[i + 1] != '?') return true;
  std::string_view kind = re.substr(i + 2, 2);
  return !kind.empty() && (kind[0] == 'P' || kind[0] == '<') && kind != "P=" && kind != "<=" && kind != "<!";
}

// "(?i)" or "(?-s)": flags without a body, which change everything after them.
bool IsUnscopedFlags(std::string_view re, size_t i) {
  if (i + 1 >= re.size() || re[i + 1] != '?') return false;
  size_t j = i + 2;
  while (j < re.size() && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-')) ++j;
  return j > i + 2 && j < re.size() && re[j] == ')';
}

}  // namespace

bool HasTopLevelAlternative(std::string_view re) {
  int depth = 0;
  bool bar = false;
  bool known = ForEachStructuralChar(re, [&](size_t i) {
    if (re[i] == '(') ++depth;
    else if (re[i] == ')') depth = std::max(0, depth - 1);
    else if (depth == 0) bar = true;
    return !bar;
  });
  return bar || !known;
}

size_t CaptureSplitPoint(std::string_view re) {
  size_t split = 0;
  bool found = false, refused = false;
  std::vector<size_t> open;  // positions of the unclosed '('
  bool known = ForEachStructuralChar(re, [&](size_t i) {
    if (re[i] == '(') {
      bool capturing = IsCapturingOpen(re, i);
      // "(?i)" at the top level before the groups would not reach a separately compiled body.
      if (!capturing && open.empty() && !found && IsUnscopedFlags(re, i)) refused = true;
      if (capturing && !found) {
        found = true;
        split = open.empty() ? i : open.front();
      }
      open.push_back(i);
    } else if (re[i] == ')') {
      if (!open.empty()) open.pop_back();
    } else if (open.empty()) {
      refused = true;  // a top-level alternative: head and body are not a concatenation
    }
    return !refused;
  });
  return known && found && !refused ? split : 0;
}

CapturingRegex::CapturingRegex(const std::string& regex, const RE2::Options& options) : whole_(regex, options) {
  if (!whole_.ok()) return;
  size_t cut = CaptureSplitPoint(regex);
  if (cut == 0) return;
  auto head = std::make_unique<RE2>(regex.substr(0, cut), options);
  auto body = std::make_unique<RE2>(regex.substr(cut), options);
  // Only a cut that leaves every group, with its number and name, in the body.
  if (head->ok() && body->ok() && head->NumberOfCapturingGroups() == 0 &&
      body->NumberOfCapturingGroups() == whole_.NumberOfCapturingGroups() &&
      body->NamedCapturingGroups() == whole_.NamedCapturingGroups()) {
    head_ = std::move(head);
    body_ = std::move(body);
  }
}

bool CapturingRegex::MatchStart(const re2::StringPiece& text, re2::StringPiece* groups, int n) const {
  if (head_ != nullptr) {
    re2::StringPiece h;
    // The body is matched with the whole text as context, so ^, $ and \b see what they would
    // see inside the whole regex.
    if (head_->Match(text, 0, text.size(), RE2::ANCHOR_START, &h, 1) &&
        body_->Match(text, h.size(), text.size(), RE2::ANCHOR_START, groups, n))
      return true;
  }
  return whole_.Match(text, 0, text.size(), RE2::ANCHOR_START, groups, n);
}

}  // namespace relayban
