// Signer: the CA's signing key behind an interface, so that certificates and
// KRLs can be signed by a key held in another process (privilege separation)
// or in hardware without changing the code that builds them.
#ifndef JITGATE_CA_SIGNER_H_
#define JITGATE_CA_SIGNER_H_

#include <memory>
#include <string>

#include "ca/sshkey.h"
#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate::ca {

class Signer {
 public:
  virtual ~Signer() = default;

  // The CA public key. Lives as long as the Signer.
  virtual const PublicKey& public_key() const = 0;

  // Sign returns an SSH signature blob (string algorithm, string signature)
  // over data, made by public_key(): ssh-ed25519, ecdsa-sha2-nistp256 or
  // rsa-sha2-512. Implementations must be safe to call from several threads.
  virtual StatusOr<Bytes> Sign(ByteSpan data) const = 0;
};

// PrivateKeySigner signs in process with a PrivateKey it owns. RSA keys sign
// with rsa-sha2-512. Thread-safe.
class PrivateKeySigner final : public Signer {
 public:
  explicit PrivateKeySigner(PrivateKey key) : key_(std::move(key)) {}

  // FromFile loads an OpenSSH private key file through ReadPrivateKeyFile,
  // which refuses a file group or others can access.
  static StatusOr<std::unique_ptr<PrivateKeySigner>> FromFile(const std::string& path);

  const PublicKey& public_key() const override { return key_.public_key(); }
  StatusOr<Bytes> Sign(ByteSpan data) const override { return key_.Sign(data); }

 private:
  PrivateKey key_;
};

}  // namespace jitgate::ca

#endif  // JITGATE_CA_SIGNER_H_
