// Internals shared by ca/sshkey.cc, ca/cert.cc and ca/krl.cc: OpenSSL
// handle ownership, SSH mpint coding and key-body parsing. Not a public API.
#ifndef JITGATE_CA_SSHKEY_INTERNAL_H_
#define JITGATE_CA_SSHKEY_INTERNAL_H_

#include <openssl/bn.h>
#include <openssl/evp.h>

#include <memory>
#include <string_view>

#include "ca/sshkey.h"
#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate::ca::internal {

// One deleter table for every OpenSSL handle the CA uses. BIGNUMs are freed
// with BN_clear_free because they may hold private exponents.
struct OpenSslDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};
using UniquePkey = std::unique_ptr<EVP_PKEY, OpenSslDeleter>;
using UniquePkeyCtx = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter>;
using UniqueMdCtx = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter>;
using UniqueBn = std::unique_ptr<BIGNUM, OpenSslDeleter>;
using UniqueBnCtx = std::unique_ptr<BN_CTX, OpenSslDeleter>;

// An OpenSSL failure as kInternal, with the library's first queued error.
Status OpenSslError(std::string_view what);

// Reads an SSH mpint (RFC 4251 §5) that must be non-negative and minimal
// (no superfluous leading zero byte), at most max_bytes long, and returns
// its magnitude without the sign byte. Fails on any violation.
[[nodiscard]] bool GetMpint(ByteReader* r, ByteSpan* magnitude, size_t max_bytes);
// Writes a non-negative big-endian magnitude as an SSH mpint: leading zero
// bytes are stripped and a zero byte is added when the top bit is set.
void PutMpint(ByteWriter* w, ByteSpan magnitude);
void PutMpintBn(ByteWriter* w, const BIGNUM* bn);
UniqueBn BnFromBytes(ByteSpan magnitude);

// ParseKeyBody reads the fields that follow the type string for type (for a
// certificate, the key fields after the nonce) and builds the PublicKey.
// The reader is left after the body.
StatusOr<PublicKey> ParseKeyBody(KeyType type, ByteReader* r);

// The type string of a certificate for a plain key type
// ("ssh-ed25519-cert-v01@openssh.com", ...), and back.
std::string_view CertTypeNameFor(KeyType type);
std::optional<KeyType> KeyTypeFromCertName(std::string_view name);

}  // namespace jitgate::ca::internal

#endif  // JITGATE_CA_SSHKEY_INTERNAL_H_
