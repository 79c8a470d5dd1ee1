// Signed notes (c2sp.org/signed-note, golang.org/x/mod/sumdb/note).
//
//   <text, UTF-8, no control characters but '\n', ending in '\n'>
//   <blank line>
//   — <key name> <base64(key ID[4] || signature)>\n     (one or more; U+2014)
//
// The signed message is the text including its final newline and excluding
// the blank line; the text is separated from the signatures by the LAST blank
// line of the note, so the text itself may contain blank lines.
//
// Error codes: malformed input is InvalidArgument with a one-line message
// naming the problem; signature failures in OpenNote are Unauthenticated.
#ifndef JITGATE_STORE_NOTE_NOTE_H_
#define JITGATE_STORE_NOTE_NOTE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "store/note/keys.h"

namespace jitgate::note {

// Caps applied before any allocation that depends on the input. The spec
// requires accepting at least 16 signatures; Go's note.Open allows 100.
inline constexpr size_t kMaxNoteSize = 1u << 20;
inline constexpr size_t kMaxNoteSignatures = 100;

// NoteSignature is one signature line. `signature` excludes the 4-byte key ID.
struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  Bytes signature;

  friend bool operator==(const NoteSignature&, const NoteSignature&) = default;
};

// Note is a parsed but unverified signed note: its text (ending in '\n') and
// every signature line in order.
struct Note {
  std::string text;
  std::vector<NoteSignature> signatures;

  friend bool operator==(const Note&, const Note&) = default;
};

// ParseNote checks the structure of a signed note only; it verifies nothing,
// so the text must not be trusted. Rules: msg <= kMaxNoteSize bytes, valid
// UTF-8 without control characters other than '\n'; the last "\n\n" splits
// text from signatures; 1..kMaxNoteSignatures signature lines, each "— ",
// a valid key name, one space and canonical base64 of at least 5 bytes, and
// '\n'-terminated. InvalidArgument naming the first problem otherwise.
StatusOr<Note> ParseNote(std::string_view msg);

// FormatNote is the exact inverse of ParseNote: for every msg that parses,
// FormatNote(*ParseNote(msg)) == msg. It does not validate its input.
std::string FormatNote(const Note& note);

// SignNote signs text (which must end in '\n' and obey the note character
// rules) with each signer in order and returns the signed note, with one
// signature line per signer. InvalidArgument if the text is malformed, there
// are no signers or more than kMaxNoteSignatures, a signer is null, or the
// result would exceed kMaxNoteSize.
StatusOr<std::string> SignNote(std::string_view text, const std::vector<const Signer*>& signers);

// VerifiedNote is the result of OpenNote. `verified` holds the signatures by
// known keys (each (name, key ID) once, first occurrence); `unverified` holds
// those by unknown keys (identical lines once), both in note order.
struct VerifiedNote {
  std::string text;
  std::vector<NoteSignature> verified;
  std::vector<NoteSignature> unverified;
};

// OpenNote parses msg (as ParseNote) and verifies it against the known keys,
// following c2sp.org/signed-note: a signature whose (name, key ID) matches no
// known key is ignored (listed as unverified); every signature by a known key
// must verify, else the whole note is rejected (Unauthenticated), and at
// least one must (Unauthenticated "no signature from a known key").
// InvalidArgument if msg is malformed or `known` holds two different keys
// with the same (name, key ID). Unlike Go, which skips repeated signatures by
// one key, every repeated signature by a known key is verified too.
StatusOr<VerifiedNote> OpenNote(std::string_view msg, const std::vector<Verifier>& known);

}  // namespace jitgate::note

#endif  // JITGATE_STORE_NOTE_NOTE_H_
