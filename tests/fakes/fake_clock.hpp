// FakeClock: a Clock for unit tests. Stands still until told to advance; wall-clock and
// monotonic time advance together.
#pragma once

#include "relayban/core/clock.hpp"

namespace relayban::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(Time start = Time(Seconds(1795000000))) : now_(start) {}
  Time Now() const override { return now_; }
  Steady Monotonic() const override { return Steady(now_.time_since_epoch()); }
  void Advance(std::chrono::microseconds d) { now_ += d; }
  void Set(Time t) { now_ = t; }

 private:
  Time now_;
};

}  // namespace relayban::testing
