// Transparency-log checkpoints (c2sp.org/tlog-checkpoint): the body of a
// signed note made of an origin line, a decimal tree size, the base64 RFC 6962
// root hash and optional extension lines, each '\n'-terminated.
//
// Verify the signature, then parse (transparency-dev/formats ParseCheckpoint):
// OpenCheckpoint only parses a body after the log's signature has verified.
#ifndef JITGATE_STORE_NOTE_CHECKPOINT_H_
#define JITGATE_STORE_NOTE_CHECKPOINT_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "store/note/keys.h"
#include "store/note/note.h"

namespace jitgate::note {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  std::array<uint8_t, 32> root{};
  std::vector<std::string> extensions;  // each non-empty, without '\n'

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// MarshalCheckpoint returns "origin\nsize\nbase64(root)\n" followed by one
// "extension\n" per extension line. It does not validate; SignCheckpoint does.
std::string MarshalCheckpoint(const Checkpoint& cp);

// ParseCheckpointBody parses a checkpoint body strictly (formats
// Checkpoint.Unmarshal plus the spec's MUSTs): at most kMaxNoteSize bytes,
// valid UTF-8 with no control characters but '\n', every line
// '\n'-terminated, a non-empty origin, a decimal size without leading zeros
// (except "0") that fits in uint64, a root that is canonical base64 of 32
// bytes, and non-empty extension lines. The text is NOT authenticated: use
// OpenCheckpoint for anything received from elsewhere. InvalidArgument naming
// the line otherwise ("checkpoint line 2: size has a leading zero").
// MarshalCheckpoint(*ParseCheckpointBody(t)) == t for every accepted t.
StatusOr<Checkpoint> ParseCheckpointBody(std::string_view text);

// OpenCheckpoint verifies signed_note with log_key (which must sign it;
// other signatures are ignored), then parses the body and requires its origin
// to equal expected_origin. Unauthenticated if the log signature is missing
// or bad; InvalidArgument if the note or body is malformed or the origin
// differs.
StatusOr<Checkpoint> OpenCheckpoint(std::string_view signed_note, const Verifier& log_key,
                                    std::string_view expected_origin);

// OpenedCheckpoint is a checkpoint together with its verified note.
struct OpenedCheckpoint {
  Checkpoint checkpoint;
  VerifiedNote note;  // note.verified includes the log's signature
};

// OpenCheckpointWithCosigners is OpenCheckpoint that also verifies the
// signatures of known cosigners (e.g. kAlgCosignatureV1 witness keys): any
// signature by log_key or a cosigner that fails rejects the note
// (Unauthenticated), and the log's signature must be present and valid.
// Callers apply their own quorum policy to note.verified.
StatusOr<OpenedCheckpoint> OpenCheckpointWithCosigners(std::string_view signed_note,
                                                       const Verifier& log_key,
                                                       std::string_view expected_origin,
                                                       const std::vector<Verifier>& cosigners);

// SignCheckpoint validates cp (it must survive MarshalCheckpoint and
// ParseCheckpointBody unchanged) and returns the note signed by signer.
StatusOr<std::string> SignCheckpoint(const Checkpoint& cp, const Signer& signer);

}  // namespace jitgate::note

#endif  // JITGATE_STORE_NOTE_CHECKPOINT_H_
