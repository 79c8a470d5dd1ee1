#include "store/scanner.h"

#include <algorithm>
#include <cstring>

#include "core/base/status_macros.h"

namespace jitgate::store {

SegmentScanner::SegmentScanner(const RandomAccessFile* file, uint64_t limit, size_t buffer_size,
                               uint64_t start)
    : file_(file),
      limit_(std::max(limit, start)),
      buffer_size_(std::max<size_t>(buffer_size, 4096)),
      buf_offset_(start),
      valid_length_(start) {}

StatusOr<size_t> SegmentScanner::Fill(size_t want) {
  size_t have = len_ - pos_;
  if (have >= want) return have;
  uint64_t cur = buf_offset_ + pos_;
  uint64_t left_in_file = limit_ - cur;
  want = size_t(std::min<uint64_t>(want, left_in_file));
  if (have >= want) return have;
  // Compact, then grow if one record needs more than the buffer holds.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, have);
    buf_offset_ += pos_;
    pos_ = 0;
    len_ = have;
  }
  size_t target = std::max(want, buffer_size_);
  target = size_t(std::min<uint64_t>(target, left_in_file));
  if (buf_.size() < target) buf_.resize(target);
  while (len_ < target) {
    ASSIGN_OR_RETURN(size_t n,
                     file_->Read(buf_offset_ + len_,
                                 std::span<uint8_t>(buf_.data() + len_, target - len_)));
    if (n == 0) {
      // The file shrank under us: treat what we have as the end.
      limit_ = buf_offset_ + len_;
      break;
    }
    len_ += n;
  }
  return len_ - pos_;
}

StatusOr<bool> SegmentScanner::RestIsZero() {
  uint64_t off = buf_offset_ + pos_;
  std::vector<uint8_t> tmp(64 * 1024);
  while (off < limit_) {
    size_t want = size_t(std::min<uint64_t>(tmp.size(), limit_ - off));
    ASSIGN_OR_RETURN(size_t n, file_->Read(off, std::span<uint8_t>(tmp.data(), want)));
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      if (tmp[i] != 0) return false;
    }
    off += n;
  }
  return true;
}

StatusOr<bool> SegmentScanner::Next(ScannedRecord* rec) {
  if (done_) return false;
  ASSIGN_OR_RETURN(size_t have, Fill(kRecordHeaderSize));
  if (have == 0) {
    done_ = true;
    end_ = SegmentEnd::kClean;
    return false;
  }
  uint64_t offset = buf_offset_ + pos_;
  uint64_t remaining = limit_ - offset;
  if (have >= kRecordHeaderSize) {
    uint32_t len = LoadU32BE(buf_.data() + pos_ + 4);
    if (len <= kMaxRecordPayload) {
      ASSIGN_OR_RETURN(have, Fill(kRecordHeaderSize + size_t(len)));
    }
  }
  RawRecord raw;
  std::string why;
  uint64_t claimed_end = 0;
  RecordParse p = DecodeRecord(ByteSpan(buf_.data() + pos_, have), &raw, &why, &claimed_end);
  if (p == RecordParse::kOk) {
    rec->type = raw.type;
    rec->payload = raw.payload;
    rec->offset = offset;
    rec->size = raw.total_size;
    pos_ += raw.total_size;
    valid_length_ = offset + raw.total_size;
    return true;
  }
  done_ = true;
  if (p == RecordParse::kNeedMore) {
    // The file ends inside this record: a write that did not complete.
    end_ = SegmentEnd::kTorn;
    return false;
  }
  // A bad record. It is a torn write only if its claimed end lies beyond the
  // end of the file (and its length is plausible), or if everything from here
  // on is zero (space allocated but never written).
  if (claimed_end > remaining && claimed_end <= kRecordHeaderSize + uint64_t(kMaxRecordPayload)) {
    end_ = SegmentEnd::kTorn;
    return false;
  }
  ASSIGN_OR_RETURN(bool zero, RestIsZero());
  if (zero) {
    end_ = SegmentEnd::kTorn;
    return false;
  }
  end_ = SegmentEnd::kCorrupt;
  reason_ = why;
  if (have >= kRecordHeaderSize) type_hint_ = buf_[pos_ + 8];
  return false;
}

}  // namespace jitgate::store
