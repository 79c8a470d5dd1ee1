// Test-only sample messages for the wire tests, the fuzz seed corpora and
// anyone who needs a valid instance of every message. Never linked into a
// shipped binary (header-only; included only by tests and fuzz targets).
#ifndef JITGATE_CORE_WIRE_WIRE_TESTONLY_H_
#define JITGATE_CORE_WIRE_WIRE_TESTONLY_H_

#include <string>
#include <vector>

#include "core/wire/messages.h"

namespace jitgate::wire::testonly {

inline RequestFields SampleFields() {
  RequestFields f;
  f.service = "sudo";
  f.user = "alice";
  f.target_user = "root";
  f.host = "db1";
  f.remote_addr = "10.0.0.7";
  f.tty = "/dev/pts/3";
  f.command = "/usr/bin/systemctl restart nginx";
  f.cwd = "/home/alice";
  f.reason = "deploy hotfix #412";
  return f;
}

inline std::string SamplePublicKey() {
  return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
}

// A certificate request (jitgate request).
inline RequestFields SampleCertFields() {
  RequestFields f;
  f.service = "ssh-cert";
  f.user = "alice";
  f.target_user = "root";
  f.host = "db1";
  f.remote_addr = "10.0.0.7";
  f.reason = "incident 4711";
  f.public_key = SamplePublicKey();
  f.ttl_seconds = 600;
  return f;
}

inline CertInfo SampleCert() {
  CertInfo c;
  c.serial = 42;
  c.kind = CertKind::kUser;
  c.key_id = "jitgate:7f3a9c02:bob";
  c.principals = {"root"};
  c.valid_after = 1767225540;
  c.valid_before = 1767226200;
  c.fingerprint = "SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU";
  c.request_id = "7f3a9c02";
  c.issued_to = "alice";
  c.issued_at = 1767225600;
  c.revoked_at = 1767225900;
  c.revoked_by = "carol";
  c.revoke_comment = "laptop stolen";
  return c;
}

inline OpenSession SampleOpenSession() {
  OpenSession o;
  o.recorder = "bastion";
  o.request_id = "7f3a9c02";
  o.user = "alice";
  o.remote_addr = "10.0.0.7";
  o.host = "bastion1";
  o.target = "db1";
  o.login = "root";
  o.term = "xterm-256color";
  o.cols = 120;
  o.rows = 40;
  o.start_unix_nanos = 1767225600123456789;
  o.cert_serial = 42;
  return o;
}

// A StatusReport with every field set: a broker with a CA, a bastion and
// metrics whose store verified, and two recorders' spools.
inline StatusReport SampleStatusReport() {
  StatusReport r;
  r.version = "jitgated 0.1.0 db1";
  r.now = 1767229200;
  r.started_at = 1767225600;
  r.config_file = "/etc/jitgate/jitgate.yaml";
  r.config_loaded_at = 1767225600;
  r.pending = 3;
  r.sessions_live = 2;
  r.store_dir = "/var/lib/jitgate/store";
  r.store_entries = 1042;
  r.store_bytes = 1048576;
  r.checkpoint_size = 1040;
  r.checkpoint_age = 4;
  r.uncovered_entries = 2;
  r.uncovered_age = 1;
  r.verify = CheckState::kOk;
  r.verified_entries = 1040;
  r.verified_at = 1767229195;
  r.ca = CheckState::kOk;
  r.ca_detail = "ssh-ed25519 SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU";
  r.bastion_listen = "0.0.0.0:2222";
  r.bastion_sessions = 1;
  r.metrics_listen = "127.0.0.1:9464";
  r.spools.push_back(SpoolBacklog{"db1", 2, 81920, 1767229000});
  r.spools.push_back(SpoolBacklog{"web3", 0, 0, 1767228000});
  return r;
}

inline ResumeToken SampleToken() {
  ResumeToken t;
  for (size_t i = 0; i < t.size(); ++i) t[i] = uint8_t(0xa0 + i);
  return t;
}

inline RequestInfo SampleInfo() {
  RequestInfo r;
  r.id = "7f3a9c02e1";
  r.fields = SampleFields();
  r.digest = RequestDigest(r.fields);
  r.state = RequestState::kPending;
  r.filed_by = "uid 0 (root) pid 4242 sudo";
  r.approvers = "2 of oncall";
  r.approvals_needed = 2;
  r.created_at = 1767225600;
  r.expires_at = 1767225900;
  r.votes.push_back(Vote{Verdict::kApprove, "bob", 1767225660, "ok for the hotfix"});
  return r;
}

// The largest RequestInfo the caps allow.
inline RequestInfo MaxInfo() {
  RequestInfo r;
  r.id = std::string(kMaxRequestIdLength, 'z');
  r.fields.service = std::string(kMaxNameField, 's');
  r.fields.user = std::string(kMaxNameField, 'u');
  r.fields.target_user = std::string(kMaxNameField, 't');
  r.fields.host = std::string(kMaxNameField, 'h');
  r.fields.remote_addr = std::string(kMaxAddressField, 'a');
  r.fields.tty = std::string(kMaxNameField, 'y');
  r.fields.command = std::string(kMaxCommandField, 'c');
  r.fields.cwd = std::string(kMaxCwdField, 'd');
  r.fields.reason = std::string(kMaxReasonField, 'r');
  r.fields.public_key = std::string(kMaxPublicKeyField, 'k');
  r.fields.ttl_seconds = ~uint32_t{0};
  r.digest = RequestDigest(r.fields);
  r.state = RequestState::kUsed;
  r.filed_by = std::string(kMaxLabelField, 'f');
  r.approvers = std::string(kMaxLabelField, 'p');
  r.approvals_needed = 0xffff;
  r.created_at = ~uint64_t{0};
  r.expires_at = ~uint64_t{0};
  for (size_t i = 0; i < kMaxVotes; ++i) {
    r.votes.push_back(Vote{Verdict::kDeny, std::string(kMaxLabelField, 'v'), ~uint64_t{0},
                           std::string(kMaxCommentField, 'm')});
  }
  return r;
}

// One valid, non-trivial instance of every message type, in type order.
inline std::vector<Message> SampleMessages() {
  std::vector<Message> out;
  out.push_back(Hello{1, 1, "pam_jitgate 0.1.0"});
  out.push_back(HelloAck{1, "jitgated 0.1.0 db1"});
  out.push_back(Error{ErrorCode::kAmbiguous, "2 requests match \"7f3a\""});
  out.push_back(SubmitRequest{SampleFields(), 300, true});
  out.push_back(NeedReason{true, "Reason for sudo on db1: "});
  out.push_back(ProvideReason{"deploy hotfix #412"});
  out.push_back(RequestAccepted{"7f3a9c02e1", SampleToken(), RequestDigest(SampleFields()),
                                "2 of oncall", 300});
  out.push_back(StatusUpdate{1, 2, 240, "approved by bob (1 of 2)"});
  out.push_back(Decision{"7f3a9c02e1", RequestDigest(SampleFields()), Outcome::kApproved,
                         {"bob", "carol"}, "go ahead", "approved by bob, carol", 1767227400, ""});
  out.push_back(Resume{"7f3a9c02e1", SampleToken()});
  out.push_back(Cancel{});
  out.push_back(ListRequests{ListFilter::kAll, 50});
  RequestList list;
  list.more = true;
  list.items.push_back(SampleInfo());
  RequestInfo second = SampleInfo();
  second.id = "0b1c2d3e4f";
  second.state = RequestState::kDenied;
  second.votes.push_back(Vote{Verdict::kDeny, "carol", 1767225700, ""});
  list.items.push_back(second);
  out.push_back(list);
  out.push_back(GetRequest{"7f3a"});
  out.push_back(SampleInfo());
  out.push_back(Approve{"7f3a", RequestDigest(SampleFields()), "ok"});
  out.push_back(Deny{"7f3a9c02e1", RequestDigest(SampleFields()), "not during the freeze"});
  out.push_back(Follow{ListFilter::kPending});
  out.push_back(ListCerts{ListFilter::kAll, 20});
  CertList certs;
  certs.more = false;
  certs.items.push_back(SampleCert());
  CertInfo host;
  host.serial = 7;
  host.kind = CertKind::kHost;
  host.key_id = "jitgate-host:db1";
  host.principals = {"db1", "db1.example.com"};
  host.valid_after = 1767225600;
  host.valid_before = 1798761600;
  host.fingerprint = "SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU";
  host.issued_to = "root";
  host.issued_at = 1767225600;
  certs.items.push_back(host);
  out.push_back(certs);
  out.push_back(Revoke{0, "7f3a", "laptop stolen"});
  out.push_back(SignHostKey{SamplePublicKey(), {"db1", "db1.example.com"}, 86400 * 365});
  out.push_back(HostCertificate{7, "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t"});
  out.push_back(GetCaInfo{});
  out.push_back(CaInfo{SamplePublicKey(), 3600, 4, "/var/lib/jitgate/ca.krl"});
  out.push_back(SampleOpenSession());
  out.push_back(SessionOpened{"k3n8v2x9q4m1", 0});
  out.push_back(SessionData{Bytes{'J', 'G', 'T', '1', 0, 0x0c, 1, 2, 3}});
  out.push_back(SessionAck{17});
  out.push_back(CloseSession{1767226200000000000, true, 0, "", "closed", 17, 1024, 65536});
  out.push_back(SessionClosed{17});
  out.push_back(TerminateSession{"k3n8", "end of the maintenance window"});
  out.push_back(SessionTerminateAck{"k3n8v2x9q4m1", true});
  out.push_back(SessionTerminated{"bob", "end of the maintenance window"});
  out.push_back(BastionEvent{"forward_opened", "alice", "192.0.2.7", "deploy@db1", "7f3a9c02e1",
                             "k3n8v2x9q4m1", "direct-tcpip to 127.0.0.1:5432 from 127.0.0.1:50022"});
  out.push_back(BastionEventAck{});
  out.push_back(GetStatus{});
  out.push_back(SampleStatusReport());
  out.push_back(SpoolReport{"db1", 2, 81920});
  out.push_back(SpoolReportAck{});
  return out;
}

}  // namespace jitgate::wire::testonly

#endif  // JITGATE_CORE_WIRE_WIRE_TESTONLY_H_
