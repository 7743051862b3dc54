// SharedText: an immutable string shared by its copies, not copied. A verdict on an account
// bans every address that used it, and each ban order names the same jail, rule, account
// and reason: a botnet's burst makes a million such orders, and copying four strings into
// each (three of them too long for std::string's inline buffer) cost more than deciding
// the ban. A copy costs one reference count (none for a lasting text, or for one of a
// fan-out's copies counted at once: SharedTextCopies); the text is made once, where the
// verdict is.
// Reads like a const std::string.
#pragma once

#include <atomic>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace relayban {

class SharedText {
 public:
  SharedText() = default;
  SharedText(std::string text)  // NOLINT: implicit, as a std::string member would take it
      : block_(text.empty() ? nullptr : new Block(std::move(text), false)) {}
  SharedText(const char* text) : SharedText(std::string(text)) {}  // NOLINT: as above
  SharedText(std::string_view text) : SharedText(std::string(text)) {}  // NOLINT: as above
  SharedText(const SharedText& other) : block_(other.block_) { Retain(1); }
  SharedText(SharedText&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  SharedText& operator=(const SharedText& other) {
    SharedText copy(other);
    std::swap(block_, copy.block_);
    return *this;
  }
  SharedText& operator=(SharedText&& other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~SharedText() { Release(1); }

  // The text kept for the rest of the process, one copy per distinct text, and shared
  // without a reference count: copying it is two stores, where a counted copy is an atomic
  // add that waits for every store before it (and whose count the thread that drops the
  // order then takes from this one's cache). For names that every order of a jail or rule
  // carries; they come from the configuration, so the kept texts stay few (a reload that
  // renames adds its new names).
  static SharedText Lasting(std::string_view text);
  // How many copies count on this text's storage: 0 for an empty or lasting text.
  long counted_copies() const {
    return block_ && !block_->lasting ? block_->refs.load(std::memory_order_relaxed) : 0;
  }

  friend class SharedTextCopies;

  const std::string& str() const { return block_ ? block_->text : Empty(); }
  operator const std::string&() const { return str(); }  // NOLINT: reads as the string
  operator std::string_view() const { return str(); }    // NOLINT: as above
  bool empty() const { return block_ == nullptr; }
  size_t size() const { return str().size(); }
  const char* data() const { return str().data(); }
  const char* c_str() const { return str().c_str(); }
  std::string_view view() const { return str(); }
  size_t find(std::string_view what, size_t from = 0) const { return view().find(what, from); }
  // The same text object (not merely equal text): what a cache of a formatted copy can key on.
  const void* identity() const { return block_ ? &block_->text : nullptr; }

  friend bool operator==(const SharedText& a, const SharedText& b) {
    return a.block_ == b.block_ || a.str() == b.str();
  }
  friend bool operator!=(const SharedText& a, const SharedText& b) { return !(a == b); }
  friend bool operator==(const SharedText& a, std::string_view b) { return a.view() == b; }
  friend bool operator!=(const SharedText& a, std::string_view b) { return a.view() != b; }
  friend bool operator==(const SharedText& a, const char* b) { return a.view() == b; }
  friend bool operator!=(const SharedText& a, const char* b) { return a.view() != b; }
  friend bool operator<(const SharedText& a, const SharedText& b) { return a.str() < b.str(); }
  friend std::string operator+(const SharedText& a, std::string_view b) { return a.str() + std::string(b); }
  friend std::string operator+(std::string a, const SharedText& b) { return a += b.str(); }
  friend std::string operator+(const char* a, const SharedText& b) { return std::string(a) + b.str(); }
  friend std::ostream& operator<<(std::ostream& os, const SharedText& t) { return os << t.str(); }

 private:
  struct Block {
    Block(std::string t, bool keep) : lasting(keep), text(std::move(t)) {}
    std::atomic<long> refs{1};
    const bool lasting;
    const std::string text;
  };
  void Retain(long n) const {
    if (block_ && !block_->lasting) block_->refs.fetch_add(n, std::memory_order_relaxed);
  }
  // Gives back `n` counts; the last one frees the text, and this copy then holds none.
  void Release(long n) {
    if (n == 0 || !block_ || block_->lasting) return;
    if (block_->refs.fetch_sub(n, std::memory_order_acq_rel) == n) {
      delete block_;
      block_ = nullptr;
    }
  }
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  Block* block_ = nullptr;
};

// Copies of a text for a fan-out (one verdict's orders), counted at once: Take() hands out
// one at a time without an atomic add each; what is not taken is given back at the end.
class SharedTextCopies {
 public:
  SharedTextCopies(const SharedText& text, size_t n) : source_(text) {
    if (source_.block_ && !source_.block_->lasting && n > 0) {
      source_.Retain(static_cast<long>(n));
      left_ = static_cast<long>(n);
    }
  }
  ~SharedTextCopies() { source_.Release(left_); }
  SharedTextCopies(const SharedTextCopies&) = delete;
  SharedTextCopies& operator=(const SharedTextCopies&) = delete;
  // A copy of the text (counted as usual past the `n` asked for).
  SharedText Take() {
    if (left_ == 0) return source_;
    --left_;
    SharedText t;
    t.block_ = source_.block_;
    return t;
  }

 private:
  SharedText source_;  // a counted copy of its own: the text outlives the counts handed out
  long left_ = 0;
};

}  // namespace relayban
