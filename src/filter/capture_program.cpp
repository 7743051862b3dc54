#include "relayban/filter/capture_program.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <string>

namespace relayban {

namespace {

using ByteSet = std::array<bool, 256>;

// The regex as a tree. Only what RE2 accepts reaches here (CapturingRegex checks first), but
// the parser still refuses anything it is not sure it reads as RE2 does.
struct Node {
  enum class Kind : uint8_t { kEmpty, kClass, kConcat, kAlt, kRepeat, kCapture, kBegin, kEnd };
  Kind kind = Kind::kEmpty;
  ByteSet bytes{};             // kClass
  std::vector<Node> kids;      // kConcat, kAlt; kRepeat and kCapture have one
  uint32_t min = 0, max = 0;   // kRepeat
  bool greedy = true;          // kRepeat
  int group = 0;               // kCapture
};

constexpr uint32_t kInfinite = UINT32_MAX;
constexpr uint32_t kMaxRepeat = 1000;  // RE2's own limit

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kClass: return false;
    case Node::Kind::kConcat:
      return std::all_of(n.kids.begin(), n.kids.end(), Nullable);
    case Node::Kind::kAlt:
      return std::any_of(n.kids.begin(), n.kids.end(), Nullable);
    case Node::Kind::kRepeat: return n.min == 0 || Nullable(n.kids[0]);
    case Node::Kind::kCapture: return Nullable(n.kids[0]);
    default: return true;  // empty, ^, $
  }
}

class Parser {
 public:
  explicit Parser(std::string_view re) : re_(re) {}

  std::optional<Node> Parse() {
    auto n = Alternation();
    if (!n || pos_ != re_.size()) return std::nullopt;
    return n;
  }
  int groups() const { return groups_; }

 private:
  bool AtEnd() const { return pos_ >= re_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < re_.size() ? re_[pos_ + ahead] : '\0'; }

  std::optional<Node> Alternation() {
    Node alt;
    alt.kind = Node::Kind::kAlt;
    for (;;) {
      auto c = Concatenation();
      if (!c) return std::nullopt;
      alt.kids.push_back(std::move(*c));
      if (AtEnd() || Peek() != '|') break;
      ++pos_;
    }
    if (alt.kids.size() == 1) return std::move(alt.kids[0]);
    return alt;
  }

  std::optional<Node> Concatenation() {
    Node cat;
    cat.kind = Node::Kind::kConcat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      auto atom = Atom();
      if (!atom) return std::nullopt;
      auto rep = Repeats(std::move(*atom));
      if (!rep) return std::nullopt;
      cat.kids.push_back(std::move(*rep));
    }
    if (cat.kids.empty()) return Node{};
    if (cat.kids.size() == 1) return std::move(cat.kids[0]);
    return cat;
  }

  // Reads a number of at most four digits at pos_.
  std::optional<uint32_t> Number() {
    size_t digits = 0;
    uint32_t v = 0;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) {
      if (++digits > 4) return std::nullopt;
      v = v * 10 + static_cast<uint32_t>(Peek() - '0');
      ++pos_;
    }
    return digits > 0 ? std::optional<uint32_t>(v) : std::nullopt;
  }

  std::optional<Node> Repeats(Node atom) {
    if (AtEnd()) return atom;
    char c = Peek();
    uint32_t min = 0, max = 0;
    if (c == '*') {
      min = 0, max = kInfinite, ++pos_;
    } else if (c == '+') {
      min = 1, max = kInfinite, ++pos_;
    } else if (c == '?') {
      min = 0, max = 1, ++pos_;
    } else if (c == '{') {
      // RE2 reads a '{' that does not start a valid count as a literal; such regexes are left
      // to RE2.
      ++pos_;
      auto lo = Number();
      if (!lo) return std::nullopt;
      min = max = *lo;
      if (Peek() == ',') {
        ++pos_;
        if (Peek() == '}') max = kInfinite;
        else if (auto hi = Number()) max = *hi;
        else return std::nullopt;
      }
      if (Peek() != '}') return std::nullopt;
      ++pos_;
      if (min > kMaxRepeat || (max != kInfinite && (max > kMaxRepeat || max < min))) return std::nullopt;
    } else {
      return atom;
    }
    bool greedy = true;
    if (Peek() == '?') {
      greedy = false;
      ++pos_;
    }
    // A repeat of a repeat, or of what can match empty: RE2 simplifies those in ways not
    // copied here.
    if (!AtEnd() && std::strchr("*+?{", Peek()) != nullptr) return std::nullopt;
    if (Nullable(atom)) return std::nullopt;
    Node rep;
    rep.kind = Node::Kind::kRepeat;
    rep.min = min;
    rep.max = max;
    rep.greedy = greedy;
    rep.kids.push_back(std::move(atom));
    return rep;
  }

  static Node Bytes(const ByteSet& set) {
    Node n;
    n.kind = Node::Kind::kClass;
    n.bytes = set;
    return n;
  }

  // \d, \s, \w and their negations (Perl classes, as RE2 defines them); false otherwise.
  static bool PerlClass(char e, ByteSet& out) {
    ByteSet set{};
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(e)));
    if (lower == 'd') {
      for (int b = '0'; b <= '9'; ++b) set[static_cast<size_t>(b)] = true;
    } else if (lower == 's') {
      for (unsigned char b : std::string_view("\t\n\f\r ")) set[b] = true;
    } else if (lower == 'w') {
      for (int b = 0; b < 256; ++b) set[static_cast<size_t>(b)] = b < 128 && (std::isalnum(b) || b == '_');
    } else {
      return false;
    }
    if (std::isupper(static_cast<unsigned char>(e)))
      for (bool& b : set) b = !b;
    for (size_t b = 0; b < 256; ++b) out[b] = out[b] || set[b];
    return true;
  }

  std::optional<Node> Atom() {
    char c = Peek();
    ++pos_;
    switch (c) {
      case '(': return Group();
      case '[': return Class();
      case '.': {
        ByteSet all;
        all.fill(true);
        all['\n'] = false;
        return Bytes(all);
      }
      case '^': {
        Node n;
        n.kind = Node::Kind::kBegin;
        return n;
      }
      case '$': {
        Node n;
        n.kind = Node::Kind::kEnd;
        return n;
      }
      case '\\': {
        if (AtEnd()) return std::nullopt;
        char e = Peek();
        ++pos_;
        ByteSet set{};
        if (!std::isalnum(static_cast<unsigned char>(e))) {
          set[static_cast<unsigned char>(e)] = true;
          return Bytes(set);
        }
        if (PerlClass(e, set)) return Bytes(set);
        return std::nullopt;  // \b, \A, \z, \x41, \pN, \Q...
      }
      case '*': case '+': case '?': case '{': case ')': case '|':
        return std::nullopt;
      default: {
        ByteSet set{};
        set[static_cast<unsigned char>(c)] = true;
        return Bytes(set);
      }
    }
  }

  std::optional<Node> Group() {
    // The parser and the emitter recurse once per level: deep nesting is left to RE2.
    if (++depth_ > kMaxDepth) return std::nullopt;
    Node cap;
    bool capturing = true;
    if (Peek() == '?') {
      if (Peek(1) == ':') {
        capturing = false;
        pos_ += 2;
      } else if (Peek(1) == 'P' && Peek(2) == '<') {
        size_t close = re_.find('>', pos_);
        if (close == std::string_view::npos) return std::nullopt;
        pos_ = close + 1;
      } else {
        return std::nullopt;  // flags, lookaround (RE2 has none), (?P=name)
      }
    }
    int group = capturing ? ++groups_ : 0;
    auto body = Alternation();
    if (!body || AtEnd() || Peek() != ')') return std::nullopt;
    ++pos_;
    --depth_;
    if (!capturing) return body;
    cap.kind = Node::Kind::kCapture;
    cap.group = group;
    cap.kids.push_back(std::move(*body));
    return cap;
  }

  // One member of a class at pos_: a byte, an escaped punctuation byte, or a Perl class.
  // Returns the byte, -1 for a Perl class (already added to `set`), or nullopt.
  std::optional<int> ClassMember(ByteSet& set) {
    char c = Peek();
    if (c == '\\') {
      char e = Peek(1);
      if (e == '\0') return std::nullopt;
      pos_ += 2;
      if (!std::isalnum(static_cast<unsigned char>(e))) return static_cast<unsigned char>(e);
      if (PerlClass(e, set)) return -1;
      return std::nullopt;
    }
    if (c == '[' && Peek(1) == ':') return std::nullopt;  // [:alpha:]
    ++pos_;
    return static_cast<unsigned char>(c);
  }

  std::optional<Node> Class() {
    ByteSet set{};
    bool negated = Peek() == '^';
    if (negated) ++pos_;
    bool first = true;
    while (!AtEnd() && (Peek() != ']' || first)) {
      size_t item = pos_;
      auto lo = ClassMember(set);
      if (!lo) return std::nullopt;
      first = false;
      if (*lo < 0) continue;
      if (Peek() == '-' && Peek(1) != ']' && Peek(1) != '\0') {
        ++pos_;
        auto hi = ClassMember(set);
        if (!hi || *hi < 0 || *hi < *lo) return std::nullopt;
        for (int b = *lo; b <= *hi; ++b) set[static_cast<size_t>(b)] = true;
        continue;
      }
      // A '-' that neither starts, ends nor makes a range: RE2 refuses it in some modes.
      if (*lo == '-' && re_[item] == '-' && item > 0 && re_[item - 1] != '[' && re_[item - 1] != '^' && Peek() != ']')
        return std::nullopt;
      set[static_cast<size_t>(*lo)] = true;
    }
    if (AtEnd()) return std::nullopt;
    ++pos_;  // ']'
    if (negated)
      for (bool& b : set) b = !b;  // RE2 (ClassNL) lets a negated class match '\n'
    return Bytes(set);
  }

  static constexpr int kMaxDepth = 64;
  std::string_view re_;
  size_t pos_ = 0;
  int groups_ = 0;
  int depth_ = 0;
};

}  // namespace

struct CaptureProgram::Builder {
  CaptureProgram& p;

  uint32_t Add(Inst inst) {
    p.insts_.push_back(inst);
    return static_cast<uint32_t>(p.insts_.size() - 1);
  }
  uint32_t AddClass(const ByteSet& set) {
    for (size_t i = 0; i < p.classes_.size(); ++i)
      if (p.classes_[i] == set) return static_cast<uint32_t>(i);
    p.classes_.push_back(set);
    return static_cast<uint32_t>(p.classes_.size() - 1);
  }
  uint32_t Split(uint32_t first, uint32_t second) {
    Inst s;
    s.op = Op::kSplit;
    s.next = first;
    s.alt = second;
    return Add(s);
  }
  bool TooBig() const { return p.insts_.size() > kMaxInstructions; }

  // Emits `n` so that it goes on at `next`; returns its entry, or nullopt when too big.
  std::optional<uint32_t> Emit(const Node& n, uint32_t next) {
    if (TooBig()) return std::nullopt;
    switch (n.kind) {
      case Node::Kind::kEmpty: return next;
      case Node::Kind::kClass: {
        Inst c;
        c.op = Op::kClass;
        c.arg = AddClass(n.bytes);
        c.next = next;
        return Add(c);
      }
      case Node::Kind::kBegin:
      case Node::Kind::kEnd: {
        Inst c;
        c.op = n.kind == Node::Kind::kBegin ? Op::kBegin : Op::kEnd;
        c.next = next;
        return Add(c);
      }
      case Node::Kind::kConcat: {
        for (auto it = n.kids.rbegin(); it != n.kids.rend(); ++it) {
          auto e = Emit(*it, next);
          if (!e) return std::nullopt;
          next = *e;
        }
        return next;
      }
      case Node::Kind::kAlt: {
        std::vector<uint32_t> entries;
        for (const Node& k : n.kids) {
          auto e = Emit(k, next);
          if (!e) return std::nullopt;
          entries.push_back(*e);
        }
        uint32_t s = entries.back();
        for (size_t i = entries.size() - 1; i-- > 0;) s = Split(entries[i], s);
        return s;
      }
      case Node::Kind::kCapture: {
        Inst close;
        close.op = Op::kSave;
        close.arg = static_cast<uint32_t>(2 * n.group + 1);
        close.next = next;
        auto body = Emit(n.kids[0], Add(close));
        if (!body) return std::nullopt;
        Inst open;
        open.op = Op::kSave;
        open.arg = static_cast<uint32_t>(2 * n.group);
        open.next = *body;
        return Add(open);
      }
      case Node::Kind::kRepeat: return EmitRepeat(n, next);
    }
    return std::nullopt;
  }

  std::optional<uint32_t> EmitRepeat(const Node& n, uint32_t next) {
    const Node& kid = n.kids[0];
    if (kid.kind == Node::Kind::kClass && n.greedy) {
      // A greedy run of one class: read with a loop. x{m,} is x{m-1} then x+, so that an
      // unbounded run starts at most one byte in and can mark what it reads.
      uint32_t min = n.min;
      Inst run;
      run.op = Op::kRun;
      run.arg = AddClass(kid.bytes);
      run.next = next;
      if (n.max == kInfinite) {
        run.min = std::min<uint32_t>(min, 1);
        run.max = kUnbounded;
        run.mark_run = true;
      } else {
        run.min = min;
        run.max = n.max;
        min = 0;
      }
      uint32_t entry = Add(run);
      for (uint32_t i = 1; n.max == kInfinite && i < min; ++i) {
        auto e = Emit(kid, entry);
        if (!e) return std::nullopt;
        entry = *e;
      }
      return entry;
    }
    if (n.max == kInfinite) {
      // loop: a split whose one branch is the body, which comes back to it.
      uint32_t loop = Split(0, 0);
      auto body = Emit(kid, loop);
      if (!body) return std::nullopt;
      p.insts_[loop].next = n.greedy ? *body : next;
      p.insts_[loop].alt = n.greedy ? next : *body;
      if (n.min == 0) return loop;
      uint32_t entry = *body;
      for (uint32_t i = 1; i < n.min; ++i) {
        auto e = Emit(kid, entry);
        if (!e) return std::nullopt;
        entry = *e;
      }
      return entry;
    }
    // x{min,max}: min copies, then max-min nested optional ones (as RE2 simplifies it).
    uint32_t t = next;
    for (uint32_t i = n.min; i < n.max; ++i) {
      auto e = Emit(kid, t);
      if (!e) return std::nullopt;
      t = n.greedy ? Split(*e, next) : Split(next, *e);
    }
    for (uint32_t i = 0; i < n.min; ++i) {
      auto e = Emit(kid, t);
      if (!e) return std::nullopt;
      t = *e;
    }
    return t;
  }

  // Which instructions need a row in the visited bitmap: those reached from more than one
  // place (loops and joins) and every run. The others are visited at most as often as the
  // one instruction that leads to them, so the backtracker stays within (joins x text).
  void AssignMemo() {
    std::vector<uint32_t> indegree(p.insts_.size(), 0);
    ++indegree[p.start_];
    for (const Inst& i : p.insts_) {
      if (i.op == Op::kMatch) continue;
      ++indegree[i.next];
      if (i.op == Op::kSplit) ++indegree[i.alt];
    }
    for (size_t k = 0; k < p.insts_.size(); ++k)
      if (indegree[k] > 1 || p.insts_[k].op == Op::kRun) p.insts_[k].memo = p.memo_rows_++;
  }

  // Chains of one-byte classes, each reached from the one before only, become one string
  // (after Follows, which reads the classes one by one). The instructions inside a chain
  // are left unreached.
  void MergeStrings() {
    std::vector<int> single(p.classes_.size(), -1);
    for (size_t c = 0; c < p.classes_.size(); ++c)
      if (std::count(p.classes_[c].begin(), p.classes_[c].end(), true) == 1)
        single[c] = static_cast<int>(std::find(p.classes_[c].begin(), p.classes_[c].end(), true) - p.classes_[c].begin());
    auto byte_of = [&](const Inst& i) { return i.op == Op::kClass ? single[i.arg] : -1; };
    // A link: a one-byte class reached only from the one-byte class before it. Chains are
    // read from their first instruction (the builder emits them last to first).
    std::vector<bool> link(p.insts_.size(), false);
    for (const Inst& x : p.insts_) {
      if (byte_of(x) < 0) continue;
      const Inst& y = p.insts_[x.next];
      if (y.memo < 0 && x.next != p.start_ && byte_of(y) >= 0) link[x.next] = true;
    }
    struct Chain {
      uint32_t first, next;
      std::string text;
    };
    std::vector<Chain> chains;
    for (uint32_t k = 0; k < p.insts_.size(); ++k) {
      if (link[k] || byte_of(p.insts_[k]) < 0) continue;
      Chain c{k, p.insts_[k].next, std::string(1, static_cast<char>(byte_of(p.insts_[k])))};
      while (link[c.next]) {
        c.text += static_cast<char>(byte_of(p.insts_[c.next]));
        c.next = p.insts_[c.next].next;
      }
      if (c.text.size() >= 2) chains.push_back(std::move(c));
    }
    for (Chain& c : chains) {
      Inst& x = p.insts_[c.first];
      x.op = Op::kString;
      x.min = static_cast<uint32_t>(p.words_.size());
      x.max = static_cast<uint32_t>(c.text.size());
      x.next = c.next;
      p.words_ += c.text;
    }
  }

  // The instructions reached from `from` without reading a byte (through splits, saves, ^),
  // into `out`: those that read one (classes, runs). Returns true if the match or `$` is among
  // them, that is, if nothing more can be told of the bytes that follow.
  bool Closure(const std::vector<uint32_t>& from, std::vector<uint32_t>& out) const {
    std::vector<bool> seen(p.insts_.size(), false);
    std::vector<uint32_t> todo = from;
    bool open = false;
    out.clear();
    while (!todo.empty()) {
      uint32_t k = todo.back();
      todo.pop_back();
      if (seen[k]) continue;
      seen[k] = true;
      const Inst& i = p.insts_[k];
      switch (i.op) {
        case Op::kMatch:
        case Op::kEnd: open = true; break;
        case Op::kClass: out.push_back(k); break;
        case Op::kRun:
          out.push_back(k);
          if (i.min == 0) todo.push_back(i.next);
          break;
        case Op::kSplit:
          todo.push_back(i.next);
          todo.push_back(i.alt);
          break;
        default: todo.push_back(i.next);  // save, ^
      }
    }
    return open;
  }

  // For every run, the bytes what follows it must start with, level by level: the classes of
  // the instructions that can read the first byte, then the second... A run met on the way is
  // taken as able to read any number of bytes, or none, which only ever lets more through.
  void Follows() {
    p.follow_.assign(p.insts_.size(), Follow{});
    std::vector<uint32_t> cur;
    for (size_t r = 0; r < p.insts_.size(); ++r) {
      if (p.insts_[r].op != Op::kRun) continue;
      Follow& f = p.follow_[r];
      std::vector<uint32_t> from{p.insts_[r].next};
      for (f.length = 0; f.length < kPrefix; ++f.length) {
        if (Closure(from, cur)) break;
        ByteSet& set = f.prefix[f.length];
        set = ByteSet{};
        from.clear();
        for (uint32_t k : cur) {
          const Inst& i = p.insts_[k];
          const ByteSet& cls = p.classes_[i.arg];
          for (size_t b = 0; b < 256; ++b) set[b] = set[b] || cls[b];
          from.push_back(i.next);
          if (i.op == Op::kRun) from.push_back(k);
        }
      }
      if (f.length > 0 && std::count(f.prefix[0].begin(), f.prefix[0].end(), true) == 1)
        f.single = static_cast<int>(std::find(f.prefix[0].begin(), f.prefix[0].end(), true) - f.prefix[0].begin());
      for (f.fixed = 0; f.fixed < f.length && std::count(f.prefix[f.fixed].begin(), f.prefix[f.fixed].end(), true) == 1; ++f.fixed)
        f.text[f.fixed] = static_cast<char>(std::find(f.prefix[f.fixed].begin(), f.prefix[f.fixed].end(), true) - f.prefix[f.fixed].begin());
      const ByteSet& cls = p.classes_[p.insts_[r].arg];
      if (std::count(cls.begin(), cls.end(), false) == 1)
        p.insts_[r].stop = static_cast<int>(std::find(cls.begin(), cls.end(), false) - cls.begin());
    }
  }
};

std::unique_ptr<CaptureProgram> CaptureProgram::Compile(std::string_view regex) {
  Parser parser(regex);
  auto tree = parser.Parse();
  if (!tree || parser.groups() > 30) return nullptr;
  auto prog = std::unique_ptr<CaptureProgram>(new CaptureProgram());
  prog->groups_ = parser.groups();
  Builder b{*prog};
  Inst match;
  match.op = Op::kMatch;
  uint32_t m = b.Add(match);
  auto entry = b.Emit(*tree, m);
  if (!entry || b.TooBig()) return nullptr;
  prog->start_ = *entry;
  b.AssignMemo();
  b.Follows();
  b.MergeStrings();
  return prog;
}

namespace {

struct Job {
  enum class Kind : uint8_t { kTry, kRestore, kCandidates };
  Kind kind;
  uint32_t inst;  // kTry: where; kRestore: the slot; kCandidates: the run
  size_t a;       // kTry: position; kRestore: old value; kCandidates: lowest position
  size_t b;       // kCandidates: highest position not yet tried
};

struct Scratch {
  std::vector<uint64_t> visited;
  std::vector<Job> stack;
  std::vector<size_t> caps;
};

constexpr size_t kUnset = SIZE_MAX;

// Whether the n (at least 2) bytes at a and b are the same: eight at a time, the last eight
// (or four, or two) overlapping the ones before. Most tries fail at the first byte.
inline bool SameBytes(const unsigned char* a, const char* b, size_t n) {
  if (*a != static_cast<unsigned char>(*b)) return false;
  auto load8 = [](const void* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  if (n >= 8) {
    size_t k = 0;
    for (; k + 8 < n; k += 8)
      if (load8(a + k) != load8(b + k)) return false;
    return load8(a + n - 8) == load8(b + n - 8);
  }
  if (n >= 4) {
    uint32_t x, y, z, w;
    std::memcpy(&x, a, 4);
    std::memcpy(&y, b, 4);
    std::memcpy(&z, a + n - 4, 4);
    std::memcpy(&w, b + n - 4, 4);
    return x == y && z == w;
  }
  uint16_t x, y;
  std::memcpy(&x, a + n - 2, 2);
  std::memcpy(&y, b + n - 2, 2);
  return x == y;  // n is 2 or 3: the first byte is checked above
}

}  // namespace

bool CaptureProgram::Match(std::string_view text, size_t start, re2::StringPiece* groups, int n) const {
  if (start > text.size()) return false;
  thread_local Scratch s;
  const size_t end = text.size();
  const size_t words = (end + 1 + 63) / 64;
  s.visited.assign(static_cast<size_t>(memo_rows_) * words, 0);
  s.stack.clear();
  s.caps.assign(2 * static_cast<size_t>(groups_ + 1), kUnset);
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  // True if (row, pos) was visited already; marks it otherwise.
  auto seen = [&](int32_t row, size_t pos) {
    uint64_t& w = s.visited[static_cast<size_t>(row) * words + pos / 64];
    uint64_t bit = uint64_t{1} << (pos % 64);
    if (w & bit) return true;
    w |= bit;
    return false;
  };

  // Marks row's bits from `from` up to the first one already set or `to` (exclusive); returns
  // where it stopped.
  auto mark_first_unmarked = [&](int32_t row, size_t from, size_t to) {
    uint64_t* w = s.visited.data() + static_cast<size_t>(row) * words;
    size_t p = from;
    while (p < to) {
      size_t word = p / 64, bit = p % 64;
      size_t span = std::min<size_t>(64 - bit, to - p);
      uint64_t mask = (span == 64 ? ~uint64_t{0} : ((uint64_t{1} << span) - 1)) << bit;
      uint64_t set = w[word] & mask;
      if (set != 0) {
        size_t first = word * 64 + static_cast<size_t>(__builtin_ctzll(set));
        // mark [p, first)
        uint64_t below = first % 64 == 0 ? 0 : (~uint64_t{0} >> (64 - first % 64));
        w[word] |= mask & below;
        return first;
      }
      w[word] |= mask;
      p += span;
    }
    return to;
  };

  // Whether what follows run r can start at c: its certain first bytes are there.
  auto may_follow = [&](const Follow& f, size_t c) {
    if (end - c < f.length) return false;
    size_t j = 0;
    if (f.fixed >= 2) {
      if (!SameBytes(bytes + c, f.text.data(), f.fixed)) return false;
      j = f.fixed;
    }
    for (; j < f.length; ++j)
      if (!f.prefix[j][bytes[c + j]]) return false;
    return true;
  };

  s.stack.push_back({Job::Kind::kTry, start_, start, 0});
  while (!s.stack.empty()) {
    Job& top = s.stack.back();
    uint32_t pc;
    size_t pos;
    if (top.kind == Job::Kind::kRestore) {
      s.caps[top.inst] = top.a;
      s.stack.pop_back();
      continue;
    }
    if (top.kind == Job::Kind::kCandidates) {
      // The highest position left where what follows the run can start (greedy order). The
      // job stays on the stack, narrowed, until its positions are used up.
      const Inst& run = insts_[top.inst];
      const Follow& f = follow_[top.inst];
      size_t lo = top.a;
      size_t c = top.b;
      bool found = false;
      for (;;) {
        if (f.single >= 0) {
          const void* hit = memrchr(bytes + lo, f.single, c - lo + 1);
          if (hit == nullptr) break;
          c = static_cast<size_t>(static_cast<const unsigned char*>(hit) - bytes);
        }
        if (may_follow(f, c)) {
          found = true;
          break;
        }
        if (c == lo) break;
        --c;
      }
      if (!found || c == lo) s.stack.pop_back();
      else top.b = c - 1;
      if (!found) continue;
      pc = run.next;
      pos = c;
    } else {
      pc = top.inst;
      pos = top.a;
      s.stack.pop_back();
    }
    for (;;) {
      const Inst& i = insts_[pc];
      if (i.memo >= 0 && seen(i.memo, pos)) break;
      bool failed = false;
      switch (i.op) {
        case Op::kClass:
          if (pos < end && classes_[i.arg][bytes[pos]]) {
            ++pos;
            pc = i.next;
          } else {
            failed = true;
          }
          break;
        case Op::kString:
          if (end - pos >= i.max && SameBytes(bytes + pos, words_.data() + i.min, i.max)) {
            pos += i.max;
            pc = i.next;
          } else {
            failed = true;
          }
          break;
        case Op::kRun: {
          size_t limit = i.max == kUnbounded ? end : std::min(end, pos + i.max);
          size_t q = pos;
          if (i.stop >= 0) {
            const void* stop = std::memchr(bytes + pos, i.stop, limit - pos);
            q = stop == nullptr ? limit : static_cast<size_t>(static_cast<const unsigned char*>(stop) - bytes);
          } else {
            const ByteSet& cls = classes_[i.arg];
            while (q < limit && cls[bytes[q]]) ++q;
          }
          size_t hi = q;
          // Positions an earlier entry read: its tries from there on are made. Those this one
          // reads first are marked for the entries to come.
          if (i.mark_run && q > pos) {
            size_t marked = mark_first_unmarked(i.memo, pos + 1, q + 1);
            if (marked <= q) hi = marked + i.min - 1;
          }
          size_t lo = pos + i.min;
          if (q - pos >= i.min && hi >= lo) s.stack.push_back({Job::Kind::kCandidates, pc, lo, hi});
          failed = true;  // the candidates job goes on from here
          break;
        }
        case Op::kSplit:
          s.stack.push_back({Job::Kind::kTry, i.alt, pos, 0});
          pc = i.next;
          break;
        case Op::kSave:
          s.stack.push_back({Job::Kind::kRestore, i.arg, s.caps[i.arg], 0});
          s.caps[i.arg] = pos;
          pc = i.next;
          break;
        case Op::kBegin:
          failed = pos != 0;
          pc = i.next;
          break;
        case Op::kEnd:
          failed = pos != end;
          pc = i.next;
          break;
        case Op::kMatch: {
          if (n > 0) groups[0] = re2::StringPiece(text.data() + start, pos - start);
          for (int g = 1; g < n; ++g) {
            size_t a = g <= groups_ ? s.caps[2 * static_cast<size_t>(g)] : kUnset;
            size_t b = g <= groups_ ? s.caps[2 * static_cast<size_t>(g) + 1] : kUnset;
            groups[g] = a != kUnset && b != kUnset ? re2::StringPiece(text.data() + a, b - a) : re2::StringPiece();
          }
          return true;
        }
      }
      if (failed) break;
    }
  }
  return false;
}

}  // namespace relayban
