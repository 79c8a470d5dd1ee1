// OpenSSH public and private keys: wire blobs, `type base64 comment` lines,
// SHA256 fingerprints, the openssh-key-v1 private key file, and SSH
// signatures (RFC 4253 §6.6, RFC 5656, RFC 8332, RFC 8709).
//
// Supported key types: ssh-ed25519, ecdsa-sha2-nistp256 and ssh-rsa (RSA
// keys of 1024..16384 bits; signatures rsa-sha2-512, and for verification
// also rsa-sha2-256 and legacy ssh-rsa). The FIDO key types
// sk-ssh-ed25519@openssh.com and sk-ecdsa-sha2-nistp256@openssh.com are
// parsed as public keys (so that certificates *for* them can be read and
// fingerprinted) but cannot sign or verify. Every other type is refused with
// kUnimplemented.
//
// All parsers take untrusted input: lengths are capped before allocation,
// encodings must be canonical (mpints minimal, EC points on the curve) and
// fully consumed, so that a parsed key re-encodes to the same bytes.
//
// Thread-safety: PublicKey and PrivateKey are immutable after construction;
// const methods may be called from several threads at once.
#ifndef JITGATE_CA_SSHKEY_H_
#define JITGATE_CA_SSHKEY_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/crypto/crypto.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace jitgate::ca {

enum class KeyType {
  kEd25519,       // "ssh-ed25519"
  kEcdsaP256,     // "ecdsa-sha2-nistp256"
  kRsa,           // "ssh-rsa"
  kSkEd25519,     // "sk-ssh-ed25519@openssh.com" (public only)
  kSkEcdsaP256,   // "sk-ecdsa-sha2-nistp256@openssh.com" (public only)
};

// KeyTypeName returns the SSH name of a key type ("ssh-ed25519", ...).
std::string_view KeyTypeName(KeyType type);
// KeyTypeFromName maps an SSH key type name to KeyType; nullopt if unknown
// (including certificate type names).
std::optional<KeyType> KeyTypeFromName(std::string_view name);
// KeyTypeLabel returns ssh-keygen's short label: "ED25519", "ECDSA", "RSA",
// "ED25519-SK", "ECDSA-SK".
std::string_view KeyTypeLabel(KeyType type);

// Caps on untrusted input.
inline constexpr size_t kMaxKeyBlobSize = 16 * 1024;       // one public key blob
inline constexpr size_t kMaxKeyLineSize = 64 * 1024;       // one text line
inline constexpr size_t kMaxPrivateKeyFileSize = 64 * 1024;
inline constexpr int kMinRsaBits = 1024;    // parse/verify (OpenSSH's minimum)
inline constexpr int kMaxRsaBits = 16384;
inline constexpr int kMinRsaGenerateBits = 2048;

// PublicKey is a parsed plain (non-certificate) public key. Copyable; copies
// share the immutable OpenSSL key used for verification.
class PublicKey {
 public:
  // FromBlob parses an SSH wire blob (string type, then the type's fields),
  // requiring full consumption. kUnimplemented for unsupported or
  // certificate types, kInvalidArgument for malformed blobs.
  static StatusOr<PublicKey> FromBlob(ByteSpan blob);
  // FromLine parses "type base64 [comment]" (no authorized_keys options);
  // the type must match the blob's. If comment is not null it receives the
  // comment (possibly empty; inner white space is kept).
  static StatusOr<PublicKey> FromLine(std::string_view line, std::string* comment = nullptr);

  KeyType type() const { return type_; }
  std::string_view type_name() const { return KeyTypeName(type_); }
  // The wire blob: string type || body.
  const Bytes& blob() const { return blob_; }
  // The blob without the leading type string (how certificates embed keys).
  ByteSpan body() const;
  // "type base64" and, if comment is not empty, " comment".
  std::string ToLine(std::string_view comment = {}) const;
  // "SHA256:" + unpadded base64 of SHA-256(blob), as `ssh-keygen -l` prints.
  std::string Fingerprint() const;
  // Bits as `ssh-keygen -l` prints them (256 for Ed25519 and P-256, the
  // modulus size for RSA).
  int bits() const { return bits_; }
  // True for the types that can verify signatures (not the sk types).
  bool CanVerify() const { return type_ == KeyType::kEd25519 || type_ == KeyType::kEcdsaP256 || type_ == KeyType::kRsa; }

  // Verify checks an SSH signature blob (string alg, string sig) over data.
  // The algorithm must belong to the key type: ssh-ed25519;
  // ecdsa-sha2-nistp256; rsa-sha2-512 or rsa-sha2-256, and legacy ssh-rsa
  // (SHA-1) only if allow_sha1. OK if valid; kUnauthenticated if the
  // signature does not verify; kInvalidArgument if the blob is malformed
  // or the algorithm is wrong for the key; kUnimplemented for sk keys.
  Status Verify(ByteSpan data, ByteSpan signature, bool allow_sha1 = false) const;

  friend bool operator==(const PublicKey& a, const PublicKey& b) { return a.blob_ == b.blob_; }

 private:
  friend struct PublicKeyAccess;
  friend class PrivateKey;
  PublicKey() = default;
  KeyType type_ = KeyType::kEd25519;
  Bytes blob_;
  size_t body_offset_ = 0;
  int bits_ = 0;
  // ECDSA and RSA: the key as OpenSSL sees it (EVP_PKEY is reference counted
  // and safe for concurrent verification). Ed25519 verifies from the raw key.
  std::shared_ptr<EVP_PKEY> pkey_;
};

// SignatureAlgorithm extracts the algorithm name from an SSH signature blob
// without verifying it. kInvalidArgument if the blob is malformed.
StatusOr<std::string> SignatureAlgorithm(ByteSpan signature);

// PrivateKey is an Ed25519, ECDSA P-256 or RSA private key. Move-only; the
// OpenSSL key and every serialized copy of the secret are wiped when freed.
class PrivateKey {
 public:
  // Generate makes a fresh key from OpenSSL's CSPRNG. rsa_bits is used only
  // for RSA and must be in [2048, 16384]. kInvalidArgument for sk types.
  static StatusOr<PrivateKey> Generate(KeyType type, int rsa_bits = 3072);

  // ParseOpenSsh parses an "-----BEGIN OPENSSH PRIVATE KEY-----" file
  // (PROTOCOL.key) holding exactly one key. Only the unencrypted "none"
  // cipher is read: an encrypted key is refused with kFailedPrecondition
  // naming the cipher. The public and private halves must match. If comment
  // is not null it receives the key's comment.
  static StatusOr<PrivateKey> ParseOpenSsh(std::string_view text, std::string* comment = nullptr);

  // SerializeOpenSsh returns the key file text (unencrypted, 70-column
  // base64 like ssh-keygen), in SecretBytes.
  StatusOr<crypto::SecretBytes> SerializeOpenSsh(std::string_view comment) const;

  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;
  ~PrivateKey();

  const PublicKey& public_key() const { return public_key_; }
  KeyType type() const { return public_key_.type(); }

  // Sign returns an SSH signature blob over data: ssh-ed25519,
  // ecdsa-sha2-nistp256 (SHA-256), or for RSA rsa_alg, which must be
  // "rsa-sha2-512" (default) or "rsa-sha2-256". Thread-safe.
  StatusOr<Bytes> Sign(ByteSpan data, std::string_view rsa_alg = "rsa-sha2-512") const;

 private:
  PrivateKey() = default;
  struct Impl;
  PublicKey public_key_;
  std::unique_ptr<Impl> impl_;
};

// WritePrivateKeyFile writes key to path in the OpenSSH format with mode
// 0600: a temporary file in the same directory is written, fsynced and
// renamed over path, and the directory is fsynced. The file never exists
// with wider permissions.
Status WritePrivateKeyFile(const std::string& path, const PrivateKey& key,
                           std::string_view comment);

// ReadPrivateKeyFile reads an OpenSSH private key file. It refuses
// (kPermissionDenied) a file that is not a regular file, is not owned by
// the effective user (or root), or whose mode grants any permission to
// group or others, like ssh's "UNPROTECTED PRIVATE KEY FILE" check; it
// checks the open descriptor (fstat), not the name. Files larger than
// kMaxPrivateKeyFileSize are refused.
StatusOr<PrivateKey> ReadPrivateKeyFile(const std::string& path, std::string* comment = nullptr);

// ReadPublicKeyFile reads a one-line "type base64 comment" file.
StatusOr<PublicKey> ReadPublicKeyFile(const std::string& path, std::string* comment = nullptr);

// KeyLine is a split "type base64 [comment]" line.
struct KeyLine {
  std::string type;
  Bytes blob;
  std::string comment;
};

// ParseKeyLine splits and decodes one public key or certificate line:
// leading/trailing white space and a final newline are ignored; type and
// base64 are separated by spaces or tabs; the base64 is strict (padded,
// canonical) and the blob's first string must equal type. The comment is
// the rest of the line after the separating white space. Lines longer than
// kMaxKeyLineSize, with NUL or inner newlines, are refused.
StatusOr<KeyLine> ParseKeyLine(std::string_view line);

// FormatFingerprint returns "SHA256:" + unpadded base64 of SHA-256(blob).
std::string FormatFingerprint(ByteSpan blob);

}  // namespace jitgate::ca

#endif  // JITGATE_CA_SSHKEY_H_
