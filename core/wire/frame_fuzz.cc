// Fuzz target for FrameReader: the input is split into chunks whose sizes
// come from the input itself (first byte seeds the split), fed in order.
// Properties: no crash; the reader never consumes more than it is given; the
// frames it yields, re-encoded with EncodeFrame, are exactly the bytes it
// consumed; and feeding the same bytes in one piece yields the same frames
// and the same verdict.
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/wire/framing.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Result {
  std::vector<jitgate::wire::Frame> frames;
  size_t consumed = 0;
  bool failed = false;
};

Result FeedAll(jitgate::ByteSpan in, uint8_t split_seed) {
  jitgate::wire::FrameReader r;
  Result out;
  uint32_t state = split_seed;
  while (!in.empty()) {
    size_t chunk = in.size();
    if (split_seed != 0) {
      state = state * 1103515245u + 12345u;  // a tiny LCG picks chunk sizes 1..64
      chunk = std::min<size_t>(in.size(), 1 + (state >> 16) % 64);
    }
    jitgate::ByteSpan piece = in.first(chunk);
    while (!piece.empty()) {
      auto used = r.Feed(piece);
      if (!used.ok()) {
        out.failed = true;
        return out;
      }
      Check(*used <= piece.size());
      piece = piece.subspan(*used);
      in = in.subspan(*used);
      out.consumed += *used;
      if (r.HasFrame()) {
        out.frames.push_back(r.TakeFrame());
      } else {
        Check(piece.empty());  // Feed stops early only at a complete frame
      }
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  jitgate::ByteSpan in(data + 1, size - 1);
  Result chunked = FeedAll(in, data[0] == 0 ? 1 : data[0]);
  Result whole = FeedAll(in, 0);
  Check(chunked.failed == whole.failed);
  Check(chunked.frames == whole.frames);
  jitgate::Bytes again;
  for (const auto& f : whole.frames) {
    Check(f.body.size() <= jitgate::wire::kMaxBodySize);
    Check(jitgate::wire::IsKnownMessageType(f.type));
    auto enc = jitgate::wire::EncodeFrame(f.type, f.body);
    Check(enc.ok());
    again.insert(again.end(), enc->begin(), enc->end());
  }
  Check(again.size() <= whole.consumed);
  Check(std::equal(again.begin(), again.end(), in.begin()));
  return 0;
}
