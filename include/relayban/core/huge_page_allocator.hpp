// HugePageAllocator: for the big flat tables (rule windows, bans). An array of tens of
// megabytes is mapped on its own and, where the kernel has transparent huge pages in
// `madvise` mode, asks for them: a lookup in a table of a million keys then costs one TLB
// entry per 2 MiB instead of a page walk per access, which dominates the lookup. Small
// arrays come from the ordinary heap.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

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
    if (bytes < kLarge) std::free(p);
    else munmap(p, Rounded(bytes));
  }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }

 private:
  static size_t Rounded(size_t bytes) { return (bytes + (size_t{2} << 20) - 1) & ~((size_t{2} << 20) - 1); }
};

}  // namespace relayban
