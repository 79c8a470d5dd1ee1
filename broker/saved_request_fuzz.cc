// Fuzz target for the state database's row decoder (DecodeSavedRequest): rows
// are read back after a restart and a damaged or hostile database file must
// not crash the broker. Property: anything that decodes re-encodes to the
// same bytes (rows of the older version 1 re-encode as the current version,
// which must then round-trip exactly).
#include <cstdint>
#include <cstdlib>

#include "broker/state_db.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jitgate::ByteSpan in(data, size);
  jitgate::StatusOr<jitgate::broker::SavedRequest> saved = jitgate::broker::DecodeSavedRequest(in);
  if (saved.ok()) {
    jitgate::Bytes again = jitgate::broker::EncodeSavedRequest(*saved);
    if (size > 0 && data[0] == again[0]) {
      if (again != jitgate::Bytes(in.begin(), in.end())) std::abort();
    } else {
      jitgate::StatusOr<jitgate::broker::SavedRequest> upgraded =
          jitgate::broker::DecodeSavedRequest(again);
      if (!upgraded.ok() || jitgate::broker::EncodeSavedRequest(*upgraded) != again) std::abort();
    }
  }
  return 0;
}
