#include "core/base/cleanup.h"

#include <gtest/gtest.h>

#include <utility>

namespace jitgate {
namespace {

TEST(CleanupTest, RunsAtScopeExit) {
  int runs = 0;
  {
    Cleanup c = [&] { ++runs; };
    EXPECT_EQ(runs, 0);
  }
  EXPECT_EQ(runs, 1);
}

TEST(CleanupTest, CancelPreventsRun) {
  int runs = 0;
  {
    Cleanup c = [&] { ++runs; };
    c.Cancel();
  }
  {
    Cleanup c = [&] { ++runs; };
    std::move(c).Cancel();  // Abseil's spelling also works.
  }
  EXPECT_EQ(runs, 0);
}

TEST(CleanupTest, InvokeRunsOnce) {
  int runs = 0;
  {
    Cleanup c = [&] { ++runs; };
    c.Invoke();
    EXPECT_EQ(runs, 1);
    c.Invoke();
  }
  EXPECT_EQ(runs, 1);
}

TEST(CleanupTest, MoveTransfersOwnership) {
  int runs = 0;
  {
    Cleanup a = [&] { ++runs; };
    { Cleanup b = std::move(a); }
    EXPECT_EQ(runs, 1);
  }
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace jitgate
