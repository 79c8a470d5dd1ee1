#include "core/wire/protocol_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/wire/wire_testonly.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::wire {
namespace {

using ::jitgate::testing::StatusIs;

// One step of a conversation: who sent what, and the state after it.
struct Step {
  bool from_client;
  Message message;
  ConnState after;
};
Step C(Message m, ConnState after) { return {true, std::move(m), after}; }
Step S(Message m, ConnState after) { return {false, std::move(m), after}; }

const Decision kApproved{"7f3a9c02e1", {}, Outcome::kApproved, {"bob"}, "", "approved by bob", 1, ""};
const Decision kCancelled{"7f3a9c02e1", {}, Outcome::kCancelled, {}, "", "cancelled", 0, ""};
const RequestAccepted kAccepted{"7f3a9c02e1", {}, {}, "1 of oncall", 300};

// Runs the steps on a fresh state; every one must be allowed.
void Converse(const std::vector<Step>& steps, int line) {
  SCOPED_TRACE("conversation at line " + std::to_string(line));
  ProtocolState st;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    Status r = s.from_client ? st.OnClientMessage(s.message) : st.OnServerMessage(s.message);
    ASSERT_OK(r) << "step " << i;
    EXPECT_EQ(st.state(), s.after) << "step " << i << ": " << ConnStateName(st.state());
  }
}

std::vector<Step> Handshake() {
  return {C(Hello{}, ConnState::kReply), S(HelloAck{}, ConnState::kReady)};
}
std::vector<Step> Plus(std::vector<Step> a, const std::vector<Step>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ProtocolStateTest, AllowedConversations) {
  using CS = ConnState;
  // F1: submit, reason, accepted, updates, decision.
  Converse(Plus(Handshake(), {C(SubmitRequest{}, CS::kSubmitted), S(NeedReason{}, CS::kAwaitReason),
                         C(ProvideReason{"x"}, CS::kSubmitted), S(kAccepted, CS::kWaiting),
                         S(StatusUpdate{}, CS::kWaiting), S(StatusUpdate{}, CS::kWaiting),
                         S(kApproved, CS::kDone)}),
      __LINE__);
  // Auto-decision.
  Converse(Plus(Handshake(), {C(SubmitRequest{}, CS::kSubmitted), S(kApproved, CS::kDone)}), __LINE__);
  // Resume of a pending request, then of a decided one.
  Converse(Plus(Handshake(), {C(Resume{}, CS::kSubmitted), S(kAccepted, CS::kWaiting),
                         S(kApproved, CS::kDone)}),
      __LINE__);
  Converse(Plus(Handshake(), {C(Resume{}, CS::kSubmitted), S(kApproved, CS::kDone)}), __LINE__);
  // Cancel while waiting; a StatusUpdate may cross the Cancel.
  Converse(Plus(Handshake(), {C(SubmitRequest{}, CS::kSubmitted), S(kAccepted, CS::kWaiting),
                         C(Cancel{}, CS::kCancelling), S(StatusUpdate{}, CS::kCancelling),
                         S(kCancelled, CS::kDone)}),
      __LINE__);
  // Cancel instead of a reason.
  Converse(Plus(Handshake(), {C(SubmitRequest{}, CS::kSubmitted), S(NeedReason{}, CS::kAwaitReason),
                         C(Cancel{}, CS::kCancelling), S(kCancelled, CS::kDone)}),
      __LINE__);
  // The broker's view when the Cancel crosses the Decision: ignored in DONE.
  Converse(Plus(Handshake(), {C(SubmitRequest{}, CS::kSubmitted), S(kAccepted, CS::kWaiting),
                         S(kApproved, CS::kDone), C(Cancel{}, CS::kDone)}),
      __LINE__);
  // Requester errors are final, fatal or not.
  Converse(Plus(Handshake(), {C(Resume{}, CS::kSubmitted),
                         S(Error{ErrorCode::kNotFound, "no such request"}, CS::kDone)}),
      __LINE__);
  // Approver: list, show, approve with a non-fatal error in between.
  Converse(Plus(Handshake(),
           {C(ListRequests{}, CS::kReply), S(RequestList{}, CS::kReady),
            C(GetRequest{"7f3a"}, CS::kReply), S(testonly::SampleInfo(), CS::kReady),
            C(Approve{"7f3a", {}, ""}, CS::kReply), S(Error{ErrorCode::kDigestMismatch, "x"}, CS::kReady),
            C(Deny{"7f3a", {}, ""}, CS::kReply), S(testonly::SampleInfo(), CS::kReady)}),
      __LINE__);
  // Certificates: list, revoke (answered with the revoked certificates),
  // host signing, CA info; a non-fatal error (no CA) keeps the connection.
  Converse(Plus(Handshake(),
           {C(ListCerts{}, CS::kReply), S(CertList{}, CS::kReady),
            C(Revoke{42, "", ""}, CS::kReply), S(CertList{false, {testonly::SampleCert()}}, CS::kReady),
            C(SignHostKey{testonly::SamplePublicKey(), {"db1"}, 0}, CS::kReply),
            S(HostCertificate{7, "c"}, CS::kReady),
            C(GetCaInfo{}, CS::kReply), S(Error{ErrorCode::kNoCa, "no ca"}, CS::kReady),
            C(GetCaInfo{}, CS::kReply), S(CaInfo{testonly::SamplePublicKey(), 3600, 1, ""}, CS::kReady)}),
      __LINE__);
  // Recording: open, stream with acks pushed at any time, close.
  Converse(Plus(Handshake(),
           {C(testonly::SampleOpenSession(), CS::kReply), S(SessionOpened{"s1", 0}, CS::kRecording),
            C(SessionData{Bytes{1}}, CS::kRecording), C(SessionData{Bytes{2}}, CS::kRecording),
            S(SessionAck{1}, CS::kRecording), C(CloseSession{}, CS::kClosing),
            S(SessionAck{2}, CS::kClosing), S(SessionClosed{2}, CS::kDone)}),
      __LINE__);
  // A refused open leaves the connection ready; an error while recording ends it.
  Converse(Plus(Handshake(),
           {C(OpenSession{}, CS::kReply), S(Error{ErrorCode::kPermissionDenied, "no"}, CS::kReady),
            C(OpenSession{}, CS::kReply), S(SessionOpened{"s1", 0}, CS::kRecording),
            S(Error{ErrorCode::kInvalidRequest, "chunk 3 out of order"}, CS::kDone)}),
      __LINE__);
  // Terminate: an approver command answered by an ack or a non-fatal error;
  // the recorder is told while recording, or while closing (crossed).
  Converse(Plus(Handshake(),
           {C(TerminateSession{"k3n8", "done"}, CS::kReply),
            S(Error{ErrorCode::kPermissionDenied, "no"}, CS::kReady),
            C(TerminateSession{"k3n8", ""}, CS::kReply),
            S(SessionTerminateAck{"k3n8v2x9q4m1", false}, CS::kReady),
            C(TerminateSession{"k3n8v2x9q4m1", ""}, CS::kReply),
            S(SessionTerminateAck{"k3n8v2x9q4m1", true}, CS::kReady)}),
      __LINE__);
  Converse(Plus(Handshake(),
           {C(testonly::SampleOpenSession(), CS::kReply), S(SessionOpened{"s1", 0}, CS::kRecording),
            S(SessionTerminated{"bob", "done"}, CS::kRecording),
            C(SessionData{Bytes{1}}, CS::kRecording), C(CloseSession{}, CS::kClosing),
            S(SessionTerminated{"bob", ""}, CS::kClosing), S(SessionAck{1}, CS::kClosing),
            S(SessionClosed{1}, CS::kDone)}),
      __LINE__);
  // Health: GetStatus and SpoolReport are one-reply commands; the
  // connection is ready again after each.
  Converse(Plus(Handshake(),
           {C(GetStatus{}, CS::kReply), S(testonly::SampleStatusReport(), CS::kReady),
            C(SpoolReport{"db1", 1, 2}, CS::kReply),
            S(Error{ErrorCode::kPermissionDenied, "no"}, CS::kReady),
            C(SpoolReport{"db1", 1, 2}, CS::kReply), S(SpoolReportAck{}, CS::kReady)}),
      __LINE__);
  // Follow: snapshot, then pushes.
  Converse(Plus(Handshake(), {C(Follow{}, CS::kReply), S(RequestList{}, CS::kFollowing),
                         S(testonly::SampleInfo(), CS::kFollowing),
                         S(testonly::SampleInfo(), CS::kFollowing)}),
      __LINE__);
  // Fatal errors end everything, even before the Hello.
  Converse({S(Error{ErrorCode::kMalformed, "bad frame"}, CS::kDone)}, __LINE__);
  Converse({C(Hello{}, CS::kReply), S(Error{ErrorCode::kUnsupportedVersion, "v"}, CS::kDone)}, __LINE__);
  Converse(Plus(Handshake(), {C(Follow{}, CS::kReply), S(RequestList{}, CS::kFollowing),
                         S(Error{ErrorCode::kInternal, "db"}, CS::kDone)}),
      __LINE__);
}

// Runs `prefix` (all allowed), then `bad`, which must be refused with `msg`.
void Refused(const std::vector<Step>& prefix, const Step& bad, const std::string& msg, int line) {
  SCOPED_TRACE("refusal at line " + std::to_string(line));
  ProtocolState st;
  for (const Step& s : prefix) {
    ASSERT_OK(s.from_client ? st.OnClientMessage(s.message) : st.OnServerMessage(s.message));
  }
  Status r = bad.from_client ? st.OnClientMessage(bad.message) : st.OnServerMessage(bad.message);
  EXPECT_THAT(r, StatusIs(StatusCode::kFailedPrecondition, msg));
  EXPECT_EQ(st.state(), ConnState::kDone);
}

TEST(ProtocolStateTest, WrongStateIsRefused) {
  using CS = ConnState;
  const auto x = CS::kDone;  // `after` is unused for the refused step
  Refused({}, C(SubmitRequest{}, x), "state machine error: SubmitRequest not allowed in state AWAIT_HELLO", __LINE__);
  Refused({}, S(HelloAck{}, x), "state machine error: HelloAck not allowed in state AWAIT_HELLO", __LINE__);
  Refused({C(Hello{}, x)}, C(Hello{}, x),
          "state machine error: Hello not allowed in state REPLY (expecting HelloAck)", __LINE__);
  Refused({C(Hello{}, x)}, S(RequestList{}, x),
          "state machine error: RequestList not allowed in state REPLY (expecting HelloAck)", __LINE__);
  Refused(Handshake(), C(Hello{}, x), "state machine error: Hello not allowed in state READY", __LINE__);
  Refused(Handshake(), C(ProvideReason{}, x), "state machine error: ProvideReason not allowed in state READY", __LINE__);
  Refused(Handshake(), C(Cancel{}, x), "state machine error: Cancel not allowed in state READY", __LINE__);
  Refused(Handshake(), S(kApproved, x), "state machine error: Decision not allowed in state READY", __LINE__);
  Refused(Handshake(), S(Error{ErrorCode::kNotFound, ""}, x),
          "state machine error: Error not allowed in state READY", __LINE__);
  // Nothing may be sent while the broker owes the answer.
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x)}), C(Cancel{}, x),
          "state machine error: Cancel not allowed in state SUBMITTED", __LINE__);
  Refused(Plus(Handshake(), {C(ListRequests{}, x)}), C(GetRequest{"7f3a"}, x),
          "state machine error: GetRequest not allowed in state REPLY (expecting RequestList)", __LINE__);
  Refused(Plus(Handshake(), {C(GetRequest{"7f3a"}, x)}), S(RequestList{}, x),
          "state machine error: RequestList not allowed in state REPLY (expecting RequestInfo)", __LINE__);
  // NeedReason only once, and never after Resume.
  Refused(Plus(Handshake(), {C(Resume{}, x)}), S(NeedReason{}, x),
          "state machine error: NeedReason not allowed in state SUBMITTED", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(NeedReason{}, x), C(ProvideReason{}, x)}),
          S(NeedReason{}, x), "state machine error: NeedReason not allowed in state SUBMITTED", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(kAccepted, x)}), S(kAccepted, x),
          "state machine error: RequestAccepted not allowed in state WAITING", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(kAccepted, x)}), C(SubmitRequest{}, x),
          "state machine error: SubmitRequest not allowed in state WAITING", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(kApproved, x)}), S(StatusUpdate{}, x),
          "state machine error: StatusUpdate not allowed in state DONE", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(kApproved, x)}), C(SubmitRequest{}, x),
          "state machine error: SubmitRequest not allowed in state DONE", __LINE__);
  Refused(Plus(Handshake(), {C(Follow{}, x), S(RequestList{}, x)}), C(ListRequests{}, x),
          "state machine error: ListRequests not allowed in state FOLLOWING", __LINE__);
  Refused(Plus(Handshake(), {C(ListCerts{}, x)}), S(RequestList{}, x),
          "state machine error: RequestList not allowed in state REPLY (expecting CertList)", __LINE__);
  Refused(Plus(Handshake(), {C(SignHostKey{}, x)}), S(CertList{}, x),
          "state machine error: CertList not allowed in state REPLY (expecting HostCertificate)", __LINE__);
  Refused(Handshake(), S(CaInfo{}, x), "state machine error: CaInfo not allowed in state READY", __LINE__);
  Refused(Plus(Handshake(), {C(SubmitRequest{}, x), S(kAccepted, x)}), C(Revoke{}, x),
          "state machine error: Revoke not allowed in state WAITING", __LINE__);
  Refused(Plus(Handshake(), {C(OpenSession{}, x), S(SessionOpened{"s1", 0}, x)}),
          C(ListRequests{}, x), "state machine error: ListRequests not allowed in state RECORDING",
          __LINE__);
  Refused(Plus(Handshake(), {C(OpenSession{}, x), S(SessionOpened{"s1", 0}, x), C(CloseSession{}, x)}),
          C(SessionData{Bytes{1}}, x), "state machine error: SessionData not allowed in state CLOSING",
          __LINE__);
  Refused(Handshake(), S(SessionAck{}, x), "state machine error: SessionAck not allowed in state READY",
          __LINE__);
  Refused(Handshake(), S(SessionTerminated{"bob", ""}, x),
          "state machine error: SessionTerminated not allowed in state READY", __LINE__);
  Refused(Plus(Handshake(), {C(TerminateSession{"k3n8", ""}, x)}),
          S(SessionTerminated{"bob", ""}, x),
          "state machine error: SessionTerminated not allowed in state REPLY (expecting "
          "SessionTerminateAck)",
          __LINE__);
  Refused(Plus(Handshake(), {C(OpenSession{}, x), S(SessionOpened{"s1", 0}, x)}),
          C(TerminateSession{"k3n8", ""}, x),
          "state machine error: TerminateSession not allowed in state RECORDING", __LINE__);
  Refused(Handshake(), S(SessionTerminateAck{"k3n8", false}, x),
          "state machine error: SessionTerminateAck not allowed in state READY", __LINE__);
  // Direction.
  Refused({}, C(SessionTerminated{"bob", ""}, x),
          "state machine error: SessionTerminated is a broker message", __LINE__);
  Refused({}, C(HelloAck{}, x), "state machine error: HelloAck is a broker message", __LINE__);
  Refused({}, S(Hello{}, x), "state machine error: Hello is a client message", __LINE__);
}

TEST(ProtocolStateTest, AStateMachineErrorIsFinal) {
  ProtocolState st;
  EXPECT_FALSE(st.OnClientMessage(Cancel{}).ok());
  EXPECT_EQ(st.state(), ConnState::kDone);
  EXPECT_FALSE(st.OnClientMessage(Hello{}).ok());
}

}  // namespace
}  // namespace jitgate::wire
