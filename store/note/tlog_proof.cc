#include "store/note/tlog_proof.h"

#include <algorithm>
#include <utility>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "store/note/checkpoint.h"
#include "store/note/note_internal.h"

namespace jitgate::note {
namespace {

constexpr std::string_view kExtraPrefix = "extra ";
constexpr std::string_view kIndexPrefix = "index ";

Status LineError(size_t n, std::string_view what) {
  return InvalidArgumentError("tlog-proof line " + std::to_string(n) + ": " + std::string(what));
}

}  // namespace

StatusOr<TlogProof> ParseTlogProof(std::string_view text) {
  if (text.size() > kMaxTlogProofSize) {
    return InvalidArgumentError("tlog-proof is " + std::to_string(text.size()) +
                                " bytes, over the " + std::to_string(kMaxTlogProofSize) +
                                "-byte limit");
  }
  internal::LineReader lines(text);
  std::string_view line;
  if (!lines.Next(&line)) return InvalidArgumentError("tlog-proof has no complete first line");
  if (line != kTlogProofHeader) {
    return LineError(1, "want \"" + std::string(kTlogProofHeader) + "\"");
  }

  TlogProof p;
  if (!lines.Next(&line)) return InvalidArgumentError("tlog-proof ends before the index line");
  if (line.substr(0, kExtraPrefix.size()) == kExtraPrefix) {
    const std::string_view b64 = line.substr(kExtraPrefix.size());
    if (b64.size() > kMaxTlogProofExtraB64) {
      return LineError(lines.line_number(), "extra is over " +
                                                std::to_string(kMaxTlogProofExtraB64) +
                                                " base64 characters");
    }
    Bytes extra;
    if (!crypto::Base64Decode(b64, &extra)) {
      return LineError(lines.line_number(), "extra is not canonical base64");
    }
    p.extra = std::move(extra);
    if (!lines.Next(&line)) return InvalidArgumentError("tlog-proof ends before the index line");
  }
  if (line.substr(0, kIndexPrefix.size()) != kIndexPrefix) {
    return LineError(lines.line_number(), "want \"index <n>\"");
  }
  std::string why;
  std::optional<uint64_t> index = internal::ParseDecimalU64(line.substr(kIndexPrefix.size()), &why);
  if (!index) return LineError(lines.line_number(), "index " + why);
  p.index = *index;

  for (;;) {
    if (!lines.Next(&line)) {
      return InvalidArgumentError("tlog-proof has no blank line before the checkpoint");
    }
    if (line.empty()) break;
    if (p.path.size() == kMaxTlogProofPath) {
      return LineError(lines.line_number(), "inclusion path has more than " +
                                                std::to_string(kMaxTlogProofPath) + " hashes");
    }
    Bytes hash;
    if (!crypto::Base64Decode(line, &hash)) {
      return LineError(lines.line_number(), "path hash is not canonical base64");
    }
    if (hash.size() != 32) {
      return LineError(lines.line_number(),
                       "path hash is " + std::to_string(hash.size()) + " bytes, want 32");
    }
    std::array<uint8_t, 32>& h = p.path.emplace_back();
    std::copy(hash.begin(), hash.end(), h.begin());
  }

  const std::string_view checkpoint = lines.Rest();
  StatusOr<Note> note = ParseNote(checkpoint);
  if (!note.ok()) return note.status().WithContext("tlog-proof checkpoint");
  StatusOr<Checkpoint> body = ParseCheckpointBody(note->text);
  if (!body.ok()) return body.status().WithContext("tlog-proof checkpoint");
  p.checkpoint = std::string(checkpoint);
  return p;
}

std::string FormatTlogProof(const TlogProof& p) {
  std::string out(kTlogProofHeader);
  out += '\n';
  if (p.extra) {
    out += kExtraPrefix;
    out += crypto::Base64Encode(*p.extra);
    out += '\n';
  }
  out += kIndexPrefix;
  out += std::to_string(p.index);
  out += '\n';
  for (const auto& h : p.path) {
    out += crypto::Base64Encode(h);
    out += '\n';
  }
  out += '\n';
  out += p.checkpoint;
  return out;
}

}  // namespace jitgate::note
