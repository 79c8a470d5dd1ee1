// SegmentScanner reads the records of one segment file sequentially with a
// bounded buffer and classifies how the segment ends: cleanly, with a torn
// tail (an unacknowledged partial write left by a crash), or with corruption.
// The torn-tail rules are those of docs/store-format.md §7.
#ifndef JITGATE_STORE_SCANNER_H_
#define JITGATE_STORE_SCANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/status.h"
#include "store/format.h"

namespace jitgate::store {

struct ScannedRecord {
  RecordType type;
  ByteSpan payload;  // valid until the next call to Next()
  uint64_t offset;   // of the record's first byte in the file
  uint64_t size;     // header + payload
};

enum class SegmentEnd {
  kClean,    // the file ends exactly after a complete record
  kTorn,     // a torn tail follows the last complete record
  kCorrupt,  // a damaged record that is not a torn write
};

class SegmentScanner {
 public:
  // Scans file (which must outlive the scanner) up to limit bytes (the file
  // size at the time of the scan; a reader passes the size it observed),
  // from start, which must be the offset of a record (0, or the end of a
  // record an earlier scan returned: a follower picking up where it left).
  SegmentScanner(const RandomAccessFile* file, uint64_t limit,
                 size_t buffer_size = 1u << 20, uint64_t start = 0);

  // Reads the next record. Returns true with *rec filled, or false at the end
  // of the valid records (then see end(), valid_length(), reason()). A non-OK
  // status is an I/O error.
  StatusOr<bool> Next(ScannedRecord* rec);

  SegmentEnd end() const { return end_; }
  // Bytes of complete, valid records from the start of the file.
  uint64_t valid_length() const { return valid_length_; }
  // For kCorrupt: what is wrong, e.g. "checksum mismatch".
  const std::string& reason() const { return reason_; }
  // For kCorrupt: the damaged record's type byte, as a hint for messages
  // only (it is covered by the failed checksum, so it may itself be wrong).
  int type_hint() const { return type_hint_; }

 private:
  // Ensures at least want bytes are buffered from the current position, or
  // all that remain in the file. Returns the number buffered.
  StatusOr<size_t> Fill(size_t want);
  StatusOr<bool> RestIsZero();

  const RandomAccessFile* file_;
  uint64_t limit_;
  std::vector<uint8_t> buf_;
  size_t buffer_size_;
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]
  size_t pos_ = 0;           // read position within buf_
  size_t len_ = 0;           // valid bytes in buf_
  uint64_t valid_length_ = 0;
  SegmentEnd end_ = SegmentEnd::kClean;
  std::string reason_;
  bool done_ = false;
  int type_hint_ = -1;
};

}  // namespace jitgate::store

#endif  // JITGATE_STORE_SCANNER_H_
