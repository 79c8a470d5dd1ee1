// Fuzz target for the transcript chunk decoder and the session-event parser
// (docs/recording-format.md). Properties, beyond not crashing:
//   * a plain body DecodeChunk accepts re-encodes to exactly the same bytes
//     (the encoding is canonical), and DecodeChunkHeader agrees with it;
//   * ValidateChunk (the broker's check) fails exactly where DecodeChunk
//     does, with the same status, and agrees with DecodeChunkHeader;
//   * a compressed body's records, compressed again, decode to the same
//     chunk (zstd output is not unique, so bytes are not compared);
//   * ChunkBuilder, fed the decoded records, produces chunks that decode to
//     the same bytes per stream, the same resizes and the same times;
//   * an event ApplySessionEvent accepts survives SessionStartJson /
//     SessionEndJson and parsing again unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "recorder/recording.h"

namespace {

using namespace jitgate;
using namespace jitgate::recorder;

void Check(bool ok) {
  if (!ok) std::abort();
}

// What a reader sees of a record list: every data byte and every resize,
// each with its stream and time. Splitting a data record leaves it unchanged.
struct Unit {
  Stream stream;
  int64_t time_ns;
  uint32_t value;  // the byte, or cols << 16 | rows
  bool operator==(const Unit&) const = default;
};
std::vector<Unit> Units(const std::vector<Record>& records) {
  std::vector<Unit> out;
  for (const Record& r : records) {
    if (r.stream == Stream::kResize) {
      out.push_back({r.stream, r.time_ns, uint32_t(r.cols) << 16 | r.rows});
    } else {
      for (uint8_t b : r.data) out.push_back({r.stream, r.time_ns, b});
    }
  }
  return out;
}

void CheckChunk(ByteSpan body) {
  StatusOr<Chunk> c = DecodeChunk(body);
  StatusOr<ChunkHeader> h = DecodeChunkHeader(body);
  // The broker's check accepts and rejects exactly what a reader decodes.
  StatusOr<ChunkHeader> checked = ValidateChunk(body);
  Check(checked.status() == c.status());
  if (!c.ok()) return;
  Check(*checked == *h);
  Check(h.ok() && h->session == c->session && h->index == c->index &&
        h->base_ns == c->records.front().time_ns);
  if (h->encoding == ChunkEncoding::kPlain) {
    StatusOr<Bytes> again = EncodeChunk(*c);
    Check(again.ok() && *again == Bytes(body.begin(), body.end()));
  } else {
    // Another compressor may have packed tighter than ours: only a body that
    // fits is compared.
    StatusOr<Bytes> again = EncodeChunk(*c, ChunkEncoding::kZstd);
    if (again.ok()) {
      StatusOr<Chunk> back = DecodeChunk(*again);
      Check(back.ok() && *back == *c);
    }
  }

  ChunkBuilder builder(c->session);
  std::vector<Record> rebuilt;
  auto take = [&](const Bytes& b) {
    StatusOr<Chunk> piece = DecodeChunk(b);
    Check(piece.ok() && piece->session == c->session && b.size() <= kMaxChunkBody);
    rebuilt.insert(rebuilt.end(), piece->records.begin(), piece->records.end());
  };
  for (const Record& r : c->records) {
    StatusOr<std::vector<Bytes>> done = builder.Add(r);
    Check(done.ok());
    for (const Bytes& b : *done) take(b);
  }
  StatusOr<std::vector<Bytes>> last = builder.Flush();
  Check(last.ok() && !last->empty());
  for (const Bytes& b : *last) take(b);
  Check(Units(rebuilt) == Units(c->records));
}

void CheckEvent(std::string_view text) {
  SessionInfo s;
  if (!ApplySessionEvent(text, &s).ok()) return;
  const std::string json = s.ended ? SessionEndJson(s) : SessionStartJson(s);
  SessionInfo again;
  Check(ApplySessionEvent(json, &again).ok());
  Check(again == s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckChunk(ByteSpan(data, size));
  CheckEvent(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
