// OpenSSH certificates (PROTOCOL.certkeys, now draft-miller-ssh-cert): parse,
// verify, issue, and print like `ssh-keygen -L`.
//
// A certificate blob is, in this order:
//
//   string    "<key type>-cert-v01@openssh.com"
//   string    nonce
//   ...       the certified key's fields (as in its plain blob, minus type)
//   uint64    serial
//   uint32    type (1 = user, 2 = host)
//   string    key id
//   string    valid principals  (a sequence of strings)
//   uint64    valid after
//   uint64    valid before
//   string    critical options  (a sequence of string name, string data)
//   string    extensions        (same)
//   string    reserved
//   string    signature key     (a plain CA public key blob)
//   string    signature         (over every byte before it)
//
// Option data is empty for flags and, for options with a value, holds the
// value as one more string (a string inside the data string). Options and
// extensions must each be sorted by name with no repeats.
//
// Parsing is strict and total: every field is bounds-checked and capped,
// the blob must be fully consumed, and a parsed certificate re-encodes to
// exactly its input (Encode() == blob()). Parsing does not check the
// signature, validity or options: call VerifySignature(), CheckValidAt() and
// CheckCriticalOptions() (which refuses unknown critical options, as the
// spec requires of a verifier).
//
// Thread-safety: Certificate is immutable; const methods are thread-safe.
#ifndef JITGATE_CA_CERT_H_
#define JITGATE_CA_CERT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ca/signer.h"
#include "ca/sshkey.h"
#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate::ca {

enum class CertType : uint32_t { kUser = 1, kHost = 2 };

inline constexpr uint64_t kValidForever = ~uint64_t{0};
inline constexpr size_t kMaxCertBlobSize = 64 * 1024;
inline constexpr size_t kMaxPrincipals = 256;  // OpenSSH's SSHKEY_CERT_MAX_PRINCIPALS
inline constexpr size_t kMaxNonceSize = 1024;

// Well-known option names.
inline constexpr std::string_view kOptForceCommand = "force-command";
inline constexpr std::string_view kOptSourceAddress = "source-address";
inline constexpr std::string_view kOptVerifyRequired = "verify-required";
inline constexpr std::string_view kExtPermitX11Forwarding = "permit-X11-forwarding";
inline constexpr std::string_view kExtPermitAgentForwarding = "permit-agent-forwarding";
inline constexpr std::string_view kExtPermitPortForwarding = "permit-port-forwarding";
inline constexpr std::string_view kExtPermitPty = "permit-pty";
inline constexpr std::string_view kExtPermitUserRc = "permit-user-rc";
inline constexpr std::string_view kExtNoTouchRequired = "no-touch-required";

// CertOption is one critical option or extension.
struct CertOption {
  std::string name;
  // The contents of the option's data string, exactly as on the wire:
  // empty for flags, string(value) for options with a value.
  Bytes data;

  // A flag (empty data), e.g. permit-pty.
  static CertOption Flag(std::string_view name);
  // An option whose data is one string, e.g. force-command.
  static CertOption WithValue(std::string_view name, std::string_view value);
  // The value of an option of the WithValue form. kInvalidArgument if the
  // data is not exactly one NUL-free string.
  StatusOr<std::string> Value() const;

  friend bool operator==(const CertOption&, const CertOption&) = default;
};

// CertificateFields are the certificate's own fields: everything except the
// certified key, the CA key and the signature.
struct CertificateFields {
  Bytes nonce;  // IssueCertificate fills in 32 random bytes if empty
  uint64_t serial = 0;
  CertType type = CertType::kUser;
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;
  uint64_t valid_before = kValidForever;
  std::vector<CertOption> critical_options;  // sorted by name, no repeats
  std::vector<CertOption> extensions;        // sorted by name, no repeats
  Bytes reserved;                            // empty in every current certificate

  friend bool operator==(const CertificateFields&, const CertificateFields&) = default;
};

class Certificate {
 public:
  // FromBlob parses a certificate blob strictly (see the file comment).
  // kUnimplemented for unsupported key types (for example
  // ssh-mldsa44-ed25519-cert-v01@openssh.com), kInvalidArgument for a
  // malformed blob.
  static StatusOr<Certificate> FromBlob(ByteSpan blob);
  // FromLine parses "type base64 [comment]"; see ParseKeyLine.
  static StatusOr<Certificate> FromLine(std::string_view line, std::string* comment = nullptr);

  // "ssh-ed25519-cert-v01@openssh.com" etc.
  std::string_view type_name() const;
  const CertificateFields& fields() const { return fields_; }
  // The certified (subject) key.
  const PublicKey& key() const { return key_; }
  // The CA key that signed the certificate.
  const PublicKey& signature_key() const { return signature_key_; }
  // The SSH signature blob and its algorithm name.
  const Bytes& signature() const { return signature_; }
  const std::string& signature_algorithm() const { return signature_algorithm_; }

  // The certificate blob, and its prefix covered by the signature.
  const Bytes& blob() const { return blob_; }
  ByteSpan signed_data() const { return ByteSpan(blob_).first(signed_size_); }
  // Encode re-encodes the certificate from its fields; equals blob().
  Bytes Encode() const;
  // "type base64" plus " comment" if comment is not empty.
  std::string ToLine(std::string_view comment = {}) const;

  // VerifySignature checks the CA signature over signed_data(). Legacy
  // ssh-rsa (SHA-1) signatures are refused unless allow_sha1. See
  // PublicKey::Verify for the codes.
  Status VerifySignature(bool allow_sha1 = false) const;
  // CheckValidAt: OK if valid_after <= now < valid_before (the same
  // half-open interval sshd uses), else kFailedPrecondition.
  Status CheckValidAt(uint64_t now_unix_seconds) const;
  // CheckCriticalOptions refuses (kFailedPrecondition) any critical option
  // other than force-command, source-address and verify-required, and
  // (kInvalidArgument) force-command/source-address whose data is not one
  // string. A verifier must call it before honouring the certificate.
  Status CheckCriticalOptions() const;

 private:
  friend StatusOr<Certificate> IssueCertificate(const PublicKey&, CertificateFields, const Signer&);
  Certificate(PublicKey key, PublicKey signature_key)
      : key_(std::move(key)), signature_key_(std::move(signature_key)) {}

  CertificateFields fields_;
  PublicKey key_;
  PublicKey signature_key_;
  Bytes signature_;
  std::string signature_algorithm_;
  Bytes blob_;
  size_t signed_size_ = 0;
};

// EncodeToBeSigned returns the bytes a CA signs for a certificate of key
// with fields, signed by ca_key: the blob up to and including the signature
// key field. Fields are encoded as given (IssueCertificate canonicalizes
// first). kInvalidArgument if a field exceeds the caps or ca_key cannot sign.
StatusOr<Bytes> EncodeToBeSigned(const PublicKey& key, const CertificateFields& fields,
                                 const PublicKey& ca_key);

// IssueCertificate certifies key with fields, signed by signer.
//  - The nonce is 32 fresh random bytes unless fields.nonce is set.
//  - Critical options and extensions are sorted by name; a repeated name is
//    kInvalidArgument.
//  - Principals must be non-empty (a certificate without principals is valid
//    for every user or host, which jitgate never means), contain no empty or
//    NUL-containing names, and number at most kMaxPrincipals.
//  - valid_after < valid_before, and the type is user or host.
//  - The signer's signature must use an algorithm of the CA key's type; the
//    signature itself is not re-verified (that would halve the issue rate).
StatusOr<Certificate> IssueCertificate(const PublicKey& key, CertificateFields fields, const Signer& signer);

// FormatCertificate renders cert as `ssh-keygen -L -f name` does (OpenSSH
// 9.x layout), with times in UTC if utc is true or else in the local time
// zone (the TZ environment variable). A pure function of its arguments and
// the time zone. Every line ends in '\n'. Unlike ssh-keygen, control
// characters, DEL and '\\' in untrusted strings (name, key id, principals,
// option names and values) are printed as \xNN so that a certificate cannot
// drive the terminal; for ordinary certificates the output is identical.
std::string FormatCertificate(const Certificate& cert, std::string_view name, bool utc = true);

// FormatValidity renders the validity interval as ssh-keygen does: "forever",
// "before T", "after T" or "from T to T", T as YYYY-MM-DDTHH:MM:SS.
std::string FormatValidity(uint64_t valid_after, uint64_t valid_before, bool utc = true);

}  // namespace jitgate::ca

#endif  // JITGATE_CA_CERT_H_
