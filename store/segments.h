// Helpers shared by the writer, the reader and the verifier: listing the
// segments of a store and summarising one segment's records.
#ifndef JITGATE_STORE_SEGMENTS_H_
#define JITGATE_STORE_SEGMENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/status.h"
#include "store/format.h"
#include "store/scanner.h"

namespace jitgate::store {

struct SegmentInfo {
  uint64_t number = 0;
  std::string path;
  uint64_t file_size = 0;
  SegmentHeader header;
};

// Lists DIR/seg/*.seg and reads each segment's header record. Fails with
// DataLoss if numbering has a gap or does not start at 1, if a header is
// missing or damaged, or if a header's number or first entry is inconsistent.
// Files that are not segment names are ignored.
StatusOr<std::vector<SegmentInfo>> ListSegments(Env* env, const std::string& dir);

// The result of scanning one segment's records.
struct SegmentSummary {
  uint64_t entries = 0;           // complete ENTRY records
  uint64_t valid_length = 0;      // bytes of complete records
  SegmentEnd end = SegmentEnd::kClean;
  std::string reason;             // for kCorrupt
  uint64_t last_checkpoint_entries = 0;   // entries before the last checkpoint (in this segment)
  std::optional<std::string> last_checkpoint;  // verbatim note text
};

// Scans the whole segment (up to its size now). The header record is
// skipped; a HEADER record anywhere else makes the segment corrupt.
StatusOr<SegmentSummary> SummariseSegment(Env* env, const SegmentInfo& seg);

// Latest checkpoint of a store, looking back from the given (already
// summarised) active segment through earlier segments.
struct FoundCheckpoint {
  std::string text;
  uint64_t entries_before = 0;  // entries preceding the record in the log
  uint64_t segment = 0;
};
StatusOr<std::optional<FoundCheckpoint>> FindLatestCheckpoint(
    Env* env, const std::vector<SegmentInfo>& segments, const SegmentSummary& active_summary);

std::string SegmentDir(const std::string& dir);

// "segment 0000000003 offset 4096"
std::string Where(uint64_t segment, uint64_t offset);

}  // namespace jitgate::store

#endif  // JITGATE_STORE_SEGMENTS_H_
