// ParsedLines: a batch of log lines matched together (Engine::Parse) and scored later
// (Engine::OnParsed), so that one thread can match while another scores. `check` reads and
// matches on a thread of its own; the daemon's loop hands its lines to a matching thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "relayban/engine/engine.hpp"
#include "relayban/filter/filter_set.hpp"

namespace relayban {

class ParsedLines {
 public:
  // A batch is full at `max_lines` lines or `max_bytes` of text (a batch always takes one
  // line, however long).
  ParsedLines(size_t max_lines, size_t max_bytes) : max_lines_(max_lines), max_bytes_(max_bytes) {}

  // Whether `line` should go to the next batch instead.
  bool Full(size_t line_size) const {
    return !lines_.empty() && (lines_.size() >= max_lines_ || text_.size() + line_size > max_bytes_);
  }
  // Copies a line read from `source` in. Not after Parse (until Clear): the hits view the text.
  void Add(int source, std::string_view line) {
    if (text_.capacity() < max_bytes_) text_.reserve(max_bytes_);
    lines_.push_back({text_.size(), line.size(), source});
    text_.append(line);
  }
  // Matches every line (Engine::Parse, which runs on one thread at a time per engine).
  void Parse(const Engine& engine, Time now) {
    parsed_.reserve(lines_.size());
    for (const Line& l : lines_) parsed_.push_back(engine.Parse(l.source, view(l), now, hits_, rewritten_, &stamp_));
  }
  // Hands each line to `f(source, line, parsed, hits)`, in order, for Engine::OnParsed. With
  // `ahead` (the engine that scores), what scoring a line will look up is prefetched
  // kAhead lines before (Engine::Prefetch).
  template <class F>
  void ForEach(F&& f, const Engine* ahead = nullptr) const {
    const size_t n = parsed_.size();
    if (ahead != nullptr)
      for (size_t i = 0; i < std::min(n, kAhead); ++i) ahead->Prefetch(lines_[i].source, parsed_[i], hits_.data());
    for (size_t i = 0; i < n; ++i) {
      if (ahead != nullptr && i + kAhead < n) {
        ahead->Prefetch(lines_[i + kAhead].source, parsed_[i + kAhead], hits_.data());
        PrefetchText(lines_[i + kAhead]);
      }
      f(lines_[i].source, view(lines_[i]), parsed_[i], hits_.data());
    }
  }
  static constexpr size_t kAhead = 12;
  size_t size() const { return lines_.size(); }
  bool empty() const { return lines_.empty(); }
  void Clear() {
    text_.clear();
    lines_.clear();
    parsed_.clear();
    hits_.clear();
    rewritten_.clear();
    stamp_.engine = nullptr;  // the next batch may be another engine's (a reload)
  }

 private:
  struct Line {
    size_t at, length;
    int source;
  };
  std::string_view view(const Line& l) const { return std::string_view(text_).substr(l.at, l.length); }
  // The text of a line scoring will read (its end first, then its captures): the matching
  // thread copied it in on the other core, so a first read waits on that core's cache.
  void PrefetchText(const Line& l) const {
    const char* p = text_.data() + l.at;
    for (size_t at = 0; at < l.length; at += 64) __builtin_prefetch(p + at);
    if (l.length > 0) __builtin_prefetch(p + l.length - 1);
    asm volatile("");
  }

  size_t max_lines_, max_bytes_;
  std::string text_;  // the lines, one after another
  std::vector<Line> lines_;
  std::vector<Engine::ParsedLine> parsed_;
  std::vector<PatternHit> hits_;     // views into text_ or rewritten_
  std::deque<std::string> rewritten_;  // RFC 5424 lines rewritten for the filters
  Engine::StampMemo stamp_;            // the last stamp decoded
};

}  // namespace relayban
