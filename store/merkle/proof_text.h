// The text form of a Merkle proof, as printed by `jitgate log prove` and read
// back by verifiers: one standard base64 (RFC 4648 §4, padded) hash per
// line, each line terminated by '\n', nothing else. The empty text is the
// empty proof.
#ifndef JITGATE_STORE_MERKLE_PROOF_TEXT_H_
#define JITGATE_STORE_MERKLE_PROOF_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "store/merkle/merkle.h"

namespace jitgate::merkle {

// Longest proof the text form carries. Any inclusion or consistency proof of
// a tree with fewer than 2^63 leaves has at most 64 components.
inline constexpr size_t kMaxProofTextLines = 64;

// FormatProofText returns the canonical text of `proof`.
std::string FormatProofText(const std::vector<Hash>& proof);

// ParseProofText parses the text form strictly, so that exactly one text
// maps to each proof: every line is the canonical 44-character base64 of 32
// bytes and ends in '\n' (no '\r', no blank lines, no missing final newline,
// no whitespace), and there are at most kMaxProofTextLines lines. Fails with
// InvalidArgument naming the 1-based line. Never reads past `text`.
StatusOr<std::vector<Hash>> ParseProofText(std::string_view text);

}  // namespace jitgate::merkle

#endif  // JITGATE_STORE_MERKLE_PROOF_TEXT_H_
