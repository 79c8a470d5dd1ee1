// Offline inclusion proofs, c2sp.org/tlog-proof@v1 (".tlog-proof" files):
//
//   c2sp.org/tlog-proof@v1
//   [extra <base64>]                   optional, unauthenticated
//   index <n>                          decimal, no leading zeros
//   <base64 32-byte hash>              0..63 lines, leaf's sibling first
//   <blank line>
//   <signed checkpoint note, verbatim>
//
// Parsing checks structure only. To verify: OpenCheckpoint(p.checkpoint, ...)
// then the RFC 6962 inclusion proof against its root.
#ifndef JITGATE_STORE_NOTE_TLOG_PROOF_H_
#define JITGATE_STORE_NOTE_TLOG_PROOF_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "store/note/note.h"

namespace jitgate::note {

inline constexpr std::string_view kTlogProofHeader = "c2sp.org/tlog-proof@v1";
// An inclusion path in a tree of fewer than 2^63 leaves has at most 63 hashes.
inline constexpr size_t kMaxTlogProofPath = 63;
// Cap on the base64 text of the extra line.
inline constexpr size_t kMaxTlogProofExtraB64 = 64u << 10;
// Whole-file cap: header lines plus a maximal checkpoint note.
inline constexpr size_t kMaxTlogProofSize = kMaxNoteSize + (128u << 10);

struct TlogProof {
  std::optional<Bytes> extra;  // present iff the "extra" line is; may be empty
  uint64_t index = 0;
  std::vector<std::array<uint8_t, 32>> path;
  std::string checkpoint;  // the signed checkpoint note, verbatim

  friend bool operator==(const TlogProof&, const TlogProof&) = default;
};

// ParseTlogProof parses a tlog-proof strictly: the exact header line; an
// optional "extra " line with canonical base64 (<= kMaxTlogProofExtraB64
// characters); "index " and a decimal without leading zeros fitting uint64;
// up to kMaxTlogProofPath lines of canonical base64 of 32 bytes; one blank
// line; then a checkpoint that is a structurally valid signed note
// (ParseNote) whose text is a valid checkpoint body (ParseCheckpointBody).
// Nothing is verified. InvalidArgument naming the line otherwise.
StatusOr<TlogProof> ParseTlogProof(std::string_view text);

// FormatTlogProof is the inverse of ParseTlogProof:
// FormatTlogProof(*ParseTlogProof(t)) == t for every accepted t.
std::string FormatTlogProof(const TlogProof& p);

}  // namespace jitgate::note

#endif  // JITGATE_STORE_NOTE_TLOG_PROOF_H_
