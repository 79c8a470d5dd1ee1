// The broker's event loop over a real Unix socket, with the real store and
// state database in a temporary directory, driven by the real wire client.
// Every caller here is this test process (SO_PEERCRED), so the configuration
// names the test's own user as approver or submitter as each case needs;
// tests/integration/approval drives the multi-user flows with real sshd,
// sudo and the CLI.
#include "broker/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "ca/cert.h"
#include "ca/krl.h"
#include "ca/sshkey.h"
#include "core/base/env.h"
#include "core/wire/client.h"
#include "recorder/recording.h"
#include "recorder/recording_client.h"
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
                       "]\n" + broker_extra_ + "store:\n  dir: " + dir_.Join("store") + "\n  key: " +
                       dir_.Join("log.key") + "\n" + ca_yaml_ + approvers_and_policies;
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
    if (config_.ca.has_value()) {
      ASSERT_OK_AND_ASSIGN(ca_, CertAuthority::Load(*config_.ca));
      opts.ca = ca_.get();
    }
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
  std::unique_ptr<CertAuthority> ca_;
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
  // Chunks of a session with n output records of distinct bytes.
  static std::vector<Bytes> Chunks(const std::string& session, int n, uint64_t first_index = 0) {
    recorder::ChunkBuilder b(session);
    std::vector<Bytes> out;
    for (int i = 0; i < n; ++i) {
      recorder::Record r;
      r.stream = i % 3 == 0 ? recorder::Stream::kInput : recorder::Stream::kOutput;
      r.time_ns = int64_t{i} * 1'000'000;
      r.data = Bytes(20'000, uint8_t('a' + i % 26));
      r.data[0] = 0;  // raw bytes, NUL included
      auto done = b.Add(std::move(r));
      EXPECT_OK(done.status());
      if (done.ok()) out.insert(out.end(), done->begin(), done->end());
    }
    auto last = b.Flush();
    EXPECT_OK(last.status());
    if (last.ok() && last->has_value()) out.push_back(**last);
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
};

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
    const Bytes& b = by_time[int64_t{i} * 1'000'000];
    ASSERT_EQ(b.size(), 20'000u);
    EXPECT_EQ(b[0], 0);
    EXPECT_EQ(b[1], uint8_t('a' + i % 26));
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
    r.data = Bytes(7'000 + i, uint8_t(i));
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

}  // namespace
}  // namespace jitgate::broker
