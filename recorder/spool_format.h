// The on-disk format of a recorder's spool file (docs/jitgate-rec.md,
// "Spool file format"), shared by SpoolWriter and SpoolReader.
//
//   file    = magic "JGSPOOL1" | frame(HEADER) | frame(CHUNK)* | [frame(CLOSE)]
//   frame   = u32 crc32c | u32 length | u8 type | payload[length]
//             crc32c covers length, type and payload (big-endian fields)
//   HEADER  = u64 first_index | OpenSession body (docs/protocol.md §4.4,
//             session set): the session's metadata; chunks below first_index
//             were acknowledged by the broker and are not in this file
//   CHUNK   = one encoded transcript chunk (docs/recording-format.md) of the
//             session, numbered first_index, first_index + 1, ... in order
//   CLOSE   = CloseSession body: how the session ended; nothing follows it
//
// A frame cut short by the end of the file, or a tail of zero bytes (a size
// extended before its data reached the disk), is a torn tail: the file ends
// at the last whole frame. Anything else that does not check out (a CRC
// mismatch, a length over the cap, an unknown type, a chunk of another
// session or out of order) is corruption, reported by offset, and no length
// from a bad frame is trusted.
#ifndef JITGATE_RECORDER_SPOOL_FORMAT_H_
#define JITGATE_RECORDER_SPOOL_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace jitgate::recorder {

inline constexpr char kSpoolMagic[] = "JGSPOOL1";  // 8 bytes, no NUL on disk
inline constexpr size_t kSpoolMagicSize = 8;
inline constexpr size_t kSpoolFrameHeaderSize =
    4 + 4 + 1;  // crc32c, length, type
// The largest payload: a header (u64 + an OpenSession body, at most one
// frame's worth) or a chunk (kMaxChunkBody). Checked before allocating.
inline constexpr size_t kMaxSpoolPayload = 64 * 1024;
// Spool files are named "<session id>.spool"; a compaction writes
// "<session id>.tmp" and renames it over.
inline constexpr char kSpoolSuffix[] = ".spool";
inline constexpr char kSpoolTempSuffix[] = ".tmp";

enum class SpoolFrameType : uint8_t { kHeader = 1, kChunk = 2, kClose = 3 };

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_SPOOL_FORMAT_H_
