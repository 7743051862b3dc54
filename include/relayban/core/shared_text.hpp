// SharedText: an immutable string shared by its copies, not copied. A verdict on an account
// bans every address that used it, and each ban order names the same jail, rule, account
// and reason: a botnet's burst makes a million such orders, and copying four strings into
// each (three of them too long for std::string's inline buffer) cost more than deciding
// the ban. A copy costs one reference count; the text is made once, where the verdict is.
// Reads like a const std::string.
#pragma once

#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace relayban {

class SharedText {
 public:
  SharedText() = default;
  SharedText(std::string text)  // NOLINT: implicit, as a std::string member would take it
      : text_(text.empty() ? nullptr : std::make_shared<const std::string>(std::move(text))) {}
  SharedText(const char* text) : SharedText(std::string(text)) {}  // NOLINT: as above
  SharedText(std::string_view text) : SharedText(std::string(text)) {}  // NOLINT: as above

  // The text kept for the rest of the process, one copy per distinct text, and shared
  // without a reference count: copying it is two stores, where a counted copy is an atomic
  // add that waits for every store before it (and whose count the thread that drops the
  // order then takes from this one's cache). For names that every order of a jail or rule
  // carries; they come from the configuration, so the kept texts stay few (a reload that
  // renames adds its new names).
  static SharedText Lasting(std::string_view text);
  // How many copies count on this text's storage: 0 for an empty or lasting text.
  long counted_copies() const { return text_.use_count(); }

  const std::string& str() const { return text_ ? *text_ : Empty(); }
  operator const std::string&() const { return str(); }  // NOLINT: reads as the string
  operator std::string_view() const { return str(); }    // NOLINT: as above
  bool empty() const { return !text_; }
  size_t size() const { return str().size(); }
  const char* data() const { return str().data(); }
  const char* c_str() const { return str().c_str(); }
  std::string_view view() const { return str(); }
  size_t find(std::string_view what, size_t from = 0) const { return view().find(what, from); }
  // The same text object (not merely equal text): what a cache of a formatted copy can key on.
  const void* identity() const { return text_.get(); }

  friend bool operator==(const SharedText& a, const SharedText& b) {
    return a.text_ == b.text_ || a.str() == b.str();
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
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  std::shared_ptr<const std::string> text_;
};

}  // namespace relayban
