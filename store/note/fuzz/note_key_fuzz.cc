// libFuzzer target: Verifier::Parse and ParseSignerKey. Properties: an
// accepted vkey re-encodes to itself, and an accepted skey re-encodes to
// itself and its vkey parses.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "store/note/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = jitgate::note::Verifier::Parse(text);
  if (v.ok()) {
    if (v->Encode() != text) std::abort();
    if (!jitgate::note::IsValidKeyName(v->name())) std::abort();
  }
  auto s = jitgate::note::ParseSignerKey(text);
  if (s.ok()) {
    const jitgate::crypto::SecretBytes enc = s->EncodeSignerKey();
    if (enc.size() != size || std::memcmp(enc.data(), data, size) != 0) std::abort();
    auto sv = jitgate::note::Verifier::Parse(s->VerifierKey());
    if (!sv.ok() || sv->key_id() != s->key_id()) std::abort();
  }
  return 0;
}
