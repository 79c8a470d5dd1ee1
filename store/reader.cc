#include "store/reader.h"

#include "core/base/status_macros.h"
#include "store/merkle/compact_range.h"
#include "store/merkle/proof.h"
#include "store/node_file.h"
#include "store/note/checkpoint.h"

namespace jitgate::store {

StatusOr<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& dir, Env* env) {
  if (env == nullptr) env = DefaultEnv();
  std::unique_ptr<StoreReader> r(new StoreReader());
  r->env_ = env;
  r->dir_ = dir;
  StatusOr<std::string> id_text = env->ReadFileToString(JoinPath(dir, kIdentityFile), 64 * 1024);
  if (!id_text.ok()) {
    return id_text.status().WithContext(dir + " is not a jitgate store");
  }
  ASSIGN_OR_RETURN(r->identity_, ParseIdentity(*id_text));
  ASSIGN_OR_RETURN(r->segments_, ListSegments(env, dir));
  if (r->segments_.empty()) return DataLossError(dir + " has no segments");
  ASSIGN_OR_RETURN(SegmentSummary active, SummariseSegment(env, r->segments_.back()));
  if (active.end == SegmentEnd::kCorrupt) {
    return DataLossError(Where(r->segments_.back().number, active.valid_length) + ": " +
                         active.reason);
  }
  r->size_ = r->segments_.back().header.first_entry + active.entries;
  ASSIGN_OR_RETURN(std::optional<FoundCheckpoint> cp,
                   FindLatestCheckpoint(env, r->segments_, active));
  if (cp) {
    r->latest_checkpoint_ = cp->text;
    r->latest_checkpoint_size_ = cp->entries_before;
  }
  ASSIGN_OR_RETURN(r->nodes_, env->NewRandomAccessFile(JoinPath(dir, kNodesFile)));
  return r;
}

StatusOr<Bytes> StoreReader::ReadEntry(uint64_t index) {
  if (index >= size_) {
    return OutOfRangeError("entry " + std::to_string(index) + " does not exist (the store has " +
                           std::to_string(size_) + " entries)");
  }
  size_t i = segments_.size() - 1;
  while (i > 0 && segments_[i].header.first_entry > index) --i;
  const SegmentInfo& seg = segments_[i];
  ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(seg.path));
  ASSIGN_OR_RETURN(uint64_t fsize, file->Size());
  SegmentScanner scanner(file.get(), fsize);
  ScannedRecord rec;
  uint64_t at = seg.header.first_entry;
  while (true) {
    ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
    if (!got) break;
    if (rec.type != RecordType::kEntry) continue;
    if (at == index) return Bytes(rec.payload.begin(), rec.payload.end());
    ++at;
  }
  return DataLossError("entry " + std::to_string(index) + " not found in segment " +
                       std::to_string(seg.number));
}

StatusOr<uint64_t> StoreReader::IndexedLeaves() {
  ASSIGN_OR_RETURN(uint64_t bytes, nodes_->Size());
  return std::min(size_, merkle::PostorderLeafCount(bytes / 32));
}

StatusOr<std::vector<merkle::Hash>> StoreReader::InclusionProof(uint64_t index, uint64_t size) {
  ASSIGN_OR_RETURN(uint64_t leaves, IndexedLeaves());
  if (size > leaves) {
    return OutOfRangeError("tree size " + std::to_string(size) + " exceeds the " +
                           std::to_string(leaves) + " entries in the tree index");
  }
  if (index >= size) {
    return InvalidArgumentError("index " + std::to_string(index) + " is not below size " +
                                std::to_string(size));
  }
  FileNodeSource src(nodes_.get(), leaves);
  return merkle::InclusionProof(src, index, size);
}

StatusOr<std::vector<merkle::Hash>> StoreReader::ConsistencyProof(uint64_t size1, uint64_t size2) {
  ASSIGN_OR_RETURN(uint64_t leaves, IndexedLeaves());
  if (size2 > leaves) {
    return OutOfRangeError("tree size " + std::to_string(size2) + " exceeds the " +
                           std::to_string(leaves) + " entries in the tree index");
  }
  if (size1 == 0 || size1 > size2) {
    return InvalidArgumentError("a consistency proof needs 0 < from <= size");
  }
  FileNodeSource src(nodes_.get(), leaves);
  return merkle::ConsistencyProof(src, size1, size2);
}

StatusOr<merkle::Hash> StoreReader::RootAt(uint64_t size) {
  ASSIGN_OR_RETURN(uint64_t leaves, IndexedLeaves());
  if (size > leaves) return OutOfRangeError("tree size exceeds the tree index");
  FileNodeSource src(nodes_.get(), leaves);
  return merkle::RootAt(src, size);
}

StatusOr<merkle::Hash> StoreReader::LeafHash(uint64_t index) {
  ASSIGN_OR_RETURN(uint64_t leaves, IndexedLeaves());
  FileNodeSource src(nodes_.get(), leaves);
  return src.GetNode(0, index);
}

}  // namespace jitgate::store
