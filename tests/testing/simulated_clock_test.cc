#include "tests/testing/simulated_clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace jitgate::testing {
namespace {

TEST(SimulatedClockTest, StartsWhereTold) {
  SimulatedClock def;
  EXPECT_EQ(def.NowUnixNanos(), SimulatedClock::kDefaultStartUnixNanos);
  EXPECT_EQ(def.MonotonicNanos(), 0);
  SimulatedClock c(42);
  EXPECT_EQ(c.NowUnixNanos(), 42);
}

TEST(SimulatedClockTest, AdvanceMovesBoth) {
  SimulatedClock c(1000);
  c.Advance(500);
  EXPECT_EQ(c.NowUnixNanos(), 1500);
  EXPECT_EQ(c.MonotonicNanos(), 500);
  c.Advance(-100);  // Ignored.
  EXPECT_EQ(c.NowUnixNanos(), 1500);
  EXPECT_EQ(c.MonotonicNanos(), 500);
}

TEST(SimulatedClockTest, WallStepLeavesMonotonic) {
  SimulatedClock c(1000);
  c.Advance(10);
  c.SetNowUnixNanos(5);  // Backwards step, as NTP may do.
  EXPECT_EQ(c.NowUnixNanos(), 5);
  EXPECT_EQ(c.MonotonicNanos(), 10);
  c.SetMonotonicNanos(3);  // Would go back: ignored.
  EXPECT_EQ(c.MonotonicNanos(), 10);
  c.SetMonotonicNanos(20);
  EXPECT_EQ(c.MonotonicNanos(), 20);
}

TEST(SimulatedClockTest, ThreadSafeAdvance) {
  SimulatedClock c(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) c.Advance(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.NowUnixNanos(), 40000);
  EXPECT_EQ(c.MonotonicNanos(), 40000);
}

}  // namespace
}  // namespace jitgate::testing
