#include "core/base/clock.h"

#include <time.h>

#include <new>

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
  // Built in static storage and never destroyed: usable from static
  // destructors and other threads, and no heap block that a host process
  // would see as leaked when it unloads a module linking this (libpam
  // dlcloses pam_jitgate.so with every handle).
  alignas(PosixClock) static unsigned char storage[sizeof(PosixClock)];
  static Clock* const clock = new (storage) PosixClock();
  return clock;
}

}  // namespace jitgate
