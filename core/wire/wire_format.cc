#include "core/wire/wire_format.h"

#include <cstdio>
#include <string>

namespace jitgate::wire {

bool IsKnownMessageType(uint8_t type) {
  return (type >= 0x01 && type <= 0x03) || (type >= 0x10 && type <= 0x17) ||
         (type >= 0x20 && type <= 0x2d) ||
         (type >= 0x30 && type <= 0x3e);
}

std::string MessageTypeName(uint8_t type) {
  switch (MessageType(type)) {
    case MessageType::kHello: return "Hello";
    case MessageType::kHelloAck: return "HelloAck";
    case MessageType::kError: return "Error";
    case MessageType::kSubmitRequest: return "SubmitRequest";
    case MessageType::kNeedReason: return "NeedReason";
    case MessageType::kProvideReason: return "ProvideReason";
    case MessageType::kRequestAccepted: return "RequestAccepted";
    case MessageType::kStatusUpdate: return "StatusUpdate";
    case MessageType::kDecision: return "Decision";
    case MessageType::kResume: return "Resume";
    case MessageType::kCancel: return "Cancel";
    case MessageType::kListRequests: return "ListRequests";
    case MessageType::kRequestList: return "RequestList";
    case MessageType::kGetRequest: return "GetRequest";
    case MessageType::kRequestInfo: return "RequestInfo";
    case MessageType::kApprove: return "Approve";
    case MessageType::kDeny: return "Deny";
    case MessageType::kFollow: return "Follow";
    case MessageType::kListCerts: return "ListCerts";
    case MessageType::kCertList: return "CertList";
    case MessageType::kRevoke: return "Revoke";
    case MessageType::kSignHostKey: return "SignHostKey";
    case MessageType::kHostCertificate: return "HostCertificate";
    case MessageType::kGetCaInfo: return "GetCaInfo";
    case MessageType::kCaInfo: return "CaInfo";
    case MessageType::kOpenSession: return "OpenSession";
    case MessageType::kSessionOpened: return "SessionOpened";
    case MessageType::kSessionData: return "SessionData";
    case MessageType::kSessionAck: return "SessionAck";
    case MessageType::kCloseSession: return "CloseSession";
    case MessageType::kSessionClosed: return "SessionClosed";
    case MessageType::kTerminateSession: return "TerminateSession";
    case MessageType::kSessionTerminateAck: return "SessionTerminateAck";
    case MessageType::kSessionTerminated: return "SessionTerminated";
    case MessageType::kBastionEvent: return "BastionEvent";
    case MessageType::kBastionEventAck: return "BastionEventAck";
    case MessageType::kGetStatus: return "GetStatus";
    case MessageType::kStatusReport: return "StatusReport";
    case MessageType::kSpoolReport: return "SpoolReport";
    case MessageType::kSpoolReportAck: return "SpoolReportAck";
  }
  char buf[16];
  std::snprintf(buf, sizeof(buf), "type 0x%02x", unsigned(type));
  return buf;
}

bool IsClientToServer(MessageType type) {
  switch (type) {
    case MessageType::kHello:
    case MessageType::kSubmitRequest:
    case MessageType::kProvideReason:
    case MessageType::kResume:
    case MessageType::kCancel:
    case MessageType::kListRequests:
    case MessageType::kGetRequest:
    case MessageType::kApprove:
    case MessageType::kDeny:
    case MessageType::kFollow:
    case MessageType::kListCerts:
    case MessageType::kRevoke:
    case MessageType::kSignHostKey:
    case MessageType::kGetCaInfo:
    case MessageType::kOpenSession:
    case MessageType::kSessionData:
    case MessageType::kCloseSession:
    case MessageType::kTerminateSession:
    case MessageType::kBastionEvent:
    case MessageType::kGetStatus:
    case MessageType::kSpoolReport:
      return true;
    default:
      return false;
  }
}

bool IsFatalError(ErrorCode code) {
  return code == ErrorCode::kMalformed || code == ErrorCode::kUnexpectedMessage ||
         code == ErrorCode::kUnsupportedVersion || code == ErrorCode::kInternal;
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kUnexpectedMessage: return "unexpected_message";
    case ErrorCode::kUnsupportedVersion: return "unsupported_version";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAmbiguous: return "ambiguous";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kDigestMismatch: return "digest_mismatch";
    case ErrorCode::kNotPending: return "not_pending";
    case ErrorCode::kSelfApproval: return "self_approval";
    case ErrorCode::kDuplicateVote: return "duplicate_vote";
    case ErrorCode::kInvalidRequest: return "invalid_request";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kNoCa: return "no_ca";
  }
  return "unknown";
}

std::string_view RequestStateName(RequestState s) {
  switch (s) {
    case RequestState::kPending: return "pending";
    case RequestState::kApproved: return "approved";
    case RequestState::kDenied: return "denied";
    case RequestState::kExpired: return "expired";
    case RequestState::kCancelled: return "cancelled";
    case RequestState::kUsed: return "used";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kApproved: return "approved";
    case Outcome::kDenied: return "denied";
    case Outcome::kExpired: return "expired";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kError: return "error";
  }
  return "unknown";
}

}  // namespace jitgate::wire
