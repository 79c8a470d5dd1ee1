// CompactRange: the O(log n) state needed to append to an RFC 6962 Merkle
// log and to compute its root, after transparency-dev/merkle compact/range.go
// (restricted to ranges that start at leaf 0).
//
// Also the postorder numbering of complete nodes that the store's
// append-only node file uses.
//
// Node coordinates: (level, index) names the perfect subtree of 2^level
// leaves [index << level, (index + 1) << level). Level 0 nodes are leaf
// hashes.
#ifndef JITGATE_STORE_MERKLE_COMPACT_RANGE_H_
#define JITGATE_STORE_MERKLE_COMPACT_RANGE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "core/base/status.h"
#include "store/merkle/merkle.h"

namespace jitgate::merkle {

// CompactRange holds the compact range [0, size) of a log: the roots of the
// perfect subtrees that the binary representation of `size` splits the leaves
// into, largest (leftmost) first. There are popcount(size) of them.
//
// Value type; not thread-safe for concurrent mutation.
class CompactRange {
 public:
  // The empty range (size 0, no hashes).
  CompactRange() = default;

  // FromHashes restores a range saved as (size(), hashes()). Fails with
  // InvalidArgument unless hashes.size() == popcount(size). The hashes
  // themselves cannot be checked here; the caller must trust their source
  // (e.g. compare Root() with a signed checkpoint).
  static StatusOr<CompactRange> FromHashes(uint64_t size,
                                           std::vector<Hash> hashes);

  uint64_t size() const { return size_; }
  const std::vector<Hash>& hashes() const { return hashes_; }

  // Visitor receives every node that an Append makes complete.
  using Visitor =
      std::function<void(int level, uint64_t index, const Hash& hash)>;

  // Append adds the leaf with hash `leaf_hash` at index size(). If `visit` is
  // set it is called first for the leaf itself (level 0, index = old size)
  // and then for each interior node the leaf completes, bottom-up (level L,
  // index = old size >> L). Costs one HashChildren per completed node:
  // O(log n) worst case, amortized O(1).
  // Precondition: size() < 2^63 (so that node counts fit in 64 bits).
  void Append(const Hash& leaf_hash, const Visitor& visit = nullptr);

  // Root returns MTH of the range: EmptyRoot() for size 0, otherwise the
  // hashes folded right to left, HashChildren(h[0], ... HashChildren(h[k-2],
  // h[k-1])).
  Hash Root() const;

  friend bool operator==(const CompactRange&, const CompactRange&) = default;

 private:
  CompactRange(uint64_t size, std::vector<Hash> hashes)
      : size_(size), hashes_(std::move(hashes)) {}

  uint64_t size_ = 0;
  // Invariant: hashes_.size() == popcount(size_); hashes_[i] is the root of
  // the subtree for the i-th highest set bit of size_.
  std::vector<Hash> hashes_;
};

// Postorder layout of all complete nodes of a log: for each leaf j in append
// order, the leaf hash and then the interior nodes it completes, bottom-up
// (exactly the order CompactRange::Append visits them). A log of `size`
// leaves thus owns the prefix [0, PostorderNodeCount(size)) of the layout,
// and the layout never changes as the log grows.

// PostorderNodeCount returns the number of complete nodes of a tree of `size`
// leaves: 2*size - popcount(size). Precondition: size < 2^63.
uint64_t PostorderNodeCount(uint64_t size);

// PostorderIndex returns the position of node (level, index) in the layout:
// with j = ((index + 1) << level) - 1 the last leaf under the node,
// 2*j - popcount(j) + level. Precondition: (index + 1) << level <= 2^63.
uint64_t PostorderIndex(int level, uint64_t index);

// PostorderLeafCount returns the largest tree size n whose complete nodes fit
// in `count` postorder nodes, i.e. the largest n with PostorderNodeCount(n) <=
// count. A count that is not of the form PostorderNodeCount(n) (a torn
// append) maps to the last whole tree before it.
uint64_t PostorderLeafCount(uint64_t count);

}  // namespace jitgate::merkle

#endif  // JITGATE_STORE_MERKLE_COMPACT_RANGE_H_
