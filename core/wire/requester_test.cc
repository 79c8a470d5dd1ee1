#include "core/wire/requester.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status_macros.h"
#include "core/wire/wire_testonly.h"
#include "tests/testing/fake_broker.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::wire {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Records what RunRequest told the user and answers AskReason from a script.
class RecordingUi : public RequesterUi {
 public:
  std::optional<std::string> AskReason(const NeedReason& ask) override {
    events.push_back("ask:" + ask.prompt);
    return reason;
  }
  void OnAccepted(const RequestAccepted& a) override {
    events.push_back("accepted:" + a.id + ":" + a.approvers);
  }
  void OnStatus(const StatusUpdate& u) override {
    events.push_back("status:" + u.message);
  }
  void OnReconnecting(const Status& why) override {
    events.push_back("reconnecting");
    reconnect_reasons.push_back(why);
  }

  std::optional<std::string> reason;
  std::vector<std::string> events;
  std::vector<Status> reconnect_reasons;
};

RequestFields Fields() {
  RequestFields f = testonly::SampleFields();
  f.reason.clear();
  return f;
}

RequesterOptions Options(const std::string& path, int64_t timeout_ms = 5000) {
  RequesterOptions o;
  o.socket_path = path;
  o.client_name = "requester-test";
  o.timeout_ms = timeout_ms;
  return o;
}

TEST(RequesterTest, AutoApprovedRequestIsGranted) {
  FakeBroker broker(FakeBroker::AutoApprove());
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  ASSERT_OK(r);
  EXPECT_TRUE(Granted(r));
  EXPECT_EQ(r->id, "7f3a9c02");
  EXPECT_THAT(ui.events, IsEmpty());
  std::vector<SubmitRequest> sent = broker.Submitted();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].fields, Fields());
  EXPECT_EQ(sent[0].timeout_seconds, 5u);
  EXPECT_FALSE(sent[0].can_prompt);
}

TEST(RequesterTest, TimeoutIsSentRoundedUp) {
  FakeBroker broker(FakeBroker::AutoApprove());
  RecordingUi ui;
  ASSERT_OK(RunRequest(Fields(), Options(broker.socket_path(), 1001), &ui));
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_EQ(broker.Submitted()[0].timeout_seconds, 2u);
}

TEST(RequesterTest, ApprovalAfterWaitingIsGranted) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  ASSERT_OK(r);
  EXPECT_TRUE(Granted(r));
  EXPECT_THAT(r->decided_by, ElementsAre("bob"));
  EXPECT_THAT(ui.events, ElementsAre("accepted:7f3a9c02:1 of oncall",
                                     "status:notified bob, carol"));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST(RequesterTest, DenialIsAnAnswerButNotGranted) {
  FakeBroker broker(FakeBroker::Deny("denied by carol: not during the freeze"));
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  ASSERT_OK(r);
  EXPECT_FALSE(Granted(r));
  EXPECT_EQ(r->outcome, Outcome::kDenied);
  EXPECT_EQ(r->message, "denied by carol: not during the freeze");
}

TEST(RequesterTest, ReasonIsAskedAndBoundIntoTheDigest) {
  FakeBroker broker(
      FakeBroker::NeedReasonThenApprove(true, "Reason for sudo on db1: "));
  RecordingUi ui;
  ui.reason = "deploy hotfix #412";
  RequesterOptions o = Options(broker.socket_path());
  o.can_prompt = true;
  RequesterResult r = RunRequest(Fields(), o, &ui);
  ASSERT_OK(r);
  EXPECT_TRUE(Granted(r));
  EXPECT_THAT(ui.events, ElementsAre("ask:Reason for sudo on db1: ",
                                     "accepted:7f3a9c02:1 of oncall"));
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_TRUE(broker.Submitted()[0].can_prompt);
  EXPECT_TRUE(broker.Got<ProvideReason>());
  // The digest the broker used includes the reason.
  RequestFields with_reason = Fields();
  with_reason.reason = "deploy hotfix #412";
  EXPECT_EQ(r->digest, RequestDigest(with_reason));
}

TEST(RequesterTest, RefusedReasonSendsCancelAndFailsClosed) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove());
  RecordingUi ui;
  ui.reason = std::nullopt;
  RequesterOptions o = Options(broker.socket_path());
  o.can_prompt = true;
  RequesterResult r = RunRequest(Fields(), o, &ui);
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kCancelled,
                                   "no reason given; request cancelled"));
  EXPECT_FALSE(Granted(r));
  // The fake records the Cancel before it sees the close.
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_TRUE(broker.Got<Cancel>());
  EXPECT_FALSE(broker.Got<ProvideReason>());
}

TEST(RequesterTest, EmptyRequiredReasonCancels) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(/*required=*/true));
  RecordingUi ui;
  ui.reason = "";
  RequesterOptions o = Options(broker.socket_path());
  o.can_prompt = true;
  EXPECT_THAT(RunRequest(Fields(), o, &ui).status(),
              StatusIs(StatusCode::kCancelled,
                       "a reason is required; request cancelled"));
}

TEST(RequesterTest, NeedReasonWithoutCanPromptIsAProtocolViolation) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.HandshakeAndSubmit().status());
    RETURN_IF_ERROR(c.Send(NeedReason{true, "Reason: "}));
    c.WaitForClientClose();
    return OkStatus();
  });
  RecordingUi ui;
  EXPECT_THAT(RunRequest(Fields(), Options(broker.socket_path()), &ui).status(),
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("asked for a reason although")));
  EXPECT_THAT(ui.events, IsEmpty());
}

// A broker that answers with digests of other fields.
FakeBroker::Script WrongDigest(bool in_accepted) {
  return [in_accepted](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(SubmitRequest req, c.HandshakeAndSubmit());
    RequestFields other = req.fields;
    other.target_user = "postgres";
    RETURN_IF_ERROR(c.Send(
        FakeBroker::AcceptedFor("7f3a9c02", in_accepted ? other : req.fields)));
    (void)c.Send(FakeBroker::DecisionFor("7f3a9c02", other, Outcome::kApproved,
                                         "approved"));
    c.WaitForClientClose();
    return OkStatus();
  };
}

TEST(RequesterTest, DigestMismatchInAcceptedIsNotGranted) {
  FakeBroker broker(WrongDigest(/*in_accepted=*/true));
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  EXPECT_THAT(r.status(),
              StatusIs(StatusCode::kDataLoss, HasSubstr("digest mismatch")));
  EXPECT_FALSE(Granted(r));
  EXPECT_THAT(ui.events, IsEmpty());  // never shown as accepted
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_TRUE(broker.Got<Cancel>());
}

TEST(RequesterTest, DigestMismatchInDecisionIsNotGranted) {
  FakeBroker broker(WrongDigest(/*in_accepted=*/false));
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  EXPECT_THAT(r.status(),
              StatusIs(StatusCode::kDataLoss,
                       "jitgate broker's decision on request 7f3a9c02 is for "
                       "different fields "
                       "than were sent (digest mismatch); access denied"));
  EXPECT_FALSE(Granted(r));
}

TEST(RequesterTest, DecisionForAnotherIdIsNotGranted) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(SubmitRequest req, c.HandshakeAndSubmit());
    RETURN_IF_ERROR(c.Send(FakeBroker::AcceptedFor("7f3a9c02", req.fields)));
    RETURN_IF_ERROR(c.Send(FakeBroker::DecisionFor("0b1c2d3e", req.fields,
                                                   Outcome::kApproved, "")));
    c.WaitForClientClose();
    return OkStatus();
  });
  RecordingUi ui;
  EXPECT_THAT(RunRequest(Fields(), Options(broker.socket_path()), &ui).status(),
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("decision for request 0b1c2d3e")));
}

TEST(RequesterTest, ErrorDecisionWithoutIdIsAnAnswerButNotGranted) {
  // The only decision without a request id: the broker recorded nothing.
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.HandshakeAndSubmit().status());
    Decision d;
    d.outcome = Outcome::kError;
    d.message = "policy store unavailable";
    RETURN_IF_ERROR(c.Send(d));
    c.WaitForClientClose();
    return OkStatus();
  });
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  ASSERT_OK(r);
  EXPECT_EQ(r->outcome, Outcome::kError);
  EXPECT_FALSE(Granted(r));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST(RequesterTest, LostConnectionAfterAcceptedResumes) {
  FakeBroker broker(FakeBroker::AcceptThenCloseToForceResume());
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(broker.socket_path()), &ui);
  ASSERT_OK(r);
  EXPECT_TRUE(Granted(r));
  EXPECT_EQ(broker.connections(), 2);
  EXPECT_THAT(ui.events,
              ElementsAre("accepted:7f3a9c02:1 of oncall", "reconnecting",
                          "accepted:7f3a9c02:1 of oncall"));
  ASSERT_EQ(ui.reconnect_reasons.size(), 1u);
  EXPECT_THAT(ui.reconnect_reasons[0],
              StatusIs(StatusCode::kUnavailable, HasSubstr("closed")));
  EXPECT_TRUE(broker.Got<Resume>());
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST(RequesterTest, ResumeRetriesWithBackoffUntilTheBrokerIsBack) {
  // The client reaches the fake through a symlink. When the connection is
  // lost the link disappears (connect: ENOENT, as while a broker restarts)
  // and comes back 350 ms later. The backoff runs on real time (Deadline
  // needs the real clock), so this one test waits for real.
  FakeBroker broker(FakeBroker::AcceptThenCloseToForceResume());
  jitgate::testing::TempDir dir;
  std::string link = dir.Join("broker.sock");
  ASSERT_EQ(::symlink(broker.socket_path().c_str(), link.c_str()), 0);
  struct Ui : RecordingUi {
    std::string link, target;
    std::thread restorer;
    void OnReconnecting(const Status& why) override {
      RecordingUi::OnReconnecting(why);
      (void)::unlink(link.c_str());
      restorer = std::thread([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(350));
        (void)::symlink(target.c_str(), link.c_str());
      });
    }
  } ui;
  ui.link = link;
  ui.target = broker.socket_path();
  auto start = std::chrono::steady_clock::now();
  RequesterResult r = RunRequest(Fields(), Options(link), &ui);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(ui.restorer.joinable());
  ui.restorer.join();
  ASSERT_OK(r);
  EXPECT_TRUE(Granted(r));
  EXPECT_EQ(broker.connections(), 2);
  // Attempts at about 100, 300 and 700 ms: the broker is back at 350 ms, so
  // the third attempt succeeds (neither a busy loop nor a 1 s step).
  EXPECT_GE(took, std::chrono::milliseconds(650));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
}

TEST(RequesterTest, BrokerGoneForGoodFailsAtTheDeadline) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(SubmitRequest req, c.HandshakeAndSubmit());
    RETURN_IF_ERROR(c.Send(FakeBroker::AcceptedFor("7f3a9c02", req.fields)));
    c.broker().StopListening();
    c.Close();
    return OkStatus();
  });
  RecordingUi ui;
  auto start = std::chrono::steady_clock::now();
  RequesterResult r =
      RunRequest(Fields(), Options(broker.socket_path(), 800), &ui);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(
      r.status(),
      StatusIs(StatusCode::kDeadlineExceeded,
               HasSubstr(
                   "no decision on request 7f3a9c02 within 1 s (jitgate broker "
                   "unreachable at " +
                   broker.socket_path() + ": No such file or directory)")));
  EXPECT_GE(took, std::chrono::milliseconds(780));
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_THAT(ui.events,
              ElementsAre("accepted:7f3a9c02:1 of oncall", "reconnecting"));
}

TEST(RequesterTest, SilentBrokerFailsAtTheDeadline) {
  FakeBroker broker(FakeBroker::NeverAnswer());
  RecordingUi ui;
  auto start = std::chrono::steady_clock::now();
  RequesterResult r =
      RunRequest(Fields(), Options(broker.socket_path(), 300), &ui);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(r.status(),
              StatusIs(StatusCode::kDeadlineExceeded,
                       "no decision on request 7f3a9c02 within 1 s"));
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

TEST(RequesterTest, LostBeforeAcceptedIsUnreachable) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.HandshakeAndSubmit().status());
    c.Close();
    return OkStatus();
  });
  RecordingUi ui;
  EXPECT_THAT(
      RunRequest(Fields(), Options(broker.socket_path()), &ui).status(),
      StatusIs(StatusCode::kUnavailable,
               "jitgate broker unreachable at " + broker.socket_path() +
                   ": connection lost before the request was accepted"));
  EXPECT_EQ(broker.connections(), 1);  // no Resume attempt without an id
}

TEST(RequesterTest, NoBrokerIsUnavailable) {
  jitgate::testing::TempDir dir;
  std::string path = dir.Join("jitgated.sock");
  RecordingUi ui;
  RequesterResult r = RunRequest(Fields(), Options(path), &ui);
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kUnavailable,
                                   "jitgate broker unreachable at " + path +
                                       ": No such file or directory"));
  EXPECT_FALSE(Granted(r));
}

struct ErrorCase {
  ErrorCode code;
  StatusCode want;
};

TEST(RequesterTest, BrokerErrorsAreMapped) {
  for (ErrorCase c :
       {ErrorCase{ErrorCode::kNotFound, StatusCode::kNotFound},
        ErrorCase{ErrorCode::kPermissionDenied, StatusCode::kPermissionDenied},
        ErrorCase{ErrorCode::kInvalidRequest, StatusCode::kInvalidArgument},
        ErrorCase{ErrorCode::kBusy, StatusCode::kResourceExhausted},
        ErrorCase{ErrorCode::kInternal, StatusCode::kInternal},
        ErrorCase{ErrorCode::kMalformed, StatusCode::kInternal}}) {
    SCOPED_TRACE(std::string(ErrorCodeName(c.code)));
    FakeBroker broker(
        FakeBroker::SendError(c.code, "alice may not file for bob"));
    RecordingUi ui;
    RequesterResult r =
        RunRequest(Fields(), Options(broker.socket_path()), &ui);
    EXPECT_THAT(r.status(),
                StatusIs(c.want, "jitgate broker refused the request (" +
                                     std::string(ErrorCodeName(c.code)) +
                                     "): alice may not file for bob"));
  }
}

TEST(RequesterTest, ResumeOfAnUnknownRequestIsNotFound) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    if (c.index() == 0) {
      ASSIGN_OR_RETURN(SubmitRequest req, c.HandshakeAndSubmit());
      RETURN_IF_ERROR(c.Send(FakeBroker::AcceptedFor("7f3a9c02", req.fields)));
      return OkStatus();  // closes
    }
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(c.Read().status());
    return c.Send(Error{ErrorCode::kNotFound, "no request 7f3a9c02"});
  });
  RecordingUi ui;
  EXPECT_THAT(RunRequest(Fields(), Options(broker.socket_path()), &ui).status(),
              StatusIs(StatusCode::kNotFound,
                       "jitgate broker refused request 7f3a9c02 (not_found): "
                       "no request 7f3a9c02"));
}

TEST(RequesterTest, BadOptionsAreInvalidArgument) {
  RecordingUi ui;
  RequesterOptions o = Options("/nonexistent/jitgated.sock", 0);
  EXPECT_THAT(RunRequest(Fields(), o, &ui).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("timeout")));
  EXPECT_THAT(
      RunRequest(Fields(), Options("/x"), nullptr).status(),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("user interface")));
}

}  // namespace
}  // namespace jitgate::wire
