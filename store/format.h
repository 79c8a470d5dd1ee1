// Encoding and parsing of the store's on-disk structures: records, entries,
// segment headers, the STORE identity file and segment file names.
// All parsers take untrusted bytes and are bounds-checked; see
// docs/store-format.md.
#ifndef JITGATE_STORE_FORMAT_H_
#define JITGATE_STORE_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "store/store_format.h"

namespace jitgate::store {

// Appends a framed record (crc32c | length | type | payload) to out.
// Precondition: payload.size() <= kMaxRecordPayload.
void AppendRecord(RecordType type, ByteSpan payload, Bytes* out);

// Result of decoding one record at the start of a buffer.
enum class RecordParse {
  kOk,           // a complete, valid record
  kNeedMore,     // the buffer ends inside the record (header or payload)
  kCorrupt,      // bad CRC, bad type or length over the cap
};
struct RawRecord {
  RecordType type;
  ByteSpan payload;      // view into the input
  size_t total_size = 0; // header + payload
};
// Decodes the record at the start of data. On kCorrupt, *why says what is
// wrong; *out is unspecified. The length of a corrupt record is not trusted,
// except that `*claimed_end` reports where the record would end (for torn-tail
// classification), saturated at SIZE_MAX.
RecordParse DecodeRecord(ByteSpan data, RawRecord* out, std::string* why,
                         uint64_t* claimed_end = nullptr);

// An entry, the leaf data of the Merkle tree.
struct Entry {
  uint8_t type = 0;
  int64_t time_unix_nanos = 0;
  ByteSpan body;  // view into the encoded entry
};
// Encodes an entry. InvalidArgument if the body is too large or the type is 0
// or reserved.
StatusOr<Bytes> EncodeEntry(uint8_t type, int64_t time_unix_nanos, ByteSpan body);
// Encodes an entry directly as a framed ENTRY record (one copy of the body)
// and returns the record; *leaf_data is set to the entry's bytes within it.
StatusOr<Bytes> EncodeEntryRecord(uint8_t type, int64_t time_unix_nanos, ByteSpan body,
                                  ByteSpan* leaf_data);
// Parses an entry strictly (version 1, type not 0 or reserved, size limit).
StatusOr<Entry> ParseEntry(ByteSpan data);
// "audit", "transcript", "annotation", "private-N" or "reserved-N".
std::string EntryTypeName(uint8_t type);

struct SegmentHeader {
  uint64_t segment = 0;
  uint64_t first_entry = 0;
  uint64_t prev_valid_length = 0;
  uint64_t prev_file_length = 0;
  std::string origin;
};
Bytes EncodeSegmentHeader(const SegmentHeader& h);
StatusOr<SegmentHeader> ParseSegmentHeader(ByteSpan payload);

// The STORE identity file.
struct StoreIdentity {
  std::string origin;
  std::string vkey;
  std::string key_path;
};
std::string FormatIdentity(const StoreIdentity& id);
StatusOr<StoreIdentity> ParseIdentity(std::string_view text);

// "0000000042.seg" and back.
std::string SegmentFileName(uint64_t number);
std::optional<uint64_t> ParseSegmentFileName(std::string_view name);

}  // namespace jitgate::store

#endif  // JITGATE_STORE_FORMAT_H_
