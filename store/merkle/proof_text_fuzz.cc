// libFuzzer target for ParseProofText. Property: the text form is canonical,
// so any text that parses must format back to exactly the same bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "store/merkle/proof_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto proof = jitgate::merkle::ParseProofText(text);
  if (!proof.ok()) return 0;
  if (proof->size() > jitgate::merkle::kMaxProofTextLines ||
      jitgate::merkle::FormatProofText(*proof) != text) {
    std::fprintf(stderr, "proof text did not round-trip\n");
    std::abort();
  }
  return 0;
}
