#include "store/incremental_verify.h"

#include <utility>
#include <vector>

#include "core/base/status_macros.h"
#include "store/format.h"
#include "store/merkle/merkle.h"
#include "store/scanner.h"
#include "store/segments.h"
#include "store/store_format.h"
#include "store/verify.h"

namespace jitgate::store {

namespace {

// Records are read through a buffer of this size.
constexpr size_t kBufferSize = 1u << 20;

}  // namespace

IncrementalVerifier::IncrementalVerifier(std::string dir, note::Verifier key, Env* env)
    : dir_(std::move(dir)), key_(std::move(key)), env_(env != nullptr ? env : DefaultEnv()) {}

Status IncrementalVerifier::Fail(Status s) {
  error_ = s.code() == StatusCode::kNotFound ? DataLossError(s.message()) : std::move(s);
  return error_;
}

StatusOr<bool> IncrementalVerifier::Advance(uint64_t max_bytes) {
  if (!error_.ok()) return error_;
  StatusOr<bool> done = Step(max_bytes);
  if (!done.ok()) return Fail(done.status());
  return done;
}

StatusOr<bool> IncrementalVerifier::Step(uint64_t max_bytes) {
  if (origin_.empty()) {
    StatusOr<std::string> text = env_->ReadFileToString(JoinPath(dir_, kIdentityFile), 64 * 1024);
    if (!text.ok()) return DataLossError("STORE file: " + text.status().message());
    StatusOr<StoreIdentity> id = ParseIdentity(*text);
    if (!id.ok()) return DataLossError(id.status().message());
    if (id->origin != key_.name() || id->vkey != key_.Encode()) {
      return DataLossError("STORE file names the log key " + id->vkey +
                           ", but the store is being verified with " + key_.Encode());
    }
    origin_ = id->origin;
  }
  // A writer creates a segment before it writes the segment's header, so a
  // listing may catch a new segment without one: that is a failure only if
  // the next call sees it too.
  StatusOr<std::vector<SegmentInfo>> listed = ListSegments(env_, dir_);
  if (!listed.ok()) {
    if (!listing_failed_) {
      listing_failed_ = true;
      return false;
    }
    return listed.status();
  }
  listing_failed_ = false;
  const std::vector<SegmentInfo>& segs = *listed;
  bytes_ = 0;
  for (const SegmentInfo& s : segs) bytes_ += s.file_size;
  if (segment_ > segs.size()) {
    return DataLossError("segment " + std::to_string(segment_) + " is missing");
  }

  uint64_t read = 0;
  while (true) {
    const SegmentInfo& seg = segs[segment_ - 1];
    const bool last = segment_ == segs.size();
    if (offset_ == 0) {
      if (seg.header.origin != origin_) {
        return DataLossError(Where(seg.number, 0) + ": segment origin '" + seg.header.origin +
                             "' is not the store's");
      }
      if (seg.header.first_entry != count_) {
        return DataLossError(Where(seg.number, 0) + ": header says the segment starts at entry " +
                             std::to_string(seg.header.first_entry) + " but " +
                             std::to_string(count_) + " entries precede it");
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env_->NewRandomAccessFile(seg.path));
    ASSIGN_OR_RETURN(uint64_t size, file->Size());
    SegmentScanner scanner(file.get(), size, kBufferSize, offset_);
    ScannedRecord rec;
    while (read < max_bytes) {
      ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
      if (!got) break;
      read += rec.size;
      // Built only when needed: formatting per record would cost more than
      // the checks themselves.
      auto where = [&seg, offset = rec.offset] { return Where(seg.number, offset); };
      if (rec.type == RecordType::kHeader) {
        if (rec.offset != 0) return DataLossError(where() + ": unexpected segment header");
      } else if (rec.type == RecordType::kEntry) {
        StatusOr<Entry> e = ParseEntry(rec.payload);
        if (!e.ok()) {
          return DataLossError("entry " + std::to_string(count_) + " (" + where() +
                               "): " + e.status().message());
        }
        range_.Append(merkle::HashLeaf(rec.payload));
        ++count_;
      } else {
        ASSIGN_OR_RETURN(note::Checkpoint cp,
                         CheckCheckpointRecord(rec.payload, key_, origin_, count_, range_.Root(),
                                               last_checkpoint_,
                                               "checkpoint of size " + std::to_string(count_) +
                                                   " (" + where() + ")"));
        last_checkpoint_ = int64_t(cp.size);
        verified_ = cp.size;
      }
      offset_ = rec.offset + rec.size;
    }
    if (read >= max_bytes) return false;
    if (scanner.end() == SegmentEnd::kCorrupt) {
      return DataLossError("the record at " + Where(seg.number, offset_) + " (entry " +
                           std::to_string(count_) + "): damaged record: " + scanner.reason());
    }
    // The end of the active segment is the end of the log for now (a torn
    // tail is a record still being written).
    if (last) return true;
    // A sealed segment's extent is pinned by its successor's header.
    const SegmentHeader& next = segs[segment_].header;
    if (next.prev_valid_length != scanner.valid_length()) {
      return DataLossError(Where(seg.number, scanner.valid_length()) +
                           ": the sealed segment's records end here, but its successor records " +
                           std::to_string(next.prev_valid_length) + " valid bytes");
    }
    ++segment_;
    offset_ = 0;
  }
}

}  // namespace jitgate::store
