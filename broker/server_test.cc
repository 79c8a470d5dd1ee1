// The broker's event loop over a real Unix socket, with the real store and
// state database in a temporary directory, driven by the real wire client.
// Every caller here is this test process (SO_PEERCRED), so the configuration
// names the test's own user as approver or submitter as each case needs;
// tests/integration/approval drives the multi-user flows with real sshd,
// sudo and the CLI.
#include "broker/server.h"

#include "broker/broker_metrics.h"
#include "broker/health.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "ca/cert.h"
#include "ca/krl.h"
#include "ca/sshkey.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/wire/client.h"
#include "recorder/recording.h"
#include "recorder/recording_client.h"
#include "recorder/spool.h"
#include "store/format.h"
#include "store/reader.h"
#include "store/store.h"
#include "store/verify.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::broker {
namespace {

using ::jitgate::testing::TempDir;
using ::testing::HasSubstr;

std::string Me() {
  passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

wire::Deadline Soon() { return wire::Deadline::InMillis(RealClock(), 10'000); }

wire::RequestFields Login(const std::string& user) {
  wire::RequestFields f;
  f.service = "sshd";
  f.user = user;
  f.target_user = user;
  f.host = "db1";
  f.remote_addr = "127.0.0.1";
  f.tty = "ssh";
  return f;
}

class BrokerServerTest : public ::testing::Test {
 protected:
  // policies_yaml: the `approvers` and `policies` sections.
  void Start(const std::string& approvers_and_policies, const std::string& submitters = "") {
    if (!key_written_) {
      auto signer = note::Signer::FromSeed("server.test.jitgate/log", crypto::Sha256(AsBytes("k")));
      ASSERT_OK(signer.status());
      ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("log.key"),
                                                  signer->EncodeSignerKey().span(), 0600));
      ASSERT_OK(store::CreateStore(DefaultEnv(), dir_.Join("store"), dir_.Join("log.key")));
      key_written_ = true;
    }
    socket_ = dir_.Join("run/jitgated.sock");
    std::string yaml = "broker:\n  socket: " + socket_ + "\n  state_dir: " + dir_.path() +
                       "\n  submitters: [" + (submitters.empty() ? Me() : submitters) +
                       "]\n" + broker_extra_ + "store:\n  dir: " + dir_.Join("store") + "\n  key: " +
                       dir_.Join("log.key") + "\n" + ca_yaml_ + approvers_and_policies;
    yaml_ = yaml;
    StatusOr<Config> config = ParseConfig(yaml, "test.yaml");
    ASSERT_OK(config.status());
    config_ = std::move(*config);
    store::StoreOptions so;
    so.key_path = dir_.Join("log.key");
    ASSERT_OK_AND_ASSIGN(store_, store::Store::Open(dir_.Join("store"), so));
    ASSERT_OK_AND_ASSIGN(db_, StateDb::Open(dir_.Join("jitgated.db")));
    ServerOptions opts;
    opts.server_id = "jitgated test";
    opts.log_events = getenv("JITGATE_TEST_LOG") != nullptr;
    opts.resume_grace_nanos = grace_nanos_;
    opts.is_bastion_session = is_bastion_session_;
    if (describe_peer_as_ != nullptr) {
      opts.describe_peer = [this](pid_t pid) {
        const pid_t as = describe_peer_as_->load();
        return DescribePeerProcess(as != 0 ? as : pid);
      };
    }
    opts.peer_check_interval_nanos = peer_check_interval_nanos_;
    opts.on_stopping = on_stopping_;
    opts.draining = draining_;
    opts.load_config = load_config_;
    if (with_health_) {
      metrics_ = std::make_unique<BrokerMetrics>("0.1.0", 1767225600, config_.ca.has_value());
      HealthOptions ho;
      ho.store = store_.get();
      ho.metrics = metrics_.get();
      auto signer = note::Signer::FromSeed("server.test.jitgate/log", crypto::Sha256(AsBytes("k")));
      health_ = HealthMonitor::Start(std::move(ho), signer->GetVerifier());
      opts.metrics = metrics_.get();
      opts.health = health_.get();
    }
    if (config_.ca.has_value()) {
      ASSERT_OK_AND_ASSIGN(ca_, CertAuthority::Load(*config_.ca));
      opts.ca = ca_.get();
    }
    server_ = std::make_unique<Server>(config_, db_.get(), store_.get(), opts);
    ASSERT_OK(server_->Start());
    std::promise<pid_t> tid;
    thread_ = std::thread([this, &tid] {
      tid.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
      run_status_ = server_->Run();
    });
    server_tid_ = tid.get_future().get();
  }

  void StopServer() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
    EXPECT_OK(run_status_);
    server_.reset();
    health_.reset();
    ca_.reset();
    db_.reset();
    ASSERT_OK(store_->Close());
    store_.reset();
  }

  void TearDown() override { StopServer(); }

  wire::Client Connect() {
    StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "server_test");
    EXPECT_OK(c.status());
    return std::move(*c);
  }

  // The audit events in the store, as "type:request" strings.
  std::vector<std::string> AuditTrail() {
    std::vector<std::string> out;
    auto reader = store::StoreReader::Open(dir_.Join("store"));
    if (!reader.ok()) return {"cannot open store: " + reader.status().message()};
    for (uint64_t i = 0; i < (*reader)->size(); ++i) {
      auto e = (*reader)->ReadEntry(i);
      if (!e.ok()) continue;
      std::string body(AsChars(*e));
      size_t t = body.find("\"type\":\"");
      if (t == std::string::npos) continue;
      out.push_back(body.substr(t + 8, body.find('"', t + 8) - t - 8));
    }
    return out;
  }

  TempDir dir_;
  bool key_written_ = false;
  std::string socket_;
  Config config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  Status run_status_;
  int64_t grace_nanos_ = 30'000'000'000;
  std::string ca_yaml_;       // a `ca:` section, or ""
  std::string broker_extra_;  // more `broker:` keys, each "  key: value\n"
  std::function<bool(pid_t)> is_bastion_session_;  // ServerOptions::is_bastion_session
  // When set, a broker-named session is described as opened by the process
  // it holds (0: the real peer), and peer checks run this often.
  std::atomic<pid_t>* describe_peer_as_ = nullptr;
  std::function<void()> on_stopping_;  // ServerOptions::on_stopping
  std::function<bool()> draining_;     // ServerOptions::draining
  int64_t peer_check_interval_nanos_ = int64_t{10} * 1'000'000'000;
  std::function<StatusOr<LoadedConfig>()> load_config_;  // ServerOptions::load_config
  std::string yaml_;       // the configuration Start() parsed
  pid_t server_tid_ = 0;   // the thread in Run(), which reads the signalfd
  std::unique_ptr<CertAuthority> ca_;
  bool with_health_ = false;  // metrics_ and health_ for the server
  std::unique_ptr<BrokerMetrics> metrics_;
  std::unique_ptr<HealthMonitor> health_;
};

std::string ApprovalPolicy(const std::string& approver, const std::string& extra = "") {
  return "approvers:\n  oncall: [" + approver +
         "]\npolicies:\n  - name: prod\n    approvers: [oncall]\n    reason: optional\n" + extra;
}

TEST_F(BrokerServerTest, AutoApproveAnswersAtOnceAndIsAudited) {
  Start("policies:\n  - name: dev\n    approve: auto\n    reason: none\n");
  wire::Client c = Connect();
  EXPECT_EQ(c.hello_ack().server_id, "jitgated test");
  wire::SubmitRequest s{Login("alice"), 0, false};
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(s, Soon()));
  auto* d = std::get_if<wire::Decision>(&m);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kApproved);
  EXPECT_EQ(d->digest, wire::RequestDigest(s.fields));
  EXPECT_THAT(d->decided_by, ::testing::ElementsAre("policy:dev"));
  EXPECT_GT(d->valid_until, 0u);
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::ElementsAre("created", "approved", "used"));
}

TEST_F(BrokerServerTest, NoMatchingPolicyDenies) {
  Start("policies: []\n");
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(wire::SubmitRequest{Login("alice"), 0, false}, Soon()));
  auto* d = std::get_if<wire::Decision>(&m);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kDenied);
  EXPECT_THAT(d->message, HasSubstr("no policy matches"));
}

TEST_F(BrokerServerTest, ApproverDecidesAndTheWaitingClientHearsAtOnce) {
  Start(ApprovalPolicy(Me()));
  wire::Client requester = Connect();
  wire::SubmitRequest s{Login("alice"), 60, false};
  ASSERT_OK_AND_ASSIGN(wire::Message m, requester.Call(s, Soon()));
  auto* acc = std::get_if<wire::RequestAccepted>(&m);
  ASSERT_NE(acc, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  EXPECT_EQ(acc->digest, wire::RequestDigest(s.fields));
  EXPECT_EQ(acc->approvers, "1 of oncall");
  EXPECT_GT(acc->wait_seconds, 50u);

  wire::Client approver = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message listed,
                       approver.Call(wire::ListRequests{wire::ListFilter::kPending, 0}, Soon()));
  auto* list = std::get_if<wire::RequestList>(&listed);
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].id, acc->id);
  EXPECT_EQ(list->items[0].filed_by.rfind("uid ", 0), 0u);

  // A wrong digest changes nothing.
  crypto::Sha256Digest wrong = acc->digest;
  wrong[0] ^= 1;
  ASSERT_OK_AND_ASSIGN(wire::Message err,
                       approver.Call(wire::Approve{acc->id.substr(0, 4), wrong, ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(err));
  EXPECT_EQ(std::get<wire::Error>(err).code, wire::ErrorCode::kDigestMismatch);

  ASSERT_OK_AND_ASSIGN(wire::Message info,
                       approver.Call(wire::Approve{acc->id.substr(0, 4), acc->digest, "go"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(info));
  EXPECT_EQ(std::get<wire::RequestInfo>(info).state, wire::RequestState::kApproved);

  ASSERT_OK_AND_ASSIGN(wire::Message fin, requester.Receive(Soon()));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kApproved);
  EXPECT_EQ(d->id, acc->id);
  EXPECT_EQ(d->digest, acc->digest);
  EXPECT_THAT(d->message, HasSubstr("approved by " + Me()));

  // Used once: a second vote finds it no longer pending.
  ASSERT_OK_AND_ASSIGN(wire::Message again,
                       approver.Call(wire::Approve{acc->id, acc->digest, ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(again));
  EXPECT_EQ(std::get<wire::Error>(again).code, wire::ErrorCode::kNotPending);
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::ElementsAre("created", "approved", "used"));
}

// The `config` audit events in the store, as parsed JSON.
std::vector<nlohmann::json> ConfigEvents(const std::string& store_dir) {
  std::vector<nlohmann::json> out;
  auto reader = store::StoreReader::Open(store_dir);
  if (!reader.ok()) return out;
  for (uint64_t i = 0; i < (*reader)->size(); ++i) {
    auto raw = (*reader)->ReadEntry(i);
    if (!raw.ok()) continue;
    // The entry's header is binary (its timestamp may hold a '{' byte): parse
    // it, then the JSON body.
    auto e = store::ParseEntry(*raw);
    if (!e.ok()) continue;
    nlohmann::json j = nlohmann::json::parse(AsChars(e->body), nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("type", "") == "config") out.push_back(j);
  }
  return out;
}

TEST_F(BrokerServerTest, SighupReloadsAGoodConfigurationAndRefusesABadOne) {
  const std::string file = dir_.Join("jitgate.yaml");
  load_config_ = [file] { return LoadConfigFile(file); };
  Start(ApprovalPolicy(Me()));
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(file, AsBytes(yaml_), 0600));
  const std::string approval_yaml = yaml_;

  // A request waits for an approver under the first configuration.
  wire::Client waiting = Connect();
  wire::SubmitRequest first{Login("alice"), 60, false};
  ASSERT_OK_AND_ASSIGN(wire::Message m, waiting.Call(first, Soon()));
  auto* acc = std::get_if<wire::RequestAccepted>(&m);
  ASSERT_NE(acc, nullptr) << wire::MessageTypeName(wire::TypeOf(m));

  // SIGHUP to the server's thread, then wait (bounded) for its audit event.
  auto reload = [&](size_t events_before) {
    EXPECT_EQ(::syscall(SYS_tgkill, ::getpid(), server_tid_, SIGHUP), 0);
    std::vector<nlohmann::json> events;
    for (int i = 0; i < 1000 && (events = ConfigEvents(dir_.Join("store"))).size() <= events_before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(events.size(), events_before + 1);
    return events.empty() ? nlohmann::json() : events.back();
  };
  auto submit = [&]() -> std::string {
    wire::Client c = Connect();
    StatusOr<wire::Message> r = c.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon());
    if (!r.ok()) return r.status().message();
    if (auto* d = std::get_if<wire::Decision>(&*r)) return "decision " + d->message;
    if (std::holds_alternative<wire::RequestAccepted>(*r)) return "waiting";
    return std::string(wire::MessageTypeName(wire::TypeOf(*r)));
  };

  // A good new configuration: every request is approved at once.
  std::string auto_yaml = approval_yaml.substr(0, approval_yaml.find("approvers:\n")) +
                          "policies:\n  - name: dev\n    approve: auto\n";
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(file, AsBytes(auto_yaml), 0600));
  nlohmann::json ev = reload(0);
  EXPECT_EQ(ev["config"]["event"], "reloaded");
  EXPECT_EQ(ev["config"]["file"], file);
  EXPECT_EQ(ev["config"]["sha256"], HexEncode(ByteSpan(crypto::Sha256(AsBytes(auto_yaml)))));
  EXPECT_EQ(server_->config().policy.rules.size(), 1u);
  EXPECT_THAT(submit(), HasSubstr("decision"));

  // The request filed before the reload keeps its policy: it still waits for
  // the approver, and the approval reaches its client.
  wire::Client approver = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message info,
                       approver.Call(wire::Approve{acc->id, acc->digest, ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(info));
  ASSERT_OK_AND_ASSIGN(wire::Message fin, waiting.Receive(Soon()));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kApproved);
  EXPECT_THAT(d->message, HasSubstr("approved by " + Me()));

  // A bad file is refused with file:line, and the running configuration stays.
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(file, AsBytes(auto_yaml + "polices: []\n"), 0600));
  ev = reload(1);
  EXPECT_EQ(ev["config"]["event"], "reload_refused");
  EXPECT_THAT(ev["comment"].get<std::string>(), HasSubstr(file + ":"));
  EXPECT_THAT(ev["comment"].get<std::string>(), HasSubstr("polices"));
  EXPECT_THAT(submit(), HasSubstr("decision"));

  // So is a change that needs a restart.
  std::string moved = auto_yaml;
  moved.replace(moved.find("run/jitgated.sock"), 17, "run/other.sock");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(file, AsBytes(moved), 0600));
  ev = reload(2);
  EXPECT_EQ(ev["config"]["event"], "reload_refused");
  EXPECT_THAT(ev["comment"].get<std::string>(), HasSubstr("broker.socket"));
  EXPECT_THAT(submit(), HasSubstr("decision"));

  // Back to needing approval: new requests wait again.
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(file, AsBytes(approval_yaml), 0600));
  EXPECT_EQ(reload(3)["config"]["event"], "reloaded");
  EXPECT_EQ(submit(), "waiting");
}

TEST_F(BrokerServerTest, SelfApprovalIsRefusedDenyReachesTheRequester) {
  Start(ApprovalPolicy(Me() + ", nobody"));
  wire::Client requester = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       requester.Call(wire::SubmitRequest{Login(Me()), 60, false}, Soon()));
  auto* acc = std::get_if<wire::RequestAccepted>(&m);
  ASSERT_NE(acc, nullptr);
  wire::Client approver = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message err,
                       approver.Call(wire::Approve{acc->id, acc->digest, ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(err));
  EXPECT_EQ(std::get<wire::Error>(err).code, wire::ErrorCode::kSelfApproval);
  // Denying one's own request is allowed (withdrawing it).
  ASSERT_OK_AND_ASSIGN(wire::Message info,
                       approver.Call(wire::Deny{acc->id, acc->digest, "changed my mind"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(info));
  ASSERT_OK_AND_ASSIGN(wire::Message fin, requester.Receive(Soon()));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kDenied);
  EXPECT_THAT(d->message, HasSubstr("changed my mind"));
}

TEST_F(BrokerServerTest, ReasonIsAskedWhenTheClientCanPrompt) {
  Start("approvers:\n  oncall: [" + Me() +
        "]\npolicies:\n  - name: prod\n    approvers: [oncall]\n    reason: required\n");
  wire::Client c = Connect();
  wire::SubmitRequest s{Login("alice"), 60, true};
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(s, Soon()));
  auto* ask = std::get_if<wire::NeedReason>(&m);
  ASSERT_NE(ask, nullptr);
  EXPECT_TRUE(ask->required);
  ASSERT_OK_AND_ASSIGN(wire::Message m2, c.Call(wire::ProvideReason{"INC-9"}, Soon()));
  auto* acc = std::get_if<wire::RequestAccepted>(&m2);
  ASSERT_NE(acc, nullptr);
  s.fields.reason = "INC-9";
  EXPECT_EQ(acc->digest, wire::RequestDigest(s.fields));

  // Without can_prompt a required reason that is missing is a denial.
  wire::Client c2 = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m3,
                       c2.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon()));
  auto* d = std::get_if<wire::Decision>(&m3);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kError);  // nothing was filed
  EXPECT_THAT(d->message, HasSubstr("requires a reason"));
}

TEST_F(BrokerServerTest, ClientGoingAwayCancelsItsRequest) {
  Start(ApprovalPolicy(Me()));
  std::string id;
  {
    wire::Client requester = Connect();
    ASSERT_OK_AND_ASSIGN(wire::Message m,
                         requester.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
    id = std::get<wire::RequestAccepted>(m).id;
  }
  // The close is seen by the loop; poll until the request is cancelled.
  wire::Client approver = Connect();
  wire::RequestState state = wire::RequestState::kPending;
  for (int i = 0; i < 200 && state == wire::RequestState::kPending; ++i) {
    ASSERT_OK_AND_ASSIGN(wire::Message m, approver.Call(wire::GetRequest{id}, Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(m));
    state = std::get<wire::RequestInfo>(m).state;
    if (state == wire::RequestState::kPending) usleep(10'000);
  }
  EXPECT_EQ(state, wire::RequestState::kCancelled);
}

TEST_F(BrokerServerTest, WaitTimesOut) {
  Start(ApprovalPolicy(Me()));
  wire::Client requester = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       requester.Call(wire::SubmitRequest{Login("alice"), 1, false}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
  ASSERT_OK_AND_ASSIGN(wire::Message fin, requester.Receive(Soon()));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kExpired);
  EXPECT_THAT(d->message, HasSubstr("no decision within 1s"));
}

TEST_F(BrokerServerTest, RestartKeepsThePendingRequestAndResumeCompletesIt) {
  Start(ApprovalPolicy(Me()));
  wire::SubmitRequest s{Login("alice"), 120, false};
  wire::RequestAccepted acc;
  wire::Client requester = Connect();
  {
    ASSERT_OK_AND_ASSIGN(wire::Message m, requester.Call(s, Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
    acc = std::get<wire::RequestAccepted>(m);
  }
  StopServer();
  // The broker closed the connection without cancelling.
  EXPECT_FALSE(requester.Receive(Soon()).ok());

  Start(ApprovalPolicy(Me()));
  // A wrong token is "not found", the same as an unknown id.
  wire::Client bad = Connect();
  wire::ResumeToken wrong = acc.resume_token;
  wrong[3] ^= 0x40;
  ASSERT_OK_AND_ASSIGN(wire::Message no, bad.Call(wire::Resume{acc.id, wrong}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(no));
  EXPECT_EQ(std::get<wire::Error>(no).code, wire::ErrorCode::kNotFound);

  wire::Client resumed = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, resumed.Call(wire::Resume{acc.id, acc.resume_token}, Soon()));
  auto* again = std::get_if<wire::RequestAccepted>(&m);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->id, acc.id);
  EXPECT_EQ(again->digest, acc.digest);

  wire::Client approver = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message info, approver.Call(wire::Approve{acc.id, acc.digest, ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(info));
  ASSERT_OK_AND_ASSIGN(wire::Message fin, resumed.Receive(Soon()));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->outcome, wire::Outcome::kApproved);
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::ElementsAre("created", "approved", "used"));
}

TEST_F(BrokerServerTest, UnresumedRequestIsCancelledAfterTheGrace) {
  grace_nanos_ = 200'000'000;  // 0.2 s
  Start(ApprovalPolicy(Me()));
  std::string id;
  {
    wire::Client requester = Connect();
    ASSERT_OK_AND_ASSIGN(wire::Message m,
                         requester.Call(wire::SubmitRequest{Login("alice"), 120, false}, Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
    id = std::get<wire::RequestAccepted>(m).id;
    StopServer();
  }
  Start(ApprovalPolicy(Me()));
  wire::Client approver = Connect();
  wire::RequestState state = wire::RequestState::kPending;
  for (int i = 0; i < 300 && state == wire::RequestState::kPending; ++i) {
    ASSERT_OK_AND_ASSIGN(wire::Message m, approver.Call(wire::GetRequest{id}, Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(m));
    state = std::get<wire::RequestInfo>(m).state;
    if (state == wire::RequestState::kPending) usleep(10'000);
  }
  EXPECT_EQ(state, wire::RequestState::kCancelled);
}

TEST_F(BrokerServerTest, OnlySubmittersFileForOthers) {
  Start(ApprovalPolicy(Me()), "somebody-else");
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       c.Call(wire::SubmitRequest{Login("no-such-user-xyz"), 60, false}, Soon()));
  auto* e = std::get_if<wire::Error>(&m);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, wire::ErrorCode::kPermissionDenied);
  EXPECT_THAT(e->message, HasSubstr("may not file requests for user 'no-such-user-xyz'"));
}

TEST_F(BrokerServerTest, FollowPushesNewPendingRequests) {
  Start(ApprovalPolicy(Me()));
  wire::Client follower = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message snap, follower.Call(wire::Follow{wire::ListFilter::kPending}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestList>(snap));
  EXPECT_TRUE(std::get<wire::RequestList>(snap).items.empty());
  wire::Client requester = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       requester.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
  ASSERT_OK_AND_ASSIGN(wire::Message pushed, follower.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(pushed));
  EXPECT_EQ(std::get<wire::RequestInfo>(pushed).id, std::get<wire::RequestAccepted>(m).id);
}

TEST_F(BrokerServerTest, GarbageGetsMalformedAndTheBrokerCarriesOn) {
  Start(ApprovalPolicy(Me()));
  {
    StatusOr<wire::Client> raw = wire::Client::Connect(socket_, Soon(), "raw");
    ASSERT_OK(raw.status());
    // A frame with a length over the cap, written straight to the socket.
    const uint8_t junk[] = {0x7f, 0xff, 0xff, 0xff, 0x10};
    ASSERT_EQ(::write(raw->fd(), junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
    StatusOr<wire::Message> m = raw->Receive(Soon());
    ASSERT_OK(m.status());
    ASSERT_TRUE(std::holds_alternative<wire::Error>(*m));
    EXPECT_EQ(std::get<wire::Error>(*m).code, wire::ErrorCode::kMalformed);
  }
  wire::Client ok = Connect();
  EXPECT_OK(ok.Call(wire::ListRequests{wire::ListFilter::kAll, 0}, Soon()).status());
}

// Certificates (PRODUCT.md F4) ---------------------------------------------

class BrokerCaTest : public BrokerServerTest {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca::PrivateKey key, ca::PrivateKey::Generate(ca::KeyType::kEd25519));
    ASSERT_OK(ca::WritePrivateKeyFile(dir_.Join("ca"), key, "test ca"));
    ca_public_ = key.public_key().ToLine();
    ca_yaml_ = "ca:\n  key: " + dir_.Join("ca") + "\n  max_ttl: 1h\n  clock_skew: 1m\n";
    ASSERT_OK_AND_ASSIGN(ca::PrivateKey subject, ca::PrivateKey::Generate(ca::KeyType::kEd25519));
    subject_ = subject.public_key().ToLine();
  }

  wire::RequestFields CertRequest(uint32_t ttl = 0) {
    wire::RequestFields f;
    f.service = "ssh-cert";
    f.user = "alice";
    f.target_user = "root";
    f.host = "db1";
    f.remote_addr = "10.0.0.7";
    f.public_key = subject_;
    f.ttl_seconds = ttl;
    return f;
  }

  // Files a certificate request under an auto-approve policy and returns the
  // Decision.
  wire::Decision AutoCert(uint32_t ttl = 0) {
    wire::Client c = Connect();
    StatusOr<wire::Message> m = c.Call(wire::SubmitRequest{CertRequest(ttl), 0, false}, Soon());
    EXPECT_OK(m.status());
    if (!m.ok() || !std::holds_alternative<wire::Decision>(*m)) {
      ADD_FAILURE() << "no Decision";
      return {};
    }
    return std::get<wire::Decision>(*m);
  }

  StatusOr<ca::Krl> ReadKrl() {
    StatusOr<std::string> data = DefaultEnv()->ReadFileToString(dir_.Join("ca.krl"));
    if (!data.ok()) return data.status();
    return ca::Krl::Parse(AsBytes(*data));
  }

  std::string ca_public_;
  std::string subject_;
};

constexpr char kAutoCertPolicy[] =
    "policies:\n  - name: dev\n    approve: auto\n    reason: none\n    ttl: 30m\n";

TEST_F(BrokerCaTest, ApprovalBringsACertificateFixedByRequestAndPolicy) {
  Start(ApprovalPolicy(Me(), "    ttl: 20m\n    cert:\n      force_command: /usr/bin/uptime\n"
                             "      extensions: [permit-pty, permit-port-forwarding]\n"));
  wire::Client requester = Connect();
  wire::SubmitRequest s{CertRequest(600), 60, false};
  s.fields.target_user = "postgres";  // the test's approver may be root
  ASSERT_OK_AND_ASSIGN(wire::Message m, requester.Call(s, Soon()));
  auto* acc = std::get_if<wire::RequestAccepted>(&m);
  ASSERT_NE(acc, nullptr) << wire::MessageTypeName(wire::TypeOf(m)) << " "
                          << (std::holds_alternative<wire::Decision>(m) ? std::get<wire::Decision>(m).message : "");
  // The approver sees the key and the lifetime asked for, bound by the digest.
  EXPECT_EQ(acc->digest, wire::RequestDigest(s.fields));
  wire::Client approver = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message shown, approver.Call(wire::GetRequest{acc->id}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(shown));
  EXPECT_EQ(std::get<wire::RequestInfo>(shown).fields.public_key, subject_);
  EXPECT_EQ(std::get<wire::RequestInfo>(shown).fields.ttl_seconds, 600u);
  const uint64_t before = static_cast<uint64_t>(::time(nullptr));
  ASSERT_OK_AND_ASSIGN(wire::Message voted,
                       approver.Call(wire::Approve{acc->id, acc->digest, "ok"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(voted));
  ASSERT_OK_AND_ASSIGN(wire::Message fin, requester.Receive(Soon()));
  const uint64_t after = static_cast<uint64_t>(::time(nullptr));
  auto* d = std::get_if<wire::Decision>(&fin);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->outcome, wire::Outcome::kApproved);
  ASSERT_FALSE(d->certificate.empty());

  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, ca::Certificate::FromLine(d->certificate));
  EXPECT_OK(cert.VerifySignature());
  EXPECT_EQ(cert.signature_key().ToLine(), ca_public_);
  EXPECT_EQ(cert.key().ToLine(), subject_);
  const ca::CertificateFields& f = cert.fields();
  EXPECT_EQ(f.type, ca::CertType::kUser);
  EXPECT_EQ(f.serial, 1u);
  EXPECT_EQ(f.key_id, "jitgate:" + acc->id + ":" + Me());
  EXPECT_THAT(f.principals, ::testing::ElementsAre("postgres"));
  // [now - skew, now + min(asked 10m, policy 20m, max 1h)].
  EXPECT_GE(f.valid_after, before - 60);
  EXPECT_LE(f.valid_after, after - 60);
  EXPECT_EQ(f.valid_before - f.valid_after, 600u + 60u);
  EXPECT_EQ(d->valid_until, f.valid_before);
  ASSERT_EQ(f.critical_options.size(), 2u);
  EXPECT_EQ(f.critical_options[0].name, "force-command");
  EXPECT_EQ(f.critical_options[0].Value().value_or(""), "/usr/bin/uptime");
  EXPECT_EQ(f.critical_options[1].name, "source-address");
  EXPECT_EQ(f.critical_options[1].Value().value_or(""), "10.0.0.7");
  ASSERT_EQ(f.extensions.size(), 2u);
  EXPECT_EQ(f.extensions[0].name, "permit-port-forwarding");
  EXPECT_EQ(f.extensions[1].name, "permit-pty");

  // The CA's listing shows it, valid.
  ASSERT_OK_AND_ASSIGN(wire::Message listed, approver.Call(wire::ListCerts{}, Soon()));
  auto* certs = std::get_if<wire::CertList>(&listed);
  ASSERT_NE(certs, nullptr);
  ASSERT_EQ(certs->items.size(), 1u);
  EXPECT_EQ(certs->items[0].serial, 1u);
  EXPECT_EQ(certs->items[0].request_id, acc->id);
  EXPECT_EQ(certs->items[0].issued_to, "alice");
  EXPECT_EQ(certs->items[0].fingerprint, cert.key().Fingerprint());
  EXPECT_EQ(certs->items[0].valid_before, f.valid_before);
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::ElementsAre("created", "approved", "cert_issued", "used"));
}

TEST_F(BrokerCaTest, LifetimeIsCappedByPolicyAndCa) {
  ca_yaml_ = "ca:\n  key: " + dir_.Join("ca") + "\n  max_ttl: 2m\n  clock_skew: 0s\n";
  Start(kAutoCertPolicy);
  wire::Decision d = AutoCert(0);  // the policy's 30m, capped by max_ttl 2m
  ASSERT_EQ(d.outcome, wire::Outcome::kApproved) << d.message;
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, ca::Certificate::FromLine(d.certificate));
  EXPECT_EQ(cert.fields().valid_before - cert.fields().valid_after, 120u);
  EXPECT_THAT(cert.fields().key_id, ::testing::EndsWith(":policy:dev"));
  wire::Decision shorter = AutoCert(5);
  ASSERT_OK_AND_ASSIGN(ca::Certificate short_cert, ca::Certificate::FromLine(shorter.certificate));
  EXPECT_EQ(short_cert.fields().valid_before - short_cert.fields().valid_after, 5u);
  EXPECT_EQ(short_cert.fields().serial, cert.fields().serial + 1);
}

TEST_F(BrokerCaTest, UnusableRequestsAreRefusedBeforeAnyoneApproves) {
  Start(kAutoCertPolicy);
  struct Case {
    std::string public_key, remote_addr, error;
  } cases[] = {
      {"ssh-ed25519 AAAA", "", "public key is not usable"},
      {subject_ + " alice@laptop", "", "without a comment"},
      {subject_, "db1.example.com", "is not an IP address or CIDR block"},
      {subject_, "10.0.0.1,300.0.0.1", "\"300.0.0.1\" is not an IP address"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.public_key + " / " + k.remote_addr);
    wire::RequestFields f = CertRequest();
    f.public_key = k.public_key;
    f.remote_addr = k.remote_addr;
    wire::Client c = Connect();
    ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(wire::SubmitRequest{f, 0, false}, Soon()));
    auto* e = std::get_if<wire::Error>(&m);
    ASSERT_NE(e, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
    EXPECT_EQ(e->code, wire::ErrorCode::kInvalidRequest);
    EXPECT_THAT(e->message, HasSubstr(k.error));
  }
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::IsEmpty());  // nothing was filed
}

TEST_F(BrokerCaTest, WithoutACaKeyRequestsAreRefusedWithTheReason) {
  ca_yaml_.clear();
  Start(kAutoCertPolicy);
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(wire::SubmitRequest{CertRequest(), 0, false}, Soon()));
  auto* e = std::get_if<wire::Error>(&m);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, wire::ErrorCode::kNoCa);
  EXPECT_THAT(e->message, HasSubstr("no certificate authority"));
  wire::Client c2 = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message info, c2.Call(wire::GetCaInfo{}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(info));
  EXPECT_EQ(std::get<wire::Error>(info).code, wire::ErrorCode::kNoCa);
  // The connection survives a non-fatal error.
  ASSERT_OK_AND_ASSIGN(wire::Message list, c2.Call(wire::ListRequests{}, Soon()));
  EXPECT_TRUE(std::holds_alternative<wire::RequestList>(list));
}

TEST_F(BrokerCaTest, RevocationIsInTheKrlBeforeItIsAcknowledged) {
  Start(kAutoCertPolicy);
  // The KRL exists from the start, empty.
  ASSERT_OK_AND_ASSIGN(ca::Krl empty, ReadKrl());
  EXPECT_TRUE(empty.cert_sections().empty());
  wire::Decision first = AutoCert();
  wire::Decision second = AutoCert();
  ASSERT_OK_AND_ASSIGN(ca::Certificate c1, ca::Certificate::FromLine(first.certificate));
  ASSERT_OK_AND_ASSIGN(ca::Certificate c2, ca::Certificate::FromLine(second.certificate));

  wire::Client admin = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, admin.Call(wire::Revoke{c1.fields().serial, "", "lost laptop"}, Soon()));
  auto* revoked = std::get_if<wire::CertList>(&m);
  ASSERT_NE(revoked, nullptr);
  ASSERT_EQ(revoked->items.size(), 1u);
  EXPECT_EQ(revoked->items[0].serial, c1.fields().serial);
  EXPECT_GT(revoked->items[0].revoked_at, 0u);
  EXPECT_EQ(revoked->items[0].revoked_by, Me());
  EXPECT_EQ(revoked->items[0].revoke_comment, "lost laptop");
  ASSERT_OK_AND_ASSIGN(ca::Krl krl, ReadKrl());
  EXPECT_TRUE(krl.IsRevoked(c1));
  EXPECT_FALSE(krl.IsRevoked(c2));

  // By request id (a prefix will do); revoking again changes nothing.
  ASSERT_OK_AND_ASSIGN(m, admin.Call(wire::Revoke{0, second.id.substr(0, 5), ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::CertList>(m));
  ASSERT_OK_AND_ASSIGN(krl, ReadKrl());
  EXPECT_TRUE(krl.IsRevoked(c2));
  const uint64_t version = krl.version;
  ASSERT_OK_AND_ASSIGN(m, admin.Call(wire::Revoke{c1.fields().serial, "", "again"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::CertList>(m));
  EXPECT_EQ(std::get<wire::CertList>(m).items[0].revoke_comment, "lost laptop");
  ASSERT_OK_AND_ASSIGN(krl, ReadKrl());
  EXPECT_EQ(krl.version, version);

  ASSERT_OK_AND_ASSIGN(m, admin.Call(wire::Revoke{999, "", ""}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(m));
  EXPECT_EQ(std::get<wire::Error>(m).code, wire::ErrorCode::kNotFound);

  // Valid certificates: none left; all: both, newest first.
  ASSERT_OK_AND_ASSIGN(m, admin.Call(wire::ListCerts{wire::kValidCerts, 0}, Soon()));
  EXPECT_TRUE(std::get<wire::CertList>(m).items.empty());
  ASSERT_OK_AND_ASSIGN(m, admin.Call(wire::ListCerts{wire::ListFilter::kAll, 0}, Soon()));
  ASSERT_EQ(std::get<wire::CertList>(m).items.size(), 2u);
  EXPECT_EQ(std::get<wire::CertList>(m).items[0].serial, c2.fields().serial);
  StopServer();
  std::vector<std::string> trail = AuditTrail();
  EXPECT_EQ(std::count(trail.begin(), trail.end(), "cert_issued"), 2);
  EXPECT_EQ(std::count(trail.begin(), trail.end(), "cert_revoked"), 2);
}

TEST_F(BrokerCaTest, SerialsAndRevocationsSurviveARestart) {
  Start(kAutoCertPolicy);
  wire::Decision a = AutoCert();
  ASSERT_OK_AND_ASSIGN(ca::Certificate ca1, ca::Certificate::FromLine(a.certificate));
  {
    wire::Client admin = Connect();
    ASSERT_OK(admin.Call(wire::Revoke{ca1.fields().serial, "", ""}, Soon()).status());
  }
  StopServer();
  Start(kAutoCertPolicy);
  wire::Decision b = AutoCert();
  ASSERT_OK_AND_ASSIGN(ca::Certificate ca2, ca::Certificate::FromLine(b.certificate));
  EXPECT_EQ(ca2.fields().serial, ca1.fields().serial + 1);  // never reused
  ASSERT_OK_AND_ASSIGN(ca::Krl krl, ReadKrl());                // rewritten at start
  EXPECT_TRUE(krl.IsRevoked(ca1));
  EXPECT_FALSE(krl.IsRevoked(ca2));
}

TEST_F(BrokerCaTest, HostKeysAreSignedAndTheCaKeyIsPublished) {
  Start(kAutoCertPolicy);
  ASSERT_OK_AND_ASSIGN(ca::PrivateKey host, ca::PrivateKey::Generate(ca::KeyType::kEcdsaP256));
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message info, c.Call(wire::GetCaInfo{}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::CaInfo>(info));
  EXPECT_EQ(std::get<wire::CaInfo>(info).public_key, ca_public_);
  EXPECT_EQ(std::get<wire::CaInfo>(info).max_ttl_seconds, 3600u);
  EXPECT_EQ(std::get<wire::CaInfo>(info).krl_path, dir_.Join("ca.krl"));
  if (::getuid() != 0 && Me() != "root") GTEST_SKIP() << "host signing needs root (ca.host_signers)";
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       c.Call(wire::SignHostKey{host.public_key().ToLine(), {"db1", "db1.example.com"}, 86400},
                              Soon()));
  auto* hc = std::get_if<wire::HostCertificate>(&m);
  ASSERT_NE(hc, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, ca::Certificate::FromLine(hc->certificate));
  EXPECT_OK(cert.VerifySignature());
  EXPECT_EQ(cert.fields().type, ca::CertType::kHost);
  EXPECT_EQ(cert.fields().serial, hc->serial);
  EXPECT_EQ(cert.fields().key_id, "jitgate-host:db1");
  EXPECT_THAT(cert.fields().principals, ::testing::ElementsAre("db1", "db1.example.com"));
  EXPECT_EQ(cert.fields().valid_before - cert.fields().valid_after, 86400u + 60u);
  EXPECT_TRUE(cert.fields().critical_options.empty());
  EXPECT_TRUE(cert.fields().extensions.empty());
  ASSERT_OK_AND_ASSIGN(m, c.Call(wire::SignHostKey{host.public_key().ToLine(), {"*.example.com"}, 0},
                                 Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(m));
  EXPECT_THAT(std::get<wire::Error>(m).message, HasSubstr("wildcards"));
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::ElementsAre("cert_issued"));
}

TEST(CertAuthorityTest, RefusesACaKeyOthersCanRead) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(ca::PrivateKey key, ca::PrivateKey::Generate(ca::KeyType::kEd25519));
  ASSERT_OK(ca::WritePrivateKeyFile(dir.Join("ca"), key, ""));
  CaSettings settings;
  settings.key = dir.Join("ca");
  settings.krl = dir.Join("ca.krl");
  EXPECT_OK(CertAuthority::Load(settings).status());
  ASSERT_EQ(::chmod(dir.Join("ca").c_str(), 0640), 0);
  EXPECT_THAT(CertAuthority::Load(settings).status(),
              ::jitgate::testing::StatusIs(StatusCode::kPermissionDenied, HasSubstr("ca.key")));
  settings.key = dir.Join("missing");
  EXPECT_FALSE(CertAuthority::Load(settings).ok());
}

// Session recording (docs/protocol.md §4.4) ----------------------------------

class BrokerRecordingTest : public BrokerServerTest {
 protected:
  static Bytes RandomBytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    Bytes b(n);
    for (uint8_t& x : b) x = uint8_t(rng());
    return b;
  }

  // Chunks of a session with n output records of distinct bytes.
  static std::vector<Bytes> Chunks(const std::string& session, int n, uint64_t first_index = 0) {
    recorder::ChunkBuilder b(session);
    std::vector<Bytes> out;
    for (int i = 0; i < n; ++i) {
      recorder::Record r;
      r.stream = i % 3 == 0 ? recorder::Stream::kInput : recorder::Stream::kOutput;
      r.time_ns = int64_t{i} * 1'000'000;
      // Random bytes (NULs included) do not compress: 20 KB per record.
      r.data = RandomBytes(20'000, uint32_t(i));
      auto done = b.Add(std::move(r));
      EXPECT_OK(done.status());
      if (done.ok()) out.insert(out.end(), done->begin(), done->end());
    }
    auto last = b.Flush();
    EXPECT_OK(last.status());
    if (last.ok()) out.insert(out.end(), last->begin(), last->end());
    (void)first_index;
    return out;
  }

  wire::OpenSession Open() {
    wire::OpenSession o;
    o.recorder = "jitgate-rec";
    o.user = "alice";
    o.remote_addr = "10.0.0.7";
    o.host = "db1";
    o.login = "alice";
    o.term = "xterm";
    o.cols = 80;
    o.rows = 24;
    return o;
  }

  // Sends chunks and waits until the broker has acknowledged all of them.
  void Stream(wire::Client& c, const std::vector<Bytes>& chunks, uint64_t expect_ack) {
    for (const Bytes& b : chunks) ASSERT_OK(c.Send(wire::SessionData{b}, Soon()));
    uint64_t acked = 0;
    while (acked < expect_ack) {
      ASSERT_OK_AND_ASSIGN(wire::Message m, c.Receive(Soon()));
      auto* ack = std::get_if<wire::SessionAck>(&m);
      ASSERT_NE(ack, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
      EXPECT_GE(ack->next_index, acked);  // acknowledgements never go back
      acked = ack->next_index;
    }
    EXPECT_EQ(acked, expect_ack);
  }

  // The session as the store has it now (read while the broker runs), or
  // nullopt if it has none.
  std::optional<recorder::SessionInfo> Stored(const std::string& id) {
    auto index = recorder::SessionIndex::Open(dir_.Join("store"));
    if (!index.ok()) return std::nullopt;
    for (const recorder::SessionInfo& s : (*index)->sessions()) {
      if (s.id == id) return s;
    }
    return std::nullopt;
  }

  // Waits (10 s at most) until the store has session id's end.
  bool WaitEnded(const std::string& id) {
    for (int i = 0; i < 1000; ++i) {
      std::optional<recorder::SessionInfo> s = Stored(id);
      if (s.has_value() && s->ended) return true;
      usleep(10'000);
    }
    return false;
  }

  // Opens a session (named by the broker if session is empty) and streams
  // its first n chunks.
  std::string OpenAndStream(wire::Client& c, const std::string& session, size_t n,
                            const std::string& recorder = "jitgate-rec") {
    wire::OpenSession o = Open();
    o.session = session;
    o.recorder = recorder;
    StatusOr<wire::Message> m = c.Call(o, Soon());
    EXPECT_OK(m.status());
    if (!m.ok() || !std::holds_alternative<wire::SessionOpened>(*m)) return "";
    std::string id = std::get<wire::SessionOpened>(*m).session;
    std::vector<Bytes> chunks = Chunks(id, 8);
    chunks.resize(n);
    Stream(c, chunks, n);
    return id;
  }

  // The broker's answer to an OpenSession on c that resumes session id.
  StatusOr<wire::Message> Resume(wire::Client& c, const std::string& id) {
    wire::OpenSession o = Open();
    o.session = id;
    return c.Call(o, Soon());
  }

  void ExpectStoreVerifies() {
    auto signer = note::Signer::FromSeed("server.test.jitgate/log", crypto::Sha256(AsBytes("k")));
    ASSERT_OK(signer.status());
    store::VerifyReport v = store::VerifyStore(dir_.Join("store"), signer->GetVerifier(), {});
    EXPECT_OK(v.status) << v.Summary();
  }
};

TEST_F(BrokerRecordingTest, ARecorderWithoutASpoolThatGoesAwayIsLostAfterTheGrace) {
  broker_extra_ = "  recorder_resume_grace: 200ms\n";
  Start("policies: []\n");
  std::string id;
  {
    wire::Client c = Connect();
    id = OpenAndStream(c, "", 2);
    ASSERT_FALSE(id.empty());
  }  // the recorder is killed: no CloseSession
  ASSERT_TRUE(WaitEnded(id));
  // Final, and not restored by a restart: a late recorder is refused.
  StopServer();
  Start("policies: []\n");
  wire::Client late = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message refused, Resume(late, id));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(refused))
      << wire::MessageTypeName(wire::TypeOf(refused));
  EXPECT_EQ(std::get<wire::Error>(refused).code, wire::ErrorCode::kNotPending);
  StopServer();

  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  ASSERT_EQ(index->sessions().size(), 1u);
  const recorder::SessionInfo& s = index->sessions()[0];
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(s.end_reason, "recorder lost");  // as a killed recorder's spool is closed
  EXPECT_EQ(s.exit_status, -1);
  EXPECT_EQ(s.chunks, 2u);
  EXPECT_GE(s.end_unix_nanos, s.start_unix_nanos);
  EXPECT_TRUE(index->problems().empty());
  ExpectStoreVerifies();
}

TEST_F(BrokerRecordingTest, AResumeWithinTheGraceKeepsASessionAndASpooledOneIsNeverLost) {
  broker_extra_ = "  recorder_resume_grace: 300ms\n";
  Start("policies: []\n");
  std::string resumed_id;
  {
    wire::Client c = Connect();
    resumed_id = OpenAndStream(c, "", 1);
    ASSERT_FALSE(resumed_id.empty());
  }
  // Its recorder reconnects at once, as RecordingClient does.
  wire::Client resumed = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message reopened, Resume(resumed, resumed_id));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(reopened));
  EXPECT_EQ(std::get<wire::SessionOpened>(reopened).next_index, 1u);
  // A spooling recorder names its session; killed, its spool has the rest.
  ASSERT_OK_AND_ASSIGN(std::string spooled_id, recorder::MintSessionId());
  {
    wire::Client c = Connect();
    ASSERT_EQ(OpenAndStream(c, spooled_id, 1), spooled_id);
  }
  // Lost after both went away: once it has ended, their grace has passed.
  std::string lost_id;
  {
    wire::Client c = Connect();
    lost_id = OpenAndStream(c, "", 1);
    ASSERT_FALSE(lost_id.empty());
  }
  ASSERT_TRUE(WaitEnded(lost_id));
  ASSERT_TRUE(Stored(resumed_id).has_value());
  EXPECT_FALSE(Stored(resumed_id)->ended);
  ASSERT_TRUE(Stored(spooled_id).has_value());
  EXPECT_FALSE(Stored(spooled_id)->ended);

  // Both go on: the resumed recorder, and the spool's forwarder.
  std::vector<Bytes> rest = Chunks(resumed_id, 8);
  rest.erase(rest.begin());
  Stream(resumed, rest, rest.size() + 1);
  ASSERT_OK_AND_ASSIGN(wire::Message closed,
                       resumed.Call(wire::CloseSession{0, true, 0, "", "closed", rest.size() + 1,
                                                       0, 0},
                                    Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionClosed>(closed));
  wire::Client forwarder = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message forwarded, Resume(forwarder, spooled_id));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(forwarded));
  EXPECT_EQ(std::get<wire::SessionOpened>(forwarded).next_index, 1u);
  ASSERT_OK_AND_ASSIGN(
      wire::Message spool_closed,
      forwarder.Call(wire::CloseSession{0, false, 0, "", "recorder lost", 1, 0, 0}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionClosed>(spool_closed));
  StopServer();

  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  std::map<std::string, std::string> reasons;
  for (const recorder::SessionInfo& s : index->sessions()) reasons[s.id] = s.end_reason;
  EXPECT_EQ(reasons[resumed_id], "closed");
  EXPECT_EQ(reasons[spooled_id], "recorder lost");
  EXPECT_EQ(reasons[lost_id], "recorder lost");
  EXPECT_TRUE(index->problems().empty());
  ExpectStoreVerifies();
}

TEST_F(BrokerRecordingTest, ARestoredSessionWithoutASpoolHasTheGraceFromTheStart) {
  broker_extra_ = "  recorder_resume_grace: 300ms\n";
  Start("policies: []\n");
  wire::Client plain = Connect();
  const std::string plain_id = OpenAndStream(plain, "", 1);
  ASSERT_FALSE(plain_id.empty());
  ASSERT_OK_AND_ASSIGN(std::string spooled_id, recorder::MintSessionId());
  wire::Client spooled = Connect();
  ASSERT_EQ(OpenAndStream(spooled, spooled_id, 1), spooled_id);
  // The sudo plugin resumes only at its session's next I/O (an idle
  // `sudo -i` may take hours): a restored sudo session waits for it.
  wire::Client sudo = Connect();
  const std::string sudo_id = OpenAndStream(sudo, "", 1, "sudo");
  ASSERT_FALSE(sudo_id.empty());
  StopServer();  // the connections break with their sessions open
  Start("policies: []\n");
  ASSERT_TRUE(WaitEnded(plain_id));
  ASSERT_TRUE(Stored(spooled_id).has_value());
  EXPECT_FALSE(Stored(spooled_id)->ended);
  ASSERT_TRUE(Stored(sudo_id).has_value());
  EXPECT_FALSE(Stored(sudo_id)->ended);
  wire::Client sudo_again = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message resumed, Resume(sudo_again, sudo_id));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(resumed))
      << wire::MessageTypeName(wire::TypeOf(resumed));
  wire::Client forwarder = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message forwarded, Resume(forwarder, spooled_id));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(forwarded));
  EXPECT_EQ(std::get<wire::SessionOpened>(forwarded).next_index, 1u);
  StopServer();
  std::optional<recorder::SessionInfo> s = Stored(plain_id);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->end_reason, "recorder lost");
  EXPECT_EQ(s->chunks, 1u);
  ExpectStoreVerifies();
}

// A process that sleeps until killed, to stand for a sudo process; killed
// at the latest when the test ends.
class Sleeper {
 public:
  Sleeper() : pid_(::fork()) {
    if (pid_ == 0) {
      ::execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Sleeper() { Kill(); }
  pid_t pid() const { return pid_; }
  bool Kill() {
    if (pid_ <= 0) return false;
    int status = 0;
    const bool ok = ::kill(pid_, SIGKILL) == 0 && ::waitpid(pid_, &status, 0) == pid_;
    pid_ = 0;
    return ok;
  }

 private:
  pid_t pid_;
};

// A restored sudo session waits for its sudo process as long as that runs
// (an older plugin resumes only at its session's next I/O), and has the
// grace once it is gone: at the start, or when a later check finds it gone.
TEST_F(BrokerRecordingTest, ARestoredSudoSessionWaitsOnlyWhileItsSudoProcessRuns) {
  broker_extra_ = "  recorder_resume_grace: 200ms\n";
  std::atomic<pid_t> as{0};
  describe_peer_as_ = &as;
  peer_check_interval_nanos_ = 50'000'000;
  Sleeper dies_while_stopped;
  Sleeper dies_later;
  ASSERT_GT(dies_while_stopped.pid(), 0);
  ASSERT_GT(dies_later.pid(), 0);
  Start("policies: []\n");
  wire::Client c1 = Connect();
  as = dies_while_stopped.pid();
  const std::string gone_id = OpenAndStream(c1, "", 1, "sudo");
  wire::Client c2 = Connect();
  as = dies_later.pid();
  const std::string later_id = OpenAndStream(c2, "", 2, "sudo");
  wire::Client c3 = Connect();
  as = 0;  // this test's own process, which runs throughout
  const std::string running_id = OpenAndStream(c3, "", 1, "sudo");
  ASSERT_FALSE(gone_id.empty());
  ASSERT_FALSE(later_id.empty());
  ASSERT_FALSE(running_id.empty());
  StopServer();
  ASSERT_TRUE(dies_while_stopped.Kill());
  Start("policies: []\n");
  ASSERT_TRUE(WaitEnded(gone_id));
  EXPECT_EQ(Stored(gone_id)->end_reason, "recorder lost");
  EXPECT_EQ(Stored(gone_id)->chunks, 1u);
  // Many checks later, the two whose process runs still wait.
  usleep(500'000);
  EXPECT_FALSE(Stored(later_id)->ended);
  EXPECT_FALSE(Stored(running_id)->ended);
  ASSERT_TRUE(dies_later.Kill());
  ASSERT_TRUE(WaitEnded(later_id));
  EXPECT_EQ(Stored(later_id)->end_reason, "recorder lost");
  EXPECT_EQ(Stored(later_id)->chunks, 2u);
  EXPECT_FALSE(Stored(running_id)->ended);
  // The one still running resumes when its plugin comes back.
  wire::Client again = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message resumed, Resume(again, running_id));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(resumed))
      << wire::MessageTypeName(wire::TypeOf(resumed));
  EXPECT_EQ(std::get<wire::SessionOpened>(resumed).next_index, 1u);
  // A session that has ended stays ended.
  wire::Client late = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message refused, Resume(late, later_id));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(refused));
  EXPECT_EQ(std::get<wire::Error>(refused).code, wire::ErrorCode::kNotPending);
  StopServer();
  describe_peer_as_ = nullptr;
  ExpectStoreVerifies();
}

TEST_F(BrokerRecordingTest, ChunksAreAcknowledgedWhenDurableAndReadBackExactly) {
  Start("policies: []\n");
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(Open(), Soon()));
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  ASSERT_NE(opened, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  EXPECT_EQ(opened->next_index, 0u);
  EXPECT_EQ(opened->session.size(), 12u);
  std::vector<Bytes> chunks = Chunks(opened->session, 10);
  ASSERT_GE(chunks.size(), 3u);
  Stream(c, chunks, chunks.size());
  ASSERT_OK_AND_ASSIGN(
      wire::Message closed,
      c.Call(wire::CloseSession{0, true, 3, "", "closed", chunks.size(), 80'000, 120'000}, Soon()));
  auto* done = std::get_if<wire::SessionClosed>(&closed);
  ASSERT_NE(done, nullptr) << wire::MessageTypeName(wire::TypeOf(closed));
  EXPECT_EQ(done->chunks, chunks.size());
  StopServer();

  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  ASSERT_EQ(index->sessions().size(), 1u);
  const recorder::SessionInfo& s = index->sessions()[0];
  EXPECT_EQ(s.id, opened->session);
  EXPECT_EQ(s.user, "alice");
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(s.exit_status, 3);
  EXPECT_EQ(s.chunks, chunks.size());
  // Records may have been split across chunks (same time); joined back they
  // are the ten written.
  std::map<int64_t, Bytes> by_time;
  ASSERT_OK(index->ForEachRecord(s.id, [&](const recorder::Record& r) {
    Bytes& b = by_time[r.time_ns];
    b.insert(b.end(), r.data.begin(), r.data.end());
    return OkStatus();
  }));
  ASSERT_EQ(by_time.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(by_time[int64_t{i} * 1'000'000], RandomBytes(20'000, uint32_t(i)));
  }
}

TEST_F(BrokerRecordingTest, ARecorderResumesAfterABrokerRestartWithoutDuplicates) {
  Start("policies: []\n");
  std::string id;
  std::vector<Bytes> chunks;
  {
    wire::Client c = Connect();
    ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(Open(), Soon()));
    ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(m));
    id = std::get<wire::SessionOpened>(m).session;
    chunks = Chunks(id, 12);
    ASSERT_GE(chunks.size(), 4u);
    Stream(c, {chunks[0], chunks[1]}, 2);
  }
  StopServer();  // the recorder's connection breaks with the session open
  Start("policies: []\n");
  wire::Client c = Connect();
  wire::OpenSession resume = Open();
  resume.session = id;
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(resume, Soon()));
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  ASSERT_NE(opened, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  EXPECT_EQ(opened->session, id);
  EXPECT_EQ(opened->next_index, 2u);
  // The recorder did not see the ack of chunk 1 and sends it again: ignored.
  std::vector<Bytes> rest(chunks.begin() + 1, chunks.end());
  Stream(c, rest, chunks.size());
  ASSERT_OK_AND_ASSIGN(wire::Message closed,
                       c.Call(wire::CloseSession{0, false, 0, "HUP", "closed", chunks.size(), 0, 0},
                              Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionClosed>(closed));
  StopServer();
  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  ASSERT_EQ(index->sessions().size(), 1u);
  uint64_t bytes = 0;
  std::set<int64_t> times;
  ASSERT_OK(index->ForEachRecord(id, [&](const recorder::Record& r) {
    bytes += r.data.size();
    times.insert(r.time_ns);
    return OkStatus();
  }));
  EXPECT_EQ(bytes, 12u * 20'000u);  // every byte once: the resent chunk was not stored twice
  EXPECT_EQ(times.size(), 12u);
  EXPECT_EQ(index->sessions()[0].exit_signal, "HUP");
  EXPECT_EQ(index->sessions()[0].end_reason, "closed");
}

TEST_F(BrokerRecordingTest, ForeignOrOutOfOrderChunksEndTheStream) {
  Start("policies: []\n");
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(Open(), Soon()));
  const std::string id = std::get<wire::SessionOpened>(m).session;
  std::vector<Bytes> chunks = Chunks(id, 8);
  ASSERT_GE(chunks.size(), 3u);
  ASSERT_OK(c.Send(wire::SessionData{chunks[2]}, Soon()));  // 0 and 1 missing
  ASSERT_OK_AND_ASSIGN(wire::Message err, c.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(err));
  EXPECT_THAT(std::get<wire::Error>(err).message, HasSubstr("out of order: expected 0"));

  wire::Client c2 = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m2, c2.Call(Open(), Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(m2));
  ASSERT_OK(c2.Send(wire::SessionData{chunks[0]}, Soon()));  // the other session's chunk
  ASSERT_OK_AND_ASSIGN(wire::Message err2, c2.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(err2));
  EXPECT_THAT(std::get<wire::Error>(err2).message, HasSubstr("sent for"));

  wire::Client c3 = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m3, c3.Call(Open(), Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(m3));
  ASSERT_OK(c3.Send(wire::SessionData{Bytes{'J', 'G', 'T', '1', 0}}, Soon()));
  ASSERT_OK_AND_ASSIGN(wire::Message err3, c3.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(err3));
  EXPECT_EQ(std::get<wire::Error>(err3).code, wire::ErrorCode::kMalformed);
  // Resuming an unknown session is refused.
  wire::Client c4 = Connect();
  wire::OpenSession o = Open();
  o.session = "nosuchsession";
  ASSERT_OK_AND_ASSIGN(wire::Message nf, c4.Call(o, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Error>(nf));
  EXPECT_EQ(std::get<wire::Error>(nf).code, wire::ErrorCode::kNotFound);
}

TEST_F(BrokerRecordingTest, RecordingClientStreamsWithABoundedWindowAndSurvivesARestart) {
  Start("policies: []\n");
  recorder::RecordingClientOptions o;
  o.socket_path = socket_;
  o.max_unacked = 2;  // forces Add to wait for acknowledgements
  ASSERT_OK_AND_ASSIGN(auto rc, recorder::RecordingClient::Open(o, Open()));
  Bytes expect;
  auto add = [&](int i) {
    recorder::Record r;
    r.stream = recorder::Stream::kOutput;
    r.time_ns = int64_t{i} * 1000;
    r.data = RandomBytes(7'000 + size_t(i), uint32_t(i));  // incompressible
    expect.insert(expect.end(), r.data.begin(), r.data.end());
    return rc->Add(std::move(r));
  };
  for (int i = 0; i < 40; ++i) ASSERT_OK(add(i));
  ASSERT_OK(rc->Flush());
  EXPECT_GE(rc->chunks_sent(), 5u);
  // The broker restarts in the middle; the client resumes on its next call.
  StopServer();
  Start("policies: []\n");
  for (int i = 40; i < 80; ++i) ASSERT_OK(add(i));
  ASSERT_OK(rc->Close(wire::CloseSession{0, true, 0, "", "closed", 0, 0, expect.size()}));
  EXPECT_EQ(rc->chunks_acked(), rc->chunks_sent());
  StopServer();
  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  ASSERT_EQ(index->sessions().size(), 1u);
  EXPECT_TRUE(index->sessions()[0].ended);
  EXPECT_EQ(index->sessions()[0].chunks, rc->chunks_sent());
  Bytes got;
  ASSERT_OK(index->ForEachRecord(rc->session_id(), [&](const recorder::Record& r) {
    got.insert(got.end(), r.data.begin(), r.data.end());
    return OkStatus();
  }));
  EXPECT_EQ(got.size(), expect.size());
  EXPECT_TRUE(got == expect);
}

TEST_F(BrokerRecordingTest, RecordingClientFailsClosedWithoutABroker) {
  recorder::RecordingClientOptions o;
  o.socket_path = dir_.Join("nobody.sock");
  o.connect_timeout_ms = 1000;
  EXPECT_THAT(recorder::RecordingClient::Open(o, Open()).status(),
              ::jitgate::testing::StatusIs(StatusCode::kUnavailable, HasSubstr("unreachable")));
}

// A process of broker.recorder_group (a setgid jitgate-rec) may record its
// own user's sessions and nobody else's; other users may not record at all.
TEST_F(BrokerRecordingTest, RecorderGroupRecordsOnlyItsOwnUser) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run a child as nobody:nogroup";
  group* ng = ::getgrnam("nogroup");
  passwd* nobody = ::getpwnam("nobody");
  if (ng == nullptr || nobody == nullptr) GTEST_SKIP() << "no nobody/nogroup on this machine";
  const gid_t nogroup = ng->gr_gid;
  const uid_t nobody_uid = nobody->pw_uid;
  broker_extra_ = "  recorder_group: nogroup\n";
  Start("policies: []\n");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  // Runs as uid/gid in a child; returns the code of the broker's answer to
  // OpenSession for `user` (0 = SessionOpened).
  auto open_as = [&](uid_t uid, gid_t gid, const std::string& user) -> int {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(100);
      StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
      if (!c.ok()) _exit(101);
      wire::OpenSession o = Open();
      o.user = user;
      StatusOr<wire::Message> m = c->Call(o, Soon());
      if (!m.ok()) _exit(102);
      if (std::holds_alternative<wire::SessionOpened>(*m)) _exit(0);
      if (auto* e = std::get_if<wire::Error>(&*m)) _exit(static_cast<int>(e->code));
      _exit(103);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(open_as(nobody_uid, nogroup, "nobody"), 0);
  EXPECT_EQ(open_as(nobody_uid, nogroup, "alice"), int(wire::ErrorCode::kPermissionDenied));
  EXPECT_EQ(open_as(nobody_uid, nobody->pw_gid == nogroup ? 1 : nobody->pw_gid, "nobody"),
            int(wire::ErrorCode::kPermissionDenied));
}

// Terminating sessions (docs/protocol.md §4.4, `jitgate terminate`) --------

// The audit events of one type in the store at store_dir, parsed.
std::vector<nlohmann::json> StoreAuditEvents(const std::string& store_dir, std::string_view type) {
  std::vector<nlohmann::json> out;
  auto reader = store::StoreReader::Open(store_dir);
  EXPECT_OK(reader.status());
  if (!reader.ok()) return out;
  for (uint64_t i = 0; i < (*reader)->size(); ++i) {
    auto e = (*reader)->ReadEntry(i);
    if (!e.ok()) continue;
    StatusOr<store::Entry> entry = store::ParseEntry(*e);
    if (!entry.ok() || entry->type != uint8_t(store::EntryType::kAuditEvent)) continue;
    nlohmann::json j = nlohmann::json::parse(AsChars(entry->body), nullptr, false);
    if (j.is_object() && j.value("type", "") == type) out.push_back(std::move(j));
  }
  return out;
}

class BrokerTerminateTest : public BrokerRecordingTest {
 protected:
  // Files a login request for alice and has it approved by approve(id,
  // digest) (which returns the approval's RequestInfo state, or -1); returns
  // the request id once the requester has its Decision.
  std::string ApprovedRequest(const std::function<int(const std::string&,
                                                      const crypto::Sha256Digest&)>& approve) {
    wire::Client requester = Connect();
    StatusOr<wire::Message> m =
        requester.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon());
    EXPECT_OK(m.status());
    if (!m.ok() || !std::holds_alternative<wire::RequestAccepted>(*m)) return "";
    const wire::RequestAccepted acc = std::get<wire::RequestAccepted>(*m);
    EXPECT_EQ(approve(acc.id, acc.digest), int(wire::RequestState::kApproved));
    StatusOr<wire::Message> fin = requester.Receive(Soon());
    EXPECT_OK(fin.status());
    if (!fin.ok() || !std::holds_alternative<wire::Decision>(*fin)) return "";
    EXPECT_EQ(std::get<wire::Decision>(*fin).outcome, wire::Outcome::kApproved);
    return acc.id;
  }

  int ApproveHere(const std::string& id, const crypto::Sha256Digest& digest) {
    wire::Client approver = Connect();
    StatusOr<wire::Message> m = approver.Call(wire::Approve{id, digest, "ok"}, Soon());
    if (!m.ok() || !std::holds_alternative<wire::RequestInfo>(*m)) return -1;
    return int(std::get<wire::RequestInfo>(*m).state);
  }

  // Runs fn in a child process with the given uid and gid; returns its exit
  // code (fn's result), or 100+ if the child could not get there.
  static int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(100);
      _exit(fn());
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  // TerminateSession over a new connection: 0 for an ack naming `expect_id`
  // with already_ended == expect_ended, else the Error's code, else 90+.
  int Terminate(const std::string& session, const std::string& comment,
                const std::string& expect_id, bool expect_ended) {
    StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
    if (!c.ok()) return 91;
    StatusOr<wire::Message> m = c->Call(wire::TerminateSession{session, comment}, Soon());
    if (!m.ok()) return 92;
    if (auto* e = std::get_if<wire::Error>(&*m)) {
      last_error_ = e->message;
      return int(e->code);
    }
    auto* ack = std::get_if<wire::SessionTerminateAck>(&*m);
    if (ack == nullptr) return 93;
    if (ack->session != expect_id) return 94;
    if (ack->already_ended != expect_ended) return 95;
    return 0;
  }

  // The next message on a recording connection that is not a SessionAck.
  static StatusOr<wire::Message> NextPush(wire::Client& c) {
    while (true) {
      ASSIGN_OR_RETURN(wire::Message m, c.Receive(Soon()));
      if (!std::holds_alternative<wire::SessionAck>(m)) return m;
    }
  }

  // The store's session_terminated events, parsed.
  std::vector<nlohmann::json> TerminatedEvents() {
    return StoreAuditEvents(dir_.Join("store"), "session_terminated");
  }

  std::string last_error_;
};

TEST_F(BrokerTerminateTest, ApproverEndsASessionTheRecorderIsToldAndTheEventIsDurable) {
  Start(ApprovalPolicy(Me()));
  const std::string request =
      ApprovedRequest([this](const std::string& id, const crypto::Sha256Digest& d) {
        return ApproveHere(id, d);
      });
  ASSERT_FALSE(request.empty());
  wire::Client rec = Connect();
  wire::OpenSession o = Open();
  o.request_id = request;
  ASSERT_OK_AND_ASSIGN(wire::Message m, rec.Call(o, Soon()));
  const std::string id = std::get<wire::SessionOpened>(m).session;
  std::vector<Bytes> chunks = Chunks(id, 3);
  Stream(rec, chunks, chunks.size());

  // A unique prefix is enough; the answer names the whole id.
  EXPECT_EQ(Terminate(id.substr(0, 5), "done", id, false), 0) << last_error_;
  ASSERT_OK_AND_ASSIGN(wire::Message pushed, NextPush(rec));
  auto* told = std::get_if<wire::SessionTerminated>(&pushed);
  ASSERT_NE(told, nullptr) << wire::MessageTypeName(wire::TypeOf(pushed));
  EXPECT_EQ(told->by, Me());
  EXPECT_EQ(told->comment, "done");
  // Again while the recorder is ending it: the same answer, nothing new.
  EXPECT_EQ(Terminate(id, "twice", id, false), 0) << last_error_;

  // A recorder that resumes is told again right after SessionOpened.
  wire::Client resumed = Connect();
  wire::OpenSession again = o;
  again.session = id;
  ASSERT_OK_AND_ASSIGN(wire::Message reopened, resumed.Call(again, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(reopened));
  ASSERT_OK_AND_ASSIGN(wire::Message retold, resumed.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionTerminated>(retold));
  EXPECT_EQ(std::get<wire::SessionTerminated>(retold).by, Me());

  ASSERT_OK_AND_ASSIGN(wire::Message closed,
                       resumed.Call(wire::CloseSession{0, false, 0, "HUP", "terminated",
                                                       chunks.size(), 0, 0},
                                    Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionClosed>(closed))
      << wire::MessageTypeName(wire::TypeOf(closed));
  // Ended: said so, nothing changed.
  EXPECT_EQ(Terminate(id, "late", id, true), 0) << last_error_;
  EXPECT_EQ(Terminate(id.substr(0, 4), "late", id, true), 0) << last_error_;
  StopServer();

  std::vector<nlohmann::json> events = TerminatedEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["session"], id);
  EXPECT_EQ(events[0]["actor"], Me());
  EXPECT_EQ(events[0]["comment"], "done");
  EXPECT_EQ(events[0]["request"], request);
  EXPECT_EQ(events[0]["policy"], "prod");
  ASSERT_OK_AND_ASSIGN(auto index, recorder::SessionIndex::Open(dir_.Join("store")));
  ASSERT_EQ(index->sessions().size(), 1u);
  EXPECT_EQ(index->sessions()[0].end_reason, "terminated");
  EXPECT_TRUE(index->problems().empty());
}

TEST_F(BrokerTerminateTest, UnknownShortAmbiguousAndEndedSessions) {
  // Sessions a previous run left in the state database: two ended ones that
  // share a prefix and one still open (its recorder has not resumed yet).
  {
    ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(dir_.Join("jitgated.db")));
    for (const char* id : {"k3n8aaaaaaaa", "k3n8bbbbbbbb", "k3n9openopen"}) {
      recorder::SessionInfo info;
      info.id = id;
      info.recorder = "jitgate-rec";
      info.user = "alice";
      info.host = info.target = "db1";
      info.login = "alice";
      ASSERT_OK(db->SaveSession({id, recorder::SessionStartJson(info), 0,
                                 std::string_view(id) != "k3n9openopen", false, ""}));
    }
    ASSERT_OK(db->Commit());
  }
  Start("policies: []\n");
  EXPECT_EQ(Terminate("zzzzzzzzzzzz", "", "", false), int(wire::ErrorCode::kNotFound));
  EXPECT_EQ(last_error_, "no live session zzzzzzzzzzzz");
  EXPECT_EQ(Terminate("abc", "", "", false), int(wire::ErrorCode::kNotFound));
  EXPECT_THAT(last_error_, HasSubstr("too short"));
  EXPECT_EQ(Terminate("k3n8", "", "", false), int(wire::ErrorCode::kAmbiguous));
  EXPECT_THAT(last_error_, HasSubstr("matches 2 sessions"));
  // Sessions without a request: root only.
  const int denied = int(wire::ErrorCode::kPermissionDenied);
  const bool root = ::getuid() == 0;
  EXPECT_EQ(Terminate("k3n8a", "", "k3n8aaaaaaaa", true), root ? 0 : denied) << last_error_;
  EXPECT_EQ(Terminate("k3n9", "gone", "k3n9openopen", false), root ? 0 : denied) << last_error_;
  if (!root) return;
  // The restored session's recorder resumes and is told.
  wire::Client rec = Connect();
  wire::OpenSession resume = Open();
  resume.session = "k3n9openopen";
  ASSERT_OK_AND_ASSIGN(wire::Message m, rec.Call(resume, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionOpened>(m));
  ASSERT_OK_AND_ASSIGN(wire::Message told, rec.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SessionTerminated>(told));
  EXPECT_EQ(std::get<wire::SessionTerminated>(told).comment, "gone");
}

TEST_F(BrokerTerminateTest, OnlyRootAndTheRequestsApproversMayTerminate) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run children as other users";
  passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody on this machine";
  const uid_t nobody_uid = nobody->pw_uid;
  const gid_t nobody_gid = nobody->pw_gid;
  constexpr uid_t kOutsider = 54321;  // no passwd entry: "uid:54321", approver of nothing
  Start(ApprovalPolicy("nobody"));
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  const std::string request =
      ApprovedRequest([&](const std::string& rid, const crypto::Sha256Digest& d) {
        return RunAs(nobody_uid, nobody_gid, [&] {
          StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
          if (!c.ok()) return 101;
          StatusOr<wire::Message> m = c->Call(wire::Approve{rid, d, ""}, Soon());
          if (!m.ok() || !std::holds_alternative<wire::RequestInfo>(*m)) return 102;
          return int(std::get<wire::RequestInfo>(*m).state);
        });
      });
  ASSERT_FALSE(request.empty());
  recorder::RecordingClientOptions ro;
  ro.socket_path = socket_;
  wire::OpenSession with_request = Open();
  with_request.request_id = request;
  ASSERT_OK_AND_ASSIGN(auto approved, recorder::RecordingClient::Open(ro, with_request));
  ASSERT_OK_AND_ASSIGN(auto unapproved, recorder::RecordingClient::Open(ro, Open()));
  const std::string id = approved->session_id();

  // An outsider is refused, and nothing happens.
  EXPECT_EQ(RunAs(kOutsider, kOutsider, [&] { return Terminate(id, "", id, false); }),
            int(wire::ErrorCode::kPermissionDenied));
  // The approver of the session's request may; of a session without a
  // request, only root.
  EXPECT_EQ(RunAs(nobody_uid, nobody_gid,
                  [&] { return Terminate(unapproved->session_id(), "", "", false); }),
            int(wire::ErrorCode::kPermissionDenied));
  EXPECT_EQ(RunAs(nobody_uid, nobody_gid, [&] { return Terminate(id, "bye", id, false); }), 0);
  EXPECT_EQ(Terminate(unapproved->session_id(), "", unapproved->session_id(), false), 0)
      << last_error_;

  // The recording client hears of it through Poll.
  for (int i = 0; i < 500 && !approved->terminated_by().has_value(); ++i) {
    pollfd p{approved->fd(), POLLIN, 0};
    ASSERT_GE(::poll(&p, 1, 10'000), 0);
    ASSERT_OK(approved->Poll());
  }
  ASSERT_TRUE(approved->terminated_by().has_value());
  EXPECT_EQ(*approved->terminated_by(), "nobody");
  EXPECT_EQ(approved->terminate_comment(), "bye");
  ASSERT_OK(approved->Close(wire::CloseSession{0, false, 0, "HUP", "terminated", 0, 0, 0}));
  // The other one closes without polling first: Close reads the push
  // wherever it arrives (before or after its CloseSession).
  ASSERT_OK(unapproved->Close(wire::CloseSession{0, false, 0, "HUP", "terminated", 0, 0, 0}));
  EXPECT_EQ(unapproved->terminated_by().value_or(""), Me());
  // Ended sessions: the outsider still learns nothing.
  EXPECT_EQ(RunAs(kOutsider, kOutsider, [&] { return Terminate(id, "", id, true); }),
            int(wire::ErrorCode::kPermissionDenied));
  EXPECT_EQ(RunAs(nobody_uid, nobody_gid, [&] { return Terminate(id, "", id, true); }), 0);
  StopServer();
  std::vector<nlohmann::json> events = TerminatedEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["actor"], "nobody");
  EXPECT_EQ(events[0]["session"], id);
  EXPECT_EQ(events[1]["actor"], Me());
  EXPECT_EQ(events[1]["request"], "");
}

// Bastion session processes (docs/bastion.md) --------------------------------

// This test process plays the bastion's session process while bastion_ is
// true; a child it forks is some other process. The broker must ask at each
// message, so flipping bastion_ between two messages changes the answer.
class BrokerBastionPeerTest : public BrokerCaTest {
 protected:
  void SetUp() override {
    BrokerCaTest::SetUp();
    is_bastion_session_ = [this](pid_t pid) {
      return bastion_.load() && (pid == ::getpid() || every_pid_.load());
    };
  }

  static wire::RequestFields BastionRequest(const std::string& user) {
    wire::RequestFields f;
    f.service = "bastion";
    f.user = user;
    f.target_user = "root";
    f.host = "db1";
    f.remote_addr = "198.51.100.7";  // the person's address
    f.tty = "ssh";
    return f;
  }

  static wire::OpenSession BastionSession() {
    wire::OpenSession o;
    o.recorder = "bastion";
    o.user = "alice";
    o.remote_addr = "198.51.100.7";
    o.host = "bastion1";
    o.target = "db1";
    o.login = "root";
    return o;
  }

  // The answer to m over a new connection: "ok:<Type>" or "<code>: message".
  template <typename M>
  std::string Answer(const M& m) {
    wire::Client c = Connect();
    StatusOr<wire::Message> r = c.Call(m, Soon());
    if (!r.ok()) return "call failed: " + r.status().message();
    if (auto* e = std::get_if<wire::Error>(&*r)) {
      return std::string(wire::ErrorCodeName(e->code)) + ": " + e->message;
    }
    return std::string("ok:") + std::string(wire::MessageTypeName(wire::TypeOf(*r)));
  }

  // Runs fn in a child process (another pid) as uid/gid; its exit code.
  static int InChild(uid_t uid, gid_t gid, const std::function<int()>& fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(100);
      _exit(fn());
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  std::atomic<bool> bastion_{true};
  std::atomic<bool> every_pid_{false};  // every process counts as a bastion session
};

constexpr char kBastionPolicy[] =
    "policies:\n"
    "  - name: pinned\n    match: {service: [bastion], target_user: [deploy]}\n"
    "    approve: auto\n    reason: none\n    cert:\n      source_address: [192.0.2.10]\n"
    "  - name: anything\n    approve: auto\n    reason: none\n";

TEST_F(BrokerBastionPeerTest, BastionRequestsComeOnlyFromTheBastion) {
  Start(kBastionPolicy);  // the test's user is a submitter: that is not enough
  bastion_ = false;
  EXPECT_EQ(Answer(wire::SubmitRequest{BastionRequest(Me()), 0, false}),
            "permission_denied: service 'bastion' requests come only from the bastion");
  // Without a bastion at all (no listener), likewise.
  StopServer();
  is_bastion_session_ = nullptr;
  Start(kBastionPolicy);
  EXPECT_EQ(Answer(wire::SubmitRequest{BastionRequest(Me()), 0, false}),
            "permission_denied: service 'bastion' requests come only from the bastion");
  StopServer();
  EXPECT_THAT(AuditTrail(), ::testing::IsEmpty());
}

TEST_F(BrokerBastionPeerTest, TheBastionFilesForAnyUserButOnlyServiceBastion) {
  Start(kBastionPolicy, "nobody");  // the test's user is no submitter
  ASSERT_EQ(Answer(wire::SubmitRequest{BastionRequest("alice"), 0, false}), "ok:Decision");
  EXPECT_THAT(Answer(wire::SubmitRequest{Login(Me()), 0, false}),
              ::testing::StartsWith("permission_denied: uid "));
  EXPECT_THAT(Answer(wire::SubmitRequest{Login(Me()), 0, false}),
              HasSubstr(" is a bastion session and files only service 'bastion' requests"));
  // The same process once it is no bastion session: asked again, not cached.
  bastion_ = false;
  EXPECT_EQ(Answer(wire::SubmitRequest{Login(Me()), 0, false}), "ok:Decision");
  EXPECT_EQ(Answer(wire::SubmitRequest{BastionRequest("alice"), 0, false}),
            "permission_denied: service 'bastion' requests come only from the bastion");
}

TEST_F(BrokerBastionPeerTest, OnlyCertificateServicesCarryAPublicKey) {
  Start(kBastionPolicy);
  bastion_ = false;
  wire::RequestFields f = Login(Me());
  f.public_key = subject_;
  EXPECT_EQ(Answer(wire::SubmitRequest{f, 0, false}),
            "invalid_request: only ssh-cert and bastion requests carry a public key");
  f.service = "sudo";
  EXPECT_EQ(Answer(wire::SubmitRequest{f, 0, false}),
            "invalid_request: only ssh-cert and bastion requests carry a public key");
  EXPECT_EQ(Answer(wire::SubmitRequest{CertRequest(), 0, false}), "ok:Decision");
}

TEST_F(BrokerBastionPeerTest, BastionCertificatesTakeTheSourceAddressFromPolicyOnly) {
  Start(kBastionPolicy, "nobody");
  auto certificate = [&](const std::string& login) -> StatusOr<ca::Certificate> {
    wire::RequestFields f = BastionRequest("alice");
    f.target_user = login;
    f.public_key = subject_;
    wire::Client c = Connect();
    ASSIGN_OR_RETURN(wire::Message m, c.Call(wire::SubmitRequest{f, 0, false}, Soon()));
    auto* d = std::get_if<wire::Decision>(&m);
    if (d == nullptr || d->outcome != wire::Outcome::kApproved) return InternalError("no approval");
    return ca::Certificate::FromLine(d->certificate);
  };
  // The person's address (remote_addr) is not where the upstream connection
  // comes from: no source-address unless the policy names one.
  ASSERT_OK_AND_ASSIGN(ca::Certificate free, certificate("root"));
  EXPECT_THAT(free.fields().principals, ::testing::ElementsAre("root"));
  for (const ca::CertOption& o : free.fields().critical_options) {
    EXPECT_NE(o.name, ca::kOptSourceAddress);
  }
  ASSERT_OK_AND_ASSIGN(ca::Certificate pinned, certificate("deploy"));
  ASSERT_EQ(pinned.fields().critical_options.size(), 1u);
  EXPECT_EQ(pinned.fields().critical_options[0].name, ca::kOptSourceAddress);
  EXPECT_EQ(pinned.fields().critical_options[0].Value().value_or(""), "192.0.2.10");
}

TEST_F(BrokerBastionPeerTest, BastionEventsComeOnlyFromTheBastionAndAreAudited) {
  Start("policies: []\n", "nobody");
  wire::BastionEvent e{"login_refused", "",           "198.51.100.7", "root@db9", "", "",
                       "jitgate: unknown target 'db9' (targets: db1)"};
  EXPECT_EQ(Answer(e), "ok:BastionEventAck");
  wire::BastionEvent odd = e;
  odd.event = "made_up";
  EXPECT_EQ(Answer(odd), "invalid_request: unknown bastion event 'made_up'");
  bastion_ = false;
  EXPECT_THAT(Answer(e), ::testing::AllOf(::testing::StartsWith("permission_denied: "),
                               HasSubstr("only the bastion reports bastion events")));
  std::vector<nlohmann::json> events = StoreAuditEvents(dir_.Join("store"), "bastion");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["bastion"]["event"], "login_refused");
  EXPECT_EQ(events[0]["bastion"]["ssh_user"], "root@db9");
  EXPECT_EQ(events[0]["bastion"]["remote_addr"], "198.51.100.7");
  EXPECT_EQ(events[0]["comment"], "jitgate: unknown target 'db9' (targets: db1)");
  EXPECT_EQ(events[0]["actor"], "");
}

TEST_F(BrokerBastionPeerTest, BastionSessionsAreRecordedOnlyByTheBastion) {
  Start("policies: []\n", "nobody");
  wire::Client rec = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, rec.Call(BastionSession(), Soon()));
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  ASSERT_NE(opened, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  wire::OpenSession other = BastionSession();
  other.recorder = "jitgate-rec";
  EXPECT_THAT(Answer(other),
              HasSubstr(" is a bastion session and records only 'bastion' sessions"));

  // Not the bastion: root (which may run other recorders) is refused a
  // new bastion session and the bastion's existing one.
  bastion_ = false;
  EXPECT_EQ(Answer(BastionSession()),
            "permission_denied: 'bastion' sessions are recorded only by the bastion");
  wire::OpenSession resume = BastionSession();
  resume.session = opened->session;
  EXPECT_EQ(Answer(resume),
            "permission_denied: 'bastion' sessions are recorded only by the bastion");
  EXPECT_EQ(Answer(other), "ok:SessionOpened");

  // Another process, as a plain user, is refused too (whatever bastion_ says).
  bastion_ = true;
  passwd* nobody = ::getpwnam("nobody");
  if (::getuid() == 0 && nobody != nullptr) {
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
    EXPECT_EQ(InChild(nobody->pw_uid, nobody->pw_gid,
                      [&] {
                        StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
                        if (!c.ok()) return 101;
                        StatusOr<wire::Message> r = c->Call(BastionSession(), Soon());
                        if (!r.ok()) return 102;
                        auto* e = std::get_if<wire::Error>(&*r);
                        return e == nullptr ? 103 : int(e->code);
                      }),
              int(wire::ErrorCode::kPermissionDenied));
  }
  // The bastion itself resumes its session.
  EXPECT_EQ(Answer(resume), "ok:SessionOpened");
}

TEST_F(BrokerBastionPeerTest, ABastionSessionProcessResumesOnlyItsOwnRecording) {
  if (::getuid() != 0) GTEST_SKIP() << "InChild needs root (setgroups)";
  Start("policies: []\n");
  wire::Client rec = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, rec.Call(BastionSession(), Soon()));
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  ASSERT_NE(opened, nullptr) << wire::MessageTypeName(wire::TypeOf(m));
  wire::OpenSession resume = BastionSession();
  resume.session = opened->session;
  // Another session process (another pid the listener vouches for) may not
  // write into this person's recording.
  every_pid_ = true;
  EXPECT_EQ(InChild(::getuid(), ::getgid(),
                    [&] {
                      StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
                      if (!c.ok()) return 101;
                      StatusOr<wire::Message> r = c->Call(resume, Soon());
                      if (!r.ok()) return 102;
                      auto* e = std::get_if<wire::Error>(&*r);
                      if (e == nullptr) return 103;
                      if (e->message.find("may resume only the recording it opened") ==
                          std::string::npos) {
                        return 104;
                      }
                      return int(e->code);
                    }),
            int(wire::ErrorCode::kPermissionDenied));
  EXPECT_EQ(Answer(resume), "ok:SessionOpened");
}

// Health (docs/protocol.md §4.5) -------------------------------------------

TEST_F(BrokerServerTest, StatusAndMetricsFollowTheLoop) {
  with_health_ = true;
  Start(ApprovalPolicy(Me()));
  health_->WaitForPasses(1);
  wire::Client requester = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m,
                       requester.Call(wire::SubmitRequest{Login("alice"), 60, false}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestAccepted>(m));
  const wire::RequestAccepted acc = std::get<wire::RequestAccepted>(m);
  wire::Client other = Connect();
  ASSERT_OK_AND_ASSIGN(m, other.Call(wire::SpoolReport{"db1", 2, 4096}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::SpoolReportAck>(m));
  ASSERT_OK_AND_ASSIGN(m, other.Call(wire::GetStatus{}, Soon()));
  auto* r = std::get_if<wire::StatusReport>(&m);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->version, "jitgated test");
  EXPECT_EQ(r->config_file, "test.yaml");
  EXPECT_EQ(r->pending, 1u);
  EXPECT_EQ(r->sessions_live, 0u);
  EXPECT_EQ(r->store_dir, dir_.Join("store"));
  EXPECT_EQ(r->store_entries, store_->durable_size());
  EXPECT_GE(r->store_entries, 1u);  // the request's `created`
  EXPECT_EQ(r->verify, wire::CheckState::kOk);
  EXPECT_EQ(r->ca, wire::CheckState::kUnknown);
  ASSERT_EQ(r->spools.size(), 1u);
  EXPECT_EQ(r->spools[0].host, "db1");
  EXPECT_EQ(r->spools[0].sessions, 2u);
  EXPECT_EQ(r->spools[0].bytes, 4096u);
  EXPECT_THAT(metrics_->Render(), HasSubstr("jitgate_requests_pending 1\n"));

  ASSERT_OK_AND_ASSIGN(m, other.Call(wire::Approve{acc.id, acc.digest, "ok"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::RequestInfo>(m));
  ASSERT_OK_AND_ASSIGN(m, requester.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<wire::Decision>(m));
  ASSERT_OK_AND_ASSIGN(m, other.Call(wire::GetStatus{}, Soon()));
  EXPECT_EQ(std::get<wire::StatusReport>(m).pending, 0u);
  const std::string text = metrics_->Render();
  for (const char* line : {"jitgate_requests_pending 0\n",
                           "jitgate_requests_total{service=\"sshd\",outcome=\"approved\"} 1\n",
                           "jitgate_requests_total{service=\"sshd\",outcome=\"used\"} 1\n",
                           "jitgate_decision_seconds_count 1\n",
                           "jitgate_spool_backlog_sessions{host=\"db1\"} 2\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_THAT(text, ::testing::Not(HasSubstr("jitgate_store_append_seconds_count 0\n")));
}

// A stop with a drain (jitgated's bastion) calls on_stopping once and goes on
// serving, new connections too, until draining() is false.
TEST_F(BrokerServerTest, AStopServesOnWhileDraining) {
  std::atomic<int> stops{0};
  std::atomic<bool> drain{true};
  on_stopping_ = [&stops] { ++stops; };
  draining_ = [&drain] { return drain.load(); };
  Start("policies: []\n");
  server_->Stop();
  for (int i = 0; i < 1000 && stops.load() == 0; ++i) usleep(10'000);
  ASSERT_EQ(stops.load(), 1);
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(wire::SpoolReport{"db1", 0, 0}, Soon()));
  EXPECT_TRUE(std::holds_alternative<wire::SpoolReportAck>(m));
  drain = false;
  StopServer();  // joins: Run returns once the drain is over
  EXPECT_EQ(stops.load(), 1);
  on_stopping_ = nullptr;
  draining_ = nullptr;
}

TEST_F(BrokerServerTest, WithoutHealthStatusIsRefusedNotFatal) {
  Start("policies: []\n");
  wire::Client c = Connect();
  ASSERT_OK_AND_ASSIGN(wire::Message m, c.Call(wire::GetStatus{}, Soon()));
  auto* e = std::get_if<wire::Error>(&m);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, wire::ErrorCode::kInvalidRequest);
  ASSERT_OK_AND_ASSIGN(m, c.Call(wire::SpoolReport{"db1", 0, 0}, Soon()));  // still usable
  EXPECT_TRUE(std::holds_alternative<wire::SpoolReportAck>(m));
}

// Spool reports come from those who may record: root, submitters and the
// recorder group; anyone else is refused.
TEST_F(BrokerServerTest, SpoolReportsComeOnlyFromRecorders) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run a child as nobody";
  group* ng = ::getgrnam("nogroup");
  passwd* nobody = ::getpwnam("nobody");
  if (ng == nullptr || nobody == nullptr) GTEST_SKIP() << "no nobody/nogroup on this machine";
  broker_extra_ = "  recorder_group: nogroup\n";
  Start("policies: []\n", "root");
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  auto report_as = [&](gid_t gid) -> int {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(nobody->pw_uid) != 0) {
        _exit(100);
      }
      StatusOr<wire::Client> c = wire::Client::Connect(socket_, Soon(), "test");
      StatusOr<wire::Message> m =
          c.ok() ? c->Call(wire::SpoolReport{"db1", 1, 1}, Soon()) : c.status();
      if (!m.ok()) _exit(101);
      if (auto* e = std::get_if<wire::Error>(&*m)) _exit(static_cast<int>(e->code));
      _exit(std::holds_alternative<wire::SpoolReportAck>(*m) ? 0 : 102);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(report_as(ng->gr_gid), 0);
  EXPECT_EQ(report_as(nobody->pw_gid == ng->gr_gid ? 1 : nobody->pw_gid),
            int(wire::ErrorCode::kPermissionDenied));
}

}  // namespace
}  // namespace jitgate::broker
