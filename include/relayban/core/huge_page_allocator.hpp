// HugePageAllocator: for the big flat tables (rule windows, bans). An array of tens of
// megabytes is mapped on its own and, where the kernel has transparent huge pages in
// `madvise` mode, asks for them: a lookup in a table of a million keys then costs one TLB
// entry per 2 MiB instead of a page walk per access, which dominates the lookup. Small
// arrays come from the ordinary heap.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <new>

#include "relayban/core/prefaulter.hpp"

namespace relayban {

template <class T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kLarge = size_t{4} << 20;  // bytes from which an array is mapped

  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    size_t bytes = n * sizeof(T);
    if (bytes < kLarge) {
      void* p = std::malloc(bytes);
      if (!p) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    void* p = mmap(nullptr, Rounded(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, Rounded(bytes), MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    size_t bytes = n * sizeof(T);
    if (bytes < kLarge) {
      std::free(p);
      return;
    }
    Prefaulter::Forget(p);  // nothing of it is populated once it is gone (or another's)
    munmap(p, Rounded(bytes));
  }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }

  // Whether an array of `n` is mapped on its own: its memory then comes zero-filled, and
  // Discard can give parts of it back.
  static bool Mapped(size_t n) { return n * sizeof(T) >= kLarge; }
  // Gives back the whole pages inside bytes [from, to) of the mapped array `p` of `n` (their
  // contents are gone; the mapping stays until deallocate). Nothing for a heap array.
  static void Discard(T* p, size_t n, size_t from, size_t to) noexcept {
    if (!Mapped(n)) return;
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));  // 4 KiB, or 64 KiB on some arm64 kernels
    from = (from + page - 1) & ~(page - 1);
    to &= ~(page - 1);
    if (to > from) madvise(reinterpret_cast<char*>(p) + from, to - from, MADV_DONTNEED);
  }

 private:
  static size_t Rounded(size_t bytes) { return (bytes + (size_t{2} << 20) - 1) & ~((size_t{2} << 20) - 1); }
};

}  // namespace relayban
