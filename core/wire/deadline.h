// Deadline: an absolute point on a Clock's monotonic time line, for the
// poll()-based waits of the wire client and framing. Copyable; the Clock must
// outlive every Deadline made from it.
#ifndef JITGATE_CORE_WIRE_DEADLINE_H_
#define JITGATE_CORE_WIRE_DEADLINE_H_

#include <climits>
#include <cstdint>

#include "core/base/clock.h"

namespace jitgate::wire {

class Deadline {
 public:
  // The deadline at monotonic time `at_ns` of `clock` (Clock::MonotonicNanos).
  Deadline(Clock* clock, int64_t at_ns) : clock_(clock), at_ns_(at_ns) {}
  // The deadline `ms` milliseconds from now (negative values: already expired).
  static Deadline InMillis(Clock* clock, int64_t ms) {
    return Deadline(clock, clock->MonotonicNanos() + ms * 1'000'000);
  }

  Clock* clock() const { return clock_; }
  int64_t at_ns() const { return at_ns_; }
  int64_t RemainingNanos() const {
    int64_t left = at_ns_ - clock_->MonotonicNanos();
    return left > 0 ? left : 0;
  }
  bool Expired() const { return RemainingNanos() == 0; }
  // The poll() timeout for what is left: milliseconds rounded up (so a poll
  // never returns just before the deadline and spins), 0 once expired.
  int PollTimeoutMs() const {
    int64_t ms = (RemainingNanos() + 999'999) / 1'000'000;
    return ms > INT_MAX ? INT_MAX : int(ms);
  }
  // The earlier of two deadlines on the same clock.
  Deadline Min(const Deadline& o) const { return at_ns_ <= o.at_ns_ ? *this : o; }

 private:
  Clock* clock_;
  int64_t at_ns_;
};

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_DEADLINE_H_
