// The broker's event loop over a real Unix socket, with the real store and
// state database in a temporary directory, driven by the real wire client.
// Every caller here is this test process (SO_PEERCRED), so the configuration
// names the test's own user as approver or submitter as each case needs;
// tests/integration/approval drives the multi-user flows with real sshd,
// sudo and the CLI.
#include "broker/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <thread>

#include "core/base/env.h"
#include "core/wire/client.h"
#include "store/reader.h"
#include "store/store.h"
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
                       "]\nstore:\n  dir: " + dir_.Join("store") + "\n  key: " +
                       dir_.Join("log.key") + "\n" + approvers_and_policies;
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
    server_ = std::make_unique<Server>(config_, db_.get(), store_.get(), opts);
    ASSERT_OK(server_->Start());
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
  }

  void StopServer() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
    EXPECT_OK(run_status_);
    server_.reset();
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

}  // namespace
}  // namespace jitgate::broker
