// FileNodeSource: complete Merkle node hashes read from the store's tree
// index (tree.nodes, postorder; docs/store-format.md §6).
#ifndef JITGATE_STORE_NODE_FILE_H_
#define JITGATE_STORE_NODE_FILE_H_

#include <memory>

#include "core/base/env.h"
#include "store/merkle/compact_range.h"
#include "store/merkle/proof.h"

namespace jitgate::store {

class FileNodeSource : public merkle::NodeSource {
 public:
  // file must outlive this object. Only nodes of a tree of at most
  // leaf_limit leaves are served (the part of the index known to be
  // complete); others fail with OutOfRange.
  FileNodeSource(const RandomAccessFile* file, uint64_t leaf_limit)
      : file_(file), leaf_limit_(leaf_limit) {}
  StatusOr<merkle::Hash> GetNode(int level, uint64_t index) override;

 private:
  const RandomAccessFile* file_;
  uint64_t leaf_limit_;
};

// Builds the compact range of the first `size` leaves from complete nodes.
StatusOr<merkle::CompactRange> CompactRangeFromNodes(merkle::NodeSource& nodes, uint64_t size);

}  // namespace jitgate::store

#endif  // JITGATE_STORE_NODE_FILE_H_
