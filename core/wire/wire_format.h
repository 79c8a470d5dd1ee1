// Constants of the broker protocol shared by the encoder, the decoder, the
// broker and the clients. docs/protocol.md is the specification; a value
// here that differs from it is a bug in one of the two.
#ifndef JITGATE_CORE_WIRE_WIRE_FORMAT_H_
#define JITGATE_CORE_WIRE_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/wire/request.h"

namespace jitgate::wire {

inline constexpr uint16_t kProtocolVersion = 1;

// Frame: u32 length (counts type + body) | u8 type | body.
inline constexpr size_t kFrameHeaderSize = 4 + 1;
inline constexpr size_t kFrameLengthSize = 4;
// Largest permitted `length` (type byte + body). Checked before allocation.
inline constexpr uint32_t kMaxFrameLength = 64 * 1024;
inline constexpr size_t kMaxBodySize = kMaxFrameLength - 1;

// Field caps (docs/protocol.md §6); the RequestFields caps are in request.h.
inline constexpr size_t kMaxLabelField = 256;    // approvers, filed_by, server_id, client, names
inline constexpr size_t kMaxPromptField = 256;
inline constexpr size_t kMaxMessageField = 1024; // user-facing messages, Error text
inline constexpr size_t kMaxCommentField = 512;
inline constexpr size_t kMaxRequestIdLength = 32;
inline constexpr size_t kMintedRequestIdLength = 8;  // broker/lifecycle.h kRequestIdLength
inline constexpr size_t kMinRequestIdPrefix = 4;
inline constexpr size_t kMaxVotes = 16;          // votes per request, decided_by entries
inline constexpr size_t kMaxListItems = 256;
inline constexpr size_t kResumeTokenSize = 32;
inline constexpr uint16_t kDefaultListLimit = 100;
inline constexpr uint32_t kResumeGraceSeconds = 30;
inline constexpr size_t kMaxCertificateField = 16 * 1024;  // "type-cert-v01@openssh.com base64"
inline constexpr size_t kMaxCertPrincipals = 32;
inline constexpr size_t kMaxSessionChunk = 60 * 1024;  // recorder::kMaxChunkBody

enum class MessageType : uint8_t {
  kHello = 0x01,
  kHelloAck = 0x02,
  kError = 0x03,
  kSubmitRequest = 0x10,
  kNeedReason = 0x11,
  kProvideReason = 0x12,
  kRequestAccepted = 0x13,
  kStatusUpdate = 0x14,
  kDecision = 0x15,
  kResume = 0x16,
  kCancel = 0x17,
  kListRequests = 0x20,
  kRequestList = 0x21,
  kGetRequest = 0x22,
  kRequestInfo = 0x23,
  kApprove = 0x24,
  kDeny = 0x25,
  kFollow = 0x26,
  kListCerts = 0x27,
  kCertList = 0x28,
  kRevoke = 0x29,
  kSignHostKey = 0x2a,
  kHostCertificate = 0x2b,
  kGetCaInfo = 0x2c,
  kCaInfo = 0x2d,
  kOpenSession = 0x30,
  kSessionOpened = 0x31,
  kSessionData = 0x32,
  kSessionAck = 0x33,
  kCloseSession = 0x34,
  kSessionClosed = 0x35,
  kTerminateSession = 0x36,
  kSessionTerminateAck = 0x37,
  kSessionTerminated = 0x38,
  kBastionEvent = 0x39,
  kBastionEventAck = 0x3a,
  kGetStatus = 0x3b,
  kStatusReport = 0x3c,
  kSpoolReport = 0x3d,
  kSpoolReportAck = 0x3e,
};

// True for the 40 types of protocol version 1.
bool IsKnownMessageType(uint8_t type);
// "SubmitRequest", ...; "type 0x7f" for unknown values.
std::string MessageTypeName(uint8_t type);
inline std::string MessageTypeName(MessageType type) { return MessageTypeName(uint8_t(type)); }
// True if the client sends this type, false if the broker does.
bool IsClientToServer(MessageType type);

// Error codes (docs/protocol.md §4 Error).
enum class ErrorCode : uint16_t {
  kMalformed = 1,
  kUnexpectedMessage = 2,
  kUnsupportedVersion = 3,
  kNotFound = 4,
  kAmbiguous = 5,
  kPermissionDenied = 6,
  kDigestMismatch = 7,
  kNotPending = 8,
  kSelfApproval = 9,
  kDuplicateVote = 10,
  kInvalidRequest = 11,
  kBusy = 12,
  kInternal = 13,
  kNoCa = 14,
};
inline constexpr uint16_t kMaxErrorCode = 14;
// Fatal errors end the connection in every role.
bool IsFatalError(ErrorCode code);
std::string_view ErrorCodeName(ErrorCode code);

// Request lifecycle state (RequestInfo.state).
enum class RequestState : uint8_t {
  kPending = 1,
  kApproved = 2,
  kDenied = 3,
  kExpired = 4,
  kCancelled = 5,
  kUsed = 6,
};
inline constexpr uint8_t kMaxRequestState = 6;
std::string_view RequestStateName(RequestState s);

// Decision.outcome.
enum class Outcome : uint8_t {
  kApproved = 1,
  kDenied = 2,
  kExpired = 3,
  kCancelled = 4,
  kError = 5,
};
inline constexpr uint8_t kMaxOutcome = 5;
std::string_view OutcomeName(Outcome o);

// Vote.verdict.
enum class Verdict : uint8_t { kApprove = 1, kDeny = 2 };
inline constexpr uint8_t kMaxVerdict = 2;

// ListRequests.filter / Follow.filter.
// ListRequests/Follow: 1 pending, 2 all. ListCerts: 1 valid (unexpired and
// not revoked), 2 all.
enum class ListFilter : uint8_t { kPending = 1, kAll = 2 };
inline constexpr ListFilter kValidCerts = ListFilter::kPending;

enum class CertKind : uint8_t { kUser = 1, kHost = 2 };
inline constexpr uint8_t kMaxCertKind = 2;
inline constexpr uint8_t kMaxListFilter = 2;

// StatusReport: the state of one health check. kUnknown: not checked yet, or
// not applicable (no CA configured).
enum class CheckState : uint8_t { kUnknown = 1, kOk = 2, kFailed = 3 };
inline constexpr uint8_t kMaxCheckState = 3;
// Hosts in a StatusReport's spool list.
inline constexpr size_t kMaxSpoolHosts = 256;

// SubmitRequest.flags bits; all others must be zero.
inline constexpr uint8_t kFlagCanPrompt = 0x01;
inline constexpr uint8_t kKnownSubmitFlags = kFlagCanPrompt;

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_WIRE_FORMAT_H_
