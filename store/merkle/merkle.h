// RFC 6962 §2.1 Merkle tree hashing (SHA-256), the LogHasher of jitgate's
// write-once store. Mirrors transparency-dev/merkle rfc6962/rfc6962.go.
//
// Leaves and interior nodes are hashed with different one-byte prefixes so
// that an interior node can never be passed off as a leaf (second-preimage
// protection). All functions are pure and thread-safe.
#ifndef JITGATE_STORE_MERKLE_MERKLE_H_
#define JITGATE_STORE_MERKLE_MERKLE_H_

#include <cstdint>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"

namespace jitgate::merkle {

// A Merkle tree hash (leaf hash, interior node hash or root).
using Hash = crypto::Sha256Digest;
inline constexpr size_t kHashSize = crypto::kSha256Size;

// RFC 6962 domain separators.
inline constexpr uint8_t kLeafHashPrefix = 0;
inline constexpr uint8_t kNodeHashPrefix = 1;

// HashLeaf returns SHA-256(0x00 || entry), the leaf hash of one log entry.
Hash HashLeaf(ByteSpan entry);

// HashChildren returns SHA-256(0x01 || left || right), the hash of an
// interior node whose children hash to `left` and `right`.
Hash HashChildren(const Hash& left, const Hash& right);

// EmptyRoot returns SHA-256(""), the root of the tree with no leaves.
Hash EmptyRoot();

}  // namespace jitgate::merkle

#endif  // JITGATE_STORE_MERKLE_MERKLE_H_
