#include "store/merkle/compact_range.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <string>
#include <utility>

namespace jitgate::merkle {

StatusOr<CompactRange> CompactRange::FromHashes(uint64_t size,
                                                std::vector<Hash> hashes) {
  const auto want = static_cast<size_t>(std::popcount(size));
  if (hashes.size() != want) {
    return InvalidArgumentError(
        "compact range of size " + std::to_string(size) + " needs " +
        std::to_string(want) + " hashes, got " + std::to_string(hashes.size()));
  }
  return CompactRange(size, std::move(hashes));
}

void CompactRange::Append(const Hash& leaf_hash, const Visitor& visit) {
  assert(size_ < (uint64_t{1} << 63));
  if (visit) visit(0, size_, leaf_hash);
  // Each trailing one bit of size_ is a perfect subtree, the last entry of
  // hashes_, that is the left sibling of the node being carried upwards.
  Hash carry = leaf_hash;
  int level = 0;
  while ((size_ >> level) & 1) {
    carry = HashChildren(hashes_.back(), carry);
    hashes_.pop_back();
    ++level;
    if (visit) visit(level, size_ >> level, carry);
  }
  hashes_.push_back(carry);
  ++size_;
}

Hash CompactRange::Root() const {
  if (hashes_.empty()) return EmptyRoot();
  Hash root = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;)
    root = HashChildren(hashes_[i], root);
  return root;
}

uint64_t PostorderNodeCount(uint64_t size) {
  assert(size < (uint64_t{1} << 63));
  return 2 * size - static_cast<uint64_t>(std::popcount(size));
}

uint64_t PostorderIndex(int level, uint64_t index) {
  assert(level >= 0 && level < 64);
  // Nodes before leaf j's group are those of the tree of j leaves; the node
  // at `level` is the level-th entry of that group.
  const uint64_t j = ((index + 1) << level) - 1;
  return PostorderNodeCount(j) + static_cast<uint64_t>(level);
}

uint64_t PostorderLeafCount(uint64_t count) {
  // PostorderNodeCount is strictly increasing and >= n, so the answer lies
  // in [0, min(count, 2^63 - 1)]. Binary search for the last n that fits.
  uint64_t lo = 0;
  uint64_t hi = std::min<uint64_t>(count, (uint64_t{1} << 63) - 1);
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo + 1) / 2;
    if (PostorderNodeCount(mid) <= count) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace jitgate::merkle
