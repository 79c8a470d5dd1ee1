// libFuzzer target: ParseCheckpointBody with the round-trip property
// MarshalCheckpoint(ParseCheckpointBody(t)) == t.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/note/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cp = jitgate::note::ParseCheckpointBody(text);
  if (cp.ok()) {
    if (jitgate::note::MarshalCheckpoint(*cp) != text) std::abort();
    if (cp->origin.empty()) std::abort();
    for (const auto& ext : cp->extensions) {
      if (ext.empty()) std::abort();
    }
  }
  return 0;
}
