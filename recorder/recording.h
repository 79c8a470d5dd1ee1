// Session recordings in the signed store (PRODUCT.md F3, F5, F6;
// docs/recording-format.md).
//
// A recorded session is, in the store:
//   * one audit event (entry type 1, JSON) "session_start" with the
//     session's metadata (SessionInfo),
//   * transcript chunks (entry type 2, binary, below), numbered 0, 1, 2, ...
//     in the order they were appended, each at most kMaxChunkBody bytes,
//   * one audit event "session_end" with the outcome and the number of
//     chunks, so that a missing or extra chunk is detected.
//
// A chunk holds records: every byte that crossed the terminal in either
// direction, raw (never converted to text), each with its time since the
// session started (monotonic nanoseconds), and window size changes in band:
//
//   chunk   = magic "JGT1" | string8 session | u64 index | u64 base_ns |
//             record+                                  (to the end)
//   record  = u8 stream | varint delta_ns | payload
//             stream 1 input, 2 output: varint length | bytes (1..kMaxRecordData)
//             stream 3 resize:          u16 cols | u16 rows
//   base_ns = time of the chunk's first record; each delta is relative to
//             the previous record (the first's to base_ns), so time never
//             runs backwards.
//
// A chunk may instead be compressed (magic "JGTZ"): the same header, then
// u32 raw_length | one zstd frame that decompresses to exactly raw_length
// bytes of record+ (at most kMaxChunkRecords). ChunkBuilder compresses when
// that is smaller; the records, once decoded, are the same either way.
//
// Decoding is strict: bounds-checked, lengths capped before allocation,
// unknown streams, zero-length data, overlong or non-minimal varints and
// trailing garbage are errors; Encode(Decode(b)) == b for plain chunks.
//
// Thread-compatible; the functions are pure. SessionIndex is not
// thread-safe (one per thread, like store::StoreReader).
#ifndef JITGATE_RECORDER_RECORDING_H_
#define JITGATE_RECORDER_RECORDING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate {
class Env;
}
namespace jitgate::store {
class StoreReader;
}

namespace jitgate::recorder {

inline constexpr char kChunkMagic[] = "JGT1";
inline constexpr char kCompressedChunkMagic[] = "JGTZ";
inline constexpr size_t kMaxChunkBody = 60 * 1024;  // < store::kMaxEntryBody
inline constexpr size_t kMaxRecordData = 32 * 1024;
// The records of a compressed chunk, decompressed (what a decoder allocates).
inline constexpr size_t kMaxChunkRecords = 1024 * 1024;
inline constexpr size_t kMaxSessionIdLength = 32;
// Ids the broker mints, and a recorder may choose for a session it opens
// itself (docs/protocol.md §4.4): 12 characters of this alphabet (Crockford's
// base32 in lower case, 60 bits).
inline constexpr size_t kMintedSessionIdLength = 12;
inline constexpr char kSessionIdAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

// What a record holds (docs/recording-format.md §2):
//   kInput   what the person typed, or sent on stdin
//   kOutput  what the terminal showed, or the command wrote on stdout
//   kResize  the terminal's new size (cols, rows; no data)
//   kError   what the command wrote on stderr when it had no terminal (with
//            a terminal, stderr is part of kOutput)
//   kSuspend the session was suspended or resumed: data is the signal's name
//            without "SIG" ("TSTP", "STOP", "TTIN", "TTOU"; "CONT" resumes)
enum class Stream : uint8_t { kInput = 1, kOutput = 2, kResize = 3, kError = 4, kSuspend = 5 };

// How a chunk's records are stored: as they are ("JGT1") or as one zstd
// frame ("JGTZ").
enum class ChunkEncoding : uint8_t { kPlain, kZstd };

struct Record {
  Stream stream = Stream::kOutput;
  int64_t time_ns = 0;  // since the session started; never decreasing
  Bytes data;           // every stream but kResize
  uint16_t cols = 0;    // kResize
  uint16_t rows = 0;    // kResize
  friend bool operator==(const Record&, const Record&) = default;
};

struct Chunk {
  std::string session;  // session id: 1..32 of [0-9a-z]
  uint64_t index = 0;   // 0, 1, 2, ... within the session
  std::vector<Record> records;  // at least one
  friend bool operator==(const Chunk&, const Chunk&) = default;
};

// EncodeChunk fails (kInvalidArgument) on an invalid session id, an empty
// record list, decreasing times, empty or oversized data, or a body larger
// than kMaxChunkBody (kZstd: records larger than kMaxChunkRecords, or a
// compressed body larger than kMaxChunkBody).
// It also rejects a negative time, an unknown stream, a resize record that
// carries data and a data record with cols/rows set, so that
// DecodeChunk(EncodeChunk(c)) == c for every chunk it accepts.
StatusOr<Bytes> EncodeChunk(const Chunk& chunk, ChunkEncoding encoding = ChunkEncoding::kPlain);
// DecodeChunk parses a chunk body, plain or compressed, strictly (see the
// grammar above and docs/recording-format.md). kInvalidArgument with a
// message naming the byte offset and the field on any deviation; nothing is
// allocated for a length before it is checked against its cap and the
// remaining input.
StatusOr<Chunk> DecodeChunk(ByteSpan body);

// The fixed part of a chunk, readable without decoding its records.
struct ChunkHeader {
  std::string session;
  uint64_t index = 0;
  int64_t base_ns = 0;
  ChunkEncoding encoding = ChunkEncoding::kPlain;
  friend bool operator==(const ChunkHeader&, const ChunkHeader&) = default;
};
// ValidateChunk checks a body exactly as DecodeChunk does (it accepts the
// same bodies and fails with the same status on the others) and returns its
// header, without building the records: for the broker, which stores the
// body as it came once it is known to decode. A compressed body is
// decompressed into a buffer the calling thread keeps for the next call
// (at most kMaxChunkRecords bytes).
StatusOr<ChunkHeader> ValidateChunk(ByteSpan body);
// DecodeChunkHeader checks and returns the header only (magic, session id,
// index, base_ns) and the body-size cap; the records are not looked at, so a
// body it accepts may still fail DecodeChunk. For indexing and for routing a
// chunk to its session cheaply.
StatusOr<ChunkHeader> DecodeChunkHeader(ByteSpan body);

// IsValidSessionId: 1..kMaxSessionIdLength characters of [0-9a-z].
bool IsValidSessionId(std::string_view id);
// IsMintedSessionId: kMintedSessionIdLength characters of kSessionIdAlphabet
// (what the broker mints, and what a spooling recorder may choose).
bool IsMintedSessionId(std::string_view id);

// ChunkBuilder cuts a stream of records into chunks of at most
// kMaxChunkBody bytes (splitting large data records), numbering them.
//
// Plain (compress = false): a chunk is cut only when the next byte would not
// fit, so every chunk but the last of a burst is within a few bytes of
// kMaxChunkBody; a data record larger than what still fits (or than
// kMaxRecordData) is split into several records with the same time, whose
// data concatenated is the original.
//
// Compressed (the default): records gather up to a target size (from
// kMaxChunkBody up to kMaxChunkRecords, following how well the last chunk
// compressed); a chunk is then stored compressed when that is smaller and
// fits, and otherwise as plain chunks as above. Incompressible data costs
// one wasted attempt on a large chunk, after which the target drops to
// kMaxChunkBody and the next 2, 4, ... 64 chunks (doubling while attempts
// keep failing) are cut plain without one.
//
// The builder never cuts on time: callers Flush() on their own latency timer.
// Thread-compatible.
class ChunkBuilder {
 public:
  explicit ChunkBuilder(std::string session, bool compress = true)
      : session_(std::move(session)), compress_(compress) {}
  // Adds a record; returns the chunks completed by it (usually none).
  // kInvalidArgument, with the builder unchanged, for an invalid session id,
  // an unknown stream, empty data, a negative time or a time before the
  // previous record's (across chunks too), a resize carrying data or a data
  // record with cols/rows set.
  StatusOr<std::vector<Bytes>> Add(Record record);
  // The pending records as the last chunk(s), if any (several only when
  // compressing did not pay and they do not fit one plain chunk).
  StatusOr<std::vector<Bytes>> Flush();
  // Chunks produced so far: the next chunk's index, and session_end's count.
  uint64_t chunks() const { return next_index_; }

 private:
  StatusOr<std::vector<Bytes>> Cut();
  // The most pending_size_ may reach before a cut.
  size_t limit() const { return compress_ ? target_ : kMaxChunkBody; }

  std::string session_;
  bool compress_;
  uint64_t next_index_ = 0;
  std::vector<Record> pending_;
  size_t pending_size_ = 0;  // encoded size of pending_ as a plain chunk; 0 if empty
  int64_t last_time_ns_ = 0;
  size_t target_ = kMaxChunkBody;  // compress_: where the next cut happens
  int misses_ = 0;                 // compression attempts failed in a row
  int skip_ = 0;                   // plain cuts to make before the next attempt
};

// The end_reason of a session whose recorder went away without ending it:
// given by the spool's forwarder (a killed recorder's file) and by the broker
// (a recorder without a spool that did not resume).
inline constexpr char kEndReasonRecorderLost[] = "recorder lost";

// What a session was: everything session_start and session_end say.
struct SessionInfo {
  std::string id;           // session id
  std::string recorder;     // "bastion", "jitgate-rec" or "sudo"
  std::string request_id;   // the approval it ran under ("" if none)
  std::string user;         // the person
  std::string remote_addr;  // where they came from
  std::string host;         // the host recorded on (bastion: the bastion's)
  std::string target;       // the target host (bastion), else host
  std::string login;        // the account on the target
  std::vector<std::string> approvers;
  uint64_t cert_serial = 0;  // upstream certificate (bastion), 0 if none
  std::string command;       // exec command, "" for a shell
  std::string term;          // TERM
  uint16_t cols = 0, rows = 0;
  int64_t start_unix_nanos = 0;
  // Filled in by session_end.
  bool ended = false;
  int64_t end_unix_nanos = 0;
  int exit_status = -1;     // -1 unknown
  std::string exit_signal;  // "TERM", or ""
  std::string end_reason;   // "closed", "expired", "terminated", "broker lost", ...
  uint64_t chunks = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  friend bool operator==(const SessionInfo&, const SessionInfo&) = default;
};

// The audit-event JSON bodies (compact, sorted keys, like broker/audit.h):
// {"type":"session_start","session":...,"time":...,...}.
// Field names and types: docs/recording-format.md section 4. Bytes that are
// not valid UTF-8 are replaced with U+FFFD. Never throw.
std::string SessionStartJson(const SessionInfo& s);
std::string SessionEndJson(const SessionInfo& s);
// Parses either event into *s (start fields, or end fields). kInvalidArgument
// if json is not a session event.
// Also kInvalidArgument if a known field is missing or has the wrong type or
// range, or if s->id is set and differs from the event's session; *s is then
// unchanged. Unknown keys are ignored (later writers may add fields).
Status ApplySessionEvent(std::string_view json, SessionInfo* s);

// SessionIndex reads sessions back from a store (read-only, safe while the
// broker appends): the list of sessions and each session's records in order,
// checking that chunks are numbered 0..n-1 without gaps or repeats and, for
// ended sessions, that n equals session_end's count.
//
// Repeats: a chunk whose body is identical to an earlier one with the same
// index (a recorder resending after a broker crash) is skipped; the same
// index with a different body is kDataLoss. The same holds for a repeated
// session_start or session_end. Open and Refresh read every new entry once,
// sequentially; they remember where each chunk lies, and ForEachRecord reads
// only that session's chunks. Not thread-safe.
class SessionIndex {
 public:
  static StatusOr<std::unique_ptr<SessionIndex>> Open(const std::string& store_dir);
  // As above, through env (tests pass an in-memory or fault-injecting Env).
  static StatusOr<std::unique_ptr<SessionIndex>> Open(const std::string& store_dir, Env* env);
  ~SessionIndex();
  SessionIndex(const SessionIndex&) = delete;
  SessionIndex& operator=(const SessionIndex&) = delete;

  // Every session seen, oldest first (by its first event in the store).
  // References into it are valid until the next Refresh.
  const std::vector<SessionInfo>& sessions() const { return sessions_; }
  // A session by id or unique prefix (>= 4 characters).
  StatusOr<SessionInfo> Find(std::string_view id_or_prefix) const;

  // Calls fn for each record of the session in order. kDataLoss naming the
  // chunk on a gap, a repeat, an undecodable chunk or a count mismatch.
  // Gaps and count mismatches are found before fn is first called; a chunk
  // that does not decode, conflicts with its repeat or goes back in time is
  // reported when reached, after fn has seen the records before it. The
  // first non-OK status fn returns stops the walk and is returned.
  // kNotFound if the store holds no event and no chunk of the session.
  // A session with chunks but no session_start can still be read (see
  // problems()).
  Status ForEachRecord(const std::string& session,
                       const std::function<Status(const Record&)>& fn) const;

  // Re-reads entries appended since Open (for `jitgate watch`); returns the
  // number of new entries.
  // kDataLoss if the store now holds fewer entries than before (a rollback).
  StatusOr<uint64_t> Refresh();

  // Entries scanned so far (the store's size at the last Open/Refresh).
  uint64_t size() const { return scanned_; }

  // Anomalies that belong to no readable session, one line each naming the
  // store entry or segment: malformed session events, chunks whose header
  // does not decode, entries that do not parse, damaged segments, and
  // sessions that have chunks but no session_start. Sessions' own problems
  // are reported by ForEachRecord.
  std::vector<std::string> problems() const;

 private:
  struct Impl;
  SessionIndex();
  Status Scan(uint64_t from);

  std::string dir_;
  Env* env_ = nullptr;
  std::unique_ptr<store::StoreReader> reader_;
  uint64_t scanned_ = 0;
  std::vector<SessionInfo> sessions_;
  // Per-session chunk locations, events seen and problems; resume point.
  std::unique_ptr<Impl> impl_;
};

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_RECORDING_H_
