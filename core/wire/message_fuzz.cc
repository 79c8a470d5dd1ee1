// Fuzz target for the message decoder: the first input byte picks a message
// type (mapped onto the known types so every decoder is reached, and used raw
// when its top bit is set so unknown types are exercised), the rest is the
// body. Properties: no crash; a body that decodes re-encodes byte-identically
// (the encoding is canonical), and the re-encoded frame decodes to an equal
// message.
#include <cstdint>
#include <cstdlib>
#include <algorithm>

#include "core/wire/framing.h"
#include "core/wire/messages.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr uint8_t kTypes[] = {0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                              0x16, 0x17, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
                              0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x30, 0x31, 0x32,
                              0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c,
                              0x3d, 0x3e};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jitgate;
  using namespace jitgate::wire;
  if (size == 0) return 0;
  uint8_t type = (data[0] & 0x80) ? uint8_t(data[0] & 0x7f) : kTypes[data[0] % sizeof(kTypes)];
  ByteSpan body(data + 1, size - 1);
  StatusOr<Message> m = DecodeMessage(type, body);
  if (!m.ok()) return 0;
  Check(uint8_t(TypeOf(*m)) == type);
  Bytes again;
  Check(EncodeBody(*m, &again).ok());
  Check(std::equal(again.begin(), again.end(), body.begin(), body.end()));
  StatusOr<Bytes> frame = EncodeMessage(*m);
  Check(frame.ok());
  FrameReader r;
  StatusOr<size_t> used = r.Feed(*frame);
  Check(used.ok() && *used == frame->size() && r.HasFrame());
  Frame f = r.TakeFrame();
  StatusOr<Message> back = DecodeMessage(f.type, f.body);
  Check(back.ok() && *back == *m);
  return 0;
}
