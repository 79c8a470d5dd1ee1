#include "core/base/clock.h"

#include <gtest/gtest.h>

namespace jitgate {
namespace {

TEST(RealClockTest, IsSingletonAndPlausible) {
  Clock* c = RealClock();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c, RealClock());
  // After 2023-01-01 and before 2100: nanoseconds, not seconds or micros.
  const int64_t now = c->NowUnixNanos();
  EXPECT_GT(now, int64_t{1672531200} * 1'000'000'000);
  EXPECT_LT(now, int64_t{4102444800} * 1'000'000'000);
}

TEST(RealClockTest, MonotonicNeverGoesBack) {
  Clock* c = RealClock();
  int64_t prev = c->MonotonicNanos();
  for (int i = 0; i < 1000; ++i) {
    int64_t t = c->MonotonicNanos();
    ASSERT_GE(t, prev);
    prev = t;
  }
}

}  // namespace
}  // namespace jitgate
