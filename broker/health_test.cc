#include "broker/health.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/env.h"
#include "core/crypto/crypto.h"
#include "store/segments.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::broker {
namespace {

using ::testing::HasSubstr;

constexpr uint8_t kAudit = uint8_t(store::EntryType::kAuditEvent);

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = note::Signer::FromSeed("health.test.jitgate/v1", crypto::Sha256(AsBytes("seed")));
    ASSERT_OK(signer);
    key_ = signer->GetVerifier();
    Env* env = DefaultEnv();
    ASSERT_OK(env->WriteFileAtomically(dir_.Join("log.key"), signer->EncodeSignerKey().span(), 0600));
    ASSERT_OK(store::CreateStore(env, dir_.Join("store"), dir_.Join("log.key")));
    store::StoreOptions o;
    o.timed_checkpoints = false;
    auto st = store::Store::Open(dir_.Join("store"), o);
    ASSERT_OK(st);
    store_ = std::move(*st);
  }

  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(store_->Append(kAudit, AsBytes("{\"event\":\"health test " + std::to_string(i) + "\"}")));
    }
  }

  std::unique_ptr<HealthMonitor> Monitor() {
    HealthOptions o;
    o.store = store_.get();
    o.metrics = &metrics_;
    o.interval = std::chrono::hours(1);  // one pass, at start
    return HealthMonitor::Start(std::move(o), *key_);
  }

  testing::TempDir dir_;
  std::optional<note::Verifier> key_;
  std::unique_ptr<store::Store> store_;
  BrokerMetrics metrics_{"0.1.0", 1767225600, /*has_ca=*/false};
};

TEST_F(HealthTest, TheFirstPassVerifiesTheWholeStore) {
  Append(5);
  ASSERT_OK(store_->PublishCheckpoint());
  Append(2);  // durable, not yet under a checkpoint
  std::unique_ptr<HealthMonitor> m = Monitor();
  m->WaitForPasses(1);
  Config config;
  config.file = "/etc/jitgate/jitgate.yaml";
  wire::StatusReport r = m->Report(config, "jitgated 0.1.0 test", 1767229200, 3, 1);
  EXPECT_EQ(r.verify, wire::CheckState::kOk);
  EXPECT_EQ(r.verified_entries, 5u);
  EXPECT_EQ(r.verify_error, "");
  EXPECT_GT(r.store_bytes, 0u);
  EXPECT_EQ(r.store_entries, 7u);
  EXPECT_EQ(r.checkpoint_size, 5u);
  EXPECT_EQ(r.uncovered_entries, 2u);
  EXPECT_EQ(r.ca, wire::CheckState::kUnknown);  // no CA configured
  EXPECT_EQ(r.version, "jitgated 0.1.0 test");
  EXPECT_EQ(r.config_file, "/etc/jitgate/jitgate.yaml");
  EXPECT_EQ(r.config_loaded_at, 1767225600u);
  EXPECT_EQ(r.started_at, 1767225600u);
  EXPECT_EQ(r.pending, 3u);
  EXPECT_EQ(r.sessions_live, 1u);
  EXPECT_EQ(r.bastion_listen, "");
  EXPECT_EQ(r.metrics_listen, "");
  EXPECT_THAT(metrics_.Render(), HasSubstr("jitgate_store_verified_entries 5\n"));
}

TEST_F(HealthTest, ADamagedRecordFailsTheCheckAndIsCountedOnce) {
  Append(3);
  ASSERT_OK(store_->PublishCheckpoint());
  ASSERT_OK(store_->Close());
  std::string seg = dir_.Join("store") + "/seg/" + store::SegmentFileName(1);
  ASSERT_OK(testing::ClearImmutable(seg));
  StatusOr<std::string> bytes = DefaultEnv()->ReadFileToString(seg, 1 << 20);
  ASSERT_OK(bytes);
  size_t at = bytes->find("health test 1");
  ASSERT_NE(at, std::string::npos);
  (*bytes)[at] ^= 1;
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(seg, AsBytes(*bytes), 0644));
  std::unique_ptr<HealthMonitor> m = Monitor();
  m->WaitForPasses(1);
  wire::StatusReport r = m->Report(Config{}, "v", 0, 0, 0);
  EXPECT_EQ(r.verify, wire::CheckState::kFailed);
  EXPECT_THAT(r.verify_error, HasSubstr("(entry 1): damaged record: checksum mismatch"));
  EXPECT_EQ(r.verified_entries, 0u);  // only the empty tree's checkpoint
  const std::string text = metrics_.Render();
  EXPECT_THAT(text, HasSubstr("jitgate_store_verify_errors_total 1\n"));
  EXPECT_THAT(text, HasSubstr("jitgate_store_verify_ok 0\n"));
}

}  // namespace
}  // namespace jitgate::broker
