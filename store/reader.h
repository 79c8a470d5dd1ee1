// StoreReader: read-only access to a store, safe while a writer appends
// (docs/store-format.md §8). It sees the store as of Open(): entries in
// complete records and the latest checkpoint. Not thread-safe; open one per
// thread.
#ifndef JITGATE_STORE_READER_H_
#define JITGATE_STORE_READER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/status.h"
#include "store/format.h"
#include "store/merkle/merkle.h"
#include "store/segments.h"

namespace jitgate::store {

class StoreReader {
 public:
  static StatusOr<std::unique_ptr<StoreReader>> Open(const std::string& dir, Env* env = nullptr);

  const StoreIdentity& identity() const { return identity_; }
  // Entries in complete records.
  uint64_t size() const { return size_; }
  // The latest checkpoint, verbatim, and the size it claims (unverified:
  // auditors verify with jitgate verify or note::OpenCheckpoint).
  const std::string& latest_checkpoint() const { return latest_checkpoint_; }
  uint64_t latest_checkpoint_size() const { return latest_checkpoint_size_; }

  // The encoded entry at index (the Merkle leaf data).
  StatusOr<Bytes> ReadEntry(uint64_t index);

  // Proofs from the tree index. size must not exceed the entries covered by
  // the index (normally all of them).
  StatusOr<std::vector<merkle::Hash>> InclusionProof(uint64_t index, uint64_t size);
  StatusOr<std::vector<merkle::Hash>> ConsistencyProof(uint64_t size1, uint64_t size2);
  StatusOr<merkle::Hash> RootAt(uint64_t size);
  StatusOr<merkle::Hash> LeafHash(uint64_t index);

 private:
  StoreReader() = default;
  StatusOr<uint64_t> IndexedLeaves();

  Env* env_ = nullptr;
  std::string dir_;
  StoreIdentity identity_;
  std::vector<SegmentInfo> segments_;
  uint64_t size_ = 0;
  std::string latest_checkpoint_;
  uint64_t latest_checkpoint_size_ = 0;
  std::unique_ptr<RandomAccessFile> nodes_;
};

}  // namespace jitgate::store

#endif  // JITGATE_STORE_READER_H_
