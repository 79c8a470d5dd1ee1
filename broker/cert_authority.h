// CertAuthority: jitgated's OpenSSH certificate authority (PRODUCT.md F4).
//
// It turns an approved request into a user certificate whose every field is
// fixed by the request and its policy -- principal = the approved login,
// key id "jitgate:<request id>:<approvers>", validity [now - clock_skew,
// now + min(requested ttl, policy ttl, ca.max_ttl)], source-address and
// force-command critical options, extensions from the policy -- signs host
// keys, and writes the KRL of revoked serials for sshd's RevokedKeys.
//
// Serials, the record of what was issued and the audit events are the
// server's business (they go into the state database and the store in the
// same loop turn); this class only builds, signs and writes files. Signing
// goes through ca::Signer, so the key can move to another process later.
//
// Thread-compatible; the daemon's loop owns it.
#ifndef JITGATE_BROKER_CERT_AUTHORITY_H_
#define JITGATE_BROKER_CERT_AUTHORITY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/policy.h"
#include "ca/cert.h"
#include "ca/signer.h"
#include "core/base/status.h"
#include "core/wire/request.h"

namespace jitgate::broker {

// What an approved certificate request turns into.
struct UserCertRequest {
  std::string request_id;
  std::vector<std::string> approvers;  // who decided ("policy:dev" for auto)
  wire::RequestFields fields;          // public_key, target_user, remote_addr, ttl_seconds
  std::chrono::nanoseconds policy_ttl{0};
  const CertPolicy* cert_policy = nullptr;  // not null
  uint64_t serial = 0;
  uint64_t now = 0;  // Unix seconds
};

class CertAuthority {
 public:
  // Loads the CA key from settings.key. Refuses (kPermissionDenied) a key
  // file that group or others may read or that another user owns, like ssh
  // does; the broker then does not start.
  static StatusOr<std::unique_ptr<CertAuthority>> Load(const CaSettings& settings);
  // For tests and benchmarks: a CA around any signer.
  CertAuthority(const CaSettings& settings, std::unique_ptr<ca::Signer> signer)
      : settings_(settings), signer_(std::move(signer)) {}

  const CaSettings& settings() const { return settings_; }
  // A configuration reload: takes max_ttl, clock_skew, host_signers and
  // host_max_ttl from settings; the key and the KRL path stay (changing them
  // needs a restart: config.h CheckReloadable).
  void UpdateSettings(const CaSettings& settings) {
    const std::string key = settings_.key;
    const std::string krl = settings_.krl;
    settings_ = settings;
    settings_.key = key;
    settings_.krl = krl;
  }
  const ca::PublicKey& public_key() const { return signer_->public_key(); }

  // CheckSubjectKey parses and checks the key of a certificate request: one
  // canonical "type base64" line of a supported type (Ed25519, ECDSA P-256,
  // RSA >= 2048 bits, or their security-key variants). kInvalidArgument with
  // a one-line reason otherwise.
  static StatusOr<ca::PublicKey> CheckSubjectKey(std::string_view line);

  // CheckSourceAddress: "" or a comma-separated list of addresses / CIDR
  // blocks (what becomes the source-address option).
  static Status CheckSourceAddress(std::string_view list);

  // KeyId returns "jitgate:<request id>:<approver>[,<approver>...]".
  static std::string KeyId(const std::string& request_id, const std::vector<std::string>& approvers);

  // The lifetime of a certificate for a request asking for requested_seconds
  // (0 = no wish) under a policy ttl: the smallest of the three, and never
  // more than ca.max_ttl.
  std::chrono::seconds UserTtl(uint32_t requested_seconds, std::chrono::nanoseconds policy_ttl) const;

  // IssueUser signs the user certificate for r (see the file comment).
  StatusOr<ca::Certificate> IssueUser(const UserCertRequest& r) const;

  // IssueHost signs a host certificate for key with the given host names,
  // valid from now - clock_skew for validity (capped by ca.host_max_ttl; 0
  // means host_max_ttl). key id "jitgate-host:<first principal>".
  StatusOr<ca::Certificate> IssueHost(const ca::PublicKey& key, const std::vector<std::string>& principals,
                                      std::chrono::seconds validity, uint64_t serial, uint64_t now) const;

  // WriteKrl writes a KRL revoking serials (of this CA) to settings.krl:
  // written to a temporary file in the same directory, fsynced, renamed over
  // the old one (mode 0644: sshd and anyone may read it), directory fsynced.
  Status WriteKrl(const std::vector<uint64_t>& serials, uint64_t version, uint64_t now) const;

 private:
  CaSettings settings_;
  std::unique_ptr<ca::Signer> signer_;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_CERT_AUTHORITY_H_
