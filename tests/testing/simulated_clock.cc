#include "tests/testing/simulated_clock.h"

namespace jitgate::testing {

SimulatedClock::SimulatedClock(int64_t unix_nanos) : unix_nanos_(unix_nanos) {}

int64_t SimulatedClock::NowUnixNanos() {
  std::lock_guard<std::mutex> lock(mu_);
  return unix_nanos_;
}

int64_t SimulatedClock::MonotonicNanos() {
  std::lock_guard<std::mutex> lock(mu_);
  return monotonic_;
}

void SimulatedClock::Advance(int64_t ns) {
  if (ns <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  unix_nanos_ += ns;
  monotonic_ += ns;
}

void SimulatedClock::SetNowUnixNanos(int64_t unix_nanos) {
  std::lock_guard<std::mutex> lock(mu_);
  unix_nanos_ = unix_nanos;
}

void SimulatedClock::SetMonotonicNanos(int64_t ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ns >= monotonic_) monotonic_ = ns;
}

}  // namespace jitgate::testing
