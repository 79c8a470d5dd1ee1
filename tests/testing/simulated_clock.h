// SimulatedClock: a Clock whose time only moves when a test says so
// (after absl::SimulatedClock), so that tests of expiry and deadlines never
// sleep.
#ifndef JITGATE_TESTS_TESTING_SIMULATED_CLOCK_H_
#define JITGATE_TESTS_TESTING_SIMULATED_CLOCK_H_

#include <cstdint>
#include <mutex>

#include "core/base/clock.h"

namespace jitgate::testing {

// Thread-safe: any thread may read or move the time. Wall and monotonic time
// are independent values; Advance moves both, SetNowUnixNanos models a wall
// clock step (NTP) and leaves monotonic time alone.
class SimulatedClock : public Clock {
 public:
  // Starts at the given wall time; monotonic time starts at 0.
  explicit SimulatedClock(int64_t unix_nanos = kDefaultStartUnixNanos);

  int64_t NowUnixNanos() override;
  int64_t MonotonicNanos() override;

  // Moves both clocks forward by ns. Precondition: ns >= 0 (monotonic time
  // never goes back; a negative ns is ignored).
  void Advance(int64_t ns);
  // Sets the wall clock, possibly backwards. Monotonic time is unchanged.
  void SetNowUnixNanos(int64_t unix_nanos);
  // Sets monotonic time. Precondition: not less than the current value
  // (ignored otherwise).
  void SetMonotonicNanos(int64_t ns);

  // 2024-01-01T00:00:00Z: a fixed, recognisable start.
  static constexpr int64_t kDefaultStartUnixNanos =
      int64_t{1704067200} * 1'000'000'000;

 private:
  std::mutex mu_;
  int64_t unix_nanos_;     // Guarded by mu_.
  int64_t monotonic_ = 0;  // Guarded by mu_.
};

}  // namespace jitgate::testing

#endif  // JITGATE_TESTS_TESTING_SIMULATED_CLOCK_H_
