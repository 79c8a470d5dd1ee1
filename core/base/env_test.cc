// Tests of the Env helpers that every implementation shares (run over the
// in-memory FaultInjectionEnv so that failures can be injected), and of the
// path helpers.
#include "core/base/env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/fault_env.h"
#include "tests/testing/status_matchers.h"

namespace jitgate {
namespace {

using ::jitgate::testing::FaultInjectionEnv;
using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PathTest, JoinPath) {
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("/a", ""), "/a");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
}

TEST(PathTest, DirName) {
  EXPECT_EQ(DirName("/a/b"), "/a");
  EXPECT_EQ(DirName("/a/b/"), "/a");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("/"), "/");
  EXPECT_EQ(DirName("b"), ".");
  EXPECT_EQ(DirName("a/b"), "a");
  EXPECT_EQ(DirName("/a//b"), "/a");
}

class EnvHelpersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.CreateDir("/d", 0755));
    ASSERT_OK(env_.SyncDir("/"));
  }
  FaultInjectionEnv env_;
};

TEST_F(EnvHelpersTest, WriteFileAtomicallyIsDurable) {
  ASSERT_OK(env_.WriteFileAtomically("/d/f", AsBytes("hello"), 0640));
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/f"), "hello");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, env_.ListDir("/d"));
  EXPECT_THAT(names, ElementsAre("f"));  // No temporary left behind.
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_.FileMode("/d/f"));
  EXPECT_EQ(mode, 0640u);
}

TEST_F(EnvHelpersTest, WriteFileAtomicallyReplaces) {
  ASSERT_OK(env_.WriteFileAtomically("/d/f", AsBytes("old"), 0644));
  ASSERT_OK(env_.WriteFileAtomically("/d/f", AsBytes("new contents"), 0644));
  ASSERT_OK_AND_ASSIGN(std::string got, env_.ReadFileToString("/d/f"));
  EXPECT_EQ(got, "new contents");
}

TEST_F(EnvHelpersTest, WriteFileAtomicallyFailedSyncKeepsOldAndRemovesTemp) {
  ASSERT_OK(env_.WriteFileAtomically("/d/f", AsBytes("old"), 0644));
  env_.SetSyncError(true);
  EXPECT_THAT(env_.WriteFileAtomically("/d/f", AsBytes("new"), 0644),
              StatusIs(StatusCode::kDataLoss, HasSubstr("sync /d/f.tmp.")));
  EXPECT_EQ(env_.Contents("/d/f"), "old");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, env_.ListDir("/d"));
  EXPECT_THAT(names, ElementsAre("f"));
}

TEST_F(EnvHelpersTest, WriteFileAtomicallyNoSpaceRemovesTemp) {
  env_.SetNoSpace(2);
  EXPECT_THAT(env_.WriteFileAtomically("/d/f", AsBytes("hello"), 0644),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("No space left on device")));
  EXPECT_FALSE(env_.FileExists("/d/f"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, env_.ListDir("/d"));
  EXPECT_TRUE(names.empty());
}

// A crash at any operation must leave either the old or the new contents,
// never a mix and never a missing file.
TEST_F(EnvHelpersTest, WriteFileAtomicallyCrashAtEveryPoint) {
  FaultInjectionEnv probe;
  ASSERT_OK(probe.CreateDir("/d", 0755));
  const int64_t before = probe.MutatingOpCount();
  ASSERT_OK(probe.WriteFileAtomically("/d/f", AsBytes("new"), 0644));
  const int64_t ops = probe.MutatingOpCount() - before;
  EXPECT_EQ(ops, 5);  // create, append, sync, rename, sync dir

  for (int64_t k = 0; k <= ops; ++k) {
    SCOPED_TRACE(k);
    FaultInjectionEnv env;
    ASSERT_OK(env.CreateDir("/d", 0755));
    ASSERT_OK(env.SyncDir("/"));
    ASSERT_OK(env.WriteFileAtomically("/d/f", AsBytes("old"), 0644));
    env.SetFailAfter(k);
    Status s = env.WriteFileAtomically("/d/f", AsBytes("new"), 0644);
    env.SimulateCrash();
    const std::string got = env.Contents("/d/f");
    if (s.ok()) {
      EXPECT_EQ(got, "new");
    } else {
      EXPECT_THAT(
          s, StatusIs(StatusCode::kAborted, HasSubstr("injected failure")));
      EXPECT_TRUE(got == "old" || got == "new") << got;
    }
  }
}

TEST_F(EnvHelpersTest, ReadFileToStringHonoursLimit) {
  ASSERT_OK(env_.SetContents("/d/big", std::string(100, 'x')));
  EXPECT_THAT(env_.ReadFileToString("/d/big", 99),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("/d/big")));
  ASSERT_OK_AND_ASSIGN(std::string got, env_.ReadFileToString("/d/big", 100));
  EXPECT_EQ(got, std::string(100, 'x'));
  EXPECT_THAT(env_.ReadFileToString("/d/missing"),
              StatusIs(StatusCode::kNotFound, HasSubstr("/d/missing")));
}

}  // namespace
}  // namespace jitgate
