// Clock: the seam through which the daemon's parts learn the time. Pure logic never reads a
// clock (it is handed `now`); the parts that act on time - the ban ledger's expiry, retries
// and their backoff, hook time limits, client timeouts - ask a Clock, so unit tests drive
// them with a FakeClock (tests/fakes/) instead of sleeping.
#pragma once

#include <chrono>

#include "relayban/core/duration.hpp"

namespace relayban {

class Clock {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Wall-clock time (bans are stored and listed with it).
  virtual Time Now() const = 0;
  // Monotonic time, for deadlines and backoff (never jumps).
  virtual Steady Monotonic() const = 0;
};

// The operating system's clocks.
class SystemClock : public Clock {
 public:
  Time Now() const override { return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now()); }
  Steady Monotonic() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace relayban
