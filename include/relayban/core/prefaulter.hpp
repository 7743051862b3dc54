// Prefaulter: a thread of the process's own that brings in, ahead of time, the memory a
// growing big table (FlatMap's mapped arrays) is about to fill. A growth moves a table of a
// million bans into a new array of ~150 MB a little per insert; each 2 MiB of it the loop
// first writes costs a page fault that zeroes it - in a virtual machine whose host backs
// guest memory lazily, 0.4 GB/s - which was a twelfth of the loop's time in a botnet's
// burst. Here those faults are taken on another core (madvise MADV_POPULATE_WRITE, which
// maps pages writable without changing a byte, so it may run while the owner writes), a
// few megabytes ahead of where the table's move writes, so no more is resident than
// without it. Where the kernel lacks it (before Linux 5.14) nothing is done.
#pragma once

#include <cstddef>
#include <cstdint>

namespace relayban {

class Prefaulter {
 public:
  // Populates bytes [from, to) of the mapping starting at `mapping` on the prefault thread
  // (started at the first call), some time later.
  static void Ahead(void* mapping, size_t from, size_t to);
  // Before `mapping` is unmapped: drops its ranges not started and waits for the one being
  // populated, if any (a few milliseconds at most: ranges are populated 2 MiB at a time).
  static void Forget(void* mapping);
  // Waits until every range asked for is done or dropped (tests).
  static void Settle();
  // Bytes populated so far (tests), and whether the kernel can (known after a first range).
  static uint64_t populated();
  static bool supported();
};

}  // namespace relayban
