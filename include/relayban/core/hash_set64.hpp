// HashSet64: a set of 64-bit hashes in one flat array (open addressing, linear probing).
// About a third of the memory of std::unordered_set<uint64_t> and no allocation per element;
// used for the per-account distinct counts, which see every event. The first element is kept
// inline: an account seen once (a flood of invented names) allocates nothing here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace relayban {

class HashSet64 {
 public:
  HashSet64() = default;
  HashSet64(HashSet64&& o) noexcept { Take(o); }
  HashSet64& operator=(HashSet64&& o) noexcept {
    if (this != &o) {
      Free();
      Take(o);
    }
    return *this;
  }
  HashSet64(const HashSet64&) = delete;
  HashSet64& operator=(const HashSet64&) = delete;
  ~HashSet64() { Free(); }

  size_t size() const { return size_; }

  // Returns true if `h` was not in the set yet.
  bool Insert(uint64_t h) {
    if (h == kEmpty) h = kZero;  // the empty marker stands for "no element"
    if (capacity_ == 0) {
      if (size_ == 0) {
        one_ = h;
        size_ = 1;
        return true;
      }
      if (one_ == h) return false;
    }
    if ((size_ + 1) * 2 > capacity_) Grow();
    size_t i = Slot(h);
    while (slots_[i] != kEmpty) {
      if (slots_[i] == h) return false;
      i = (i + 1) & (capacity_ - 1);
    }
    slots_[i] = h;
    ++size_;
    return true;
  }

  bool Contains(uint64_t h) const {
    if (h == kEmpty) h = kZero;
    if (capacity_ == 0) return size_ == 1 && one_ == h;
    for (size_t i = Slot(h); slots_[i] != kEmpty; i = (i + 1) & (capacity_ - 1))
      if (slots_[i] == h) return true;
    return false;
  }

 private:
  static constexpr uint64_t kEmpty = 0, kZero = 0x9E3779B97F4A7C15ull;

  size_t Slot(uint64_t h) const { return static_cast<size_t>((h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull >> 7) & (capacity_ - 1); }

  void Grow() {
    uint32_t old_capacity = capacity_;
    uint64_t* old = old_capacity == 0 ? nullptr : slots_;
    bool had_one = old_capacity == 0 && size_ == 1;
    uint64_t one = had_one ? one_ : kEmpty;
    capacity_ = old_capacity == 0 ? 4 : old_capacity * 2;
    slots_ = new uint64_t[capacity_]();  // zeroed: all empty
    size_ = 0;
    if (had_one) Insert(one);  // the inline element moves in
    for (uint32_t i = 0; i < old_capacity; ++i)
      if (old[i] != kEmpty) Insert(old[i]);
    delete[] old;
  }
  void Free() {
    if (capacity_ != 0) delete[] slots_;
    capacity_ = 0;
    size_ = 0;
    one_ = kEmpty;
  }
  void Take(HashSet64& o) {
    size_ = o.size_;
    capacity_ = o.capacity_;
    if (capacity_ != 0) slots_ = o.slots_;
    else one_ = o.one_;
    o.size_ = 0;
    o.capacity_ = 0;
    o.one_ = kEmpty;
  }

  // Sixteen bytes: an account book holds two sets for each of its 200,000 accounts.
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;  // 0: no array; one_ holds the only element, if size_ is 1
  union {
    uint64_t one_ = kEmpty;
    uint64_t* slots_;
  };
};

}  // namespace relayban
