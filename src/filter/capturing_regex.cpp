#include "relayban/filter/capturing_regex.hpp"

#include <cctype>
#include <vector>

namespace relayban {

size_t CaptureSplitPoint(std::string_view re) {
  size_t split = 0;
  bool found = false;
  std::vector<size_t> open;  // positions of the unclosed '('
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 < re.size() && re[i + 1] == 'Q') return 0;  // a quoted run: not worth parsing
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
          if (close == std::string_view::npos) return 0;
          i = close + 1;
        }
      }
    } else if (c == '(') {
      bool capturing = i + 1 >= re.size() || re[i + 1] != '?' ||
                       (i + 2 < re.size() && (re[i + 2] == 'P' || re[i + 2] == '<') &&
                        re.substr(i + 2, 2) != "P=" && re.substr(i + 2, 2) != "<=" && re.substr(i + 2, 2) != "<!");
      if (!capturing && open.empty() && !found) {
        // "(?i)" at the top level changes everything after it, the body included.
        size_t j = i + 2;
        while (j < re.size() && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-')) ++j;
        if (j < re.size() && re[j] == ')') return 0;
      }
      if (capturing && !found) {
        found = true;
        split = open.empty() ? i : open.front();
      }
      open.push_back(i);
    } else if (c == ')') {
      if (!open.empty()) open.pop_back();
    } else if (c == '|' && open.empty()) {
      return 0;  // a top-level alternative: head and body are not a concatenation
    }
  }
  return found ? split : 0;
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
