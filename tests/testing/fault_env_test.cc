#include "tests/testing/fault_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace jitgate::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FaultEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.CreateDir("/d", 0755));
    ASSERT_OK(env_.SyncDir("/"));
  }

  // Creates path with data, syncs the file and (if dir_sync) its directory.
  void MakeFile(const std::string& path, const std::string& data,
                bool dir_sync = true) {
    ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile(path, 0644));
    ASSERT_OK(f->Append(AsBytes(data)));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Close());
    if (dir_sync) {
      ASSERT_OK(env_.SyncDir(DirName(path)));
    }
  }

  std::vector<std::string> List(const std::string& dir) {
    StatusOr<std::vector<std::string>> names = env_.ListDir(dir);
    EXPECT_OK(names);
    return names.ok() ? *names : std::vector<std::string>{"<error>"};
  }

  FaultInjectionEnv env_;
};

TEST_F(FaultEnvTest, BehavesLikeAFilesystem) {
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/a", 0640));
  ASSERT_OK(f->Append(AsBytes("hello")));
  EXPECT_EQ(f->Size(), 5u);
  EXPECT_EQ(env_.Contents("/d/a"), "hello");
  ASSERT_OK_AND_ASSIGN(uint64_t size, env_.FileSize("/d/a"));
  EXPECT_EQ(size, 5u);
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_.FileMode("/d/a"));
  EXPECT_EQ(mode, 0640u);
  ASSERT_OK_AND_ASSIGN(auto r, env_.NewRandomAccessFile("/d//./a"));
  uint8_t buf[8];
  ASSERT_OK_AND_ASSIGN(size_t n, r->Read(1, buf));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "ello");
  EXPECT_THAT(env_.NewExclusiveFile("/d/a", 0644),
              StatusIs(StatusCode::kAlreadyExists, "open /d/a: File exists"));
  EXPECT_THAT(env_.NewAppendableFile("/nodir/a", 0644),
              StatusIs(StatusCode::kNotFound,
                       "open /nodir/a: No such file or directory"));
  EXPECT_THAT(
      env_.NewRandomAccessFile("/d/zz"),
      StatusIs(StatusCode::kNotFound, "open /d/zz: No such file or directory"));
  EXPECT_THAT(List("/"), ElementsAre("d"));
  EXPECT_THAT(List("/d"), ElementsAre("a"));
  ASSERT_OK(f->Close());
  EXPECT_THAT(f->Append(AsBytes("x")),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("closed")));
}

TEST_F(FaultEnvTest, CrashDropsUnsyncedData) {
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/seg", 0644));
  ASSERT_OK(env_.SyncDir("/d"));
  ASSERT_OK(f->Append(AsBytes("synced|")));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Append(AsBytes("lost")));
  EXPECT_EQ(env_.Contents("/d/seg"), "synced|lost");
  EXPECT_EQ(env_.DurableContents("/d/seg"), "synced|");
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/seg"), "synced|");
}

TEST_F(FaultEnvTest, HandlesDieAtCrash) {
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/seg", 0644));
  ASSERT_OK_AND_ASSIGN(auto r, env_.NewRandomAccessFile("/d/seg"));
  env_.SimulateCrash();
  EXPECT_THAT(f->Append(AsBytes("x")),
              StatusIs(StatusCode::kAborted,
                       "append /d/seg: handle from before a simulated crash"));
  EXPECT_THAT(f->Sync(),
              StatusIs(StatusCode::kAborted, HasSubstr("simulated crash")));
  uint8_t buf[1];
  EXPECT_THAT(r->Read(0, buf),
              StatusIs(StatusCode::kAborted, HasSubstr("simulated crash")));
}

TEST_F(FaultEnvTest, CreateWithoutDirSyncVanishes) {
  MakeFile("/d/kept", "k", /*dir_sync=*/true);
  MakeFile("/d/lost", "data synced, entry not", /*dir_sync=*/false);
  EXPECT_THAT(List("/d"), ElementsAre("kept", "lost"));
  env_.SimulateCrash();
  EXPECT_THAT(List("/d"), ElementsAre("kept"));
  EXPECT_FALSE(env_.FileExists("/d/lost"));
}

TEST_F(FaultEnvTest, DirectoryWithoutParentSyncVanishesWithContents) {
  ASSERT_OK(env_.CreateDir("/d/sub", 0700));
  MakeFile("/d/sub/f", "x", /*dir_sync=*/true);  // Syncs /d/sub, not /d.
  env_.SimulateCrash();
  EXPECT_FALSE(env_.FileExists("/d/sub"));
  EXPECT_FALSE(env_.FileExists("/d/sub/f"));
}

TEST_F(FaultEnvTest, RenameRevertsWithoutDirSync) {
  MakeFile("/d/a", "A");
  ASSERT_OK(env_.Rename("/d/a", "/d/b"));
  EXPECT_THAT(List("/d"), ElementsAre("b"));
  env_.SimulateCrash();
  EXPECT_THAT(List("/d"), ElementsAre("a"));
  EXPECT_EQ(env_.Contents("/d/a"), "A");

  ASSERT_OK(env_.Rename("/d/a", "/d/b"));
  ASSERT_OK(env_.SyncDir("/d"));
  env_.SimulateCrash();
  EXPECT_THAT(List("/d"), ElementsAre("b"));
  EXPECT_EQ(env_.Contents("/d/b"), "A");
}

TEST_F(FaultEnvTest, RenameOverExistingRevertsToOldTarget) {
  MakeFile("/d/cur", "old");
  MakeFile("/d/tmp", "new", /*dir_sync=*/false);
  ASSERT_OK(env_.Rename("/d/tmp", "/d/cur"));
  EXPECT_EQ(env_.Contents("/d/cur"), "new");
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/cur"), "old");
  EXPECT_THAT(List("/d"), ElementsAre("cur"));
}

TEST_F(FaultEnvTest, RemoveRevertsWithoutDirSync) {
  MakeFile("/d/a", "A");
  ASSERT_OK(env_.RemoveFile("/d/a"));
  EXPECT_FALSE(env_.FileExists("/d/a"));
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/a"), "A");
  ASSERT_OK(env_.RemoveFile("/d/a"));
  ASSERT_OK(env_.SyncDir("/d"));
  env_.SimulateCrash();
  EXPECT_FALSE(env_.FileExists("/d/a"));
}

TEST_F(FaultEnvTest, UnsyncedTruncateReverts) {
  MakeFile("/d/a", "0123456789");
  ASSERT_OK(env_.Truncate("/d/a", 3));
  EXPECT_EQ(env_.Contents("/d/a"), "012");
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/a"), "0123456789");
}

TEST_F(FaultEnvTest, KeepRandomPrefixTearsTheTail) {
  // Over many seeds, the kept tail is always a prefix of the unsynced bytes
  // and both extremes (nothing, everything) and something in between occur.
  bool saw_none = false, saw_all = false, saw_part = false;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    FaultInjectionEnv env;
    env.SetCrashMode(FaultInjectionEnv::CrashMode::kKeepRandomPrefix, seed);
    ASSERT_OK_AND_ASSIGN(auto f, env.NewAppendableFile("/f", 0644));
    ASSERT_OK(env.SyncDir("/"));
    ASSERT_OK(f->Append(AsBytes("SYNC")));
    ASSERT_OK(f->Sync());
    ASSERT_OK(f->Append(AsBytes("abcdefgh")));
    env.SimulateCrash();
    const std::string got = env.Contents("/f");
    ASSERT_GE(got.size(), 4u);
    ASSERT_EQ(std::string("SYNCabcdefgh").substr(0, got.size()), got);
    saw_none |= got == "SYNC";
    saw_all |= got == "SYNCabcdefgh";
    saw_part |= got.size() > 4 && got.size() < 12;
    // What survived a crash is on disk: a second crash keeps it.
    env.SimulateCrash();
    EXPECT_EQ(env.Contents("/f"), got);
  }
  EXPECT_TRUE(saw_none);
  EXPECT_TRUE(saw_all);
  EXPECT_TRUE(saw_part);
}

TEST_F(FaultEnvTest, FailAfterN) {
  const int64_t start = env_.MutatingOpCount();
  env_.SetFailAfter(2);
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/a", 0644));  // op 1
  ASSERT_OK(f->Append(AsBytes("x")));                                  // op 2
  EXPECT_THAT(f->Sync(),
              StatusIs(StatusCode::kAborted,
                       "sync /d/a: injected failure after " +
                           std::to_string(start + 2) + " operations"));
  EXPECT_THAT(f->Append(AsBytes("y")),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.SyncDir("/d"),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.Rename("/d/a", "/d/b"),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.RemoveFile("/d/a"),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.Truncate("/d/a", 0),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.MakeReadOnly("/d/a"),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.CreateDir("/d/s", 0755),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  EXPECT_THAT(env_.NewExclusiveFile("/d/c", 0644),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  // Failed ops changed nothing, and all attempts were counted.
  EXPECT_EQ(env_.Contents("/d/a"), "x");
  EXPECT_THAT(List("/d"), ElementsAre("a"));
  EXPECT_EQ(env_.MutatingOpCount() - start, 11);
  // Reads still work.
  ASSERT_OK_AND_ASSIGN(std::string got, env_.ReadFileToString("/d/a"));
  EXPECT_EQ(got, "x");
  // A crash clears the fault (the process restarted).
  env_.SimulateCrash();
  EXPECT_OK(env_.CreateDir("/d/s", 0755));
}

TEST_F(FaultEnvTest, FailAfterZeroAndDisable) {
  env_.SetFailAfter(0);
  EXPECT_THAT(env_.CreateDir("/d/s", 0755),
              StatusIs(StatusCode::kAborted, HasSubstr("injected")));
  env_.SetFailAfter(-1);
  EXPECT_OK(env_.CreateDir("/d/s", 0755));
}

TEST_F(FaultEnvTest, ReadsAreNotMutatingOps) {
  MakeFile("/d/a", "x");
  const int64_t start = env_.MutatingOpCount();
  EXPECT_TRUE(env_.FileExists("/d/a"));
  ASSERT_OK(env_.FileSize("/d/a"));
  ASSERT_OK(env_.ListDir("/d"));
  ASSERT_OK(env_.ReadFileToString("/d/a"));
  ASSERT_OK(env_.FileMode("/d/a"));
  { ASSERT_OK_AND_ASSIGN(auto l, env_.LockFile("/d/LOCK")); }
  EXPECT_EQ(env_.MutatingOpCount(), start);
}

TEST_F(FaultEnvTest, NoSpaceWritesPrefixThenFails) {
  MakeFile("/d/a", "12345");
  env_.SetNoSpace(8);
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/b", 0644));
  ASSERT_OK(f->Append(AsBytes("ab")));
  EXPECT_THAT(f->Append(AsBytes("cdef")),
              StatusIs(StatusCode::kResourceExhausted,
                       "append /d/b: No space left on device"));
  EXPECT_EQ(env_.Contents("/d/b"), "abc");  // The prefix that fit.
  EXPECT_EQ(f->Size(), 3u);
  EXPECT_THAT(f->Append(AsBytes("z")),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("No space")));
  // Freeing space lets writes proceed.
  ASSERT_OK(env_.RemoveFile("/d/a"));
  ASSERT_OK(f->Append(AsBytes("def")));
  EXPECT_EQ(env_.Contents("/d/b"), "abcdef");
  env_.SetNoSpace(std::nullopt);
  ASSERT_OK(f->Append(AsBytes(std::string(100, 'x'))));
}

TEST_F(FaultEnvTest, SyncErrorMakesNothingDurable) {
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/a", 0644));
  ASSERT_OK(f->Append(AsBytes("data")));
  env_.SetSyncError(true);
  EXPECT_THAT(f->Sync(),
              StatusIs(StatusCode::kDataLoss, "sync /d/a: Input/output error"));
  EXPECT_THAT(env_.SyncDir("/d"), StatusIs(StatusCode::kDataLoss,
                                           "sync dir /d: Input/output error"));
  EXPECT_EQ(env_.DurableContents("/d/a"), "");
  env_.SetSyncError(false);
  ASSERT_OK(env_.SyncDir("/d"));
  env_.SimulateCrash();
  EXPECT_TRUE(env_.FileExists("/d/a"));
  EXPECT_EQ(env_.Contents("/d/a"), "");
}

TEST_F(FaultEnvTest, WriteErrorWithPartialPrefix) {
  ASSERT_OK_AND_ASSIGN(auto f, env_.NewAppendableFile("/d/a", 0644));
  env_.SetWriteError(true);
  EXPECT_THAT(
      f->Append(AsBytes("abc")),
      StatusIs(StatusCode::kDataLoss, "append /d/a: Input/output error"));
  EXPECT_EQ(env_.Contents("/d/a"), "");
  env_.SetWriteError(true, 2);
  EXPECT_THAT(f->Append(AsBytes("abc")),
              StatusIs(StatusCode::kDataLoss, HasSubstr("Input/output")));
  EXPECT_EQ(env_.Contents("/d/a"), "ab");
  EXPECT_EQ(f->Size(), 2u);
  env_.ClearFaults();
  ASSERT_OK(f->Append(AsBytes("c")));
  EXPECT_EQ(env_.Contents("/d/a"), "abc");
}

TEST_F(FaultEnvTest, MakeReadOnlySeals) {
  MakeFile("/d/seg", "records");
  ASSERT_OK_AND_ASSIGN(auto open_before,
                       env_.NewAppendableFile("/d/seg", 0644));
  ASSERT_OK(env_.MakeReadOnly("/d/seg"));
  EXPECT_TRUE(env_.IsImmutable("/d/seg"));
  ASSERT_OK_AND_ASSIGN(uint32_t mode, env_.FileMode("/d/seg"));
  EXPECT_EQ(mode, 0444u);
  EXPECT_THAT(env_.NewAppendableFile("/d/seg", 0644),
              StatusIs(StatusCode::kPermissionDenied,
                       "open /d/seg: Operation not permitted"));
  EXPECT_THAT(
      open_before->Append(AsBytes("x")),
      StatusIs(StatusCode::kPermissionDenied, HasSubstr("append /d/seg")));
  EXPECT_THAT(env_.RemoveFile("/d/seg"),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("/d/seg")));
  EXPECT_THAT(env_.Rename("/d/seg", "/d/x"),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("/d/seg")));
  EXPECT_THAT(env_.Truncate("/d/seg", 0),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("/d/seg")));
  EXPECT_EQ(env_.Contents("/d/seg"), "records");
  EXPECT_FALSE(env_.IsImmutable("/d/missing"));
  // Tampering bypasses the seal.
  ASSERT_OK(env_.SetContents("/d/seg", "forged"));
  EXPECT_EQ(env_.Contents("/d/seg"), "forged");
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/seg"), "forged");
  EXPECT_TRUE(env_.IsImmutable("/d/seg"));
}

TEST_F(FaultEnvTest, LockIsExclusiveAndReleasedByCrash) {
  ASSERT_OK_AND_ASSIGN(auto lock, env_.LockFile("/d/LOCK"));
  EXPECT_THAT(env_.LockFile("/d//LOCK"),
              StatusIs(StatusCode::kFailedPrecondition,
                       "/d//LOCK: held by another process"));
  env_.SimulateCrash();
  ASSERT_OK_AND_ASSIGN(auto after_crash, env_.LockFile("/d/LOCK"));
  // The dead process's lock object going away must not free the new lock.
  lock.reset();
  EXPECT_THAT(env_.LockFile("/d/LOCK"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("held")));
  after_crash.reset();
  EXPECT_OK(env_.LockFile("/d/LOCK"));
}

TEST_F(FaultEnvTest, SetContentsIsDurable) {
  ASSERT_OK(env_.SetContents("/d/t", "tampered"));
  env_.SimulateCrash();
  EXPECT_EQ(env_.Contents("/d/t"), "tampered");
  EXPECT_THAT(env_.SetContents("/missing/t", "x"),
              StatusIs(StatusCode::kNotFound, HasSubstr("/missing/t")));
  EXPECT_EQ(env_.Contents("/d/none"), "");
}

TEST_F(FaultEnvTest, ConcurrentAppendsAreSerialised) {
  ASSERT_OK_AND_ASSIGN(auto f1, env_.NewAppendableFile("/d/a", 0644));
  ASSERT_OK_AND_ASSIGN(auto f2, env_.NewAppendableFile("/d/a", 0644));
  auto worker = [](WritableFile* f, char c) {
    for (int i = 0; i < 1000; ++i)
      ASSERT_OK(f->Append(AsBytes(std::string(4, c))));
  };
  std::thread t1(worker, f1.get(), 'a');
  std::thread t2(worker, f2.get(), 'b');
  t1.join();
  t2.join();
  const std::string got = env_.Contents("/d/a");
  ASSERT_EQ(got.size(), 8000u);
  for (size_t i = 0; i < got.size(); i += 4) {
    ASSERT_EQ(got.substr(i, 4), std::string(4, got[i]))
        << "interleaved at " << i;
  }
  EXPECT_EQ(env_.MutatingOpCount() % 2, 0);
}

TEST_F(FaultEnvTest, ListDirErrors) {
  MakeFile("/d/a", "x");
  EXPECT_THAT(env_.ListDir("/d/a"),
              StatusIs(StatusCode::kNotFound, "list /d/a: Not a directory"));
  EXPECT_THAT(
      env_.ListDir("/zz"),
      StatusIs(StatusCode::kNotFound, "list /zz: No such file or directory"));
  ASSERT_OK(env_.CreateDir("/d/e", 0755));
  EXPECT_THAT(List("/d/e"), IsEmpty());
}

}  // namespace
}  // namespace jitgate::testing
