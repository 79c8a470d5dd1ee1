#include "broker/cert_authority.h"

#include <algorithm>
#include <chrono>

#include "ca/krl.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/wire/wire_format.h"

namespace jitgate::broker {

StatusOr<std::unique_ptr<CertAuthority>> CertAuthority::Load(const CaSettings& settings) {
  StatusOr<std::unique_ptr<ca::PrivateKeySigner>> signer =
      ca::PrivateKeySigner::FromFile(settings.key);
  if (!signer.ok()) return signer.status().WithContext("ca.key " + settings.key);
  return std::make_unique<CertAuthority>(settings, std::move(*signer));
}

StatusOr<ca::PublicKey> CertAuthority::CheckSubjectKey(std::string_view line) {
  std::string comment;
  StatusOr<ca::PublicKey> key = ca::PublicKey::FromLine(line, &comment);
  if (!key.ok()) {
    return InvalidArgumentError("public key is not usable: " + key.status().message());
  }
  if (!comment.empty() || key->ToLine() != line) {
    return InvalidArgumentError("public key must be one canonical \"type base64\" line without a comment");
  }
  if (key->type() == ca::KeyType::kRsa && key->bits() < ca::kMinRsaGenerateBits) {
    return InvalidArgumentError("RSA public key of " + std::to_string(key->bits()) +
                                " bits is too small (at least " +
                                std::to_string(ca::kMinRsaGenerateBits) + ")");
  }
  return key;
}

Status CertAuthority::CheckSourceAddress(std::string_view list) {
  if (list.empty()) return OkStatus();
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    std::string_view item = list.substr(start, comma == std::string_view::npos ? list.npos : comma - start);
    if (!IsAddressOrCidr(item)) {
      return InvalidArgumentError("source address \"" + std::string(item.substr(0, 64)) +
                                  "\" is not an IP address or CIDR block");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return OkStatus();
}

std::string CertAuthority::KeyId(const std::string& request_id,
                                 const std::vector<std::string>& approvers) {
  std::string id = "jitgate:" + request_id + ":";
  for (size_t i = 0; i < approvers.size(); ++i) id += (i == 0 ? "" : ",") + approvers[i];
  // Long enough for every real case; capped so that it fits the listings.
  if (id.size() > wire::kMaxLabelField) id.resize(wire::kMaxLabelField);
  return id;
}

std::chrono::seconds CertAuthority::UserTtl(uint32_t requested_seconds,
                                            std::chrono::nanoseconds policy_ttl) const {
  std::chrono::nanoseconds ttl = std::min(policy_ttl, settings_.max_ttl);
  if (requested_seconds > 0) ttl = std::min<std::chrono::nanoseconds>(ttl, std::chrono::seconds(requested_seconds));
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(ttl);
  return std::max(secs, std::chrono::seconds(1));
}

StatusOr<ca::Certificate> CertAuthority::IssueUser(const UserCertRequest& r) const {
  if (r.cert_policy == nullptr) return InternalError("no certificate policy");
  ASSIGN_OR_RETURN(ca::PublicKey key, CheckSubjectKey(r.fields.public_key));
  const CertPolicy& p = *r.cert_policy;
  ca::CertificateFields f;
  f.serial = r.serial;
  f.type = ca::CertType::kUser;
  f.key_id = KeyId(r.request_id, r.approvers);
  f.principals = {r.fields.target_user};
  const uint64_t skew = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(settings_.clock_skew).count());
  f.valid_after = r.now > skew ? r.now - skew : 0;
  f.valid_before = r.now + static_cast<uint64_t>(UserTtl(r.fields.ttl_seconds, r.policy_ttl).count());
  if (!p.force_command.empty()) {
    f.critical_options.push_back(ca::CertOption::WithValue(ca::kOptForceCommand, p.force_command));
  }
  std::string source;
  if (!p.source_address.empty()) {
    for (const std::string& a : p.source_address) source += (source.empty() ? "" : ",") + a;
  } else if (r.fields.service != "bastion") {
    RETURN_IF_ERROR(CheckSourceAddress(r.fields.remote_addr));
    source = r.fields.remote_addr;
  }
  // A bastion request's remote_addr is the person's address, but the
  // certificate is presented by the bastion's upstream connection, from
  // wherever the bastion runs: only the policy can say where that is.
  if (!source.empty()) {
    f.critical_options.push_back(ca::CertOption::WithValue(ca::kOptSourceAddress, source));
  }
  for (const std::string& e : p.extensions) f.extensions.push_back(ca::CertOption::Flag(e));
  return ca::IssueCertificate(key, std::move(f), *signer_);
}

StatusOr<ca::Certificate> CertAuthority::IssueHost(const ca::PublicKey& key,
                                                   const std::vector<std::string>& principals,
                                                   std::chrono::seconds validity, uint64_t serial,
                                                   uint64_t now) const {
  if (principals.empty()) return InvalidArgumentError("a host certificate needs at least one host name");
  auto max = std::chrono::duration_cast<std::chrono::seconds>(settings_.host_max_ttl);
  if (validity.count() <= 0 || validity > max) validity = max;
  ca::CertificateFields f;
  f.serial = serial;
  f.type = ca::CertType::kHost;
  f.key_id = "jitgate-host:" + principals.front();
  f.principals = principals;
  const uint64_t skew = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(settings_.clock_skew).count());
  f.valid_after = now > skew ? now - skew : 0;
  f.valid_before = now + static_cast<uint64_t>(validity.count());
  return ca::IssueCertificate(key, std::move(f), *signer_);
}

Status CertAuthority::WriteKrl(const std::vector<uint64_t>& serials, uint64_t version,
                               uint64_t now) const {
  ca::Krl krl;
  krl.version = version;
  krl.generated_date = now;
  krl.comment = "jitgated";
  std::optional<ca::PublicKey> ca_key = public_key();
  for (uint64_t s : serials) RETURN_IF_ERROR(krl.RevokeSerial(ca_key, s));
  Bytes data = krl.Encode();
  Status s = DefaultEnv()->WriteFileAtomically(settings_.krl, ByteSpan(data), 0644);
  if (!s.ok()) return s.WithContext("writing the KRL " + settings_.krl);
  return OkStatus();
}

}  // namespace jitgate::broker
