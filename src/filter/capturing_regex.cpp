#include "relayban/filter/capturing_regex.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace relayban {

namespace {

// The index after the class that starts at re[i] == '[', or npos if it does not end. "[]..."
// and "[^]..." start with a literal ']'; "[:alpha:]" nests its own brackets.
size_t SkipClass(std::string_view re, size_t i) {
  ++i;
  if (i < re.size() && re[i] == '^') ++i;
  if (i < re.size() && re[i] == ']') ++i;
  for (; i < re.size() && re[i] != ']'; ++i) {
    if (re[i] == '\\') {
      ++i;
    } else if (re[i] == '[' && i + 1 < re.size() && re[i + 1] == ':') {
      size_t close = re.find(":]", i + 2);
      if (close == std::string_view::npos) return std::string_view::npos;
      i = close + 1;
    }
  }
  return i < re.size() ? i + 1 : std::string_view::npos;
}

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
      size_t after = SkipClass(re, i);
      if (after == std::string_view::npos) return false;
      i = after - 1;
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

// Whether `re` matches one fixed string: no class, group, repeat, anchor or escape other than
// escaped punctuation.
bool IsPlainLiteral(std::string_view re) {
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 >= re.size() || std::isalnum(static_cast<unsigned char>(re[i + 1]))) return false;
      ++i;
    } else if (std::string_view(".[]()|*+?{}^$").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
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

std::string RequiredLiteral(std::string_view re) {
  // What is not read here is refused: quoted runs, case folding, top-level alternatives.
  if (re.find("\\Q") != std::string_view::npos || HasTopLevelAlternative(re)) return {};
  for (size_t i = 0; i + 1 < re.size(); ++i) {
    if (re[i] != '(' || re[i + 1] != '?') continue;
    for (size_t j = i + 2; j < re.size() && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-'); ++j)
      if (re[j] == 'i') return {};
  }
  // Of the certain runs, the one least likely in lines that do not match: lower-case words
  // and numbers are everywhere in mail logs, capitals and punctuation mark structure.
  auto score = [](const std::string& run) {
    int s = 0;
    for (unsigned char b : run) s += std::islower(b) || std::isdigit(b) || b == ' ' ? 1 : std::isupper(b) ? 2 : 3;
    return s;
  };
  std::string best, cur;
  int best_score = 0;
  auto end_run = [&] {
    if (int sc = score(cur); sc > best_score) {
      best = cur;
      best_score = sc;
    }
    cur.clear();
  };
  // "{n}", "{n,}" or "{n,m}" at re[i]: its length, else 0 (then RE2 reads '{' as a literal).
  auto repeat_length = [&](size_t i) -> size_t {
    size_t j = i + 1;
    size_t digits = 0;
    while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) ++j, ++digits;
    if (digits == 0) return 0;
    if (j < re.size() && re[j] == ',') {
      ++j;
      while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) ++j;
    }
    return j < re.size() && re[j] == '}' ? j + 1 - i : 0;
  };
  for (size_t i = 0; i < re.size();) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 >= re.size()) return {};
      char e = re[i + 1];
      if (!std::isalnum(static_cast<unsigned char>(e))) {
        cur += e;  // escaped punctuation stands for itself
      } else if (std::string_view("dDsSwWbBAzC").find(e) != std::string_view::npos) {
        end_run();  // a class or an assertion: no literal byte
      } else {
        return {};  // \x41, \pN, \t, octal...: not worth reading
      }
      i += 2;
      continue;
    }
    if (c == '[') {
      end_run();
      i = SkipClass(re, i);
      if (i == std::string_view::npos) return {};
      continue;
    }
    if (c == '(') {
      // A group may be optional or repeated: nothing inside is certain. Skip to its end.
      end_run();
      int depth = 0;
      for (; i < re.size(); ++i) {
        if (re[i] == '\\') ++i;
        else if (re[i] == '[') {
          size_t after = SkipClass(re, i);
          if (after == std::string_view::npos) return {};
          i = after - 1;
        } else if (re[i] == '(') ++depth;
        else if (re[i] == ')' && --depth == 0) break;
      }
      if (i >= re.size()) return {};
      ++i;
      continue;
    }
    if (c == '*' || c == '?' || (c == '{' && repeat_length(i) > 0)) {
      // The repeat applies to the atom before: if that was the run's last byte, it is not
      // certain. (After a group or class the run is empty already.)
      if (!cur.empty()) cur.pop_back();
      end_run();
      i += c == '{' ? repeat_length(i) : 1;
      continue;
    }
    if (c == '+') {
      end_run();  // the byte before is certain once, but the run cannot go on past a repeat
      ++i;
      continue;
    }
    if (c == '.' || c == '^' || c == '$' || c == ')' || c == '|') {
      if (c == ')' || c == '|') return {};  // unbalanced, or an alternative
      end_run();
      ++i;
      continue;
    }
    cur += c;
    ++i;
  }
  end_run();
  return best;
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
    head_is_literal_ = IsPlainLiteral(regex.substr(0, cut));
  }
  program_ = CaptureProgram::Compile(head_ != nullptr ? regex.substr(cut) : regex);
  // Only a program that numbers its groups as RE2 does.
  if (program_ != nullptr && program_->groups() != whole_.NumberOfCapturingGroups()) program_.reset();
}

bool CapturingRegex::Capture(const RE2& re, const CaptureProgram* program, const re2::StringPiece& text,
                             size_t start, re2::StringPiece* groups, int n) const {
  if (program == nullptr || !program->Fits(text.size()))
    return re.Match(text, start, text.size(), RE2::ANCHOR_START, groups, n);
  if (text.size() - start < kLongText) {
    // A short line: the program alone, which compares a line's fixed words whole where RE2's
    // one-pass engine takes a step per byte. Where it finds nothing (rare: the literal gate
    // lets through only lines holding the pattern's words), RE2 has the last word.
    if (program->Match(std::string_view(text.data(), text.size()), start, groups, n)) return true;
    if (!re.Match(text, start, text.size(), RE2::ANCHOR_START, nullptr, 0)) return false;
    return re.Match(text, start, text.size(), RE2::ANCHOR_START, groups, n);
  }
  // RE2's DFA says whether it matches at all, at a fraction of any capturing engine's cost.
  if (!re.Match(text, start, text.size(), RE2::ANCHOR_START, nullptr, 0)) return false;
  if (program->Match(std::string_view(text.data(), text.size()), start, groups, n)) return true;
  // Not expected (the program and RE2 agree, as the tests check): RE2 has the last word.
  return re.Match(text, start, text.size(), RE2::ANCHOR_START, groups, n);
}

bool CapturingRegex::MatchExact(const re2::StringPiece& text, re2::StringPiece* groups, int n) const {
  if (head_ != nullptr) {
    re2::StringPiece h;
    // Every match of the whole regex starts with a match of its head.
    if (!head_->Match(text, 0, text.size(), RE2::ANCHOR_START, &h, 1)) return false;
    if (Capture(*body_, program_.get(), text, h.size(), groups, n)) return true;
    // A head that is one fixed string can end nowhere else: the whole regex cannot match.
    if (head_is_literal_) return false;
  }
  if (!whole_.Match(text, 0, text.size(), RE2::ANCHOR_START, nullptr, 0)) return false;
  // (With a cut, the program is the body's: the whole regex is left to RE2.)
  return Capture(whole_, head_ != nullptr ? nullptr : program_.get(), text, 0, groups, n);
}

}  // namespace relayban
