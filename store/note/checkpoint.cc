#include "store/note/checkpoint.h"

#include <utility>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "store/note/note_internal.h"

namespace jitgate::note {
namespace {

Status LineError(size_t n, std::string_view what) {
  return InvalidArgumentError("checkpoint line " + std::to_string(n) + ": " + std::string(what));
}

}  // namespace

std::string MarshalCheckpoint(const Checkpoint& cp) {
  std::string out = cp.origin;
  out += '\n';
  out += std::to_string(cp.size);
  out += '\n';
  out += crypto::Base64Encode(cp.root);
  out += '\n';
  for (const std::string& ext : cp.extensions) {
    out += ext;
    out += '\n';
  }
  return out;
}

StatusOr<Checkpoint> ParseCheckpointBody(std::string_view text) {
  if (text.size() > kMaxNoteSize) {
    return InvalidArgumentError("checkpoint is " + std::to_string(text.size()) +
                                " bytes, over the " + std::to_string(kMaxNoteSize) +
                                "-byte limit");
  }
  if (text.empty()) return InvalidArgumentError("checkpoint is empty");
  RETURN_IF_ERROR(internal::CheckNoteChars(text, "checkpoint"));
  if (text.back() != '\n') return InvalidArgumentError("checkpoint does not end with a newline");

  internal::LineReader lines(text);
  std::string_view origin, size, root;
  if (!lines.Next(&origin) || !lines.Next(&size) || !lines.Next(&root)) {
    return InvalidArgumentError("checkpoint has " + std::to_string(lines.line_number()) +
                                " lines, want at least 3");
  }
  Checkpoint cp;
  if (origin.empty()) return LineError(1, "origin is empty");
  cp.origin = std::string(origin);

  std::string why;
  std::optional<uint64_t> n = internal::ParseDecimalU64(size, &why);
  if (!n) return LineError(2, "size " + why);
  cp.size = *n;

  Bytes hash;
  if (!crypto::Base64Decode(root, &hash)) return LineError(3, "root hash is not canonical base64");
  if (hash.size() != cp.root.size()) {
    return LineError(3, "root hash is " + std::to_string(hash.size()) + " bytes, want 32");
  }
  std::copy(hash.begin(), hash.end(), cp.root.begin());

  std::string_view ext;
  while (lines.Next(&ext)) {
    if (ext.empty()) return LineError(lines.line_number(), "extension line is empty");
    cp.extensions.emplace_back(ext);
  }
  // text ends in '\n', so every byte was consumed by a line.
  return cp;
}

StatusOr<OpenedCheckpoint> OpenCheckpointWithCosigners(std::string_view signed_note,
                                                       const Verifier& log_key,
                                                       std::string_view expected_origin,
                                                       const std::vector<Verifier>& cosigners) {
  std::vector<Verifier> known;
  known.reserve(cosigners.size() + 1);
  known.push_back(log_key);
  known.insert(known.end(), cosigners.begin(), cosigners.end());
  ASSIGN_OR_RETURN(VerifiedNote vn, OpenNote(signed_note, known));
  bool log_signed = false;
  for (const NoteSignature& s : vn.verified) {
    log_signed = log_signed || (s.name == log_key.name() && s.key_id == log_key.key_id());
  }
  if (!log_signed) {
    return UnauthenticatedError("checkpoint is not signed by the log key " + log_key.name());
  }
  // The log has signed this checkpoint. It is now safe to parse.
  ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointBody(vn.text));
  if (cp.origin != expected_origin) {
    return InvalidArgumentError("checkpoint origin \"" + cp.origin + "\" is not the expected \"" +
                                std::string(expected_origin) + "\"");
  }
  return OpenedCheckpoint{std::move(cp), std::move(vn)};
}

StatusOr<Checkpoint> OpenCheckpoint(std::string_view signed_note, const Verifier& log_key,
                                    std::string_view expected_origin) {
  ASSIGN_OR_RETURN(OpenedCheckpoint opened,
                   OpenCheckpointWithCosigners(signed_note, log_key, expected_origin, {}));
  return std::move(opened.checkpoint);
}

StatusOr<std::string> SignCheckpoint(const Checkpoint& cp, const Signer& signer) {
  const std::string text = MarshalCheckpoint(cp);
  ASSIGN_OR_RETURN(Checkpoint parsed, ParseCheckpointBody(text));
  if (!(parsed == cp)) {
    return InvalidArgumentError("checkpoint fields contain a newline");
  }
  return SignNote(text, {&signer});
}

}  // namespace jitgate::note
