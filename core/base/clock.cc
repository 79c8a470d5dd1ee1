#include "core/base/clock.h"

#include <time.h>

namespace jitgate {
namespace {

int64_t ReadClock(clockid_t id) {
  struct timespec ts;
  // clock_gettime cannot fail for these clock ids with a valid pointer.
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class PosixClock final : public Clock {
 public:
  int64_t NowUnixNanos() override { return ReadClock(CLOCK_REALTIME); }
  int64_t MonotonicNanos() override { return ReadClock(CLOCK_MONOTONIC); }
};

}  // namespace

Clock* RealClock() {
  // Leaked on purpose: usable from static destructors and other threads.
  static Clock* const clock = new PosixClock();
  return clock;
}

}  // namespace jitgate
