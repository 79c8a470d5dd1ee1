// Building and verifying RFC 6962 inclusion and consistency proofs, after
// transparency-dev/merkle proof/proof.go and proof/verify.go.
//
// Builders read complete subtree hashes from a NodeSource and make
// O(log n) GetNode calls: each range is split at the largest power of two
// below its size, perfect subtrees are read directly, and only the right
// edge of the tree is folded from several nodes.
//
// Verifiers transcribe RFC 9162 §2.1.3.2 and §2.1.4.2, plus the edge rules
// of transparency-dev/merkle that its testdata/ probes encode (see
// docs of each function). They return:
//   OK                   the proof proves the claim;
//   InvalidArgument      the input is malformed: index >= size, size1 >
//                        size2, size1 == 0, a hash or proof component that is
//                        not 32 bytes, or a proof with the wrong number of
//                        components for the sizes;
//   FailedPrecondition   well-formed, but the proof does not lead to the
//                        claimed root; the message starts with
//                        "root mismatch" (see IsRootMismatch).
// All functions here are thread-safe apart from concurrent use of one
// NodeSource or MemoryTree.
#ifndef JITGATE_STORE_MERKLE_PROOF_H_
#define JITGATE_STORE_MERKLE_PROOF_H_

#include <cstdint>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "store/merkle/merkle.h"

namespace jitgate::merkle {

// NodeSource gives the hashes of complete (perfect, aligned) subtrees of a
// log: GetNode(level, index) is the root of leaves
// [index << level, (index + 1) << level); level 0 is the leaf hashes.
// Implementations return an error (e.g. NotFound, or an I/O error) for a
// node they do not hold; builders pass such errors through unchanged.
//
// Builders read only the nodes they need and so cannot tell how many leaves
// the source holds: the caller must pass sizes no larger than the log it
// has (e.g. a proof for index 64 of size 65 reads only node (6, 0) and the
// leaf-64 hash is never consulted).
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual StatusOr<Hash> GetNode(int level, uint64_t index) = 0;
};

// RootAt returns MTH(D[0:size]): EmptyRoot() for size 0 (without reading any
// node), otherwise the fold of the popcount(size) perfect subtrees.
StatusOr<Hash> RootAt(NodeSource& nodes, uint64_t size);

// InclusionProof returns the RFC 6962 audit path PATH(index, D[0:size]),
// leaf level first. InvalidArgument unless index < size.
StatusOr<std::vector<Hash>> InclusionProof(NodeSource& nodes, uint64_t index,
                                           uint64_t size);

// ConsistencyProof returns the RFC 6962 consistency proof PROOF(size1,
// D[0:size2]). Empty when size1 == size2. InvalidArgument unless
// 0 < size1 <= size2 (a proof from the empty tree is meaningless).
StatusOr<std::vector<Hash>> ConsistencyProof(NodeSource& nodes, uint64_t size1,
                                             uint64_t size2);

// InclusionProofSize returns the number of components of PATH(index,
// D[0:size]). Precondition: index < size.
size_t InclusionProofSize(uint64_t index, uint64_t size);

// ConsistencyProofSize returns the number of components of PROOF(size1,
// D[0:size2]). Precondition: 0 < size1 <= size2.
size_t ConsistencyProofSize(uint64_t size1, uint64_t size2);

// Proof components as raw byte strings, the verifiers' input form (which
// takes byte strings so that wrong-length components are rejected).
std::vector<Bytes> ProofBytes(const std::vector<Hash>& proof);

// VerifyInclusion checks that `proof` shows the leaf with hash `leaf_hash`
// at `index` in the tree of `size` leaves whose root is `root`.
// Requires index < size, a 32-byte leaf_hash and root, and exactly
// InclusionProofSize(index, size) components of 32 bytes each; any other
// input is InvalidArgument. Components are raw bytes so that a wrong-length
// component is rejected rather than truncated or padded.
Status VerifyInclusion(uint64_t index, uint64_t size, ByteSpan leaf_hash,
                       const std::vector<Bytes>& proof, ByteSpan root);

// VerifyConsistency checks that `proof` shows the tree of size1 leaves with
// root `root1` to be a prefix of the tree of size2 leaves with root `root2`.
// Edge rules (transparency-dev semantics):
//   * size1 == 0 is InvalidArgument, even 0 -> 0: nothing is proven.
//   * size1 > size2 is InvalidArgument.
//   * size1 == size2 needs an empty proof and root1 == root2 byte for byte;
//     root lengths are not checked in this case (no hashing happens).
//   * otherwise roots must be 32 bytes and the proof must have exactly
//     ConsistencyProofSize(size1, size2) components of 32 bytes.
Status VerifyConsistency(uint64_t size1, uint64_t size2,
                         const std::vector<Bytes>& proof, ByteSpan root1,
                         ByteSpan root2);

// IsRootMismatch is true for the error a verifier returns when a well-formed
// proof leads to a root other than the claimed one.
bool IsRootMismatch(const Status& status);

// MemoryTree is an in-memory NodeSource holding every complete node of a
// log, for tests, fuzzers and small trees. Memory is about 2 hashes per
// leaf. Not thread-safe.
class MemoryTree : public NodeSource {
 public:
  MemoryTree() = default;

  // Appends a leaf given its leaf hash (see HashLeaf) and stores the nodes
  // it completes.
  void Append(const Hash& leaf_hash);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // The root of the whole tree; EmptyRoot() when empty.
  Hash Root() const;

  // NotFound for a node that is not complete in the current tree.
  StatusOr<Hash> GetNode(int level, uint64_t index) override;

 private:
  // levels_[L][k] is node (L, k). Invariant: levels_[L + 1].size() ==
  // levels_[L].size() / 2.
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace jitgate::merkle

#endif  // JITGATE_STORE_MERKLE_PROOF_H_
