#include "store/node_file.h"

#include <bit>

#include "core/base/status_macros.h"

namespace jitgate::store {

StatusOr<merkle::Hash> FileNodeSource::GetNode(int level, uint64_t index) {
  if (level < 0 || level > 63 || index >= (leaf_limit_ >> level) ) {
    return OutOfRangeError("tree index has no node at level " + std::to_string(level) +
                           " index " + std::to_string(index));
  }
  uint64_t pos = merkle::PostorderIndex(level, index);
  merkle::Hash h;
  ASSIGN_OR_RETURN(size_t n, file_->Read(pos * 32, std::span<uint8_t>(h.data(), h.size())));
  if (n != h.size()) {
    return DataLossError("tree index is truncated at node " + std::to_string(pos));
  }
  return h;
}

StatusOr<merkle::CompactRange> CompactRangeFromNodes(merkle::NodeSource& nodes, uint64_t size) {
  std::vector<merkle::Hash> hashes;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    uint64_t bit = uint64_t(1) << level;
    if ((size & bit) == 0) continue;
    ASSIGN_OR_RETURN(merkle::Hash h, nodes.GetNode(level, begin >> level));
    hashes.push_back(h);
    begin += bit;
  }
  return merkle::CompactRange::FromHashes(size, std::move(hashes));
}

}  // namespace jitgate::store
