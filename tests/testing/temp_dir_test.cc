#include "tests/testing/temp_dir.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/base/env.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::testing {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsImmutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool immutable = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                   (flags & FS_IMMUTABLE_FL) != 0;
  ::close(fd);
  return immutable;
}

TEST(TempDirTest, CreatesUniqueDirAndRemovesIt) {
  std::string a_path, b_path;
  {
    TempDir a, b;
    a_path = a.path();
    b_path = b.path();
    EXPECT_NE(a_path, b_path);
    struct stat st;
    ASSERT_EQ(::stat(a_path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(a.Join("x"), a_path + "/x");
  }
  EXPECT_FALSE(Exists(a_path));
  EXPECT_FALSE(Exists(b_path));
}

TEST(TempDirTest, HonoursTmpdir) {
  TempDir outer;
  const char* old = std::getenv("TMPDIR");
  std::string saved = old != nullptr ? old : "";
  ::setenv("TMPDIR", (outer.path() + "/").c_str(), 1);
  std::string inner_path;
  {
    TempDir inner;
    inner_path = inner.path();
  }
  if (old != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  EXPECT_EQ(inner_path.rfind(outer.path() + "/jitgate-test.", 0), 0u)
      << inner_path;
  EXPECT_FALSE(Exists(inner_path));
}

// The store seals files with chattr +i; TempDir must still clean up.
TEST(TempDirTest, RemovesSealedAndReadOnlyTrees) {
  std::string root, sealed;
  {
    TempDir dir;
    root = dir.path();
    Env* env = DefaultEnv();
    ASSERT_OK(env->CreateDir(dir.Join("sub"), 0755));
    sealed = dir.Join("sub/seg");
    ASSERT_OK(env->WriteFileAtomically(sealed, AsBytes("data"), 0644));
    ASSERT_OK(env->MakeReadOnly(sealed));
    ASSERT_OK(env->WriteFileAtomically(dir.Join("plain"), AsBytes("p"), 0644));
    ASSERT_EQ(::symlink("/nonexistent", dir.Join("link").c_str()), 0);
    ASSERT_EQ(::chmod(dir.Join("sub").c_str(), 0555), 0);
    if (!IsImmutable(sealed)) GTEST_LOG_(INFO) << "no immutable attribute here";
  }
  EXPECT_FALSE(Exists(root));
}

TEST(TempDirTest, ClearImmutableAllowsTampering) {
  TempDir dir;
  const std::string path = dir.Join("seg");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(path, AsBytes("orig"), 0644));
  ASSERT_OK(DefaultEnv()->MakeReadOnly(path));
  ASSERT_OK(ClearImmutable(path));
  EXPECT_FALSE(IsImmutable(path));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & S_IWUSR, 0u);
  ASSERT_OK_AND_ASSIGN(auto f, DefaultEnv()->NewAppendableFile(path, 0644));
  ASSERT_OK(f->Append(AsBytes("+forged")));
  ASSERT_OK_AND_ASSIGN(std::string got, DefaultEnv()->ReadFileToString(path));
  EXPECT_EQ(got, "orig+forged");
  EXPECT_THAT(ClearImmutable(dir.Join("missing")),
              StatusIs(StatusCode::kNotFound, HasSubstr(dir.Join("missing"))));
}

TEST(TempDirTest, RemoveTreeMissingIsOk) {
  TempDir dir;
  EXPECT_OK(RemoveTree(dir.Join("missing")));
  ASSERT_OK(
      DefaultEnv()->WriteFileAtomically(dir.Join("f"), AsBytes("x"), 0644));
  EXPECT_OK(RemoveTree(dir.Join("f")));
  EXPECT_FALSE(Exists(dir.Join("f")));
}

}  // namespace
}  // namespace jitgate::testing
