// Constants of the store format shared by writer, reader and verifier.
// docs/store-format.md is the specification; keep the two in step.
#ifndef JITGATE_STORE_STORE_FORMAT_H_
#define JITGATE_STORE_STORE_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace jitgate::store {

// Record framing: crc32c (4) | length (4) | type (1) | payload.
inline constexpr size_t kRecordHeaderSize = 4 + 4 + 1;
inline constexpr uint32_t kMaxRecordPayload = 1u << 20;

enum class RecordType : uint8_t {
  kHeader = 1,
  kEntry = 2,
  kCheckpoint = 3,
};

// Segment header.
inline constexpr uint8_t kSegmentMagic[8] = {'J', 'G', 'S', 'E', 'G', 0, 0, 1};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kMaxOriginLength = 255;

// Entries: version (1) | type (1) | time (8) | body.
inline constexpr uint8_t kEntryVersion = 1;
inline constexpr size_t kEntryHeaderSize = 1 + 1 + 8;
// The limit of a C2SP tlog-tiles entry bundle (uint16 length prefix).
inline constexpr size_t kMaxEntrySize = 65535;
inline constexpr size_t kMaxEntryBody = kMaxEntrySize - kEntryHeaderSize;
// Checkpoint notes are small; cap them well below the record limit.
inline constexpr size_t kMaxCheckpointSize = 16 * 1024;

enum class EntryType : uint8_t {
  kAuditEvent = 1,
  kTranscriptChunk = 2,
  kAnnotation = 3,
};
inline constexpr uint8_t kFirstReservedEntryType = 4;
inline constexpr uint8_t kFirstPrivateEntryType = 128;

// Files in the store directory.
inline constexpr char kIdentityFile[] = "STORE";
inline constexpr char kLockFile[] = "LOCK";
inline constexpr char kSegmentDir[] = "seg";
inline constexpr char kNodesFile[] = "tree.nodes";
inline constexpr char kSegmentSuffix[] = ".seg";
inline constexpr int kSegmentNameDigits = 10;
inline constexpr char kIdentityMagic[] = "jitgate-store 1";

inline constexpr uint64_t kDefaultSegmentTargetSize = 64u << 20;

}  // namespace jitgate::store

#endif  // JITGATE_STORE_STORE_FORMAT_H_
