#include "broker/audit.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/base/bytes.h"
#include "core/base/text.h"

namespace jitgate::broker {

std::string_view AuditEventTypeName(AuditEventType type) {
  switch (type) {
    case AuditEventType::kCreated:
      return "created";
    case AuditEventType::kVote:
      return "vote";
    case AuditEventType::kApproved:
      return "approved";
    case AuditEventType::kDenied:
      return "denied";
    case AuditEventType::kExpired:
      return "expired";
    case AuditEventType::kCancelled:
      return "cancelled";
    case AuditEventType::kUsed:
      return "used";
    case AuditEventType::kCertIssued:
      return "cert_issued";
    case AuditEventType::kCertRevoked:
      return "cert_revoked";
    case AuditEventType::kSessionTerminated:
      return "session_terminated";
    case AuditEventType::kBastion:
      return "bastion";
    case AuditEventType::kConfig:
      return "config";
  }
  return "unknown";
}

std::string AuditEventToJson(const AuditEvent& event) {
  nlohmann::json j = {
      {"type", AuditEventTypeName(event.type)},
      {"request", event.request_id},
      {"actor", event.actor},
      {"comment", event.comment},
      {"time", FormatRfc3339Nanos(event.time_unix_nanos)},
      {"time_unix_nanos", event.time_unix_nanos},
      {"digest", HexEncode(ByteSpan(event.fields_digest))},
      {"policy", event.policy},
  };
  if (event.type == AuditEventType::kVote ||
      event.type == AuditEventType::kApproved) {
    j["approvers"] = event.approvers;
    j["quorum"] = event.quorum;
  }
  if (event.type == AuditEventType::kApproved) {
    j["valid_until_unix_nanos"] = event.valid_until_unix_nanos;
  }
  if (event.fields.has_value()) {
    const wire::RequestFields& f = *event.fields;
    j["fields"] = {{"service", f.service},
                   {"user", f.user},
                   {"target_user", f.target_user},
                   {"host", f.host},
                   {"remote_addr", f.remote_addr},
                   {"tty", f.tty},
                   {"command", f.command},
                   {"cwd", f.cwd},
                   {"reason", f.reason}};
    if (!f.public_key.empty() || f.ttl_seconds != 0) {
      j["fields"]["public_key"] = f.public_key;
      j["fields"]["ttl_seconds"] = f.ttl_seconds;
    }
  }
  if (event.cert.has_value()) {
    const CertAudit& c = *event.cert;
    j["cert"] = {{"serial", c.serial},
                 {"kind", c.kind},
                 {"key_id", c.key_id},
                 {"principals", c.principals},
                 {"valid_after", c.valid_after},
                 {"valid_before", c.valid_before},
                 {"fingerprint", c.fingerprint},
                 {"ca_fingerprint", c.ca_fingerprint},
                 {"critical_options", c.critical_options},
                 {"extensions", c.extensions}};
  }
  if (event.type == AuditEventType::kSessionTerminated || event.type == AuditEventType::kBastion) {
    j["session"] = event.session;
  }
  if (event.bastion.has_value()) {
    j["bastion"] = {{"event", event.bastion->event},
                    {"remote_addr", event.bastion->remote_addr},
                    {"ssh_user", event.bastion->ssh_user}};
  }
  if (event.config.has_value()) {
    j["config"] = {{"event", event.config->event},
                   {"file", event.config->file},
                   {"sha256", event.config->sha256}};
  }
  if (event.caller.has_value()) {
    j["caller"] = {{"uid", event.caller->uid},
                   {"gid", event.caller->gid},
                   {"pid", event.caller->pid},
                   {"user", event.caller->user}};
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace jitgate::broker
