// AuditEvent: one transition of an access request, as it goes into the
// write-once store (PRODUCT.md F6) and to anyone watching the broker.
//
// RequestBook (lifecycle.h) emits exactly one event per transition, in order,
// through an AuditSink. The daemon's sink appends them to the store; tests
// collect them in a vector.
#ifndef JITGATE_BROKER_AUDIT_H_
#define JITGATE_BROKER_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/wire/request.h"

namespace jitgate::broker {

// Caller is the process that filed a request, as the kernel reported it
// (SO_PEERCRED), never as the request claims. user is the name of uid.
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
  std::string user;

  friend bool operator==(const Caller&, const Caller&) = default;
};

// The actor named for what the broker does itself: decisions by policy,
// expiry, and cancellation because the waiting client went away.
inline constexpr char kBrokerActor[] = "jitgated";

enum class AuditEventType {
  kCreated,    // a request was filed (carries the fields and the caller)
  kVote,       // an approval was counted, quorum not yet reached
  kApproved,   // quorum reached (actor: the last approver) or auto-approved
  kDenied,     // by an approver, by policy, or impossible quorum
  kExpired,    // no decision in time, or an approval unused within its ttl
  kCancelled,  // the client went away or the request was withdrawn
  kUsed,       // the approval was consumed (one-time)
  kCertIssued,   // the CA signed a certificate (carries `cert`)
  kCertRevoked,  // a certificate was revoked (carries `cert`)
  kSessionTerminated,  // a live recorded session was ended (carries `session`)
  kBastion,  // the bastion refused a login or relayed a forward (carries `bastion`)
  kConfig,   // the broker loaded, reloaded or refused a configuration (carries `config`)
};

// What the audit trail says about a certificate.
struct CertAudit {
  uint64_t serial = 0;
  std::string kind;  // "user" or "host"
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;   // Unix seconds
  uint64_t valid_before = 0;  // Unix seconds
  std::string fingerprint;     // of the certified key
  std::string ca_fingerprint;  // of the CA key
  std::vector<std::string> critical_options;  // "name" or "name=value"
  std::vector<std::string> extensions;
  friend bool operator==(const CertAudit&, const CertAudit&) = default;
};

// What the bastion reported (wire::BastionEvent).
struct BastionAudit {
  std::string event;  // "login_refused", "forward_opened", ...
  std::string remote_addr;
  std::string ssh_user;
  friend bool operator==(const BastionAudit&, const BastionAudit&) = default;
};

// What the broker did with its configuration file.
struct ConfigAudit {
  std::string event;   // "loaded" (start), "reloaded", "reload_refused"
  std::string file;    // the path it was read from
  std::string sha256;  // lowercase hex of the file's bytes ("" if unreadable)
  friend bool operator==(const ConfigAudit&, const ConfigAudit&) = default;
};

// "created", "vote", "approved", "denied", "expired", "cancelled", "used",
// "cert_issued", "cert_revoked", "session_terminated", "bastion", "config".
// Stable: stored in the log.
std::string_view AuditEventTypeName(AuditEventType type);

struct AuditEvent {
  AuditEventType type = AuditEventType::kCreated;
  std::string request_id;
  std::string actor;    // a user name, or kBrokerActor
  std::string comment;  // the approver's comment or the broker's explanation
  int64_t time_unix_nanos = 0;
  crypto::Sha256Digest fields_digest{};  // wire::RequestDigest of the request
  std::string policy;  // the rule that decided; "" if none matched
  // kVote, kApproved: the distinct approvers so far, in order, and the
  // number needed (0 for an auto-approval).
  std::vector<std::string> approvers;
  int quorum = 0;
  int64_t valid_until_unix_nanos = 0;  // kApproved only
  // kCreated only: what was asked and by which process.
  std::optional<wire::RequestFields> fields;
  std::optional<Caller> caller;
  // kCertIssued, kCertRevoked: the certificate.
  std::optional<CertAudit> cert;
  // kSessionTerminated, kBastion: the recorded session's id ("" otherwise).
  std::string session;
  // kBastion: what the bastion reported; the person is `actor`, the detail
  // `comment`.
  std::optional<BastionAudit> bastion;
  // kConfig: which file, which bytes; why a reload was refused is `comment`.
  std::optional<ConfigAudit> config;
};

// AuditSink receives audit events. Emit is called synchronously, once per
// transition and in transition order, while the RequestBook is being
// mutated; it must not call back into that RequestBook.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual void Emit(const AuditEvent& event) = 0;
};

// AuditEventToJson returns event as one compact JSON object with sorted keys
// (so equal events give equal bytes):
//   type, request, actor, comment, time (RFC 3339 UTC with nanoseconds),
//   time_unix_nanos, digest (lowercase hex), policy; plus approvers and
//   quorum for vote/approved, valid_until_unix_nanos for approved, and
//   fields {service, user, target_user, host, remote_addr, tty, command, cwd,
//   reason, public_key, ttl_seconds} and caller {uid, gid, pid, user} for
//   created; cert {serial, kind, key_id, principals, valid_after,
//   valid_before, fingerprint, ca_fingerprint, critical_options, extensions}
//   for cert_issued and cert_revoked; session (the recorded session's id)
//   for session_terminated and bastion; bastion {event, remote_addr,
//   ssh_user} for bastion; config {event, file, sha256} for config.
// Bytes that are not valid UTF-8 are replaced with U+FFFD; the digest still
// binds the exact bytes. Never throws.
std::string AuditEventToJson(const AuditEvent& event);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_AUDIT_H_
