#include "ca/signer.h"

#include "core/base/status_macros.h"

namespace jitgate::ca {

StatusOr<std::unique_ptr<PrivateKeySigner>> PrivateKeySigner::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(PrivateKey key, ReadPrivateKeyFile(path));
  return std::make_unique<PrivateKeySigner>(std::move(key));
}

}  // namespace jitgate::ca
