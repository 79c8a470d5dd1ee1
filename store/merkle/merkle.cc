#include "store/merkle/merkle.h"

namespace jitgate::merkle {

Hash HashLeaf(ByteSpan entry) {
  return crypto::Sha256Prefixed(kLeafHashPrefix, entry);
}

Hash HashChildren(const Hash& left, const Hash& right) {
  return crypto::Sha256Node(kNodeHashPrefix, left, right);
}

Hash EmptyRoot() { return crypto::Sha256(ByteSpan()); }

}  // namespace jitgate::merkle
