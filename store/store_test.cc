#include "store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/incremental_verify.h"
#include "store/merkle/merkle.h"
#include "store/merkle/proof.h"
#include "store/note/checkpoint.h"
#include "store/reader.h"
#include "store/segments.h"
#include "store/verify.h"
#include "tests/testing/fault_env.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::store {
namespace {

using ::jitgate::testing::FaultInjectionEnv;
using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::AllOf;

constexpr char kDir[] = "/store";
constexpr char kKeyPath[] = "/keys/log.key";
constexpr uint8_t kAudit = uint8_t(EntryType::kAuditEvent);

std::string Body(int i) { return "{\"event\":\"test\",\"n\":" + std::to_string(i) + "}"; }

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = note::Signer::FromSeed("log.test.jitgate/v1", crypto::Sha256(AsBytes("seed")));
    ASSERT_OK(s);
    verifier_ = s->GetVerifier();
    WriteKey(&env_, *s);
    ASSERT_OK(CreateStore(&env_, kDir, kKeyPath));
    ASSERT_OK(env_.SyncDir("/"));
  }

  static void WriteKey(FaultInjectionEnv* env, const note::Signer& s) {
    ASSERT_OK(env->CreateDir("/keys", 0700));
    crypto::SecretBytes skey = s.EncodeSignerKey();
    ASSERT_OK(env->WriteFileAtomically(kKeyPath, skey.span(), 0600));
  }

  StoreOptions Options() {
    StoreOptions o;
    o.env = &env_;
    o.clock = &clock_;
    o.timed_checkpoints = false;
    return o;
  }

  StatusOr<std::unique_ptr<Store>> OpenStore() { return Store::Open(kDir, Options()); }

  VerifyReport Verify(std::optional<std::string> saved = std::nullopt) {
    VerifyOptions o;
    o.env = &env_;
    o.saved_checkpoint = std::move(saved);
    return VerifyStore(kDir, *verifier_, o);
  }

  // Every entry the reader returns, decoded to its body.
  std::vector<std::string> ReadAll() {
    std::vector<std::string> out;
    auto r = StoreReader::Open(kDir, &env_);
    EXPECT_OK(r);
    if (!r.ok()) return out;
    for (uint64_t i = 0; i < (*r)->size(); ++i) {
      auto raw = (*r)->ReadEntry(i);
      EXPECT_OK(raw);
      if (!raw.ok()) return out;
      auto e = ParseEntry(*raw);
      EXPECT_OK(e);
      out.emplace_back(AsChars(e->body));
    }
    return out;
  }

  FaultInjectionEnv env_;
  jitgate::testing::SimulatedClock clock_;
  std::optional<note::Verifier> verifier_;
};

TEST_F(StoreTest, FreshStoreHasSignedEmptyCheckpoint) {
  auto r = StoreReader::Open(kDir, &env_);
  ASSERT_OK(r);
  EXPECT_EQ((*r)->size(), 0u);
  auto cp = note::OpenCheckpoint((*r)->latest_checkpoint(), *verifier_, "log.test.jitgate/v1");
  ASSERT_OK(cp);
  EXPECT_EQ(cp->size, 0u);
  EXPECT_EQ(cp->root, merkle::EmptyRoot());
  VerifyReport rep = Verify();
  EXPECT_OK(rep.status) << rep.Summary();
  EXPECT_EQ(rep.checkpoints, 1u);
}

TEST_F(StoreTest, CreateRefusesNonEmptyDirAndLooseKey) {
  EXPECT_THAT(CreateStore(&env_, kDir, kKeyPath), StatusIs(StatusCode::kAlreadyExists, HasSubstr("not empty")));
  auto s = note::Signer::FromSeed("other", crypto::Sha256(AsBytes("x")));
  ASSERT_OK(env_.WriteFileAtomically("/keys/loose.key", s->EncodeSignerKey().span(), 0644));
  EXPECT_THAT(CreateStore(&env_, "/other", "/keys/loose.key"),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("chmod 600")));
}

TEST_F(StoreTest, AppendReopenReadVerify) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 20; ++i) {
      ASSERT_OK_AND_ASSIGN(uint64_t idx, st->Append(kAudit, AsBytes(Body(i))));
      EXPECT_EQ(idx, uint64_t(i));
    }
    EXPECT_EQ(st->durable_size(), 20u);
    ASSERT_OK(st->Close());
  }
  std::vector<std::string> all = ReadAll();
  ASSERT_EQ(all.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(all[i], Body(i));
  VerifyReport rep = Verify();
  ASSERT_OK(rep.status) << rep.Summary();
  EXPECT_EQ(rep.entries, 20u);
  EXPECT_EQ(rep.latest_checkpoint_size, 20u);  // Close publishes a final checkpoint.
  // Reopen and continue.
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    EXPECT_EQ(st->size(), 20u);
    ASSERT_OK_AND_ASSIGN(uint64_t idx, st->Append(kAudit, AsBytes(Body(20))));
    EXPECT_EQ(idx, 20u);
  }
  EXPECT_EQ(ReadAll().size(), 21u);
  EXPECT_OK(Verify().status);
}

TEST_F(StoreTest, SecondWriterIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
  EXPECT_THAT(OpenStore(), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("in use by another process")));
  ASSERT_OK(st->Close());
  EXPECT_OK(OpenStore());
}

TEST_F(StoreTest, EntrySizeLimitIsTheTilesLimit) {
  ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
  std::string max(kMaxEntryBody, 'a');
  ASSERT_OK_AND_ASSIGN(uint64_t idx, st->Append(kAudit, AsBytes(max)));
  ASSERT_OK_AND_ASSIGN(auto raw, [&]() -> StatusOr<Bytes> {
    EXPECT_OK(st->Close());
    auto r = StoreReader::Open(kDir, &env_);
    if (!r.ok()) return r.status();
    return (*r)->ReadEntry(idx);
  }());
  EXPECT_EQ(raw.size(), 65535u);
  ASSERT_OK_AND_ASSIGN(auto st2, OpenStore());
  EXPECT_THAT(st2->Append(kAudit, AsBytes(max + "b")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("split large data")));
  EXPECT_THAT(st2->Append(0, AsBytes("x")), StatusIs(StatusCode::kInvalidArgument, HasSubstr("type 0")));
  EXPECT_THAT(st2->Append(7, AsBytes("x")), StatusIs(StatusCode::kInvalidArgument, HasSubstr("type 7")));
  EXPECT_OK(st2->Append(200, AsBytes("private use")));
}

TEST_F(StoreTest, RotationSealsSegmentsAndProofsVerify) {
  StoreOptions o = Options();
  o.segment_target_size = 2048;
  std::vector<std::string> checkpoints;
  {
    ASSERT_OK_AND_ASSIGN(auto st, Store::Open(kDir, o));
    for (int i = 0; i < 100; ++i) {
      ASSERT_OK(st->Append(kAudit, AsBytes(Body(i) + std::string(i % 50, 'x'))));
      if (i % 17 == 0) {
        ASSERT_OK(st->PublishCheckpoint());
        checkpoints.push_back(st->LatestCheckpoint());
      }
    }
  }
  auto segs = ListSegments(&env_, kDir);
  ASSERT_OK(segs);
  ASSERT_GT(segs->size(), 3u);
  for (size_t i = 0; i + 1 < segs->size(); ++i) {
    EXPECT_TRUE(env_.IsImmutable((*segs)[i].path)) << (*segs)[i].path;
  }
  EXPECT_FALSE(env_.IsImmutable(segs->back().path));
  VerifyReport rep = Verify(checkpoints[2]);
  ASSERT_OK(rep.status) << rep.Summary();
  EXPECT_EQ(rep.entries, 100u);
  EXPECT_EQ(rep.segments, segs->size());

  ASSERT_OK_AND_ASSIGN(auto r, StoreReader::Open(kDir, &env_));
  auto latest = note::OpenCheckpoint(r->latest_checkpoint(), *verifier_, "log.test.jitgate/v1");
  ASSERT_OK(latest);
  ASSERT_EQ(latest->size, 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(Bytes entry, r->ReadEntry(i));
    ASSERT_OK_AND_ASSIGN(auto proof, r->InclusionProof(i, 100));
    EXPECT_OK(merkle::VerifyInclusion(i, 100, merkle::HashLeaf(entry), merkle::ProofBytes(proof),
                                      latest->root)) << i;
  }
  for (const std::string& text : checkpoints) {
    auto cp = note::OpenCheckpoint(text, *verifier_, "log.test.jitgate/v1");
    ASSERT_OK(cp);
    ASSERT_OK_AND_ASSIGN(auto proof, r->ConsistencyProof(cp->size, 100));
    EXPECT_OK(merkle::VerifyConsistency(cp->size, 100, merkle::ProofBytes(proof), cp->root,
                                        latest->root));
  }
}

// store.group: auditors in the group read everything, from the first byte of
// each segment on, and nobody else gains anything.
TEST_F(StoreTest, GroupReadableStoreSharesEverySegmentAsItIsMade) {
  ASSERT_OK_AND_ASSIGN(uint32_t fresh_dir, env_.FileMode(kDir));
  EXPECT_EQ(fresh_dir, 0700u);  // without a group: owner only
  StoreOptions o = Options();
  o.segment_target_size = 2048;
  o.group = 4242;
  {
    ASSERT_OK_AND_ASSIGN(auto st, Store::Open(kDir, o));
    for (int i = 0; i < 150; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i) + "......")));
    ASSERT_OK(st->PublishCheckpoint());
  }
  ASSERT_OK_AND_ASSIGN(auto segs, ListSegments(&env_, kDir));
  ASSERT_GT(segs.size(), 2u);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(env_.GroupShared(segs[i].path), 4242u) << segs[i].path;
    ASSERT_OK_AND_ASSIGN(uint32_t mode, env_.FileMode(segs[i].path));
    EXPECT_EQ(mode, i + 1 < segs.size() ? 0440u : 0640u) << segs[i].path;  // sealed, active
  }
  const std::string seg_dir = SegmentDir(kDir);
  for (const std::string& d : {std::string(kDir), seg_dir}) {
    EXPECT_EQ(env_.GroupShared(d), 4242u) << d;
    ASSERT_OK_AND_ASSIGN(uint32_t mode, env_.FileMode(d));
    EXPECT_EQ(mode, 02750u) << d;
  }
  ASSERT_OK_AND_ASSIGN(uint32_t nodes, env_.FileMode(std::string(kDir) + "/tree.nodes"));
  EXPECT_EQ(nodes, 0640u);
  ASSERT_OK_AND_ASSIGN(uint32_t identity, env_.FileMode(std::string(kDir) + "/STORE"));
  EXPECT_EQ(identity, 0440u);  // 0444 before: others lose it
  // Reopening passes the sealed segments, already shared, untouched.
  ASSERT_OK_AND_ASSIGN(auto again, Store::Open(kDir, o));
  ASSERT_OK(again->Close());
  VerifyReport rep = Verify();
  EXPECT_OK(rep.status) << rep.Summary();
}

TEST_F(StoreTest, GroupForAStoreWithImmutableUnsharedSegmentsNamesTheSegment) {
  StoreOptions o = Options();
  o.segment_target_size = 2048;
  {
    ASSERT_OK_AND_ASSIGN(auto st, Store::Open(kDir, o));
    for (int i = 0; i < 150; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i) + "......")));
  }
  ASSERT_OK_AND_ASSIGN(auto segs, ListSegments(&env_, kDir));
  ASSERT_TRUE(env_.IsImmutable(segs[0].path));
  o.group = 4242;
  EXPECT_THAT(Store::Open(kDir, o),
              StatusIs(StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("sharing the store with group 4242"),
                             HasSubstr("chattr -i " + segs[0].path))));
}

TEST_F(StoreTest, ConcurrentAppendersShareFsyncsAndLoseNothing) {
  ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> indexes;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        auto idx = (i % 2 == 0) ? st->Append(kAudit, AsBytes(Body(t * 1000 + i)))
                                : st->AppendAsync(kAudit, AsBytes(Body(t * 1000 + i)));
        ASSERT_OK(idx);
        std::lock_guard<std::mutex> l(mu);
        indexes.insert(*idx);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_OK(st->WaitDurable(799));
  EXPECT_EQ(indexes.size(), 800u);
  EXPECT_EQ(*indexes.rbegin(), 799u);
  ASSERT_OK(st->Close());
  std::vector<std::string> all = ReadAll();
  ASSERT_EQ(all.size(), 800u);
  std::set<std::string> bodies(all.begin(), all.end());
  EXPECT_EQ(bodies.size(), 800u);
  EXPECT_OK(Verify().status);
}

TEST_F(StoreTest, TimedCheckpointsArePublishedWhileEntriesArrive) {
  StoreOptions o = Options();
  o.timed_checkpoints = true;
  o.checkpoint_interval_nanos = 1'000'000;  // 1 ms of simulated time
  ASSERT_OK_AND_ASSIGN(auto st, Store::Open(kDir, o));
  // While simulated time stands still, no interval passes: no checkpoint.
  ASSERT_OK(st->Append(kAudit, AsBytes(Body(0))));
  ASSERT_OK(st->Append(kAudit, AsBytes(Body(1))));
  auto size_of = [&](const std::string& text) {
    auto cp = note::OpenCheckpoint(text, *verifier_, "log.test.jitgate/v1");
    EXPECT_OK(cp);
    return cp.ok() ? cp->size : 0;
  };
  EXPECT_EQ(size_of(st->LatestCheckpoint()), 0u);
  // Once the interval has passed, the next batch carries a checkpoint that
  // covers at least the entries already waiting, without being asked.
  clock_.Advance(5'000'000);
  ASSERT_OK(st->Append(kAudit, AsBytes(Body(2))));
  EXPECT_GE(size_of(st->LatestCheckpoint()), 2u);
}

// Crash at every mutating filesystem operation of a workload; after each
// crash every acknowledged entry must be present, the store must verify, and
// appending must resume.
void CrashCampaign(FaultInjectionEnv::CrashMode mode) {
  // Count the operations of one workload run on a scratch env first.
  auto workload = [](FaultInjectionEnv* env, jitgate::testing::SimulatedClock* clock,
                     std::vector<std::string>* acked) {
    StoreOptions o;
    o.env = env;
    o.clock = clock;
    o.timed_checkpoints = false;
    o.segment_target_size = 600;
    auto st = Store::Open(kDir, o);
    if (!st.ok()) return;
    for (int i = 0; i < 12; ++i) {
      std::string b = Body(i);
      auto idx = (*st)->Append(kAudit, AsBytes(b));
      if (!idx.ok()) return;
      acked->push_back(b);
      if (i % 5 == 4 && !(*st)->PublishCheckpoint().ok()) return;
    }
    (*st)->Close().IgnoreError();
  };
  auto setup = [](FaultInjectionEnv* env) {
    auto s = note::Signer::FromSeed("log.test.jitgate/v1", crypto::Sha256(AsBytes("seed")));
    ASSERT_OK(s);
    ASSERT_OK(env->CreateDir("/keys", 0700));
    ASSERT_OK(env->WriteFileAtomically(kKeyPath, s->EncodeSignerKey().span(), 0600));
    ASSERT_OK(CreateStore(env, kDir, kKeyPath));
    ASSERT_OK(env->SyncDir("/"));
  };
  int64_t total;
  {
    FaultInjectionEnv env;
    jitgate::testing::SimulatedClock clock;
    setup(&env);
    int64_t before = env.MutatingOpCount();
    std::vector<std::string> acked;
    workload(&env, &clock, &acked);
    ASSERT_EQ(acked.size(), 12u);
    total = env.MutatingOpCount() - before;
  }
  ASSERT_GT(total, 20);
  auto verifier = note::Signer::FromSeed("log.test.jitgate/v1", crypto::Sha256(AsBytes("seed")))
                      ->GetVerifier();
  for (int64_t k = 0; k <= total; ++k) {
    SCOPED_TRACE("crash after operation " + std::to_string(k));
    FaultInjectionEnv env;
    env.SetCrashMode(mode, uint64_t(k) + 1);
    jitgate::testing::SimulatedClock clock;
    setup(&env);
    env.SetFailAfter(k);
    std::vector<std::string> acked;
    workload(&env, &clock, &acked);
    env.SimulateCrash();
    env.ClearFaults();

    StoreOptions o;
    o.env = &env;
    o.clock = &clock;
    o.timed_checkpoints = false;
    o.segment_target_size = 600;
    {
      auto st = Store::Open(kDir, o);
      ASSERT_OK(st);
      ASSERT_GE((*st)->size(), acked.size());
      ASSERT_OK((*st)->Append(kAudit, AsBytes("after crash")));
      ASSERT_OK((*st)->Close());
    }
    auto r = StoreReader::Open(kDir, &env);
    ASSERT_OK(r);
    for (size_t i = 0; i < acked.size(); ++i) {
      auto raw = (*r)->ReadEntry(i);
      ASSERT_OK(raw);
      auto e = ParseEntry(*raw);
      ASSERT_OK(e);
      EXPECT_EQ(AsChars(e->body), acked[i]);
    }
    VerifyOptions vo;
    vo.env = &env;
    VerifyReport rep = VerifyStore(kDir, verifier, vo);
    ASSERT_OK(rep.status) << rep.Summary();
    EXPECT_EQ(rep.latest_checkpoint_size, rep.entries);
  }
}

TEST(StoreCrashTest, CrashAtEveryWriteAndSyncDropUnsynced) {
  CrashCampaign(FaultInjectionEnv::CrashMode::kDropUnsynced);
}

TEST(StoreCrashTest, CrashAtEveryWriteAndSyncKeepRandomPrefix) {
  CrashCampaign(FaultInjectionEnv::CrashMode::kKeepRandomPrefix);
}

TEST_F(StoreTest, DiskFullFailsClearlyAndDamagesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 5; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
    ASSERT_OK(st->PublishCheckpoint());
    env_.SetNoSpace(0);  // nothing more fits
    EXPECT_THAT(st->Append(kAudit, AsBytes(Body(99))),
                StatusIs(StatusCode::kResourceExhausted, HasSubstr("No space left")));
    // The store is now failed: later appends fail fast with the same reason.
    EXPECT_THAT(st->Append(kAudit, AsBytes(Body(100))),
                StatusIs(StatusCode::kResourceExhausted, HasSubstr("no further appends")));
  }
  env_.SimulateCrash();
  env_.ClearFaults();
  std::vector<std::string> all = ReadAll();
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[i], Body(i));
  EXPECT_OK(Verify().status);
  ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
  EXPECT_OK(st->Append(kAudit, AsBytes(Body(5))));
}

TEST_F(StoreTest, FsyncFailureFailsTheAppendAndDamagesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 3; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
    env_.SetSyncError(true);
    auto r = st->Append(kAudit, AsBytes(Body(3)));
    EXPECT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("store write failed"));
  }
  env_.SimulateCrash();
  env_.ClearFaults();
  std::vector<std::string> all = ReadAll();
  ASSERT_GE(all.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(all[i], Body(i));
  EXPECT_OK(Verify().status);
}

TEST_F(StoreTest, TornTailIsKeptAndAccountedForByTheNextSegment) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 4; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
  }
  std::string seg = JoinPath(SegmentDir(kDir), SegmentFileName(1));
  std::string bytes = env_.Contents(seg);
  // Half a record at the end, as a crash mid-write leaves it.
  Bytes rec;
  AppendRecord(RecordType::kEntry, AsBytes("unacknowledged entry bytes"), &rec);
  std::string torn = bytes + std::string(AsChars(rec).substr(0, 15));
  ASSERT_OK(env_.SetContents(seg, torn));
  VerifyReport before = Verify();
  ASSERT_OK(before.status);
  EXPECT_EQ(before.torn_tail_bytes, 15u);
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    ASSERT_OK(st->Append(kAudit, AsBytes(Body(4))));
  }
  EXPECT_EQ(env_.Contents(seg), torn);  // not rewritten
  EXPECT_TRUE(env_.IsImmutable(seg));
  VerifyReport after = Verify();
  ASSERT_OK(after.status) << after.Summary();
  EXPECT_EQ(after.skipped_torn_bytes, 15u);
  EXPECT_EQ(after.entries, 5u);
}

TEST_F(StoreTest, MidFileCorruptionIsNotMistakenForATornTail) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 4; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
  }
  std::string seg = JoinPath(SegmentDir(kDir), SegmentFileName(1));
  std::string bytes = env_.Contents(seg);
  size_t at = bytes.find(Body(1));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] ^= 0x20;
  ASSERT_OK(env_.SetContents(seg, bytes));
  EXPECT_THAT(OpenStore(), StatusIs(StatusCode::kDataLoss, HasSubstr("checksum mismatch")));
  VerifyReport rep = Verify();
  EXPECT_THAT(rep.status, StatusIs(StatusCode::kDataLoss, HasSubstr("entry 1")));
}

TEST_F(StoreTest, TreeIndexIsRebuiltWhenTruncatedAndRefusedWhenWrong) {
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
    for (int i = 0; i < 9; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
  }
  std::string nodes = JoinPath(kDir, kNodesFile);
  std::string full = env_.Contents(nodes);
  ASSERT_EQ(full.size(), merkle::PostorderNodeCount(9) * 32);
  ASSERT_OK(env_.SetContents(nodes, full.substr(0, 32 * 5)));
  {
    ASSERT_OK_AND_ASSIGN(auto st, OpenStore());  // rebuilds from the entries
    EXPECT_EQ(st->size(), 9u);
  }
  EXPECT_EQ(env_.Contents(nodes), full);
  // A damaged node on the frontier (the root of leaves 0..7) would make the
  // writer sign a wrong root: it refuses to open.
  std::string bad = full;
  bad[32 * merkle::PostorderIndex(3, 0)] ^= 1;
  ASSERT_OK(env_.SetContents(nodes, bad));
  EXPECT_THAT(OpenStore(), StatusIs(StatusCode::kDataLoss, HasSubstr("tree index disagrees")));
  EXPECT_THAT(Verify().status, StatusIs(StatusCode::kDataLoss, HasSubstr("tree index node 14")));
  // A damaged leaf hash inside the tree only affects proofs: verify names
  // the entry (and prove refuses to print a proof that does not verify).
  bad = full;
  bad[32 * merkle::PostorderIndex(0, 2)] ^= 1;
  ASSERT_OK(env_.SetContents(nodes, bad));
  EXPECT_THAT(Verify().status, StatusIs(StatusCode::kDataLoss, HasSubstr("entry 2")));
}

TEST_F(StoreTest, CheckpointStateSaysWhatIsNotCoveredAndSinceWhen) {
  ASSERT_OK_AND_ASSIGN(auto st, OpenStore());
  const int64_t opened = clock_.MonotonicNanos();
  Store::CheckpointState cs = st->checkpoint_state();
  EXPECT_EQ(cs.size, 0u);
  EXPECT_EQ(cs.durable_mono, opened);
  EXPECT_EQ(cs.uncovered, 0u);
  EXPECT_EQ(cs.uncovered_since_mono, -1);
  clock_.Advance(5'000'000'000);
  const int64_t first = clock_.MonotonicNanos();
  ASSERT_OK(st->Append(kAudit, AsBytes(Body(0))));
  clock_.Advance(1'000'000'000);
  ASSERT_OK(st->Append(kAudit, AsBytes(Body(1))));
  cs = st->checkpoint_state();
  EXPECT_EQ(cs.uncovered, 2u);
  EXPECT_EQ(cs.uncovered_since_mono, first);
  clock_.Advance(1'000'000'000);
  ASSERT_OK(st->PublishCheckpoint());
  cs = st->checkpoint_state();
  EXPECT_EQ(cs.size, 2u);
  EXPECT_EQ(cs.durable_mono, clock_.MonotonicNanos());
  EXPECT_EQ(cs.uncovered, 0u);
  EXPECT_EQ(cs.uncovered_since_mono, -1);
}

TEST_F(StoreTest, WrongKeyIsRefused) {
  auto other = note::Signer::FromSeed("log.test.jitgate/v1", crypto::Sha256(AsBytes("other")));
  ASSERT_OK(env_.WriteFileAtomically("/keys/other.key", other->EncodeSignerKey().span(), 0600));
  StoreOptions o = Options();
  o.key_path = "/keys/other.key";
  EXPECT_THAT(Store::Open(kDir, o),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("not this store's key")));
  VerifyOptions vo;
  vo.env = &env_;
  EXPECT_THAT(VerifyStore(kDir, other->GetVerifier(), vo).status,
              StatusIs(StatusCode::kDataLoss, HasSubstr("STORE file names the log key")));
}

// IncrementalVerifier (store/incremental_verify.h) follows a store as it
// grows, with the checks of VerifyStore.
class IncrementalVerifyTest : public StoreTest {
 protected:
  static constexpr uint64_t kAll = uint64_t(1) << 40;

  std::unique_ptr<Store> Open(uint64_t segment_target_size = kDefaultSegmentTargetSize) {
    StoreOptions o = Options();
    o.segment_target_size = segment_target_size;
    auto st = Store::Open(kDir, o);
    EXPECT_OK(st);
    return st.ok() ? std::move(*st) : nullptr;
  }

  void Append(Store* st, int from, int to) {
    for (int i = from; i < to; ++i) ASSERT_OK(st->Append(kAudit, AsBytes(Body(i))));
  }

  // Changes entry n's body in the active segment and gives its record a
  // valid CRC: only the Merkle tree can tell.
  void RewriteEntry(int n) {
    std::string seg = JoinPath(SegmentDir(kDir), SegmentFileName(1));
    std::string bytes = env_.Contents(seg);
    size_t body = bytes.find(Body(n));
    ASSERT_NE(body, std::string::npos);
    size_t payload = body - kEntryHeaderSize;
    std::string changed = bytes.substr(payload, kEntryHeaderSize + Body(n).size());
    changed[kEntryHeaderSize + 3] ^= 0x20;
    Bytes record;
    AppendRecord(RecordType::kEntry, AsBytes(changed), &record);
    bytes.replace(payload - kRecordHeaderSize, record.size(), AsChars(record));
    ASSERT_OK(env_.SetContents(seg, bytes));
  }
};

TEST_F(IncrementalVerifyTest, FollowsTheStoreAsItGrows) {
  IncrementalVerifier v(kDir, *verifier_, &env_);
  ASSERT_OK_AND_ASSIGN(bool done, v.Advance(kAll));
  EXPECT_TRUE(done);
  EXPECT_EQ(v.entries(), 0u);
  EXPECT_EQ(v.verified_entries(), 0u);  // the empty tree's checkpoint
  std::unique_ptr<Store> st = Open();
  Append(st.get(), 0, 5);
  ASSERT_OK(st->PublishCheckpoint());
  Append(st.get(), 5, 8);  // durable, not yet covered by a checkpoint
  ASSERT_OK_AND_ASSIGN(done, v.Advance(kAll));
  EXPECT_TRUE(done);
  EXPECT_EQ(v.entries(), 8u);
  EXPECT_EQ(v.verified_entries(), 5u);
  ASSERT_OK(st->PublishCheckpoint());
  ASSERT_OK_AND_ASSIGN(done, v.Advance(kAll));
  EXPECT_EQ(v.entries(), 8u);
  EXPECT_EQ(v.verified_entries(), 8u);
  ASSERT_OK_AND_ASSIGN(uint64_t size, env_.FileSize(JoinPath(SegmentDir(kDir), SegmentFileName(1))));
  EXPECT_EQ(v.bytes(), size);
}

TEST_F(IncrementalVerifyTest, ABudgetSplitsAPassAcrossCallsAndSegments) {
  std::unique_ptr<Store> st = Open(/*segment_target_size=*/600);
  for (int i = 0; i < 40; i += 4) {
    Append(st.get(), i, i + 4);
    ASSERT_OK(st->PublishCheckpoint());
  }
  ASSERT_OK(st->Close());
  ASSERT_OK_AND_ASSIGN(auto segs, ListSegments(&env_, kDir));
  ASSERT_GT(segs.size(), 2u);
  IncrementalVerifier v(kDir, *verifier_, &env_);
  int calls = 0;
  while (true) {
    ++calls;
    ASSERT_OK_AND_ASSIGN(bool done, v.Advance(100));
    if (done) break;
    ASSERT_LT(calls, 1000);
  }
  EXPECT_GT(calls, 10);
  EXPECT_EQ(v.entries(), 40u);
  EXPECT_EQ(v.verified_entries(), 40u);
}

TEST_F(IncrementalVerifyTest, AnAlteredEntryFailsAtTheCheckpointAndStaysFailed) {
  std::unique_ptr<Store> st = Open();
  Append(st.get(), 0, 4);
  ASSERT_OK(st->PublishCheckpoint());
  IncrementalVerifier v(kDir, *verifier_, &env_);
  ASSERT_OK(v.Advance(kAll).status());
  EXPECT_EQ(v.verified_entries(), 4u);
  Append(st.get(), 4, 8);
  ASSERT_OK(st->PublishCheckpoint());
  RewriteEntry(6);
  EXPECT_THAT(v.Advance(kAll).status(),
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("checkpoint of size 8 (segment 0000000001 offset ")));
  EXPECT_THAT(v.Advance(kAll).status(),
              StatusIs(StatusCode::kDataLoss, HasSubstr("entry in 4..7 was altered")));
  EXPECT_EQ(v.verified_entries(), 4u);
}

TEST_F(IncrementalVerifyTest, ADamagedRecordIsNamed) {
  std::unique_ptr<Store> st = Open();
  Append(st.get(), 0, 4);
  ASSERT_OK(st->PublishCheckpoint());
  Append(st.get(), 4, 6);
  std::string seg = JoinPath(SegmentDir(kDir), SegmentFileName(1));
  std::string bytes = env_.Contents(seg);
  bytes[bytes.find(Body(4)) + 2] ^= 1;
  ASSERT_OK(env_.SetContents(seg, bytes));
  IncrementalVerifier v(kDir, *verifier_, &env_);
  EXPECT_THAT(v.Advance(kAll).status(),
              StatusIs(StatusCode::kDataLoss, HasSubstr("(entry 4): damaged record: checksum")));
  EXPECT_EQ(v.verified_entries(), 4u);
}

TEST_F(IncrementalVerifyTest, AnotherKeyIsRefused) {
  auto other = note::Signer::FromSeed("log.test.jitgate/v1", crypto::Sha256(AsBytes("other")));
  ASSERT_OK(other);
  IncrementalVerifier v(kDir, other->GetVerifier(), &env_);
  EXPECT_THAT(v.Advance(kAll).status(),
              StatusIs(StatusCode::kDataLoss, HasSubstr("STORE file names the log key")));
}

}  // namespace
}  // namespace jitgate::store
