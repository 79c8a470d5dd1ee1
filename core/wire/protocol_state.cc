#include "core/wire/protocol_state.h"

#include <string>

namespace jitgate::wire {

std::string_view ConnStateName(ConnState s) {
  switch (s) {
    case ConnState::kAwaitHello: return "AWAIT_HELLO";
    case ConnState::kReady: return "READY";
    case ConnState::kSubmitted: return "SUBMITTED";
    case ConnState::kAwaitReason: return "AWAIT_REASON";
    case ConnState::kWaiting: return "WAITING";
    case ConnState::kCancelling: return "CANCELLING";
    case ConnState::kReply: return "REPLY";
    case ConnState::kFollowing: return "FOLLOWING";
    case ConnState::kRecording: return "RECORDING";
    case ConnState::kClosing: return "CLOSING";
    case ConnState::kDone: return "DONE";
  }
  return "?";
}

Status ProtocolState::Violation(MessageType type) {
  std::string msg = "state machine error: " + MessageTypeName(type) + " not allowed in state " +
                    std::string(ConnStateName(state_));
  if (state_ == ConnState::kReply) msg += " (expecting " + MessageTypeName(expect_) + ")";
  state_ = ConnState::kDone;
  return FailedPreconditionError(std::move(msg));
}

Status ProtocolState::OnClientMessage(const Message& m) {
  const MessageType type = TypeOf(m);
  if (!IsClientToServer(type)) {
    std::string msg = "state machine error: " + MessageTypeName(type) + " is a broker message";
    state_ = ConnState::kDone;
    return FailedPreconditionError(std::move(msg));
  }
  switch (state_) {
    case ConnState::kAwaitHello:
      if (type != MessageType::kHello) break;
      in_hello_ = true;
      Expect(MessageType::kHelloAck, false);
      return OkStatus();
    case ConnState::kReady:
      switch (type) {
        case MessageType::kSubmitRequest:
          state_ = ConnState::kSubmitted;
          may_need_reason_ = true;
          return OkStatus();
        case MessageType::kResume:
          state_ = ConnState::kSubmitted;
          may_need_reason_ = false;
          return OkStatus();
        case MessageType::kListRequests:
          Expect(MessageType::kRequestList, false);
          return OkStatus();
        case MessageType::kGetRequest:
        case MessageType::kApprove:
        case MessageType::kDeny:
          Expect(MessageType::kRequestInfo, false);
          return OkStatus();
        case MessageType::kFollow:
          Expect(MessageType::kRequestList, true);
          return OkStatus();
        case MessageType::kListCerts:
        case MessageType::kRevoke:
          Expect(MessageType::kCertList, false);
          return OkStatus();
        case MessageType::kSignHostKey:
          Expect(MessageType::kHostCertificate, false);
          return OkStatus();
        case MessageType::kGetCaInfo:
          Expect(MessageType::kCaInfo, false);
          return OkStatus();
        case MessageType::kOpenSession:
          Expect(MessageType::kSessionOpened, false);
          then_record_ = true;
          return OkStatus();
        case MessageType::kTerminateSession:
          Expect(MessageType::kSessionTerminateAck, false);
          return OkStatus();
        case MessageType::kBastionEvent:
          Expect(MessageType::kBastionEventAck, false);
          return OkStatus();
        case MessageType::kGetStatus:
          Expect(MessageType::kStatusReport, false);
          return OkStatus();
        case MessageType::kSpoolReport:
          Expect(MessageType::kSpoolReportAck, false);
          return OkStatus();
        default:
          break;
      }
      break;
    case ConnState::kAwaitReason:
      if (type == MessageType::kProvideReason) {
        state_ = ConnState::kSubmitted;
        return OkStatus();
      }
      if (type == MessageType::kCancel) {
        state_ = ConnState::kCancelling;
        return OkStatus();
      }
      break;
    case ConnState::kWaiting:
      if (type == MessageType::kCancel) {
        state_ = ConnState::kCancelling;
        return OkStatus();
      }
      break;
    case ConnState::kDone:
      if (type == MessageType::kCancel) return OkStatus();  // crossed the Decision
      break;
    case ConnState::kRecording:
      if (type == MessageType::kSessionData) return OkStatus();
      if (type == MessageType::kCloseSession) {
        state_ = ConnState::kClosing;
        return OkStatus();
      }
      break;
    case ConnState::kSubmitted:
    case ConnState::kCancelling:
    case ConnState::kReply:
    case ConnState::kFollowing:
    case ConnState::kClosing:
      break;
  }
  return Violation(type);
}

Status ProtocolState::OnServerMessage(const Message& m) {
  const MessageType type = TypeOf(m);
  if (IsClientToServer(type)) {
    std::string msg = "state machine error: " + MessageTypeName(type) + " is a client message";
    state_ = ConnState::kDone;
    return FailedPreconditionError(std::move(msg));
  }
  if (const auto* err = std::get_if<Error>(&m)) {
    if (state_ == ConnState::kDone) return Violation(type);
    if (IsFatalError(err->code)) {
      state_ = ConnState::kDone;
      return OkStatus();
    }
    switch (state_) {
      case ConnState::kReply:
        // A non-fatal error answers one approver command; the handshake has
        // no non-fatal failure.
        state_ = in_hello_ ? ConnState::kDone : ConnState::kReady;
        in_hello_ = false;
        then_record_ = false;
        return OkStatus();
      case ConnState::kSubmitted:
      case ConnState::kAwaitReason:
      case ConnState::kWaiting:
      case ConnState::kCancelling:
      case ConnState::kRecording:
      case ConnState::kClosing:
        state_ = ConnState::kDone;  // every requester and recorder Error is final
        return OkStatus();
      default:
        return Violation(type);
    }
  }
  switch (state_) {
    case ConnState::kReply:
      if (type != expect_) break;
      state_ = then_follow_   ? ConnState::kFollowing
               : then_record_ ? ConnState::kRecording
                              : ConnState::kReady;
      in_hello_ = false;
      then_follow_ = false;
      then_record_ = false;
      return OkStatus();
    case ConnState::kSubmitted:
      if (type == MessageType::kNeedReason && may_need_reason_) {
        may_need_reason_ = false;
        state_ = ConnState::kAwaitReason;
        return OkStatus();
      }
      if (type == MessageType::kRequestAccepted) {
        state_ = ConnState::kWaiting;
        return OkStatus();
      }
      if (type == MessageType::kDecision) {
        state_ = ConnState::kDone;
        return OkStatus();
      }
      break;
    case ConnState::kWaiting:
    case ConnState::kCancelling:
      if (type == MessageType::kStatusUpdate) return OkStatus();
      if (type == MessageType::kDecision) {
        state_ = ConnState::kDone;
        return OkStatus();
      }
      break;
    case ConnState::kFollowing:
      if (type == MessageType::kRequestInfo) return OkStatus();
      break;
    case ConnState::kRecording:
      if (type == MessageType::kSessionAck) return OkStatus();
      if (type == MessageType::kSessionTerminated) return OkStatus();
      break;
    case ConnState::kClosing:
      // A termination may cross the recorder's CloseSession on the wire.
      if (type == MessageType::kSessionAck) return OkStatus();
      if (type == MessageType::kSessionTerminated) return OkStatus();
      if (type == MessageType::kSessionClosed) {
        state_ = ConnState::kDone;
        return OkStatus();
      }
      break;
    case ConnState::kAwaitHello:
    case ConnState::kReady:
    case ConnState::kAwaitReason:
    case ConnState::kDone:
      break;
  }
  return Violation(type);
}

}  // namespace jitgate::wire
