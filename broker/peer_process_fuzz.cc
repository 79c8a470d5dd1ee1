// Fuzz target for the peer process parsers: DecodePeerProcess reads what the
// state database holds (a damaged or hostile file must not crash the broker)
// and StartTicksFromProcStat reads /proc/PID/stat, whose command name any
// user chooses. Property: a decoded description re-encodes to the same text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "broker/peer_process.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)jitgate::broker::StartTicksFromProcStat(in);
  std::optional<jitgate::broker::PeerProcess> p = jitgate::broker::DecodePeerProcess(in);
  if (p.has_value() && jitgate::broker::EncodePeerProcess(*p) != in) std::abort();
  return 0;
}
