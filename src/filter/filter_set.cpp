#include "relayban/filter/filter_set.hpp"

#include "relayban/filter/capturing_regex.hpp"
#include "relayban/filter/literal_gate.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <optional>
#include <cctype>
#include <cstring>

namespace relayban {
namespace {

RE2::Options PatternOptions() {
  RE2::Options o;
  // Lines were checked to be clean UTF-8 or ASCII; byte semantics are enough for log fields
  // and give RE2 a smaller automaton.
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_log_errors(false);
  o.set_max_mem(16 << 20);
  return o;
}

constexpr int kCaptureCount = static_cast<int>(std::size(kCaptureNames));
// What {host} stands for: a host name token, up to the space after it.
constexpr std::string_view kHostMacro = R"([^ \[\]]+)";

}  // namespace

std::string ExpandPatternMacros(std::string_view regex) {
  static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
      {"{host}", kHostMacro},
      {"{pid}", R"((?:\[[0-9]+\])?)"},
      {"{ip}", R"((?P<ip>[0-9A-Fa-f:.]{2,45}))"},
  };
  std::string out;
  out.reserve(regex.size() + 32);
  for (size_t i = 0; i < regex.size();) {
    bool replaced = false;
    if (regex[i] == '{') {
      for (auto [name, body] : kMacros) {
        if (regex.substr(i, name.size()) == name) {
          out += body;
          i += name.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += regex[i++];
  }
  return out;
}

std::string LiteralAfterHost(std::string_view regex) {
  // "{host} literal" or "(?:{host} )?literal" (a line without a host name).
  std::string optional_host = "(?:" + std::string(kHostMacro) + " )?";
  size_t i;
  if (regex.substr(0, kHostMacro.size()) == kHostMacro && regex.substr(kHostMacro.size(), 1) == " ")
    i = kHostMacro.size() + 1;
  else if (regex.substr(0, optional_host.size()) == optional_host)
    i = optional_host.size();
  else
    return {};
  if (HasTopLevelAlternative(regex)) return {};
  std::string lit;
  while (i < regex.size() && lit.size() < 16) {
    char c = regex[i];
    if (c == '\\') {
      if (i + 1 >= regex.size() || std::isalnum(static_cast<unsigned char>(regex[i + 1]))) break;  // \d, \b...
      lit += regex[i + 1];  // escaped punctuation is itself
      i += 2;
      continue;
    }
    if (std::string_view(".[]()*+?{}|^$").find(c) != std::string_view::npos) break;
    lit += c;
    ++i;
  }
  // A quantifier after the run applies to its last character only: that one is not certain.
  if (i < regex.size() && std::string_view("*+?{").find(regex[i]) != std::string_view::npos && !lit.empty())
    lit.pop_back();
  return lit;
}

struct FilterSet::Impl {
  struct Pattern {
    int filter;
    int index;
    std::unique_ptr<CapturingRegex> re;
    int groups;
    std::array<int, kCaptureCount> capture_group;  // group number per capture name, 0 = none
    std::vector<std::string> unique;
    int literal = -1;                   // its required literal in the gate (patterns)
    std::unique_ptr<RE2> ignore;        // the regex alone (ignore entries)
    std::string ignore_literal;         // what the ignore regex requires, if known
  };
  std::vector<Pattern> patterns;  // Set index -> pattern; ignore patterns have index -1
  std::unique_ptr<RE2::Set> set;
  std::vector<int> ids;  // scratch for Match; a FilterSet belongs to one thread
  // When every pattern starts with "{host} " and a literal: those literals. A line whose text
  // after its first space starts with none of them cannot match, and RE2 is not asked.
  std::vector<std::string> after_host;
  // When every pattern requires a literal somewhere and there are few: a line with none of
  // them cannot match either.
  std::optional<LiteralGate> literal_gate;
  // The gate pays only if it turns most lines away: it counts what it lets through and rests
  // for a while when that is more than half (a pattern whose literal is a common word).
  static constexpr uint32_t kGateSample = 4096;
  static constexpr uint32_t kGateRest = 1 << 18;
  uint32_t gate_checked = 0, gate_passed = 0, gate_rest = 0;
  // With a gate of at most 64 literals, the literals found in a line name the only patterns
  // that can match it. Those are then tried in order, each on its own, instead of asking the
  // Set (which scans the whole line twice for a line that matches).
  bool dispatch = false;
  // The gate's pairs are chosen again from the bytes of the first lines it sees.
  static constexpr uint32_t kLearnLines = 2048;
  uint32_t learn_left = kLearnLines;
  LiteralGate::ByteCounts byte_counts{};
  std::vector<std::string> gate_literals;
  std::vector<std::vector<int>> filter_entries;  // filter -> its entries (ignores first)

  // Whether every `unique` literal of p occurs exactly once in the message.
  static bool Unique(const Pattern& p, std::string_view message);
  // Appends the hit of pattern p, whose groups are filled.
  void Hit(const Pattern& p, std::string_view message, const re2::StringPiece* groups, int n,
           std::vector<PatternHit>& hits) const;
  int MatchByLiterals(uint64_t found, std::string_view message, std::vector<PatternHit>& hits) const;
};

FilterSet::FilterSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FilterSet::~FilterSet() = default;
size_t FilterSet::pattern_count() const { return impl_->patterns.size(); }

namespace {
// The checks on a compiled regex, for CheckRegex and for Build (which keeps the regex).
Result<void> CheckCompiled(const RE2& re, const PatternSpec& p, bool is_ignore) {
  if (!re.ok()) return Fail(Error{"regex rejected by RE2: " + re.error(), p.where});
  if (re.NumberOfCapturingGroups() > 30) return Fail(Error{"regex has more than 30 capturing groups", p.where});
  if (is_ignore) return {};
  for (const auto& [name, group] : re.NamedCapturingGroups()) {
    (void)group;
    if (std::find(std::begin(kCaptureNames), std::end(kCaptureNames), name) == std::end(kCaptureNames))
      return Fail(Error{"unknown capture name '" + name +
                            "' (allowed: ip, account, sender, recipient, id, session, count, conn)",
                        p.where});
  }
  return {};
}
}  // namespace

Result<void> FilterSet::CheckRegex(const PatternSpec& p, bool is_ignore) {
  return CheckCompiled(RE2(ExpandPatternMacros(p.regex), PatternOptions()), p, is_ignore);
}

Result<std::unique_ptr<FilterSet>> FilterSet::Build(const std::vector<const FilterSpec*>& filters,
                                                    bool shortcuts) {
  auto impl = std::make_unique<Impl>();
  impl->filter_entries.resize(filters.size());

  // Every pattern's required literal, in filter and pattern order. Ignore entries only ever
  // take matches away, so only the patterns decide whether the gate can turn a line away.
  std::vector<std::string> required;
  bool all_required = true;
  for (const FilterSpec* spec : filters) {
    for (const PatternSpec& p : spec->patterns) {
      std::string lit = RequiredLiteral(ExpandPatternMacros(p.regex));
      all_required = all_required && lit.size() >= 3;
      required.push_back(std::move(lit));
    }
  }
  if (shortcuts && all_required && !required.empty()) impl->literal_gate = LiteralGate::Build(required);
  if (impl->literal_gate) {
    impl->gate_literals = required;
    impl->dispatch = impl->literal_gate->literals().size() <= 64;
  }

  // With dispatch the RE2::Set is never asked: it is not built. Otherwise ignore regexes join
  // the same Set as the patterns, anchored like them, so refusing a line costs no second search.
  if (!impl->dispatch) {
    RE2::Options set_options = PatternOptions();
    set_options.set_max_mem(64 << 20);
    impl->set = std::make_unique<RE2::Set>(set_options, RE2::ANCHOR_START);
  }
  size_t next_literal = 0;
  auto add = [&](const PatternSpec& p, int filter, int index, bool is_ignore) -> Result<void> {
    std::string expanded = ExpandPatternMacros(p.regex);
    Impl::Pattern pat{filter, index, nullptr, 0, {}, p.unique};
    if (is_ignore) {
      auto re = std::make_unique<RE2>(expanded, PatternOptions());
      if (auto r = CheckCompiled(*re, p, true); !r) return r;
      // Only dispatch asks an ignore entry on its own; the Set holds it otherwise.
      if (impl->dispatch) {
        pat.ignore = std::move(re);
        pat.ignore_literal = RequiredLiteral(expanded);
      }
    } else {
      pat.re = std::make_unique<CapturingRegex>(expanded, PatternOptions());
      if (auto r = CheckCompiled(pat.re->whole(), p, false); !r) return r;
      pat.groups = pat.re->whole().NumberOfCapturingGroups();
      for (const auto& [name, group] : pat.re->whole().NamedCapturingGroups()) {
        for (int c = 0; c < kCaptureCount; ++c)
          if (name == kCaptureNames[c]) pat.capture_group[static_cast<size_t>(c)] = group;
      }
      const std::string& lit = required[next_literal++];
      if (impl->literal_gate) pat.literal = impl->literal_gate->IndexOf(lit);
    }
    std::string err;
    if (impl->set && impl->set->Add(expanded, &err) < 0) return Fail(Error{"regex rejected by RE2: " + err, p.where});
    impl->filter_entries[static_cast<size_t>(filter)].push_back(static_cast<int>(impl->patterns.size()));
    impl->patterns.push_back(std::move(pat));
    return {};
  };
  for (size_t f = 0; f < filters.size(); ++f) {
    const FilterSpec& spec = *filters[f];
    for (const PatternSpec& ig : spec.ignore)
      if (auto r = add(ig, static_cast<int>(f), -1, true); !r) return Fail(r.error());
    for (size_t i = 0; i < spec.patterns.size(); ++i)
      if (auto r = add(spec.patterns[i], static_cast<int>(f), static_cast<int>(i), false); !r) return Fail(r.error());
  }
  if (impl->set && !impl->patterns.empty() && !impl->set->Compile())
    return Fail("the combined filter set is too large for RE2");
  if (!shortcuts) return std::unique_ptr<FilterSet>(new FilterSet(std::move(impl)));

  for (size_t f = 0; f < filters.size(); ++f) {
    for (const PatternSpec& p : filters[f]->patterns) {
      std::string lit = LiteralAfterHost(ExpandPatternMacros(p.regex));
      if (lit.empty()) {
        impl->after_host.clear();
        return std::unique_ptr<FilterSet>(new FilterSet(std::move(impl)));
      }
      if (std::find(impl->after_host.begin(), impl->after_host.end(), lit) == impl->after_host.end())
        impl->after_host.push_back(std::move(lit));
    }
  }
  return std::unique_ptr<FilterSet>(new FilterSet(std::move(impl)));
}

namespace {
// memmem, not string_view::find: find compares at every occurrence of the literal's first
// byte, which a crafted line repeats thousands of times.
bool OccursExactlyOnce(std::string_view text, std::string_view lit) {
  if (lit.empty()) return false;
  const void* first = memmem(text.data(), text.size(), lit.data(), lit.size());
  if (first == nullptr) return false;
  size_t after = static_cast<size_t>(static_cast<const char*>(first) - text.data()) + 1;
  return memmem(text.data() + after, text.size() - after, lit.data(), lit.size()) == nullptr;
}
}  // namespace

bool FilterSet::Impl::Unique(const Pattern& p, std::string_view message) {
  for (const std::string& lit : p.unique)
    if (!OccursExactlyOnce(message, lit)) return false;
  return true;
}

void FilterSet::Impl::Hit(const Pattern& p, std::string_view /*message*/, const re2::StringPiece* groups, int n,
                          std::vector<PatternHit>& hits) const {
  PatternHit hit{p.filter, p.index, {}, std::nullopt};
  std::string_view* fields[kCaptureCount] = {&hit.captures.ip,        &hit.captures.account, &hit.captures.sender,
                                             &hit.captures.recipient, &hit.captures.id,      &hit.captures.session,
                                             &hit.captures.count,     &hit.captures.conn};
  for (int c = 0; c < kCaptureCount; ++c) {
    int g = p.capture_group[static_cast<size_t>(c)];
    if (g > 0 && g < n && groups[g].data() != nullptr) *fields[c] = std::string_view(groups[g].data(), groups[g].size());
  }
  hits.push_back(hit);
}

int FilterSet::Impl::MatchByLiterals(uint64_t found, std::string_view message, std::vector<PatternHit>& hits) const {
  re2::StringPiece text(message.data(), message.size());
  std::array<re2::StringPiece, 32> groups;
  int rejected = 0;
  for (const std::vector<int>& entries : filter_entries) {
    // The filter's first pattern that matches, as the Set would have it...
    const Pattern* winner = nullptr;
    bool ambiguous = false;
    int n = 0;
    for (int e : entries) {
      const Pattern& p = patterns[static_cast<size_t>(e)];
      if (p.index < 0 || (found >> p.literal & 1) == 0) continue;
      n = std::min(p.groups + 1, static_cast<int>(groups.size()));
      if (!Unique(p, message)) {
        // Refused if it matches, whatever its captures: the DFA alone tells, without the
        // capturing engine a crafted line would keep busy.
        if (!p.re->whole().Match(text, 0, text.size(), RE2::ANCHOR_START, nullptr, 0)) continue;
        winner = &p;
        ambiguous = true;
        break;
      }
      if (p.re->MatchExact(text, groups.data(), n)) {
        winner = &p;
        break;
      }
    }
    if (winner == nullptr) continue;
    // ...unless one of its ignore entries matches the line.
    bool ignored = false;
    for (int e : entries) {
      const Pattern& ig = patterns[static_cast<size_t>(e)];
      if (ig.index >= 0) break;  // the ignore entries come first
      if (!ig.ignore_literal.empty() && message.find(ig.ignore_literal) == std::string_view::npos) continue;
      if (ig.ignore->Match(text, 0, text.size(), RE2::ANCHOR_START, nullptr, 0)) {
        ignored = true;
        break;
      }
    }
    if (ignored) continue;
    if (ambiguous) ++rejected;
    else Hit(*winner, message, groups.data(), n, hits);
  }
  return rejected;
}

int FilterSet::Match(std::string_view message, std::vector<PatternHit>& hits) const {
  if (impl_->patterns.empty()) return 0;
  if (!impl_->after_host.empty()) {
    // The host token ends at the first space: the literal must follow right there, or start
    // the line when it has no host name.
    size_t space = message.find(' ');
    if (space == std::string_view::npos || space == 0) return 0;
    std::string_view rest = message.substr(space + 1);
    bool possible = false;
    for (const std::string& lit : impl_->after_host)
      possible = possible || rest.substr(0, lit.size()) == lit || message.substr(0, lit.size()) == lit;
    if (!possible) return 0;
  }
  bool literal_found = false;
  if (impl_->literal_gate) {
    Impl& m = *impl_;
    if (m.learn_left > 0) {
      for (unsigned char b : message) ++m.byte_counts[b];
      if (--m.learn_left == 0) {
        // Same literals, so the same indices: only the pairs looked for change.
        if (auto tuned = LiteralGate::Build(m.gate_literals, true, &m.byte_counts)) m.literal_gate = std::move(tuned);
      }
    }
    if (m.gate_rest > 0) {
      --m.gate_rest;
    } else {
      uint64_t found = m.dispatch ? m.literal_gate->Found(message) : (m.literal_gate->MayMatch(message) ? 1 : 0);
      m.gate_passed += found != 0 ? 1 : 0;
      if (++m.gate_checked == Impl::kGateSample) {
        if (!m.dispatch && m.gate_passed * 2 > m.gate_checked) m.gate_rest = Impl::kGateRest;
        m.gate_checked = m.gate_passed = 0;
      }
      if (found == 0) return 0;
      if (m.dispatch) return m.MatchByLiterals(found, message, hits);
      literal_found = true;
    }
  }
  if (!impl_->set) return 0;  // (only with dispatch, which has answered above)
  re2::StringPiece text(message.data(), message.size());
  std::vector<int>& ids = impl_->ids;
  // Most lines match nothing. Asked without a result vector, the Set neither allocates nor
  // collects; only a line that matches something is asked again for which patterns.
  // (A line with a required literal matches often enough to ask for the patterns at once.)
  if (!literal_found && !impl_->set->Match(text, nullptr)) return 0;
  ids.clear();
  if (!impl_->set->Match(text, &ids)) return 0;
  std::sort(ids.begin(), ids.end());
  int rejected = 0;
  int last_filter = -1;
  std::array<re2::StringPiece, 32> groups;
  for (int id : ids) {
    const Impl::Pattern& p = impl_->patterns[static_cast<size_t>(id)];
    // A filter's ignore entries come before its patterns in the Set, so they are seen first.
    if (p.filter == last_filter) continue;  // ignored, or its first pattern already won
    last_filter = p.filter;
    if (p.index < 0) continue;  // an ignore regex matched: nothing from this filter
    if (!Impl::Unique(p, message)) {  // the Set says it matches: refused without capturing
      ++rejected;
      continue;
    }
    int n = std::min(p.groups + 1, static_cast<int>(groups.size()));
    if (!p.re->MatchExact(text, groups.data(), n)) continue;
    impl_->Hit(p, message, groups.data(), n, hits);
  }
  return rejected;
}

}  // namespace relayban
