// Fuzz target for the KRL reader. Properties: no crash; a parsed KRL
// encodes to bytes that parse back to an equal KRL, and that encoding is a
// fixed point.
#include <cstdint>
#include <cstdlib>

#include "ca/krl.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jitgate;
  auto krl = ca::Krl::Parse(ByteSpan(data, size));
  if (!krl.ok()) return 0;
  const Bytes enc = krl->Encode();
  auto again = ca::Krl::Parse(enc);
  Check(again.ok() && *again == *krl && again->Encode() == enc);
  return 0;
}
