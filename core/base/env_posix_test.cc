// Tests of DefaultEnv() against real temporary directories. They run as
// root in CI, so permission checks look at mode bits and the immutable
// attribute rather than expecting EACCES.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/unique_fd.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Reads a whole file with plain POSIX calls, independently of the Env.
std::string Slurp(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "<missing>";
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

// Returns -1 if the attribute flags cannot be read on this filesystem.
int InodeFlags(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  int flags = 0;
  if (!fd.valid() || ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) return -1;
  return flags;
}

class EnvPosixTest : public ::testing::Test {
 protected:
  // A known umask so that the created modes are exact.
  void SetUp() override { saved_umask_ = ::umask(022); }
  void TearDown() override { ::umask(saved_umask_); }

  mode_t saved_umask_ = 0;
  Env* env_ = DefaultEnv();
  TempDir dir_;
};

TEST_F(EnvPosixTest, DefaultEnvIsSingleton) {
  EXPECT_EQ(DefaultEnv(), DefaultEnv());
}

TEST_F(EnvPosixTest, AppendSyncRead) {
  const std::string path = dir_.Join("seg");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile(path, 0600));
  EXPECT_EQ(file->Size(), 0u);
  ASSERT_OK(file->Append(AsBytes("hello ")));
  ASSERT_OK(file->Append(AsBytes("")));
  ASSERT_OK(file->Append(AsBytes("world")));
  EXPECT_EQ(file->Size(), 11u);
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(file->Append(AsBytes("x")),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("closed")));
  EXPECT_THAT(file->Sync(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("closed")));
  EXPECT_EQ(Slurp(path), "hello world");

  ASSERT_OK_AND_ASSIGN(uint64_t size, env_->FileSize(path));
  EXPECT_EQ(size, 11u);
  ASSERT_OK_AND_ASSIGN(auto reader, env_->NewRandomAccessFile(path));
  uint8_t buf[32];
  ASSERT_OK_AND_ASSIGN(size_t n, reader->Read(6, std::span<uint8_t>(buf, 5)));
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "world");
  // Short only at end of file.
  ASSERT_OK_AND_ASSIGN(n, reader->Read(8, buf));
  EXPECT_EQ(n, 3u);
  ASSERT_OK_AND_ASSIGN(n, reader->Read(100, buf));
  EXPECT_EQ(n, 0u);
  ASSERT_OK_AND_ASSIGN(uint64_t rsize, reader->Size());
  EXPECT_EQ(rsize, 11u);
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(path));
  EXPECT_EQ(mode, 0600u);
}

TEST_F(EnvPosixTest, ReopenAppendsAtEndAndSizeStartsAtFileSize) {
  const std::string path = dir_.Join("seg");
  {
    ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile(path, 0644));
    ASSERT_OK(file->Append(AsBytes("abc")));
  }
  ASSERT_OK_AND_ASSIGN(auto a, env_->NewAppendableFile(path, 0644));
  EXPECT_EQ(a->Size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto b, env_->NewAppendableFile(path, 0644));
  // O_APPEND: each write lands at the current end, whoever wrote last.
  ASSERT_OK(a->Append(AsBytes("1")));
  ASSERT_OK(b->Append(AsBytes("2")));
  ASSERT_OK(a->Append(AsBytes("3")));
  EXPECT_EQ(Slurp(path), "abc123");
  // Size() counts this handle's own appends on top of the size at open.
  EXPECT_EQ(a->Size(), 5u);
  EXPECT_EQ(b->Size(), 4u);
}

TEST_F(EnvPosixTest, LargeAppend) {
  const std::string path = dir_.Join("big");
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewAppendableFile(path, 0644));
  ASSERT_OK(file->Append(AsBytes(data)));
  ASSERT_OK(file->Close());
  ASSERT_OK_AND_ASSIGN(std::string got, env_->ReadFileToString(path));
  EXPECT_TRUE(got == data);
}

TEST_F(EnvPosixTest, ExclusiveCreate) {
  const std::string path = dir_.Join("x");
  ASSERT_OK_AND_ASSIGN(auto file, env_->NewExclusiveFile(path, 0640));
  ASSERT_OK(file->Append(AsBytes("first")));
  EXPECT_THAT(
      env_->NewExclusiveFile(path, 0640),
      StatusIs(StatusCode::kAlreadyExists, "open " + path + ": File exists"));
  EXPECT_EQ(Slurp(path), "first");
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(path));
  EXPECT_EQ(mode, 0640u);
}

TEST_F(EnvPosixTest, MissingPathsAreNotFound) {
  const std::string path = dir_.Join("nope");
  EXPECT_FALSE(env_->FileExists(path));
  EXPECT_THAT(env_->NewRandomAccessFile(path),
              StatusIs(StatusCode::kNotFound,
                       "open " + path + ": No such file or directory"));
  EXPECT_THAT(env_->FileSize(path),
              StatusIs(StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(env_->RemoveFile(path),
              StatusIs(StatusCode::kNotFound, HasSubstr("remove " + path)));
  EXPECT_THAT(env_->ListDir(path),
              StatusIs(StatusCode::kNotFound, HasSubstr("list " + path)));
  EXPECT_THAT(env_->SyncDir(path),
              StatusIs(StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(env_->NewAppendableFile(dir_.Join("no/dir/f"), 0644),
              StatusIs(StatusCode::kNotFound, HasSubstr("no/dir/f")));
}

TEST_F(EnvPosixTest, ListDirSortedAndCreateDir) {
  ASSERT_OK(env_->CreateDir(dir_.Join("sub"), 0750));
  ASSERT_OK(env_->CreateDir(dir_.Join("sub"), 0750));  // Exists: OK.
  for (const char* name : {"c", "a", "b"}) {
    ASSERT_OK_AND_ASSIGN(auto f,
                         env_->NewAppendableFile(dir_.Join(name), 0644));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names,
                       env_->ListDir(dir_.path()));
  EXPECT_THAT(names, ElementsAre("a", "b", "c", "sub"));
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(dir_.Join("sub")));
  EXPECT_EQ(mode, 0750u);
  // A file in the way is an error.
  EXPECT_THAT(env_->CreateDir(dir_.Join("a"), 0755),
              StatusIs(StatusCode::kAlreadyExists,
                       HasSubstr("mkdir " + dir_.Join("a"))));
  ASSERT_OK(env_->SyncDir(dir_.path()));
}

TEST_F(EnvPosixTest, RenameRemoveTruncate) {
  const std::string a = dir_.Join("a"), b = dir_.Join("b");
  ASSERT_OK(env_->WriteFileAtomically(a, AsBytes("0123456789"), 0644));
  ASSERT_OK(env_->Rename(a, b));
  EXPECT_FALSE(env_->FileExists(a));
  EXPECT_EQ(Slurp(b), "0123456789");
  ASSERT_OK(env_->Truncate(b, 4));
  EXPECT_EQ(Slurp(b), "0123");
  ASSERT_OK(env_->RemoveFile(b));
  EXPECT_FALSE(env_->FileExists(b));
  EXPECT_THAT(env_->Rename(a, b), StatusIs(StatusCode::kNotFound,
                                           "rename " + a + " -> " + b +
                                               ": No such file or directory"));
}

TEST_F(EnvPosixTest, WriteFileAtomicallyLeavesNoTemp) {
  const std::string path = dir_.Join("state");
  ASSERT_OK(env_->WriteFileAtomically(path, AsBytes("v1"), 0600));
  ASSERT_OK(env_->WriteFileAtomically(path, AsBytes("v2"), 0600));
  ASSERT_OK_AND_ASSIGN(std::string got, env_->ReadFileToString(path));
  EXPECT_EQ(got, "v2");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names,
                       env_->ListDir(dir_.path()));
  EXPECT_THAT(names, ElementsAre("state"));
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(path));
  EXPECT_EQ(mode, 0600u);
}

TEST_F(EnvPosixTest, WriteFileAtomicallyIntoMissingDirFails) {
  EXPECT_THAT(
      env_->WriteFileAtomically(dir_.Join("missing/f"), AsBytes("x"), 0600),
      StatusIs(StatusCode::kNotFound, HasSubstr(dir_.Join("missing/f.tmp."))));
}

TEST_F(EnvPosixTest, ReadFileToStringLimit) {
  const std::string path = dir_.Join("f");
  ASSERT_OK(env_->WriteFileAtomically(path, AsBytes("12345"), 0600));
  EXPECT_THAT(env_->ReadFileToString(path, 4),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr(path)));
  ASSERT_OK_AND_ASSIGN(std::string got, env_->ReadFileToString(path, 5));
  EXPECT_EQ(got, "12345");
}

TEST_F(EnvPosixTest, MakeReadOnlySealsFile) {
  const std::string path = dir_.Join("sealed");
  {
    ASSERT_OK_AND_ASSIGN(auto f, env_->NewAppendableFile(path, 0640));
    ASSERT_OK(f->Append(AsBytes("record")));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK(env_->MakeReadOnly(path));
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(path));
  EXPECT_EQ(mode, 0440u);               // Write bits gone, read bits kept.
  ASSERT_OK(env_->MakeReadOnly(path));  // Idempotent.
  EXPECT_EQ(Slurp(path), "record");

  const int flags = InodeFlags(path);
  if (flags < 0 || (flags & FS_IMMUTABLE_FL) == 0) {
    // Not root or no attribute support: the mode bits are the whole seal,
    // and root would bypass them, so there is nothing more to check.
    GTEST_SKIP() << "immutable attribute not available here";
  }
  // Immutable: even root cannot write, rename or remove it.
  EXPECT_THAT(env_->NewAppendableFile(path, 0640),
              StatusIs(StatusCode::kPermissionDenied,
                       "open " + path + ": Operation not permitted"));
  EXPECT_THAT(env_->RemoveFile(path),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr(path)));
  EXPECT_THAT(env_->Rename(path, dir_.Join("other")),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr(path)));
  EXPECT_THAT(env_->Truncate(path, 0),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr(path)));
  EXPECT_EQ(Slurp(path), "record");
  // TempDir's destructor must be able to clean this up (checked by its test).
}

TEST_F(EnvPosixTest, ShareWithGroupGivesTheGroupReadAndNothingMore) {
  // Root may give any group; anyone else only one of their own.
  const uint32_t gid = ::geteuid() == 0 ? 65534 : static_cast<uint32_t>(::getegid());
  const std::string sub = dir_.Join("sub");
  ASSERT_OK(env_->CreateDir(sub, 0700));
  struct Case {
    std::string name;
    uint32_t before, after;
  };
  const std::vector<Case> cases = {{"rw", 0600, 0640}, {"ro", 0400, 0440},
                                   {"world", 0444, 0440}, {"odd", 0666, 0640}};
  for (const Case& c : cases) {
    const std::string path = dir_.Join(c.name);
    ASSERT_OK_AND_ASSIGN(auto f, env_->NewExclusiveFile(path, 0600));
    ASSERT_OK(f->Close());
    ASSERT_EQ(::chmod(path.c_str(), c.before), 0);
    ASSERT_OK(env_->ShareWithGroup(path, gid));
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, c.after) << c.name;
    EXPECT_EQ(st.st_gid, gid) << c.name;
    ASSERT_OK(env_->ShareWithGroup(path, gid));  // idempotent
  }
  ASSERT_OK(env_->ShareWithGroup(sub, gid));
  struct stat st;
  ASSERT_EQ(::stat(sub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02750u);
  EXPECT_EQ(st.st_gid, gid);
  // A file made later in the setgid directory has the group already.
  ASSERT_OK_AND_ASSIGN(auto later, env_->NewExclusiveFile(sub + "/later", 0600));
  ASSERT_OK(later->Close());
  ASSERT_EQ(::stat((sub + "/later").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid);
  // Never through a symbolic link.
  ASSERT_EQ(::symlink(dir_.Join("rw").c_str(), dir_.Join("link").c_str()), 0);
  Status through_link = env_->ShareWithGroup(dir_.Join("link"), gid);
  EXPECT_FALSE(through_link.ok());
  EXPECT_THAT(through_link.message(), HasSubstr(dir_.Join("link")));
}

TEST_F(EnvPosixTest, MakeReadOnlyRejectsDirectory) {
  EXPECT_THAT(env_->MakeReadOnly(dir_.path()),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("not a regular file")));
}

TEST_F(EnvPosixTest, LockHeldTwiceInProcessFails) {
  const std::string path = dir_.Join("LOCK");
  ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
  EXPECT_THAT(env_->LockFile(path),
              StatusIs(StatusCode::kFailedPrecondition,
                       path + ": held by another process (pid " +
                           std::to_string(::getpid()) + ")"));
  lock.reset();
  ASSERT_OK_AND_ASSIGN(auto again, env_->LockFile(path));
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_->FileMode(path));
  EXPECT_EQ(mode, 0600u);
}

// The lock excludes other processes: a forked child cannot take it while we
// hold it, and can once we release it. The child reports through its exit
// status (0: locked, 1: refused with the expected message, 2: other).
TEST_F(EnvPosixTest, LockExcludesChildProcess) {
  const std::string path = dir_.Join("LOCK");
  auto try_in_child = [&]() -> int {
    pid_t pid = ::fork();
    if (pid == 0) {
      StatusOr<std::unique_ptr<FileLock>> l = DefaultEnv()->LockFile(path);
      int code = 2;
      if (l.ok()) {
        code = 0;
      } else if (l.status().code() == StatusCode::kFailedPrecondition &&
                 l.status().message() ==
                     path + ": held by another process (pid " +
                         std::to_string(::getppid()) + ")") {
        code = 1;
      }
      ::_exit(code);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
      return -1;
    return WEXITSTATUS(status);
  };
  {
    ASSERT_OK_AND_ASSIGN(auto lock, env_->LockFile(path));
    EXPECT_EQ(try_in_child(), 1);
  }
  EXPECT_EQ(try_in_child(), 0);
}

TEST_F(EnvPosixTest, DescriptorsAreCloseOnExec) {
  const std::string path = dir_.Join("f");
  ASSERT_OK_AND_ASSIGN(auto w, env_->NewAppendableFile(path, 0644));
  ASSERT_OK_AND_ASSIGN(auto l, env_->LockFile(dir_.Join("LOCK")));
  ASSERT_OK_AND_ASSIGN(auto r, env_->NewRandomAccessFile(path));
  // Every descriptor this process has open beyond stdio must carry FD_CLOEXEC
  // (gtest itself opens none that stay open here).
  int checked = 0;
  for (int fd = 3; fd < 1024; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) continue;
    char link[64], target[512];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (std::strncmp(target, dir_.path().c_str(), dir_.path().size()) != 0)
      continue;
    EXPECT_NE(flags & FD_CLOEXEC, 0) << target;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace jitgate
