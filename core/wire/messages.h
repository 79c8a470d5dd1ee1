// The broker protocol's messages (docs/protocol.md §4): one struct per
// message, and EncodeMessage / DecodeMessage between them and frames.
//
// Decoding is strict and canonical: every field is bounds-checked with
// ByteReader, strings are capped before allocation and may not contain NUL,
// enum values and bools must be in range, reserved bits zero, and the body
// must be consumed exactly. Encoding checks the same invariants first, so a
// message that encodes also decodes, and decode -> encode reproduces the
// input byte for byte. All functions are pure and thread-compatible.
#ifndef JITGATE_CORE_WIRE_MESSAGES_H_
#define JITGATE_CORE_WIRE_MESSAGES_H_

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/crypto/crypto.h"
#include "core/wire/request.h"
#include "core/wire/wire_format.h"

namespace jitgate::wire {

using ResumeToken = std::array<uint8_t, kResumeTokenSize>;

struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  uint16_t min_version = kProtocolVersion;
  uint16_t max_version = kProtocolVersion;
  std::string client;  // "pam_jitgate 0.1.0"
  friend bool operator==(const Hello&, const Hello&) = default;
};

struct HelloAck {
  static constexpr MessageType kType = MessageType::kHelloAck;
  uint16_t version = kProtocolVersion;
  std::string server_id;
  friend bool operator==(const HelloAck&, const HelloAck&) = default;
};

struct Error {
  static constexpr MessageType kType = MessageType::kError;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  friend bool operator==(const Error&, const Error&) = default;
};

struct SubmitRequest {
  static constexpr MessageType kType = MessageType::kSubmitRequest;
  RequestFields fields;
  uint32_t timeout_seconds = 0;  // 0 = policy default
  bool can_prompt = false;       // flags bit 0
  friend bool operator==(const SubmitRequest&, const SubmitRequest&) = default;
};

struct NeedReason {
  static constexpr MessageType kType = MessageType::kNeedReason;
  bool required = true;
  std::string prompt;
  friend bool operator==(const NeedReason&, const NeedReason&) = default;
};

struct ProvideReason {
  static constexpr MessageType kType = MessageType::kProvideReason;
  std::string reason;
  friend bool operator==(const ProvideReason&, const ProvideReason&) = default;
};

struct RequestAccepted {
  static constexpr MessageType kType = MessageType::kRequestAccepted;
  std::string id;
  ResumeToken resume_token{};
  crypto::Sha256Digest digest{};
  std::string approvers;  // "2 of oncall"
  uint32_t wait_seconds = 0;
  friend bool operator==(const RequestAccepted&, const RequestAccepted&) = default;
};

struct StatusUpdate {
  static constexpr MessageType kType = MessageType::kStatusUpdate;
  uint16_t approvals = 0;
  uint16_t approvals_needed = 0;
  uint32_t wait_seconds = 0;
  std::string message;  // "approved by bob (1 of 2)"
  friend bool operator==(const StatusUpdate&, const StatusUpdate&) = default;
};

struct Decision {
  static constexpr MessageType kType = MessageType::kDecision;
  std::string id;                   // "" only when no request was recorded
  crypto::Sha256Digest digest{};    // all zero iff id is ""
  Outcome outcome = Outcome::kError;
  std::vector<std::string> decided_by;
  std::string comment;
  std::string message;              // one line for the user
  uint64_t valid_until = 0;         // Unix seconds; 0 unless approved
  // The OpenSSH certificate line for fields.public_key; "" unless approved
  // and the request carried a public key.
  std::string certificate;
  friend bool operator==(const Decision&, const Decision&) = default;
};

struct Resume {
  static constexpr MessageType kType = MessageType::kResume;
  std::string id;  // full id
  ResumeToken resume_token{};
  friend bool operator==(const Resume&, const Resume&) = default;
};

struct Cancel {
  static constexpr MessageType kType = MessageType::kCancel;
  friend bool operator==(const Cancel&, const Cancel&) = default;
};

struct ListRequests {
  static constexpr MessageType kType = MessageType::kListRequests;
  ListFilter filter = ListFilter::kPending;
  uint16_t limit = 0;  // 0 = kDefaultListLimit
  friend bool operator==(const ListRequests&, const ListRequests&) = default;
};

struct Vote {
  Verdict verdict = Verdict::kApprove;
  std::string approver;
  uint64_t at = 0;  // Unix seconds
  std::string comment;
  friend bool operator==(const Vote&, const Vote&) = default;
};

// What an approver is shown (docs/protocol.md §3.2); also a message.
struct RequestInfo {
  static constexpr MessageType kType = MessageType::kRequestInfo;
  std::string id;
  RequestFields fields;
  crypto::Sha256Digest digest{};  // RequestDigest(fields)
  RequestState state = RequestState::kPending;
  std::string filed_by;
  std::string approvers;
  uint16_t approvals_needed = 0;
  uint64_t created_at = 0;
  uint64_t expires_at = 0;
  std::vector<Vote> votes;
  friend bool operator==(const RequestInfo&, const RequestInfo&) = default;
};

struct RequestList {
  static constexpr MessageType kType = MessageType::kRequestList;
  bool more = false;
  std::vector<RequestInfo> items;
  friend bool operator==(const RequestList&, const RequestList&) = default;
};

struct GetRequest {
  static constexpr MessageType kType = MessageType::kGetRequest;
  std::string id;  // full id or unique prefix
  friend bool operator==(const GetRequest&, const GetRequest&) = default;
};

struct Approve {
  static constexpr MessageType kType = MessageType::kApprove;
  std::string id;                 // full id or unique prefix
  crypto::Sha256Digest digest{};  // the digest the approver was shown
  std::string comment;
  friend bool operator==(const Approve&, const Approve&) = default;
};

struct Deny {
  static constexpr MessageType kType = MessageType::kDeny;
  std::string id;
  crypto::Sha256Digest digest{};
  std::string comment;
  friend bool operator==(const Deny&, const Deny&) = default;
};

struct Follow {
  static constexpr MessageType kType = MessageType::kFollow;
  ListFilter filter = ListFilter::kPending;
  friend bool operator==(const Follow&, const Follow&) = default;
};

// Certificates (docs/protocol.md §4.3).

struct ListCerts {
  static constexpr MessageType kType = MessageType::kListCerts;
  ListFilter filter = kValidCerts;  // 1 valid, 2 all
  uint16_t limit = 0;               // 0 = kDefaultListLimit
  friend bool operator==(const ListCerts&, const ListCerts&) = default;
};

// One certificate the CA issued, as the broker remembers it.
struct CertInfo {
  uint64_t serial = 0;
  CertKind kind = CertKind::kUser;
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;
  uint64_t valid_before = 0;
  std::string fingerprint;  // of the certified key, "SHA256:..."
  std::string request_id;   // "" for host certificates
  std::string issued_to;    // the requester (user certs) or the signing peer
  uint64_t issued_at = 0;
  uint64_t revoked_at = 0;  // 0 = not revoked
  std::string revoked_by;
  std::string revoke_comment;
  friend bool operator==(const CertInfo&, const CertInfo&) = default;
};

struct CertList {
  static constexpr MessageType kType = MessageType::kCertList;
  bool more = false;
  std::vector<CertInfo> items;  // newest first
  friend bool operator==(const CertList&, const CertList&) = default;
};

// Revokes by serial, or every certificate issued for a request (id: full id
// or unique prefix). Exactly one of serial != 0 and id != "".
struct Revoke {
  static constexpr MessageType kType = MessageType::kRevoke;
  uint64_t serial = 0;
  std::string id;
  std::string comment;
  friend bool operator==(const Revoke&, const Revoke&) = default;
};

struct SignHostKey {
  static constexpr MessageType kType = MessageType::kSignHostKey;
  std::string public_key;               // "type base64"
  std::vector<std::string> principals;  // host names, >= 1
  uint32_t validity_seconds = 0;        // 0 = the broker's default
  friend bool operator==(const SignHostKey&, const SignHostKey&) = default;
};

struct HostCertificate {
  static constexpr MessageType kType = MessageType::kHostCertificate;
  uint64_t serial = 0;
  std::string certificate;  // "type-cert-v01@openssh.com base64"
  friend bool operator==(const HostCertificate&, const HostCertificate&) = default;
};

struct GetCaInfo {
  static constexpr MessageType kType = MessageType::kGetCaInfo;
  friend bool operator==(const GetCaInfo&, const GetCaInfo&) = default;
};

struct CaInfo {
  static constexpr MessageType kType = MessageType::kCaInfo;
  std::string public_key;  // the CA key, "type base64"
  uint32_t max_ttl_seconds = 0;
  uint64_t krl_version = 0;
  std::string krl_path;    // where the broker writes the KRL
  friend bool operator==(const CaInfo&, const CaInfo&) = default;
};

// Session recording (docs/protocol.md §4.4): a recorder (the bastion's
// session process, jitgate-rec) streams a session's transcript chunks to the
// broker, which appends them to the store and acknowledges what is durable.

struct OpenSession {
  static constexpr MessageType kType = MessageType::kOpenSession;
  std::string session;     // "" = a new session; else resume that session
  std::string recorder;    // "bastion", "jitgate-rec"
  std::string request_id;  // the approval the session runs under, or ""
  std::string user;
  std::string remote_addr;
  std::string host;
  std::string target;
  std::string login;
  std::string command;  // "" for a shell
  std::string term;
  uint16_t cols = 0;
  uint16_t rows = 0;
  uint64_t start_unix_nanos = 0;
  uint64_t cert_serial = 0;
  friend bool operator==(const OpenSession&, const OpenSession&) = default;
};

struct SessionOpened {
  static constexpr MessageType kType = MessageType::kSessionOpened;
  std::string session;
  uint64_t next_index = 0;  // the first chunk the broker does not have
  friend bool operator==(const SessionOpened&, const SessionOpened&) = default;
};

struct SessionData {
  static constexpr MessageType kType = MessageType::kSessionData;
  Bytes chunk;  // one encoded transcript chunk (recorder/recording.h)
  friend bool operator==(const SessionData&, const SessionData&) = default;
};

struct SessionAck {
  static constexpr MessageType kType = MessageType::kSessionAck;
  uint64_t next_index = 0;  // every chunk below this is durable in the store
  friend bool operator==(const SessionAck&, const SessionAck&) = default;
};

struct CloseSession {
  static constexpr MessageType kType = MessageType::kCloseSession;
  uint64_t end_unix_nanos = 0;
  bool has_exit_status = false;
  uint32_t exit_status = 0;
  std::string exit_signal;  // "TERM" or ""
  std::string end_reason;   // "closed", "expired", ...
  uint64_t chunks = 0;      // chunks sent in all
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  friend bool operator==(const CloseSession&, const CloseSession&) = default;
};

struct SessionClosed {
  static constexpr MessageType kType = MessageType::kSessionClosed;
  uint64_t chunks = 0;  // chunks recorded
  friend bool operator==(const SessionClosed&, const SessionClosed&) = default;
};

// Ends a live recorded session (`jitgate terminate`). The broker tells the
// session's recorder (SessionTerminated), which ends the session and closes
// it with end_reason "terminated". Answered by SessionTerminateAck or Error.
struct TerminateSession {
  static constexpr MessageType kType = MessageType::kTerminateSession;
  std::string session;  // full id or unique prefix (>= 4 characters)
  std::string comment;  // why; recorded and shown to the session's user
  friend bool operator==(const TerminateSession&, const TerminateSession&) = default;
};

struct SessionTerminateAck {
  static constexpr MessageType kType = MessageType::kSessionTerminateAck;
  std::string session;         // the full id
  bool already_ended = false;  // it had ended before: nothing was done
  friend bool operator==(const SessionTerminateAck&, const SessionTerminateAck&) = default;
};

// Pushed to a session's recorder: end the session now.
struct SessionTerminated {
  static constexpr MessageType kType = MessageType::kSessionTerminated;
  std::string by;  // the user who terminated it
  std::string comment;
  friend bool operator==(const SessionTerminated&, const SessionTerminated&) = default;
};

// Sent by a bastion session process (and accepted from nothing else): what
// the bastion did outside a recorded session's transcript, for the audit
// trail (docs/bastion.md, "Audit"). Answered by BastionEventAck once the
// event is durable in the store, or Error.
struct BastionEvent {
  static constexpr MessageType kType = MessageType::kBastionEvent;
  // "login_refused", "forward_opened", "forward_refused", "forward_closed",
  // "agent_forwarded".
  std::string event;
  std::string user;         // the person, "" if the key named nobody
  std::string remote_addr;  // the client's address
  std::string ssh_user;     // the SSH user name as sent ("LOGIN@TARGET")
  std::string request_id;   // the approval, or ""
  std::string session;      // the recorded session, or ""
  std::string detail;       // what and why, one line
  friend bool operator==(const BastionEvent&, const BastionEvent&) = default;
};

struct BastionEventAck {
  static constexpr MessageType kType = MessageType::kBastionEventAck;
  friend bool operator==(const BastionEventAck&, const BastionEventAck&) = default;
};

// Health (docs/protocol.md §4.5): `jitgate status` asks, the broker reports.
struct GetStatus {
  static constexpr MessageType kType = MessageType::kGetStatus;
  friend bool operator==(const GetStatus&, const GetStatus&) = default;
};

// A recorder's spool as it last reported it (SpoolReport), with when.
struct SpoolBacklog {
  std::string host;
  uint64_t sessions = 0;     // session files waiting in the spool
  uint64_t bytes = 0;        // bytes they hold
  uint64_t reported_at = 0;  // Unix seconds (broker's clock)
  friend bool operator==(const SpoolBacklog&, const SpoolBacklog&) = default;
};

// The broker's health at a glance. Times are Unix seconds of the broker's
// clock; `now` is when the report was made, so that ages need no clock of
// the reader's.
struct StatusReport {
  static constexpr MessageType kType = MessageType::kStatusReport;
  std::string version;        // "jitgated 0.1.0 db1" (HelloAck.server_id)
  uint64_t now = 0;
  uint64_t started_at = 0;
  std::string config_file;
  uint64_t config_loaded_at = 0;
  uint64_t pending = 0;        // requests waiting for a decision
  uint64_t sessions_live = 0;  // recorded sessions not yet ended
  std::string store_dir;
  uint64_t store_entries = 0;  // durable entries
  uint64_t store_bytes = 0;    // bytes of segment files, at the last verification pass
  uint64_t checkpoint_size = 0;
  uint64_t checkpoint_age = 0;  // seconds since the latest checkpoint became durable
  // Entries no durable checkpoint covers yet, and the age in seconds of the
  // oldest of them (0 when there are none).
  uint64_t uncovered_entries = 0;
  uint64_t uncovered_age = 0;
  CheckState verify = CheckState::kUnknown;  // kUnknown: the first pass is running
  uint64_t verified_entries = 0;  // entries covered by a checkpoint that verified
  uint64_t verified_at = 0;       // end of the last verification pass, 0 if none
  std::string verify_error;       // kFailed: the first problem found
  CheckState ca = CheckState::kUnknown;  // kUnknown: no `ca:` section
  std::string ca_detail;  // kOk: the key's fingerprint; kFailed: what is wrong
  std::string bastion_listen;  // "" without a bastion
  uint64_t bastion_sessions = 0;
  std::string metrics_listen;  // "" without a `metrics:` section
  std::vector<SpoolBacklog> spools;  // by host
  friend bool operator==(const StatusReport&, const StatusReport&) = default;
};

// Sent by a recorder (jitgate-rec): its host's spool now holds `sessions`
// undelivered session files of `bytes` in all. Answered by SpoolReportAck.
struct SpoolReport {
  static constexpr MessageType kType = MessageType::kSpoolReport;
  std::string host;
  uint64_t sessions = 0;
  uint64_t bytes = 0;
  friend bool operator==(const SpoolReport&, const SpoolReport&) = default;
};

struct SpoolReportAck {
  static constexpr MessageType kType = MessageType::kSpoolReportAck;
  friend bool operator==(const SpoolReportAck&, const SpoolReportAck&) = default;
};

// Any message of protocol version 1.
using Message = std::variant<Hello, HelloAck, Error, SubmitRequest, NeedReason, ProvideReason,
                             RequestAccepted, StatusUpdate, Decision, Resume, Cancel, ListRequests,
                             RequestList, GetRequest, RequestInfo, Approve, Deny, Follow,
                             ListCerts, CertList, Revoke, SignHostKey, HostCertificate, GetCaInfo,
                             CaInfo, OpenSession, SessionOpened, SessionData, SessionAck,
                             CloseSession, SessionClosed, TerminateSession,
                             SessionTerminateAck, SessionTerminated, BastionEvent,
                             BastionEventAck, GetStatus, StatusReport, SpoolReport,
                             SpoolReportAck>;

// The wire type of m.
MessageType TypeOf(const Message& m);

// Appends the canonical body of m (no frame header) to *out. Fails with
// InvalidArgument naming the message and field if m violates a cap or
// invariant ("Decision: field message: 1500 bytes exceeds the cap of 1024"),
// or OutOfRange if the body would not fit a frame; *out is then unchanged.
Status EncodeBody(const Message& m, Bytes* out);

// The complete frame for m: u32 length | u8 type | body. Same failures as
// EncodeBody.
StatusOr<Bytes> EncodeMessage(const Message& m);

// Decodes the body of a frame of the given type. Fails with InvalidArgument
// and a precise one-line reason ("SubmitRequest: field user: contains a NUL
// byte", "Cancel: 3 trailing bytes", "type 0x7f: unknown message type").
StatusOr<Message> DecodeMessage(uint8_t type, ByteSpan body);

// Validates a request id (kind "id") or an id selector: 1..32 characters of
// [0-9a-z]. Exposed for the CLI and the broker.
bool IsValidRequestId(std::string_view id);

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_MESSAGES_H_
