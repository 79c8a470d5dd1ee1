// Fuzz target for the OpenSSH certificate parser. Input is either a raw
// certificate blob or a "type base64 comment" line. Properties: no crash;
// a parsed certificate re-encodes to exactly its input; verification,
// option checks and formatting never crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ca/cert.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
void Exercise(const jitgate::ca::Certificate& c) {
  Check(c.Encode() == c.blob());
  c.VerifySignature(/*allow_sha1=*/true).IgnoreError();
  c.CheckCriticalOptions().IgnoreError();
  c.CheckValidAt(1700000000).IgnoreError();
  (void)jitgate::ca::FormatCertificate(c, "fuzz");
  auto again = jitgate::ca::Certificate::FromBlob(c.blob());
  Check(again.ok() && again->fields() == c.fields());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jitgate;
  auto blob = ca::Certificate::FromBlob(ByteSpan(data, size));
  if (blob.ok()) {
    Check(blob->blob() == Bytes(data, data + size));
    Exercise(*blob);
  }
  auto line = ca::Certificate::FromLine(std::string_view(reinterpret_cast<const char*>(data), size));
  if (line.ok()) Exercise(*line);
  return 0;
}
