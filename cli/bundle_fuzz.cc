// libFuzzer target for the evidence bundle parser and verifier. Properties:
// the format is canonical (every bundle that parses encodes back to exactly
// the same bytes), and verification never accepts what does not parse. The
// verifier key is that of the seed corpus (cli_bundle_test writes the seeds),
// so mutations of a seed reach the proof and session checks.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "cli/bundle.h"
#include "store/note/keys.h"

namespace {

// The verifier key of the corpus's log ("bundle.test.jitgate/log", the seed
// SHA-256("k") of cli_bundle_test's fixture).
constexpr char kCorpusKey[] =
    "bundle.test.jitgate/log+1640970a+AdTJ2KNXiJo1LQz4hFVYzI+AAOZe+xY/hTdIz3d0IZEe";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const jitgate::ByteSpan in(data, size);
  auto bundle = jitgate::cli::ParseBundle(in);
  static const auto key = jitgate::note::Verifier::Parse(kCorpusKey);
  auto verified =
      key.ok() ? jitgate::cli::VerifyBundleBytes(in, *key)
               : jitgate::StatusOr<jitgate::cli::BundleSummary>(jitgate::InternalError("no key"));
  if (!bundle.ok()) {
    if (verified.ok()) {
      std::fprintf(stderr, "a bundle that does not parse verified\n");
      std::abort();
    }
    return 0;
  }
  auto encoded = jitgate::cli::EncodeBundle(*bundle);
  if (!encoded.ok() || jitgate::ByteSpan(*encoded).size() != size ||
      !std::equal(encoded->begin(), encoded->end(), data)) {
    std::fprintf(stderr, "bundle did not round-trip: %s\n",
                 encoded.ok() ? "different bytes" : encoded.status().message().c_str());
    std::abort();
  }
  if (verified.ok() && verified->items != bundle->items.size()) {
    std::fprintf(stderr, "verified item count differs from the parse\n");
    std::abort();
  }
  return 0;
}
