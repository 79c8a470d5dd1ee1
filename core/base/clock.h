// Clock: injected time. Code never calls time() or clock_gettime() directly;
// it takes a Clock* so that tests can use SimulatedClock
// (tests/testing/simulated_clock.h) and never sleep.
#ifndef JITGATE_CORE_BASE_CLOCK_H_
#define JITGATE_CORE_BASE_CLOCK_H_

#include <cstdint>

namespace jitgate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, nanoseconds since the Unix epoch (CLOCK_REALTIME).
  virtual int64_t NowUnixNanos() = 0;
  // Monotonic time in nanoseconds from an arbitrary origin (CLOCK_MONOTONIC);
  // use it for durations and deadlines.
  virtual int64_t MonotonicNanos() = 0;
};

// The process-wide real clock. Never null; thread-safe.
Clock* RealClock();

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_CLOCK_H_
