#include "store/merkle/proof_text.h"

#include <algorithm>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"

namespace jitgate::merkle {
namespace {

// 32 bytes encode to 43 significant characters plus one '='.
constexpr size_t kHashBase64Size = 4 * ((kHashSize + 2) / 3);

Status LineError(size_t line, std::string_view why) {
  return InvalidArgumentError("proof text line " + std::to_string(line) + ": " +
                              std::string(why));
}

}  // namespace

std::string FormatProofText(const std::vector<Hash>& proof) {
  std::string out;
  out.reserve(proof.size() * (kHashBase64Size + 1));
  for (const Hash& h : proof) {
    out += crypto::Base64Encode(h);
    out += '\n';
  }
  return out;
}

StatusOr<std::vector<Hash>> ParseProofText(std::string_view text) {
  std::vector<Hash> proof;
  size_t line = 0;
  while (!text.empty()) {
    ++line;
    if (line > kMaxProofTextLines) {
      return InvalidArgumentError("proof text has more than " +
                                  std::to_string(kMaxProofTextLines) +
                                  " lines");
    }
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos)
      return LineError(line, "missing final newline");
    const std::string_view hash_text = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (hash_text.empty()) return LineError(line, "blank line");
    if (hash_text.back() == '\r')
      return LineError(line, "carriage return (CRLF line ending)");
    if (hash_text.size() != kHashBase64Size) {
      return LineError(line, "hash is " + std::to_string(hash_text.size()) +
                                 " characters, want " +
                                 std::to_string(kHashBase64Size));
    }
    Bytes decoded;
    if (!crypto::Base64Decode(hash_text, &decoded)) {
      return LineError(line, "not canonical standard base64");
    }
    if (decoded.size() != kHashSize) {
      return LineError(line, "hash is " + std::to_string(decoded.size()) +
                                 " bytes, want " + std::to_string(kHashSize));
    }
    Hash& h = proof.emplace_back();
    std::copy(decoded.begin(), decoded.end(), h.begin());
  }
  return proof;
}

}  // namespace jitgate::merkle
