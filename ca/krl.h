// OpenSSH key revocation lists (PROTOCOL.krl), the binary format that
// `ssh-keygen -k` writes and `ssh-keygen -Q` and sshd's RevokedKeys read.
//
// Krl holds, per CA key (or for any CA), revoked certificate serial ranges
// and key ids, plus revoked plain keys (explicit blobs, SHA-1 and SHA-256
// hashes). Encode() writes serials as one serial-list subsection for single
// serials and one serial-range subsection per range, key ids in one key-id
// subsection, and hashes in numeric order; no signature section (OpenSSH
// >= 9.4 refuses signed KRLs; sign the file with SSHSIG if it travels).
//
// Parse() reads everything Encode() writes and also serial bitmaps, several
// sections per CA and non-critical extensions. It refuses signature
// sections and critical extensions (kUnimplemented), serial 0, unsorted
// hash lists, and anything malformed (kInvalidArgument), with the input
// capped at kMaxKrlSize. Parse(Encode(k)) equals k.
//
// Thread-safety: const methods are thread-safe; mutation needs exclusion.
#ifndef JITGATE_CA_KRL_H_
#define JITGATE_CA_KRL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ca/cert.h"
#include "ca/sshkey.h"
#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate::ca {

inline constexpr uint64_t kKrlMagic = 0x5353484b524c0a00ULL;  // "SSHKRL\n\0"
inline constexpr uint32_t kKrlFormatVersion = 1;
inline constexpr size_t kMaxKrlSize = 16u << 20;

// Section and subsection types.
inline constexpr uint8_t kKrlSectionCertificates = 1;
inline constexpr uint8_t kKrlSectionExplicitKey = 2;
inline constexpr uint8_t kKrlSectionFingerprintSha1 = 3;
inline constexpr uint8_t kKrlSectionSignature = 4;
inline constexpr uint8_t kKrlSectionFingerprintSha256 = 5;
inline constexpr uint8_t kKrlSectionExtension = 255;
inline constexpr uint8_t kKrlCertSerialList = 0x20;
inline constexpr uint8_t kKrlCertSerialRange = 0x21;
inline constexpr uint8_t kKrlCertSerialBitmap = 0x22;
inline constexpr uint8_t kKrlCertKeyId = 0x23;
inline constexpr uint8_t kKrlCertExtension = 0x39;

// Revocations of certificates issued by one CA, or by any CA.
struct KrlCertSection {
  std::optional<PublicKey> ca;            // nullopt: applies to every CA
  std::map<uint64_t, uint64_t> serials;   // lo -> hi, disjoint, non-adjacent
  std::set<std::string> key_ids;

  friend bool operator==(const KrlCertSection&, const KrlCertSection&) = default;
};

class Krl {
 public:
  Krl() = default;

  // Header fields. version should increase with every change.
  uint64_t version = 0;
  uint64_t generated_date = 0;  // seconds since the epoch
  std::string comment;

  // Revoke certificates by serial (>= 1; OpenSSH cannot revoke serial 0)
  // or serial range [lo, hi], or by key id, issued by ca (nullopt: any CA).
  // kInvalidArgument for serial 0, lo > hi, or a key id with a NUL.
  Status RevokeSerial(const std::optional<PublicKey>& ca, uint64_t serial);
  Status RevokeSerialRange(const std::optional<PublicKey>& ca, uint64_t lo, uint64_t hi);
  Status RevokeKeyId(const std::optional<PublicKey>& ca, std::string_view key_id);
  // Revokes a plain key (and so every certificate for it) by SHA-256 hash.
  void RevokeKey(const PublicKey& key);

  // IsRevoked reports whether cert is revoked: by serial or key id under
  // its CA or under "any CA", or because its key or its CA key is revoked.
  bool IsRevoked(const Certificate& cert) const;
  // IsKeyRevoked reports whether a plain key is revoked (explicitly or by
  // SHA-1 or SHA-256 hash).
  bool IsKeyRevoked(const PublicKey& key) const;

  // Sections, keyed by CA blob (empty for "any CA").
  const std::map<Bytes, KrlCertSection>& cert_sections() const { return certs_; }

  // Encode returns the binary KRL.
  Bytes Encode() const;
  // Parse reads a binary KRL (see the file comment).
  static StatusOr<Krl> Parse(ByteSpan data);

  friend bool operator==(const Krl&, const Krl&) = default;

 private:
  KrlCertSection& SectionFor(const std::optional<PublicKey>& ca);
  static void AddRange(std::map<uint64_t, uint64_t>* set, uint64_t lo, uint64_t hi);

  std::map<Bytes, KrlCertSection> certs_;
  std::set<Bytes> explicit_keys_;   // plain key blobs
  std::set<Bytes> sha1_;            // SHA-1 of plain key blobs
  std::set<Bytes> sha256_;          // SHA-256 of plain key blobs
};

}  // namespace jitgate::ca

#endif  // JITGATE_CA_KRL_H_
