#include "store/segments.h"

#include "core/base/status_macros.h"

namespace jitgate::store {

std::string SegmentDir(const std::string& dir) { return JoinPath(dir, kSegmentDir); }

std::string Where(uint64_t segment, uint64_t offset) {
  return "segment " + SegmentFileName(segment).substr(0, kSegmentNameDigits) + " offset " +
         std::to_string(offset);
}

StatusOr<std::vector<SegmentInfo>> ListSegments(Env* env, const std::string& dir) {
  std::string segdir = SegmentDir(dir);
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(segdir));
  std::vector<SegmentInfo> out;
  for (const std::string& name : names) {
    std::optional<uint64_t> n = ParseSegmentFileName(name);
    if (!n) continue;
    SegmentInfo info;
    info.number = *n;
    info.path = JoinPath(segdir, name);
    out.push_back(std::move(info));
  }
  // Names are sorted and fixed-width, so numbers are ascending.
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].number != i + 1) {
      return DataLossError("segment " + SegmentFileName(i + 1) + " is missing");
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    SegmentInfo& s = out[i];
    ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(s.path));
    ASSIGN_OR_RETURN(s.file_size, file->Size());
    SegmentScanner scanner(file.get(), s.file_size, 4096);
    ScannedRecord rec;
    ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
    if (!got || rec.type != RecordType::kHeader) {
      return DataLossError(Where(s.number, 0) + ": segment header is missing or damaged");
    }
    StatusOr<SegmentHeader> h = ParseSegmentHeader(rec.payload);
    if (!h.ok()) return DataLossError(Where(s.number, 0) + ": " + h.status().message());
    s.header = std::move(h).value();
    if (s.header.segment != s.number) {
      return DataLossError(Where(s.number, 0) + ": header names segment " +
                           std::to_string(s.header.segment));
    }
    if (i == 0 && (s.header.first_entry != 0 || s.header.prev_file_length != 0)) {
      return DataLossError(Where(s.number, 0) + ": first segment does not start at entry 0");
    }
    if (i > 0 && s.header.first_entry < out[i - 1].header.first_entry) {
      return DataLossError(Where(s.number, 0) + ": first entry goes backwards");
    }
  }
  return out;
}

StatusOr<SegmentSummary> SummariseSegment(Env* env, const SegmentInfo& seg) {
  ASSIGN_OR_RETURN(auto file, env->NewRandomAccessFile(seg.path));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  SegmentScanner scanner(file.get(), size);
  SegmentSummary sum;
  ScannedRecord rec;
  bool first = true;
  while (true) {
    ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
    if (!got) break;
    if (first) {
      first = false;
      if (rec.type != RecordType::kHeader) {
        return DataLossError(Where(seg.number, 0) + ": segment header is missing");
      }
      continue;
    }
    switch (rec.type) {
      case RecordType::kHeader:
        return DataLossError(Where(seg.number, rec.offset) + ": unexpected segment header");
      case RecordType::kEntry:
        ++sum.entries;
        break;
      case RecordType::kCheckpoint:
        sum.last_checkpoint = std::string(AsChars(rec.payload));
        sum.last_checkpoint_entries = sum.entries;
        break;
    }
  }
  sum.valid_length = scanner.valid_length();
  sum.end = scanner.end();
  sum.reason = scanner.reason();
  return sum;
}

StatusOr<std::optional<FoundCheckpoint>> FindLatestCheckpoint(
    Env* env, const std::vector<SegmentInfo>& segments, const SegmentSummary& active_summary) {
  if (segments.empty()) return std::optional<FoundCheckpoint>();
  const SegmentInfo& active = segments.back();
  if (active_summary.last_checkpoint) {
    return std::optional<FoundCheckpoint>(FoundCheckpoint{
        *active_summary.last_checkpoint,
        active.header.first_entry + active_summary.last_checkpoint_entries, active.number});
  }
  for (size_t i = segments.size() - 1; i-- > 0;) {
    ASSIGN_OR_RETURN(SegmentSummary s, SummariseSegment(env, segments[i]));
    if (s.end == SegmentEnd::kCorrupt) {
      return DataLossError(Where(segments[i].number, s.valid_length) + ": " + s.reason);
    }
    if (s.last_checkpoint) {
      return std::optional<FoundCheckpoint>(FoundCheckpoint{
          *s.last_checkpoint, segments[i].header.first_entry + s.last_checkpoint_entries,
          segments[i].number});
    }
  }
  return std::optional<FoundCheckpoint>();
}

}  // namespace jitgate::store
