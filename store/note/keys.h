// Signed-note keys (c2sp.org/signed-note, golang.org/x/mod/sumdb/note):
// key names, key IDs, Ed25519 signing keys and verifier keys (vkeys).
//
//   vkey = name "+" hex8(key ID) "+" base64(type || public key)
//   skey = "PRIVATE+KEY+" name "+" hex8(key ID) "+" base64(0x01 || seed32)
//   key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian
//
// base64 may itself contain '+', so a vkey is split at its first two '+' and
// an skey at its first four. Encodings are canonical and strict: lower-case
// hex, standard padded base64 with zero trailing bits.
//
// Thread-safety: all types are immutable after construction and safe to use
// from several threads at once.
#ifndef JITGATE_STORE_NOTE_KEYS_H_
#define JITGATE_STORE_NOTE_KEYS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/crypto/crypto.h"

namespace jitgate::note {

// Signature type bytes (c2sp.org/signed-note "Signature types").
inline constexpr uint8_t kAlgEd25519 = 0x01;         // Ed25519 over the note text
inline constexpr uint8_t kAlgCosignatureV1 = 0x04;   // c2sp.org/tlog-cosignature Ed25519

// Size of a cosignature/v1 signature: u64 big-endian timestamp || Ed25519 sig.
inline constexpr size_t kCosignatureV1Size = 8 + crypto::kEd25519SignatureSize;

// IsValidKeyName reports whether name may be a key name: non-empty, valid
// UTF-8, and free of Unicode white space (Go's unicode.IsSpace), '+' and
// control characters (U+0000..U+001F, U+007F..U+009F). The control-character
// rule is stricter than Go's isValidName, which leaves it to Open().
bool IsValidKeyName(std::string_view name);

// KeyId returns SHA-256(name || '\n' || alg || public_key)[:4] as a
// big-endian uint32. It does not validate its inputs.
uint32_t KeyId(std::string_view name, uint8_t alg, ByteSpan public_key);

class Verifier;

// Signer is an Ed25519 (type 0x01) note signing key with its name. Move-only;
// the seed lives in SecretBytes and is wiped on destruction.
class Signer {
 public:
  // Generate makes a fresh key from the CSPRNG. InvalidArgument if the name
  // is not a valid key name.
  static StatusOr<Signer> Generate(std::string_view name);
  // FromSeed builds the key from a 32-byte Ed25519 seed (RFC 8032). The
  // caller keeps ownership of (and should wipe) seed32.
  static StatusOr<Signer> FromSeed(std::string_view name, ByteSpan seed32);

  Signer(Signer&&) noexcept = default;
  Signer& operator=(Signer&&) noexcept = default;
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  const crypto::Ed25519PublicKey& public_key() const { return key_.public_key(); }

  // Sign returns the Ed25519 signature of msg (deterministic, RFC 8032).
  StatusOr<crypto::Ed25519Signature> Sign(ByteSpan msg) const;

  // VerifierKey returns the vkey "name+hex8+base64(0x01||pub)".
  std::string VerifierKey() const;
  // GetVerifier returns the Verifier matching this key.
  Verifier GetVerifier() const;

  // EncodeSignerKey returns the Go/C2SP skey
  // "PRIVATE+KEY+name+hex8+base64(0x01||seed32)" as ASCII bytes in
  // SecretBytes; no other copy of the encoded seed is left in memory.
  crypto::SecretBytes EncodeSignerKey() const;

 private:
  friend StatusOr<Signer> ParseSignerKey(std::string_view skey);
  Signer(std::string name, crypto::Ed25519PrivateKey key);

  std::string name_;
  uint32_t key_id_ = 0;
  crypto::Ed25519PrivateKey key_;
};

// ParseSignerKey parses a Go/C2SP skey strictly: the literal "PRIVATE+KEY+"
// prefix, a valid name, 8 lower-case hex digits, and base64 of exactly 0x01
// followed by a 32-byte seed; the key ID must match the derived public key.
// Temporaries holding the seed are wiped. InvalidArgument on any error; the
// message never contains key material.
StatusOr<Signer> ParseSignerKey(std::string_view skey);

// Verifier is a parsed verifier key. Types 0x01 (Ed25519 note signature) and
// 0x04 (Ed25519 cosignature/v1) are supported. Copyable.
class Verifier {
 public:
  // Parse parses a vkey strictly, split at its first two '+': a valid key
  // name, exactly 8 lower-case hex digits, canonical base64 of the type byte
  // and a 32-byte public key; the key ID must equal KeyId(name, type, pub).
  // InvalidArgument naming the problem otherwise. (Go also accepts
  // upper-case hex and non-canonical base64; jitgate does not.)
  static StatusOr<Verifier> Parse(std::string_view vkey);
  // FromPublicKey builds a verifier for name and a 32-byte Ed25519 key of
  // type alg (kAlgEd25519 or kAlgCosignatureV1), computing the key ID.
  static StatusOr<Verifier> FromPublicKey(std::string_view name, uint8_t alg, ByteSpan public_key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  uint8_t alg() const { return alg_; }
  ByteSpan public_key() const { return ByteSpan(public_key_); }

  // Encode returns the canonical vkey; Parse(v.Encode()) == v.
  std::string Encode() const;

  // Verify reports whether sig (without the 4-byte key ID) is a valid
  // signature of the note text by this key. For kAlgEd25519, sig is an
  // Ed25519 signature over text. For kAlgCosignatureV1, sig is a u64
  // big-endian timestamp (below 2^63) followed by an Ed25519 signature over
  // "cosignature/v1\ntime <ts>\n" || text. False on any malformed input.
  bool Verify(std::string_view text, ByteSpan sig) const;

  friend bool operator==(const Verifier& a, const Verifier& b) = default;

 private:
  Verifier() = default;
  std::string name_;
  uint32_t key_id_ = 0;
  uint8_t alg_ = 0;
  crypto::Ed25519PublicKey public_key_{};
};

// CosignatureV1Message returns the message an Ed25519 cosignature/v1 signs:
// "cosignature/v1\ntime <timestamp>\n" || checkpoint_text.
std::string CosignatureV1Message(uint64_t timestamp, std::string_view checkpoint_text);

// CosignatureV1Timestamp extracts the timestamp from a cosignature/v1
// signature (without the key ID). InvalidArgument if sig is not 72 bytes or
// the timestamp is not below 2^63. The signature is not verified.
StatusOr<uint64_t> CosignatureV1Timestamp(ByteSpan sig);

}  // namespace jitgate::note

#endif  // JITGATE_STORE_NOTE_KEYS_H_
