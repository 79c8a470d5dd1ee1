// libFuzzer target: ParseTlogProof with the round-trip property
// FormatTlogProof(ParseTlogProof(t)) == t.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/note/tlog_proof.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = jitgate::note::ParseTlogProof(text);
  if (p.ok()) {
    if (jitgate::note::FormatTlogProof(*p) != text) std::abort();
    if (p->path.size() > jitgate::note::kMaxTlogProofPath) std::abort();
  }
  return 0;
}
