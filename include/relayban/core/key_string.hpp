// KeyString: a string that keys a hash table, holding up to 47 bytes in place. The account
// rules' tables are keyed by account name; under a flood of invented names every line
// brings a new one, and a std::string longer than 15 bytes costs an allocation when it is
// inserted and a free when it is evicted. Longer names (up to the 256 bytes an account may
// have, and a domain) go to the heap. All zero bytes are the empty string, so a table's
// mapped array of such keys is not written before entries land in it (ZeroIsDefault).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "relayban/core/flat_map.hpp"

namespace relayban {

class KeyString {
 public:
  static constexpr size_t kInline = 47;

  KeyString() noexcept = default;
  explicit KeyString(std::string_view s) { Assign(s); }
  KeyString(const KeyString& o) { Assign(o.view()); }
  // Moves are byte copies: the pointer of a heap string travels with it.
  KeyString(KeyString&& o) noexcept {
    std::memcpy(bytes_, o.bytes_, sizeof bytes_);
    std::memset(o.bytes_, 0, sizeof o.bytes_);
  }
  KeyString& operator=(const KeyString& o) {
    if (this != &o) {
      Free();
      Assign(o.view());
    }
    return *this;
  }
  KeyString& operator=(KeyString&& o) noexcept {
    if (this != &o) {
      Free();
      std::memcpy(bytes_, o.bytes_, sizeof bytes_);
      std::memset(o.bytes_, 0, sizeof o.bytes_);
    }
    return *this;
  }
  ~KeyString() { Free(); }

  std::string_view view() const {
    if (!OnHeap()) return {bytes_, static_cast<size_t>(Tag())};
    Heap h;
    std::memcpy(&h, bytes_, sizeof h);
    return {h.data, h.size};
  }
  operator std::string_view() const { return view(); }  // NOLINT: a key is looked up by view
  bool operator==(std::string_view s) const { return view() == s; }
  bool operator==(const KeyString& o) const { return view() == o.view(); }
  bool OnHeap() const { return Tag() == kHeap; }

 private:
  struct Heap {
    char* data;
    size_t size;
  };
  static constexpr uint8_t kHeap = 0xFF;
  uint8_t Tag() const { return static_cast<uint8_t>(bytes_[kInline]); }
  void Assign(std::string_view s) {
    if (s.size() <= kInline) {
      std::memcpy(bytes_, s.data(), s.size());
      bytes_[kInline] = static_cast<char>(s.size());
      return;
    }
    Heap h{new char[s.size()], s.size()};
    std::memcpy(h.data, s.data(), s.size());
    std::memcpy(bytes_, &h, sizeof h);
    bytes_[kInline] = static_cast<char>(kHeap);
  }
  void Free() {
    if (OnHeap()) {
      Heap h;
      std::memcpy(&h, bytes_, sizeof h);
      delete[] h.data;
    }
    std::memset(bytes_, 0, sizeof bytes_);
  }
  // In place: the bytes, then (last) their count; on the heap: a Heap, then kHeap last.
  char bytes_[kInline + 1] = {};
};

template <>
struct ZeroIsDefault<KeyString> : std::true_type {};
// Its moves are byte copies already (the heap pointer travels with the bytes).
template <>
struct Relocatable<KeyString> : std::true_type {};
template <>
struct CostlyToHash<KeyString> : std::true_type {};

}  // namespace relayban
