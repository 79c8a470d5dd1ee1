#include "recorder/recording.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>
#include <zstd.h>
#include <zstd_errors.h>

#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "store/format.h"
#include "store/reader.h"
#include "store/scanner.h"
#include "store/segments.h"
#include "store/store_format.h"

namespace jitgate::recorder {

// A chunk is one store entry body; its cap leaves room below the entry limit.
static_assert(kMaxChunkBody <= store::kMaxEntryBody);
static_assert(sizeof(kChunkMagic) == 5, "the magic is 4 bytes");
static_assert(sizeof(kCompressedChunkMagic) == 5, "the magic is 4 bytes");
static_assert(kMaxRecordData < kMaxChunkBody);
static_assert(kMaxChunkBody < kMaxChunkRecords);
static_assert(kMaxSessionIdLength <= 255, "the id's length is one byte");

namespace {

constexpr size_t kMagicSize = 4;
// magic | u8 id length | id | u64 index | u64 base_ns
constexpr size_t kFixedHeaderSize = kMagicSize + 1 + 8 + 8;
constexpr size_t kResizeSize = 2 + 2;
constexpr int kMaxVarintBytes = 10;  // ceil(64 / 7)
constexpr uint64_t kMaxTime = uint64_t(std::numeric_limits<int64_t>::max());
// A compressed chunk's raw_length, after the header.
constexpr size_t kRawLengthSize = 4;
// zstd's fastest regular level: the bastion and jitgate-rec compress on the
// relay's path, so speed matters more than the last few percent of size.
constexpr int kZstdLevel = 1;
// Level 1 picks a hash table of 2^14 entries (64 KiB) for a chunk's size.
// Terminal output mostly repeats what it showed a few lines before (prompts,
// log prefixes, ls columns), which a table of 2^11 entries (8 KiB, in the L1
// cache) still finds: on sshd-style log text and on a mix of ls -lR, source
// code and journal text it compresses 25-40% faster, to within -4%..+3% of
// level 1's size. Decoders are unaffected (any zstd frame decodes).
constexpr int kZstdHashLog = 11;
constexpr uint32_t kZstdFrameMagic = 0xFD2FB528;  // little-endian in the frame

size_t HeaderSize(size_t id_length) { return kFixedHeaderSize + id_length; }

size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(ByteWriter* w, uint64_t v) {
  while (v >= 0x80) {
    w->PutU8(uint8_t(v) | 0x80);
    v >>= 7;
  }
  w->PutU8(uint8_t(v));
}

// Bytes a record takes in a chunk, given its delta from the previous record.
size_t RecordSize(const Record& r, uint64_t delta) {
  size_t n = 1 + VarintLength(delta);
  if (r.stream == Stream::kResize) return n + kResizeSize;
  return n + VarintLength(r.data.size()) + r.data.size();
}

bool ValidStream(Stream s) {
  return s == Stream::kInput || s == Stream::kOutput || s == Stream::kResize ||
         s == Stream::kError || s == Stream::kSuspend;
}

// A session id shown in a message: escaped and bounded, as it may be hostile.
std::string ShowId(std::string_view id) {
  constexpr size_t kShow = 40;
  std::string s = EscapeForTerminal(id.substr(0, kShow));
  if (id.size() > kShow) s += "...";
  return "\"" + s + "\"";
}

// The checks every record passes before it is encoded (by EncodeChunk or
// ChunkBuilder), so that decoding gives back an equal Record. split_data:
// data over kMaxRecordData is allowed (ChunkBuilder splits it).
Status CheckRecord(const Record& r, std::string_view what, bool split_data = false) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(std::string(what) + ": " + why);
  };
  if (!ValidStream(r.stream)) return bad("unknown stream " + std::to_string(int(r.stream)));
  if (r.time_ns < 0) return bad("negative time " + std::to_string(r.time_ns));
  if (r.stream == Stream::kResize) {
    if (!r.data.empty()) return bad("a resize record carries no data");
  } else {
    if (r.data.empty()) return bad("empty data");
    if (r.data.size() > kMaxRecordData && !split_data) {
      return bad("data of " + std::to_string(r.data.size()) + " bytes exceeds kMaxRecordData (" +
                 std::to_string(kMaxRecordData) + ")");
    }
    if (r.cols != 0 || r.rows != 0) return bad("a data record carries no cols/rows");
  }
  return OkStatus();
}

// Reading a chunk: every error names the byte offset where it was found.
class ChunkParser {
 public:
  // where: what offsets count from ("chunk" for a body, "decompressed
  // records" for a compressed chunk's records).
  explicit ChunkParser(ByteSpan body, const char* where = "chunk")
      : body_(body), r_(body), where_(where) {}

  size_t offset() const { return body_.size() - r_.remaining(); }
  bool done() const { return r_.Empty(); }

  Status Error(size_t at, const std::string& why) const {
    return InvalidArgumentError(std::string(where_) + " offset " + std::to_string(at) + ": " +
                                why);
  }
  Status Truncated(size_t at, const char* field) const {
    return Error(at, std::string("truncated in ") + field);
  }

  Status Header(ChunkHeader* h) {
    if (body_.size() > kMaxChunkBody) {
      return InvalidArgumentError("chunk of " + std::to_string(body_.size()) +
                                  " bytes exceeds kMaxChunkBody (" + std::to_string(kMaxChunkBody) +
                                  ")");
    }
    size_t at = offset();
    ByteSpan magic;
    if (!r_.GetBytes(kMagicSize, &magic)) return Truncated(at, "magic");
    if (std::memcmp(magic.data(), kChunkMagic, kMagicSize) == 0) {
      h->encoding = ChunkEncoding::kPlain;
    } else if (std::memcmp(magic.data(), kCompressedChunkMagic, kMagicSize) == 0) {
      h->encoding = ChunkEncoding::kZstd;
    } else {
      return Error(at, "bad magic (not a JGT1 or JGTZ chunk)");
    }
    at = offset();
    uint8_t n;
    if (!r_.GetU8(&n)) return Truncated(at, "session id length");
    if (n == 0 || n > kMaxSessionIdLength) {
      return Error(at, "session id length " + std::to_string(n) + " is not 1.." +
                           std::to_string(kMaxSessionIdLength));
    }
    at = offset();
    ByteSpan id;
    if (!r_.GetBytes(n, &id)) return Truncated(at, "session id");
    if (!IsValidSessionId(AsChars(id))) return Error(at, "session id is not [0-9a-z]");
    at = offset();
    uint64_t index;
    if (!r_.GetU64(&index)) return Truncated(at, "index");
    at = offset();
    uint64_t base;
    if (!r_.GetU64(&base)) return Truncated(at, "base_ns");
    if (base > kMaxTime) return Error(at, "base_ns " + std::to_string(base) + " exceeds 2^63-1");
    h->session.assign(AsChars(id));
    h->index = index;
    h->base_ns = int64_t(base);
    return OkStatus();
  }

  // A compressed chunk's rest: u32 raw_length, then exactly one zstd frame
  // whose declared content size is raw_length; *raw gets the records, in
  // this thread's scratch buffer (valid until the thread's next Decompress).
  // raw_length is capped (kMaxChunkRecords) before anything is allocated,
  // and single-pass decompression into a buffer of that size allocates no
  // window, whatever the frame header claims.
  Status Decompress(ByteSpan* raw) {
    size_t at = offset();
    uint32_t raw_length;
    if (!r_.GetU32(&raw_length)) return Truncated(at, "raw_length");
    if (raw_length == 0 || raw_length > kMaxChunkRecords) {
      return Error(at, "raw_length " + std::to_string(raw_length) + " is not 1.." +
                           std::to_string(kMaxChunkRecords));
    }
    at = offset();
    ByteSpan frame = r_.Rest();
    if (frame.size() < 4) return Truncated(at, "zstd frame");
    uint32_t magic = uint32_t(frame[0]) | uint32_t(frame[1]) << 8 | uint32_t(frame[2]) << 16 |
                     uint32_t(frame[3]) << 24;
    if (magic != kZstdFrameMagic) return Error(at, "not a zstd frame");
    const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
    if (ZSTD_isError(frame_size)) {
      return Error(at, std::string("bad zstd frame: ") + ZSTD_getErrorName(frame_size));
    }
    if (frame_size != frame.size()) {
      return Error(at + frame_size, std::to_string(frame.size() - frame_size) +
                                        " trailing bytes after the zstd frame");
    }
    const unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (content != raw_length) {
      return Error(at, content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR
                           ? std::string("zstd frame does not declare its content size")
                           : "zstd frame holds " + std::to_string(content) +
                                 " bytes, raw_length says " + std::to_string(raw_length));
    }
    ZSTD_DCtx* dctx = ThreadDctx();
    if (dctx == nullptr) return ResourceExhaustedError("cannot allocate a zstd context");
    // Reused, and only ever grown (to at most kMaxChunkRecords), so that a
    // chunk costs neither an allocation nor zeroing; zstd writes at most
    // raw_length bytes, and only what it wrote is read.
    Bytes& out = ThreadScratch();
    if (out.size() < raw_length) out.resize(raw_length);
    const size_t n = ZSTD_decompressDCtx(dctx, out.data(), raw_length, frame.data(), frame.size());
    if (ZSTD_isError(n)) {
      return Error(at, std::string("zstd frame does not decompress: ") + ZSTD_getErrorName(n));
    }
    if (n != raw_length) {
      return Error(at, "zstd frame decompresses to " + std::to_string(n) + " bytes, raw_length says " +
                           std::to_string(raw_length));
    }
    (void)r_.Skip(frame.size());
    *raw = ByteSpan(out.data(), raw_length);
    return OkStatus();
  }

  // Unsigned LEB128, shortest form, at most 64 bits.
  Status Varint(const char* field, uint64_t* out) {
    const size_t at = offset();
    uint64_t v = 0;
    for (int i = 0; i < kMaxVarintBytes; ++i) {
      uint8_t b;
      if (!r_.GetU8(&b)) return Truncated(at, field);
      // The 10th byte holds bit 63 only; anything more does not fit 64 bits.
      if (i == kMaxVarintBytes - 1 && b > 1) {
        return Error(at, std::string("varint longer than 64 bits in ") + field);
      }
      v |= uint64_t(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        // A zero last byte after others means the value had a shorter form.
        if (b == 0 && i > 0) return Error(at, std::string("non-minimal varint in ") + field);
        *out = v;
        return OkStatus();
      }
    }
    return Error(at, std::string("varint longer than 64 bits in ") + field);  // not reached
  }

  // One record; *time is the previous record's time on entry. Without
  // keep_data the record is checked alike but rec->data is left alone.
  Status Next(bool first, int64_t* time, Record* rec, bool keep_data = true) {
    const size_t at = offset();
    uint8_t stream;
    if (!r_.GetU8(&stream)) return Truncated(at, "stream");
    if (!ValidStream(Stream(stream))) {
      return Error(at, "unknown stream " + std::to_string(stream));
    }
    const size_t delta_at = offset();
    uint64_t delta;
    RETURN_IF_ERROR(Varint("delta_ns", &delta));
    // base_ns is the first record's time, so its delta is 0: one encoding per
    // chunk.
    if (first && delta != 0) {
      return Error(delta_at, "first record's delta_ns is " + std::to_string(delta) + ", not 0");
    }
    if (delta > kMaxTime - uint64_t(*time)) return Error(delta_at, "time overflows 2^63-1");
    rec->stream = Stream(stream);
    rec->time_ns = *time + int64_t(delta);
    if (rec->stream == Stream::kResize) {
      const size_t size_at = offset();
      if (!r_.GetU16(&rec->cols) || !r_.GetU16(&rec->rows)) return Truncated(size_at, "resize");
    } else {
      const size_t len_at = offset();
      uint64_t len;
      RETURN_IF_ERROR(Varint("data length", &len));
      if (len == 0) return Error(len_at, "empty data record");
      if (len > kMaxRecordData) {
        return Error(len_at, "data length " + std::to_string(len) + " exceeds kMaxRecordData (" +
                                 std::to_string(kMaxRecordData) + ")");
      }
      const size_t data_at = offset();
      ByteSpan data;
      if (!r_.GetBytes(size_t(len), &data)) return Truncated(data_at, "data");
      if (keep_data) rec->data.assign(data.begin(), data.end());
    }
    *time = rec->time_ns;
    return OkStatus();
  }

 private:
  struct DctxFree {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  static ZSTD_DCtx* ThreadDctx() {
    thread_local std::unique_ptr<ZSTD_DCtx, DctxFree> dctx(ZSTD_createDCtx());
    return dctx.get();
  }
  static Bytes& ThreadScratch() {
    thread_local Bytes scratch;
    return scratch;
  }

  ByteSpan body_;
  ByteReader r_;
  const char* where_;
};

// The records of a chunk to the end of p's input (at least one; the first
// delta 0). out == nullptr: checked alike, but nothing is kept.
Status ParseRecords(ChunkParser& p, int64_t base_ns, std::vector<Record>* out) {
  if (p.done()) return p.Error(p.offset(), "a chunk needs at least one record");
  int64_t time = base_ns;
  bool first = true;
  while (!p.done()) {
    Record rec;
    RETURN_IF_ERROR(p.Next(first, &time, &rec, /*keep_data=*/out != nullptr));
    if (out != nullptr) out->push_back(std::move(rec));
    first = false;
  }
  return OkStatus();
}

struct CctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
// One compression context per thread, its parameters set once (ZSTD_compress2
// starts a new frame each time and keeps them): level kZstdLevel with a hash
// table of 2^kZstdHashLog entries, content size in the frame (decoders check
// it), no checksum (the store's hashes cover every byte), no dictionary.
// nullptr if it cannot be had.
ZSTD_CCtx* NewCctx() {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  if (c != nullptr &&
      (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, kZstdLevel)) ||
       ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, kZstdHashLog)) ||
       ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)) ||
       ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)))) {
    ZSTD_freeCCtx(c);
    c = nullptr;
  }
  return c;
}
ZSTD_CCtx* ThreadCctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CctxFree> cctx(NewCctx());
  return cctx.get();
}


constexpr char kStartType[] = "session_start";
constexpr char kEndType[] = "session_end";

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Field readers for ApplySessionEvent: the key must be present with the type
// and range the writer gives it.
class Fields {
 public:
  explicit Fields(const Json& j) : j_(j) {}

  Status String(const char* key, std::string* out) {
    const Json* v;
    RETURN_IF_ERROR(Find(key, &v));
    if (!v->is_string()) return Wrong(key, "a string");
    *out = v->get_ref<const std::string&>();
    return OkStatus();
  }
  Status Strings(const char* key, std::vector<std::string>* out) {
    const Json* v;
    RETURN_IF_ERROR(Find(key, &v));
    if (!v->is_array()) return Wrong(key, "an array of strings");
    std::vector<std::string> got;
    for (const Json& e : *v) {
      if (!e.is_string()) return Wrong(key, "an array of strings");
      got.push_back(e.get_ref<const std::string&>());
    }
    *out = std::move(got);
    return OkStatus();
  }
  Status Unsigned(const char* key, uint64_t max, uint64_t* out) {
    const Json* v;
    RETURN_IF_ERROR(Find(key, &v));
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      return Wrong(key, "an integer in 0.." + std::to_string(max));
    }
    *out = v->get<uint64_t>();
    return OkStatus();
  }
  Status Signed(const char* key, int64_t min, int64_t max, int64_t* out) {
    const Json* v;
    RETURN_IF_ERROR(Find(key, &v));
    const std::string want = "an integer in " + std::to_string(min) + ".." + std::to_string(max);
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (max < 0 || u > uint64_t(max)) return Wrong(key, want);
      *out = int64_t(u);
    } else if (v->is_number_integer()) {
      const int64_t i = v->get<int64_t>();
      if (i < min || i > max) return Wrong(key, want);
      *out = i;
    } else {
      return Wrong(key, want);
    }
    return OkStatus();
  }
  template <typename T>
  Status UnsignedAs(const char* key, T* out) {
    uint64_t u = 0;
    RETURN_IF_ERROR(Unsigned(key, std::numeric_limits<T>::max(), &u));
    *out = T(u);
    return OkStatus();
  }

 private:
  Status Find(const char* key, const Json** out) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      return InvalidArgumentError(std::string("session event has no \"") + key + "\"");
    }
    *out = &*it;
    return OkStatus();
  }
  static Status Wrong(const char* key, const std::string& want) {
    return InvalidArgumentError(std::string("session event: \"") + key + "\" is not " + want);
  }

  const Json& j_;
};

enum class EventKind { kNotSession, kStart, kEnd };

// Parses a session event. *kind is kNotSession (with an error) unless json is
// an object whose "type" is "session_start" or "session_end"; then the
// status says whether the rest is well formed. *out gets the id and the
// event's fields only (start fields, or end fields with ended = true).
Status ParseSessionEvent(std::string_view json, EventKind* kind, SessionInfo* out) {
  *kind = EventKind::kNotSession;
  const Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("not a session event: not a JSON object");
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) {
    return InvalidArgumentError("not a session event: no \"type\"");
  }
  const std::string& t = type->get_ref<const std::string&>();
  if (t == kStartType) {
    *kind = EventKind::kStart;
  } else if (t == kEndType) {
    *kind = EventKind::kEnd;
  } else {
    return InvalidArgumentError("not a session event: type \"" + EscapeForTerminal(t) + "\"");
  }
  Fields f(j);
  SessionInfo s;
  RETURN_IF_ERROR(f.String("session", &s.id));
  if (!IsValidSessionId(s.id)) {
    return InvalidArgumentError("session event: session id " + ShowId(s.id) +
                                " is not 1..32 of [0-9a-z]");
  }
  std::string time_text;  // informational; time_unix_nanos is authoritative
  RETURN_IF_ERROR(f.String("time", &time_text));
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  if (*kind == EventKind::kStart) {
    RETURN_IF_ERROR(f.Signed("time_unix_nanos", kMin, kMax, &s.start_unix_nanos));
    RETURN_IF_ERROR(f.String("recorder", &s.recorder));
    RETURN_IF_ERROR(f.String("request", &s.request_id));
    RETURN_IF_ERROR(f.String("user", &s.user));
    RETURN_IF_ERROR(f.String("remote_addr", &s.remote_addr));
    RETURN_IF_ERROR(f.String("host", &s.host));
    RETURN_IF_ERROR(f.String("target", &s.target));
    RETURN_IF_ERROR(f.String("login", &s.login));
    RETURN_IF_ERROR(f.Strings("approvers", &s.approvers));
    RETURN_IF_ERROR(f.UnsignedAs("cert_serial", &s.cert_serial));
    RETURN_IF_ERROR(f.String("command", &s.command));
    RETURN_IF_ERROR(f.String("term", &s.term));
    RETURN_IF_ERROR(f.UnsignedAs("cols", &s.cols));
    RETURN_IF_ERROR(f.UnsignedAs("rows", &s.rows));
  } else {
    s.ended = true;
    RETURN_IF_ERROR(f.Signed("time_unix_nanos", kMin, kMax, &s.end_unix_nanos));
    int64_t status = 0;
    RETURN_IF_ERROR(f.Signed("exit_status", -1, std::numeric_limits<int>::max(), &status));
    s.exit_status = int(status);
    RETURN_IF_ERROR(f.String("exit_signal", &s.exit_signal));
    RETURN_IF_ERROR(f.String("end_reason", &s.end_reason));
    RETURN_IF_ERROR(f.UnsignedAs("chunks", &s.chunks));
    RETURN_IF_ERROR(f.UnsignedAs("bytes_in", &s.bytes_in));
    RETURN_IF_ERROR(f.UnsignedAs("bytes_out", &s.bytes_out));
  }
  *out = std::move(s);
  return OkStatus();
}

// The part of a SessionInfo that session_end carries (plus the id), and
// merging it into another.
SessionInfo EndPart(const SessionInfo& s) {
  SessionInfo e;
  e.id = s.id;
  e.ended = s.ended;
  e.end_unix_nanos = s.end_unix_nanos;
  e.exit_status = s.exit_status;
  e.exit_signal = s.exit_signal;
  e.end_reason = s.end_reason;
  e.chunks = s.chunks;
  e.bytes_in = s.bytes_in;
  e.bytes_out = s.bytes_out;
  return e;
}
void MergeEnd(const SessionInfo& from, SessionInfo* to) {
  SessionInfo merged = EndPart(from);
  to->ended = merged.ended;
  to->end_unix_nanos = merged.end_unix_nanos;
  to->exit_status = merged.exit_status;
  to->exit_signal = std::move(merged.exit_signal);
  to->end_reason = std::move(merged.end_reason);
  to->chunks = merged.chunks;
  to->bytes_in = merged.bytes_in;
  to->bytes_out = merged.bytes_out;
}
// The part session_start carries: everything but the end fields.
SessionInfo StartPart(const SessionInfo& s) {
  SessionInfo p = s;
  MergeEnd(SessionInfo{}, &p);
  return p;
}
void MergeStart(const SessionInfo& from, SessionInfo* to) {
  SessionInfo merged = StartPart(from);
  MergeEnd(*to, &merged);
  *to = std::move(merged);
}

// A RandomAccessFile that starts at an offset of another, so that a
// SegmentScanner can resume mid-segment at a record boundary.
class OffsetFile : public RandomAccessFile {
 public:
  OffsetFile(const RandomAccessFile* file, uint64_t base) : file_(file), base_(base) {}
  StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    return file_->Read(base_ + offset, out);
  }
  StatusOr<uint64_t> Size() const override {
    ASSIGN_OR_RETURN(uint64_t size, file_->Size());
    return size > base_ ? size - base_ : 0;
  }

 private:
  const RandomAccessFile* file_;
  uint64_t base_;
};

}  // namespace

bool IsValidSessionId(std::string_view id) {
  if (id.empty() || id.size() > kMaxSessionIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

bool IsMintedSessionId(std::string_view id) {
  if (id.size() != kMintedSessionIdLength) return false;
  std::string_view alphabet(kSessionIdAlphabet);
  for (char c : id) {
    if (alphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Chunks

namespace {

// Checks a chunk's records and returns their encoded size (without the
// header); kInvalidArgument "<over> at record i" past cap.
StatusOr<size_t> RecordsSize(const Chunk& chunk, size_t cap, const std::string& over) {
  if (!IsValidSessionId(chunk.session)) {
    return InvalidArgumentError("session id " + ShowId(chunk.session) +
                                " is not 1..32 of [0-9a-z]");
  }
  if (chunk.records.empty()) return InvalidArgumentError("a chunk needs at least one record");
  size_t size = 0;
  int64_t prev = chunk.records.front().time_ns;
  for (size_t i = 0; i < chunk.records.size(); ++i) {
    const Record& r = chunk.records[i];
    RETURN_IF_ERROR(CheckRecord(r, "record " + std::to_string(i)));
    if (r.time_ns < prev) {
      return InvalidArgumentError("record " + std::to_string(i) + ": time " +
                                  std::to_string(r.time_ns) + " is before the previous record's " +
                                  std::to_string(prev));
    }
    size += RecordSize(r, uint64_t(r.time_ns - prev));
    prev = r.time_ns;
    // Checked as we go so that the sum cannot overflow.
    if (size > cap) return InvalidArgumentError(over + " at record " + std::to_string(i));
  }
  return size;
}

void PutHeader(ByteWriter* w, const char* magic, const Chunk& chunk) {
  w->PutBytes(std::string_view(magic, kMagicSize));
  w->PutU8(uint8_t(chunk.session.size()));
  w->PutBytes(chunk.session);
  w->PutU64(chunk.index);
  w->PutU64(uint64_t(chunk.records.front().time_ns));
}

void PutRecords(ByteWriter* w, const std::vector<Record>& records) {
  int64_t prev = records.front().time_ns;
  for (const Record& r : records) {
    w->PutU8(uint8_t(r.stream));
    PutVarint(w, uint64_t(r.time_ns - prev));
    prev = r.time_ns;
    if (r.stream == Stream::kResize) {
      w->PutU16(r.cols);
      w->PutU16(r.rows);
    } else {
      PutVarint(w, r.data.size());
      w->PutBytes(ByteSpan(r.data));
    }
  }
}

// A JGTZ body for chunk, whose records encode to `records` bytes; nullopt if
// it would exceed kMaxChunkBody.
StatusOr<std::optional<Bytes>> CompressChunk(const Chunk& chunk, size_t records) {
  ByteWriter raw(records);
  PutRecords(&raw, chunk.records);
  if (raw.size() != records) return InternalError("chunk size miscomputed");
  ByteWriter head(HeaderSize(chunk.session.size()) + kRawLengthSize);
  PutHeader(&head, kCompressedChunkMagic, chunk);
  head.PutU32(uint32_t(records));
  Bytes out = head.Release();
  const size_t header = out.size();
  out.resize(kMaxChunkBody);
  ZSTD_CCtx* cctx = ThreadCctx();
  if (cctx == nullptr) return ResourceExhaustedError("cannot allocate a zstd context");
  const size_t n = ZSTD_compress2(cctx, out.data() + header, out.size() - header,
                                  raw.data().data(), raw.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return std::optional<Bytes>();
    return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(header + n);
  return std::optional<Bytes>(std::move(out));
}

}  // namespace

StatusOr<Bytes> EncodeChunk(const Chunk& chunk, ChunkEncoding encoding) {
  const size_t header = HeaderSize(chunk.session.size());
  if (encoding == ChunkEncoding::kZstd) {
    ASSIGN_OR_RETURN(size_t records,
                     RecordsSize(chunk, kMaxChunkRecords,
                                 "records exceed kMaxChunkRecords (" +
                                     std::to_string(kMaxChunkRecords) + ")"));
    ASSIGN_OR_RETURN(std::optional<Bytes> body, CompressChunk(chunk, records));
    if (!body.has_value()) {
      return InvalidArgumentError("compressed chunk body exceeds kMaxChunkBody (" +
                                  std::to_string(kMaxChunkBody) + ")");
    }
    return std::move(*body);
  }
  // header <= 53 bytes, far below the cap.
  ASSIGN_OR_RETURN(size_t records,
                   RecordsSize(chunk, kMaxChunkBody - header,
                               "chunk body exceeds kMaxChunkBody (" +
                                   std::to_string(kMaxChunkBody) + ")"));
  ByteWriter w(header + records);
  PutHeader(&w, kChunkMagic, chunk);
  PutRecords(&w, chunk.records);
  if (w.size() != header + records) return InternalError("chunk size miscomputed");
  return w.Release();
}

StatusOr<ChunkHeader> DecodeChunkHeader(ByteSpan body) {
  ChunkParser p(body);
  ChunkHeader h;
  RETURN_IF_ERROR(p.Header(&h));
  return h;
}

namespace {

// DecodeChunk (records != nullptr) and ValidateChunk (nullptr): one parser,
// so that the two accept and reject exactly the same bodies.
Status ParseChunk(ByteSpan body, ChunkHeader* h, std::vector<Record>* records) {
  ChunkParser p(body);
  RETURN_IF_ERROR(p.Header(h));
  if (h->encoding == ChunkEncoding::kPlain) return ParseRecords(p, h->base_ns, records);
  ByteSpan raw;
  RETURN_IF_ERROR(p.Decompress(&raw));
  ChunkParser inner(raw, "decompressed records");
  return ParseRecords(inner, h->base_ns, records);
}

}  // namespace

StatusOr<Chunk> DecodeChunk(ByteSpan body) {
  ChunkHeader h;
  Chunk c;
  RETURN_IF_ERROR(ParseChunk(body, &h, &c.records));
  c.session = std::move(h.session);
  c.index = h.index;
  return c;
}

StatusOr<ChunkHeader> ValidateChunk(ByteSpan body) {
  ChunkHeader h;
  RETURN_IF_ERROR(ParseChunk(body, &h, nullptr));
  return h;
}

// ---------------------------------------------------------------------------
// ChunkBuilder

StatusOr<std::vector<Bytes>> ChunkBuilder::Cut() {
  Chunk c{session_, next_index_, std::move(pending_)};
  pending_.clear();
  const size_t plain_size = pending_size_;
  const size_t header = HeaderSize(session_.size());
  auto done = [&](std::vector<Bytes> out, uint64_t next) -> StatusOr<std::vector<Bytes>> {
    pending_size_ = 0;
    next_index_ = next;
    return out;
  };
  if (compress_ && skip_ > 0) {
    --skip_;  // backing off after failed attempts: target_ is kMaxChunkBody
  } else if (compress_) {
    StatusOr<std::optional<Bytes>> z = CompressChunk(c, plain_size - header);
    if (!z.ok()) {
      pending_ = std::move(c.records);  // leave the builder as it was
      return z.status();
    }
    if (z->has_value() && (*z)->size() < plain_size) {
      // Aim the next cut where this ratio would fill about three quarters
      // of a chunk (room for data that compresses a little worse).
      const double ratio = double(plain_size) / double((*z)->size());
      const double aim = double(kMaxChunkBody) * ratio * 0.75;
      target_ = aim >= double(header + kMaxChunkRecords)
                    ? header + kMaxChunkRecords
                    : std::max(kMaxChunkBody, size_t(aim));
      misses_ = 0;
      std::vector<Bytes> out;
      out.push_back(std::move(**z));
      return done(std::move(out), next_index_ + 1);
    }
    // Compressing did not pay. A small chunk (a flush of a few keystrokes)
    // says little about the data; a large one means plain-sized cuts, and no
    // attempt for the next 2, 4, ... 64 of them.
    if (plain_size >= kMaxChunkBody / 2) {
      target_ = kMaxChunkBody;
      misses_ = std::min(misses_ + 1, 6);
      skip_ = 1 << misses_;
    }
    if (plain_size > kMaxChunkBody) {
      ChunkBuilder plain(session_, /*compress=*/false);
      plain.next_index_ = next_index_;
      plain.last_time_ns_ = c.records.front().time_ns;
      std::vector<Bytes> out;
      Status s = [&]() -> Status {
        for (const Record& r : c.records) {
          ASSIGN_OR_RETURN(std::vector<Bytes> some, plain.Add(r));
          for (Bytes& b : some) out.push_back(std::move(b));
        }
        ASSIGN_OR_RETURN(std::vector<Bytes> last, plain.Flush());
        for (Bytes& b : last) out.push_back(std::move(b));
        return OkStatus();
      }();
      if (!s.ok()) {
        pending_ = std::move(c.records);
        return InternalError("chunk builder: cannot cut records as plain chunks: " +
                             s.ToString());
      }
      return done(std::move(out), plain.next_index_);
    }
  }
  StatusOr<Bytes> body = EncodeChunk(c);
  if (!body.ok() || body->size() != plain_size) {
    pending_ = std::move(c.records);  // leave the builder as it was
    return InternalError("chunk builder: pending records do not encode to the " +
                         std::to_string(plain_size) + " bytes accounted (" +
                         body.status().ToString() + ")");
  }
  std::vector<Bytes> out;
  out.push_back(std::move(*body));
  return done(std::move(out), next_index_ + 1);
}

StatusOr<std::vector<Bytes>> ChunkBuilder::Add(Record record) {
  if (!IsValidSessionId(session_)) {
    return InvalidArgumentError("session id " + ShowId(session_) + " is not 1..32 of [0-9a-z]");
  }
  RETURN_IF_ERROR(CheckRecord(record, "record", /*split_data=*/true));
  const int64_t time = record.time_ns;
  if (time < last_time_ns_) {
    return InvalidArgumentError("record: time " + std::to_string(time) +
                                " is before the previous record's " +
                                std::to_string(last_time_ns_));
  }

  std::vector<Bytes> done;
  auto cut = [&]() -> Status {
    ASSIGN_OR_RETURN(std::vector<Bytes> some, Cut());
    for (Bytes& b : some) done.push_back(std::move(b));
    return OkStatus();
  };
  auto delta = [&]() -> uint64_t {
    return pending_.empty() ? 0 : uint64_t(time - pending_.back().time_ns);
  };

  if (record.stream == Stream::kResize) {
    if (!pending_.empty() && pending_size_ + RecordSize(record, delta()) > limit()) {
      RETURN_IF_ERROR(cut());
    }
    if (pending_.empty()) pending_size_ = HeaderSize(session_.size());
    pending_size_ += RecordSize(record, delta());
    pending_.push_back(std::move(record));
  } else {
    ByteSpan rest(record.data);
    while (!rest.empty()) {
      if (pending_.empty()) pending_size_ = HeaderSize(session_.size());
      const size_t overhead = 1 + VarintLength(delta());
      const size_t room =
          pending_size_ + overhead < limit() ? limit() - pending_size_ - overhead : 0;
      // The most data n with varint(n) + n <= room.
      size_t n = std::min({rest.size(), kMaxRecordData, room > 0 ? room - 1 : size_t(0)});
      while (n > 0 && VarintLength(n) + n > room) --n;
      if (n == 0) {
        // An empty chunk always has room (header <= 53 bytes), so this cuts
        // a non-empty one.
        RETURN_IF_ERROR(cut());
        continue;
      }
      Record piece;
      piece.stream = record.stream;
      piece.time_ns = time;
      if (n == record.data.size()) {
        piece.data = std::move(record.data);  // the common case: no split, no copy
        rest = {};
      } else {
        piece.data.assign(rest.begin(), rest.begin() + n);
        rest = rest.subspan(n);
      }
      pending_size_ += RecordSize(piece, delta());
      pending_.push_back(std::move(piece));
    }
  }
  last_time_ns_ = time;
  return done;
}

StatusOr<std::vector<Bytes>> ChunkBuilder::Flush() {
  if (pending_.empty()) return std::vector<Bytes>();
  return Cut();
}

// ---------------------------------------------------------------------------
// Session events

std::string SessionStartJson(const SessionInfo& s) {
  Json j = {
      {"type", kStartType},
      {"session", s.id},
      {"time", FormatRfc3339Nanos(s.start_unix_nanos)},
      {"time_unix_nanos", s.start_unix_nanos},
      {"recorder", s.recorder},
      {"request", s.request_id},
      {"user", s.user},
      {"remote_addr", s.remote_addr},
      {"host", s.host},
      {"target", s.target},
      {"login", s.login},
      {"approvers", s.approvers},
      {"cert_serial", s.cert_serial},
      {"command", s.command},
      {"term", s.term},
      {"cols", s.cols},
      {"rows", s.rows},
  };
  return Dump(j);
}

std::string SessionEndJson(const SessionInfo& s) {
  Json j = {
      {"type", kEndType},
      {"session", s.id},
      {"time", FormatRfc3339Nanos(s.end_unix_nanos)},
      {"time_unix_nanos", s.end_unix_nanos},
      {"exit_status", s.exit_status},
      {"exit_signal", s.exit_signal},
      {"end_reason", s.end_reason},
      {"chunks", s.chunks},
      {"bytes_in", s.bytes_in},
      {"bytes_out", s.bytes_out},
  };
  return Dump(j);
}

Status ApplySessionEvent(std::string_view json, SessionInfo* s) {
  EventKind kind;
  SessionInfo event;
  RETURN_IF_ERROR(ParseSessionEvent(json, &kind, &event));
  if (!s->id.empty() && s->id != event.id) {
    return InvalidArgumentError("session event is for session " + ShowId(event.id) + ", not " +
                                ShowId(s->id));
  }
  if (kind == EventKind::kStart) {
    MergeStart(event, s);
  } else {
    s->id = event.id;
    MergeEnd(event, s);
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------
// SessionIndex

namespace {

// Where a chunk lies: enough to read it back without scanning.
struct ChunkRef {
  uint64_t index = 0;    // the chunk's own index
  uint64_t entry = 0;    // store entry index
  uint64_t segment = 0;  // segment number
  uint64_t offset = 0;   // of the ENTRY record in the segment file
  uint64_t size = 0;     // of the whole record
};

struct SessionMeta {
  size_t pos = 0;  // in sessions_
  bool has_start = false, has_end = false;
  uint64_t start_entry = 0, end_entry = 0;
  std::string trouble;  // the first inconsistency among its events
};

std::string EntryName(uint64_t entry) { return "entry " + std::to_string(entry); }

}  // namespace

struct SessionIndex::Impl {
  std::map<std::string, SessionMeta, std::less<>> meta;
  std::map<std::string, std::vector<ChunkRef>, std::less<>> chunks;  // store order
  std::vector<std::string> problems;
  // Where the next scan continues: a record boundary, and the index of the
  // next entry.
  uint64_t resume_segment = 1;
  uint64_t resume_offset = 0;
  uint64_t resume_entry = 0;

  void Trouble(SessionMeta* m, std::string why) {
    if (m->trouble.empty()) m->trouble = std::move(why);
  }
};

SessionIndex::SessionIndex() : impl_(std::make_unique<Impl>()) {}
SessionIndex::~SessionIndex() = default;

StatusOr<std::unique_ptr<SessionIndex>> SessionIndex::Open(const std::string& store_dir) {
  return Open(store_dir, nullptr);
}

StatusOr<std::unique_ptr<SessionIndex>> SessionIndex::Open(const std::string& store_dir, Env* env) {
  std::unique_ptr<SessionIndex> idx(new SessionIndex());
  idx->dir_ = store_dir;
  idx->env_ = env != nullptr ? env : DefaultEnv();
  ASSIGN_OR_RETURN(idx->reader_, store::StoreReader::Open(store_dir, idx->env_));
  RETURN_IF_ERROR(idx->Scan(0));
  idx->scanned_ = idx->impl_->resume_entry;
  return idx;
}

StatusOr<uint64_t> SessionIndex::Refresh() {
  ASSIGN_OR_RETURN(std::unique_ptr<store::StoreReader> r, store::StoreReader::Open(dir_, env_));
  if (r->identity().origin != reader_->identity().origin ||
      r->identity().vkey != reader_->identity().vkey) {
    return DataLossError(dir_ + ": the store's identity changed since it was opened");
  }
  if (r->size() < scanned_) {
    return DataLossError(dir_ + ": the store has " + std::to_string(r->size()) +
                         " entries, fewer than the " + std::to_string(scanned_) +
                         " read before (rolled back?)");
  }
  const uint64_t before = scanned_;
  reader_ = std::move(r);
  // After a failure (I/O), what was indexed stays indexed; the next Refresh
  // continues from there.
  Status st = Scan(before);
  scanned_ = impl_->resume_entry;
  RETURN_IF_ERROR(st);
  return scanned_ - before;
}

Status SessionIndex::Scan(uint64_t from) {
  Impl& m = *impl_;
  const uint64_t limit = reader_->size();
  if (from >= limit) return OkStatus();
  if (m.resume_entry != from) return InternalError("session index: scan does not resume in place");
  ASSIGN_OR_RETURN(std::vector<store::SegmentInfo> segs, store::ListSegments(env_, dir_));
  if (m.resume_segment == 0 || m.resume_segment > segs.size()) {
    return DataLossError(dir_ + ": segment " + std::to_string(m.resume_segment) +
                         " has disappeared");
  }

  // One entry: audit events that are session events, and chunk headers.
  auto index = [&](uint64_t entry, uint64_t segment, uint64_t offset, uint64_t size,
                   ByteSpan payload) {
    StatusOr<store::Entry> e = store::ParseEntry(payload);
    if (!e.ok()) {
      m.problems.push_back(EntryName(entry) + ": " + e.status().message());
      return;
    }
    if (e->type == uint8_t(store::EntryType::kAuditEvent)) {
      const std::string_view body = AsChars(e->body);
      // Cheap filter: most audit events are about requests. The writer's
      // JSON spells the type literally, so a session event always matches.
      if (body.find("session_") == std::string_view::npos) return;
      EventKind kind;
      SessionInfo ev;
      Status st = ParseSessionEvent(body, &kind, &ev);
      if (kind == EventKind::kNotSession) return;
      if (!st.ok()) {
        m.problems.push_back(EntryName(entry) + ": malformed session event: " + st.message());
        return;
      }
      auto [it, inserted] = m.meta.try_emplace(ev.id);
      SessionMeta& mm = it->second;
      const char* name = kind == EventKind::kStart ? kStartType : kEndType;
      if (inserted) {
        mm.pos = sessions_.size();
        sessions_.push_back(kind == EventKind::kStart ? ev : EndPart(ev));
      }
      SessionInfo& s = sessions_[mm.pos];
      bool& seen = kind == EventKind::kStart ? mm.has_start : mm.has_end;
      uint64_t& seen_at = kind == EventKind::kStart ? mm.start_entry : mm.end_entry;
      if (!inserted && seen) {
        // A resend is harmless; a different event for the same session is not.
        const bool same =
            kind == EventKind::kStart ? StartPart(s) == StartPart(ev) : EndPart(s) == EndPart(ev);
        if (!same) {
          m.Trouble(&mm, std::string(name) + " at " + EntryName(entry) +
                             " differs from the one at " + EntryName(seen_at));
        }
        return;
      }
      if (!inserted) {
        if (kind == EventKind::kStart) {
          m.Trouble(&mm, std::string(kEndType) + " at " + EntryName(mm.end_entry) +
                             " precedes session_start at " + EntryName(entry));
          MergeStart(ev, &s);
        } else {
          MergeEnd(ev, &s);
        }
      }
      seen = true;
      seen_at = entry;
    } else if (e->type == uint8_t(store::EntryType::kTranscriptChunk)) {
      StatusOr<ChunkHeader> h = DecodeChunkHeader(e->body);
      if (!h.ok()) {
        m.problems.push_back(EntryName(entry) + ": transcript chunk: " + h.status().message());
        return;
      }
      m.chunks[h->session].push_back(ChunkRef{h->index, entry, segment, offset, size});
    }
  };

  uint64_t entry = m.resume_entry;
  uint64_t start = m.resume_offset;
  for (size_t i = m.resume_segment - 1; i < segs.size() && entry < limit; ++i) {
    const store::SegmentInfo& seg = segs[i];
    if (start == 0 && seg.header.first_entry != entry) {
      // Only after a damaged segment: number the entries as the header does,
      // as the store's writer and verifier do.
      m.problems.push_back(store::Where(seg.number, 0) + ": header says the segment starts at " +
                           EntryName(seg.header.first_entry) + ", but " + std::to_string(entry) +
                           " entries precede it");
      entry = seg.header.first_entry;
      m.resume_segment = seg.number;
      m.resume_offset = 0;
      m.resume_entry = entry;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env_->NewRandomAccessFile(seg.path));
    ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
    if (file_size < start) {
      return DataLossError(store::Where(seg.number, start) + ": the segment has shrunk to " +
                           std::to_string(file_size) + " bytes");
    }
    OffsetFile tail(file.get(), start);
    store::SegmentScanner scanner(&tail, file_size - start);
    store::ScannedRecord rec;
    // The resume point advances with every record, so that an error leaves
    // each entry indexed exactly once.
    m.resume_segment = seg.number;
    m.resume_offset = start;
    while (entry < limit) {
      ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
      if (!got) break;
      const uint64_t at = start + rec.offset;
      if (rec.type == store::RecordType::kEntry) {
        index(entry, seg.number, at, rec.size, rec.payload);
        ++entry;
      }
      m.resume_offset = at + rec.size;
      m.resume_entry = entry;
    }
    if (entry >= limit || i + 1 == segs.size()) break;
    // A sealed segment may end in a torn tail (a crash, accounted for by the
    // next header); corruption loses the rest of the segment, not the store.
    if (scanner.end() == store::SegmentEnd::kCorrupt) {
      m.problems.push_back(store::Where(seg.number, start + scanner.valid_length()) + ": " +
                           scanner.reason() + "; the rest of the segment is unreadable");
    }
    m.resume_segment = seg.number + 1;
    m.resume_offset = 0;
    start = 0;
  }
  if (entry < limit) {
    return DataLossError(dir_ + ": found " + std::to_string(entry) + " entries, the store has " +
                         std::to_string(limit));
  }
  return OkStatus();
}

StatusOr<SessionInfo> SessionIndex::Find(std::string_view id_or_prefix) const {
  auto exact = impl_->meta.find(id_or_prefix);
  if (exact != impl_->meta.end()) return sessions_[exact->second.pos];
  constexpr size_t kMinPrefix = 4;
  if (id_or_prefix.size() < kMinPrefix) {
    return InvalidArgumentError("no session " + ShowId(id_or_prefix) +
                                " (a prefix needs at least 4 characters)");
  }
  const SessionInfo* found = nullptr;
  size_t matches = 0;
  for (auto it = impl_->meta.lower_bound(id_or_prefix);
       it != impl_->meta.end() && it->first.starts_with(id_or_prefix); ++it) {
    found = &sessions_[it->second.pos];
    ++matches;
  }
  if (matches == 0) return NotFoundError("no session " + ShowId(id_or_prefix));
  if (matches > 1) {
    return InvalidArgumentError("session prefix " + ShowId(id_or_prefix) + " matches " +
                                std::to_string(matches) + " sessions");
  }
  return *found;
}

std::vector<std::string> SessionIndex::problems() const {
  std::vector<std::string> out = impl_->problems;
  for (const auto& [id, refs] : impl_->chunks) {
    if (impl_->meta.count(id) == 0) {
      out.push_back("session " + id + ": " + std::to_string(refs.size()) +
                    " chunk entries (first " + EntryName(refs.front().entry) +
                    ") but no session_start");
    }
  }
  return out;
}

Status SessionIndex::ForEachRecord(const std::string& session,
                                   const std::function<Status(const Record&)>& fn) const {
  const Impl& m = *impl_;
  auto meta = m.meta.find(session);
  auto chunks = m.chunks.find(session);
  if (meta == m.meta.end() && chunks == m.chunks.end()) {
    return NotFoundError("no session " + ShowId(session));
  }
  const std::string name = "session " + session;
  const SessionInfo* info = nullptr;
  if (meta != m.meta.end()) {
    const SessionMeta& mm = meta->second;
    if (!mm.trouble.empty()) return DataLossError(name + ": " + mm.trouble);
    if (!mm.has_start) {
      return DataLossError(name + ": session_end at " + EntryName(mm.end_entry) +
                           " but no session_start");
    }
    info = &sessions_[mm.pos];
  }
  std::vector<ChunkRef> refs;
  if (chunks != m.chunks.end()) refs = chunks->second;
  // By chunk index; repeats stay in store order, the first one stored first.
  std::stable_sort(refs.begin(), refs.end(),
                   [](const ChunkRef& a, const ChunkRef& b) { return a.index < b.index; });

  // The shape first, from the index alone: 0..n-1 and, if ended, n = count.
  uint64_t n = 0;
  for (size_t i = 0; i < refs.size(); ++n) {
    if (refs[i].index != n) {
      return DataLossError(name + ": chunk " + std::to_string(n) +
                           " is missing (the next stored is chunk " +
                           std::to_string(refs[i].index) + " at " + EntryName(refs[i].entry) + ")");
    }
    while (i < refs.size() && refs[i].index == n) ++i;
  }
  if (info != nullptr && info->ended && n != info->chunks) {
    if (n < info->chunks) {
      return DataLossError(name + ": chunk " + std::to_string(n) + " is missing (session_end at " +
                           EntryName(meta->second.end_entry) + " counts " +
                           std::to_string(info->chunks) + " chunks)");
    }
    auto extra = std::find_if(refs.begin(), refs.end(),
                              [&](const ChunkRef& r) { return r.index == info->chunks; });
    return DataLossError(name + ": chunk " + std::to_string(info->chunks) + " at " +
                         EntryName(extra->entry) + " is beyond session_end's count of " +
                         std::to_string(info->chunks) + " (" + EntryName(meta->second.end_entry) +
                         ")");
  }

  // Then the contents, one chunk at a time.
  std::map<uint64_t, std::unique_ptr<RandomAccessFile>> files;
  auto read = [&](const ChunkRef& ref) -> StatusOr<Bytes> {
    const std::string where = name + ": chunk " + std::to_string(ref.index) + " at " +
                              EntryName(ref.entry) + " (" + store::Where(ref.segment, ref.offset) +
                              ")";
    std::unique_ptr<RandomAccessFile>& f = files[ref.segment];
    if (f == nullptr) {
      const std::string path =
          JoinPath(store::SegmentDir(dir_), store::SegmentFileName(ref.segment));
      ASSIGN_OR_RETURN(f, env_->NewRandomAccessFile(path));
    }
    if (ref.size > store::kRecordHeaderSize + store::kMaxRecordPayload) {
      return InternalError(where + ": bad record size");
    }
    Bytes buf(ref.size);
    ASSIGN_OR_RETURN(size_t got, f->Read(ref.offset, std::span<uint8_t>(buf)));
    store::RawRecord raw;
    std::string why = "the segment is shorter";
    if (got != buf.size() || store::DecodeRecord(buf, &raw, &why) != store::RecordParse::kOk ||
        raw.type != store::RecordType::kEntry || raw.total_size != buf.size()) {
      return DataLossError(where + ": no longer reads back: " + why);
    }
    StatusOr<store::Entry> e = store::ParseEntry(raw.payload);
    if (!e.ok()) return DataLossError(where + ": " + e.status().message());
    return Bytes(e->body.begin(), e->body.end());
  };

  int64_t last = 0;
  for (size_t i = 0; i < refs.size();) {
    const ChunkRef& first = refs[i];
    ASSIGN_OR_RETURN(Bytes body, read(first));
    size_t j = i + 1;
    for (; j < refs.size() && refs[j].index == first.index; ++j) {
      ASSIGN_OR_RETURN(Bytes again, read(refs[j]));
      if (again != body) {
        return DataLossError(name + ": chunk " + std::to_string(first.index) + " at " +
                             EntryName(refs[j].entry) + " differs from chunk " +
                             std::to_string(first.index) + " at " + EntryName(first.entry));
      }
    }
    StatusOr<Chunk> c = DecodeChunk(body);
    if (!c.ok()) {
      return DataLossError(name + ": chunk " + std::to_string(first.index) + " at " +
                           EntryName(first.entry) + ": " + c.status().message());
    }
    if (c->records.front().time_ns < last) {
      return DataLossError(
          name + ": chunk " + std::to_string(first.index) + " at " + EntryName(first.entry) +
          " starts at " + std::to_string(c->records.front().time_ns) +
          " ns, before the previous chunk's last record at " + std::to_string(last) + " ns");
    }
    for (const Record& r : c->records) RETURN_IF_ERROR(fn(r));
    last = c->records.back().time_ns;
    i = j;
  }
  return OkStatus();
}

}  // namespace jitgate::recorder
