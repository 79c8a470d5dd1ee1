// Cryptographic primitives through OpenSSL 3 (and ISA-L for CRC32C):
// SHA-256, Ed25519, CSPRNG, base64, CRC32C, secret wiping.
//
// All functions are thread-safe. Private key material is held in
// SecretBytes, which wipes itself on destruction (OPENSSL_cleanse).
#ifndef JITGATE_CORE_CRYPTO_CRYPTO_H_
#define JITGATE_CORE_CRYPTO_CRYPTO_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "core/base/status.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace jitgate::crypto {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// One-shot SHA-256.
Sha256Digest Sha256(ByteSpan data);
// SHA-256 of a 1-byte prefix followed by data (RFC 6962 leaf hashing without
// copying the entry).
Sha256Digest Sha256Prefixed(uint8_t prefix, ByteSpan data);
// SHA-256 of prefix || a || b (RFC 6962 node hashing).
Sha256Digest Sha256Node(uint8_t prefix, ByteSpan a, ByteSpan b);

// Incremental SHA-256. Not thread-safe; one per thread.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(ByteSpan data);
  // Returns the digest and resets the hasher for reuse.
  Sha256Digest Finish();

 private:
  EVP_MD_CTX* ctx_;
};

// SecretBytes owns key material and wipes it when destroyed or reassigned.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(ByteSpan b) : data_(b.begin(), b.end()) {}
  explicit SecretBytes(size_t n) : data_(n) {}
  ~SecretBytes() { Wipe(); }
  SecretBytes(const SecretBytes& o) : data_(o.data_) {}
  SecretBytes& operator=(const SecretBytes& o) {
    if (this != &o) { Wipe(); data_ = o.data_; }
    return *this;
  }
  SecretBytes(SecretBytes&& o) noexcept : data_(std::move(o.data_)) { o.data_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) { Wipe(); data_ = std::move(o.data_); o.data_.clear(); }
    return *this;
  }
  uint8_t* data() { return data_.data(); }
  const uint8_t* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  ByteSpan span() const { return ByteSpan(data_); }

 private:
  void Wipe();
  Bytes data_;
};

// Wipes memory in a way the compiler cannot elide.
void Cleanse(void* p, size_t n);
// Constant-time comparison of equal-length buffers; false if sizes differ.
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

// Fills out with bytes from OpenSSL's CSPRNG. Fails only if the CSPRNG does.
Status RandomBytes(std::span<uint8_t> out);

inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;
using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeySize>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureSize>;

// Ed25519PrivateKey is an Ed25519 signing key (RFC 8032), held as its 32-byte
// seed. Signing is deterministic. Thread-safe for concurrent Sign calls.
class Ed25519PrivateKey {
 public:
  // Generates a fresh key from the CSPRNG.
  static StatusOr<Ed25519PrivateKey> Generate();
  // Builds the key from a 32-byte seed.
  static StatusOr<Ed25519PrivateKey> FromSeed(ByteSpan seed);

  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;
  ~Ed25519PrivateKey();

  const Ed25519PublicKey& public_key() const { return public_key_; }
  const SecretBytes& seed() const { return seed_; }
  StatusOr<Ed25519Signature> Sign(ByteSpan message) const;

 private:
  Ed25519PrivateKey() = default;
  SecretBytes seed_;
  Ed25519PublicKey public_key_{};
  struct Impl;
  std::unique_ptr<Impl> impl_;  // holds the EVP_PKEY
};

// Verifies an Ed25519 signature. False on any malformed input.
bool Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(ByteSpan data);
// Strict decode: standard alphabet, required padding, no whitespace, and the
// unused bits of the last character must be zero (canonical encoding only).
[[nodiscard]] bool Base64Decode(std::string_view text, Bytes* out);

// CRC-32C (Castagnoli, as in iSCSI and LevelDB), hardware-accelerated.
// Extend(crc, data) continues a CRC: Crc32c(a||b) == Crc32cExtend(Crc32c(a), b).
uint32_t Crc32c(ByteSpan data);
uint32_t Crc32cExtend(uint32_t crc, ByteSpan data);

}  // namespace jitgate::crypto

#endif  // JITGATE_CORE_CRYPTO_CRYPTO_H_
