#include "store/note/note.h"

#include <cstdio>
#include <utility>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "store/note/note_internal.h"

namespace jitgate::note {
namespace {

// "— " : U+2014 EM DASH (e2 80 94) and a space.
constexpr std::string_view kSigPrefix = "\xe2\x80\x94 ";

std::string Hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return std::string(buf, 8);
}

Status SigLineError(size_t n, std::string_view what) {
  return InvalidArgumentError("note signature line " + std::to_string(n) + ": " +
                              std::string(what));
}

StatusOr<NoteSignature> ParseSignatureLine(std::string_view line, size_t n) {
  if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
    return SigLineError(n, "does not start with an em dash (U+2014) and a space");
  }
  line.remove_prefix(kSigPrefix.size());
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return SigLineError(n, "has no space before the signature");
  const std::string_view name = line.substr(0, sp);
  const std::string_view b64 = line.substr(sp + 1);
  if (!IsValidKeyName(name)) return SigLineError(n, "invalid key name");
  if (b64.empty()) return SigLineError(n, "signature is empty");
  Bytes raw;
  if (!crypto::Base64Decode(b64, &raw)) {
    return SigLineError(n, "signature is not canonical base64");
  }
  if (raw.size() < 5) return SigLineError(n, "signature is shorter than 5 bytes");
  NoteSignature sig;
  sig.name = std::string(name);
  sig.key_id = LoadU32BE(raw.data());
  sig.signature.assign(raw.begin() + 4, raw.end());
  return sig;
}

std::string FormatSignatureLine(const NoteSignature& s) {
  Bytes raw(4);
  StoreU32BE(raw.data(), s.key_id);
  raw.insert(raw.end(), s.signature.begin(), s.signature.end());
  std::string line(kSigPrefix);
  line += s.name;
  line += ' ';
  line += crypto::Base64Encode(raw);
  line += '\n';
  return line;
}

}  // namespace

StatusOr<Note> ParseNote(std::string_view msg) {
  if (msg.size() > kMaxNoteSize) {
    return InvalidArgumentError("note is " + std::to_string(msg.size()) + " bytes, over the " +
                                std::to_string(kMaxNoteSize) + "-byte limit");
  }
  RETURN_IF_ERROR(internal::CheckNoteChars(msg, "note"));
  const size_t split = msg.rfind("\n\n");
  if (split == std::string_view::npos) {
    return InvalidArgumentError("note has no blank line before the signatures");
  }
  Note note;
  note.text = std::string(msg.substr(0, split + 1));
  const std::string_view sigs = msg.substr(split + 2);
  if (sigs.empty()) return InvalidArgumentError("note has no signature lines");
  if (sigs.back() != '\n') {
    return InvalidArgumentError("note does not end with a newline");
  }
  internal::LineReader lines(sigs);
  std::string_view line;
  while (lines.Next(&line)) {
    if (lines.line_number() > kMaxNoteSignatures) {
      return InvalidArgumentError("note has more than " + std::to_string(kMaxNoteSignatures) +
                                  " signature lines");
    }
    ASSIGN_OR_RETURN(NoteSignature sig, ParseSignatureLine(line, lines.line_number()));
    note.signatures.push_back(std::move(sig));
  }
  // sigs ends in '\n', so the reader consumed everything.
  return note;
}

std::string FormatNote(const Note& note) {
  std::string out = note.text;
  out += '\n';
  for (const NoteSignature& s : note.signatures) out += FormatSignatureLine(s);
  return out;
}

StatusOr<std::string> SignNote(std::string_view text, const std::vector<const Signer*>& signers) {
  if (text.empty() || text.back() != '\n') {
    return InvalidArgumentError("note text does not end with a newline");
  }
  if (text.size() > kMaxNoteSize) {
    return InvalidArgumentError("note text is over the " + std::to_string(kMaxNoteSize) +
                                "-byte limit");
  }
  RETURN_IF_ERROR(internal::CheckNoteChars(text, "note text"));
  if (signers.empty()) return InvalidArgumentError("no signers");
  if (signers.size() > kMaxNoteSignatures) {
    return InvalidArgumentError("more than " + std::to_string(kMaxNoteSignatures) + " signers");
  }
  Note note;
  note.text = std::string(text);
  for (const Signer* signer : signers) {
    if (signer == nullptr) return InvalidArgumentError("null signer");
    ASSIGN_OR_RETURN(crypto::Ed25519Signature sig, signer->Sign(AsBytes(text)));
    note.signatures.push_back(
        NoteSignature{signer->name(), signer->key_id(), Bytes(sig.begin(), sig.end())});
  }
  std::string out = FormatNote(note);
  if (out.size() > kMaxNoteSize) {
    return InvalidArgumentError("signed note would be over the " + std::to_string(kMaxNoteSize) +
                                "-byte limit");
  }
  return out;
}

StatusOr<VerifiedNote> OpenNote(std::string_view msg, const std::vector<Verifier>& known) {
  for (size_t i = 0; i < known.size(); ++i) {
    for (size_t j = i + 1; j < known.size(); ++j) {
      if (known[i].name() == known[j].name() && known[i].key_id() == known[j].key_id() &&
          !(known[i] == known[j])) {
        return InvalidArgumentError("known keys hold two different keys for " + known[i].name() +
                                    "+" + Hex8(known[i].key_id()));
      }
    }
  }
  ASSIGN_OR_RETURN(Note note, ParseNote(msg));
  VerifiedNote out;
  for (size_t n = 0; n < note.signatures.size(); ++n) {
    NoteSignature& sig = note.signatures[n];
    const Verifier* v = nullptr;
    for (const Verifier& k : known) {
      if (k.name() == sig.name && k.key_id() == sig.key_id) {
        v = &k;
        break;
      }
    }
    if (v == nullptr) {
      bool dup = false;
      for (const NoteSignature& u : out.unverified) dup = dup || u == sig;
      if (!dup) out.unverified.push_back(std::move(sig));
      continue;
    }
    if (!v->Verify(note.text, sig.signature)) {
      return UnauthenticatedError("note signature line " + std::to_string(n + 1) + " by " +
                                  sig.name + "+" + Hex8(sig.key_id) + " does not verify");
    }
    bool dup = false;
    for (const NoteSignature& s : out.verified) {
      dup = dup || (s.name == sig.name && s.key_id == sig.key_id);
    }
    if (!dup) out.verified.push_back(std::move(sig));
  }
  if (out.verified.empty()) {
    return UnauthenticatedError("note has no signature from a known key");
  }
  out.text = std::move(note.text);
  return out;
}

}  // namespace jitgate::note
