// Fuzz target for the OpenSSH key parsers: public key lines, public key
// blobs and private key files. Properties: no crash; a parsed blob
// re-encodes to exactly its input; a parsed line re-parses to the same key;
// a parsed private key serializes and parses back to the same key.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ca/sshkey.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jitgate;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto kl = ca::ParseKeyLine(text); kl.ok()) {
    std::string comment;
    if (auto key = ca::PublicKey::FromLine(text, &comment); key.ok()) {
      Check(key->blob() == kl->blob);
      auto again = ca::PublicKey::FromLine(key->ToLine(comment));
      Check(again.ok() && *again == *key);
      (void)key->Fingerprint();
      key->Verify(ByteSpan(data, size), kl->blob).IgnoreError();
    }
  }
  if (auto key = ca::PublicKey::FromBlob(ByteSpan(data, size)); key.ok()) {
    Check(key->blob() == Bytes(data, data + size));
  }
  if (auto priv = ca::PrivateKey::ParseOpenSsh(text); priv.ok()) {
    auto ser = priv->SerializeOpenSsh("fuzz");
    Check(ser.ok());
    auto again = ca::PrivateKey::ParseOpenSsh(AsChars(ser->span()));
    Check(again.ok() && again->public_key() == priv->public_key());
  }
  return 0;
}
