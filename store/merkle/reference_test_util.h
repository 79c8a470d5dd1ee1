// A literal transcription of RFC 6962 §2.1 (MTH, PATH, PROOF/SUBPROOF) over
// leaf *inputs*, for testing the fast code only (after transparency-dev's
// testonly/reference_test.go). Deliberately naive: recursive, recomputes
// every subtree, and hashes through crypto::Sha256 on explicitly built
// buffers so that it shares no code with merkle.cc beyond SHA-256 itself.
// Test-only: not part of the jitgate_merkle library.
#ifndef JITGATE_STORE_MERKLE_REFERENCE_TEST_UTIL_H_
#define JITGATE_STORE_MERKLE_REFERENCE_TEST_UTIL_H_

#include <cassert>
#include <cstdint>
#include <span>
#include <vector>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"
#include "store/merkle/merkle.h"

namespace jitgate::merkle::reference {

using Leaves = std::span<const Bytes>;

// k: the largest power of two smaller than n. Precondition: n > 1.
inline size_t SplitPoint(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[n]).
inline Hash Mth(Leaves d) {
  const size_t n = d.size();
  if (n == 0) return crypto::Sha256(ByteSpan());
  if (n == 1) {
    Bytes buf{0x00};
    buf.insert(buf.end(), d[0].begin(), d[0].end());
    return crypto::Sha256(buf);
  }
  const size_t k = SplitPoint(n);
  const Hash left = Mth(d.subspan(0, k));
  const Hash right = Mth(d.subspan(k));
  Bytes buf{0x01};
  buf.insert(buf.end(), left.begin(), left.end());
  buf.insert(buf.end(), right.begin(), right.end());
  return crypto::Sha256(buf);
}

// PATH(m, D[n]). Precondition: m < n.
inline std::vector<Hash> Path(size_t m, Leaves d) {
  const size_t n = d.size();
  assert(m < n);
  if (n == 1) return {};
  const size_t k = SplitPoint(n);
  std::vector<Hash> out;
  if (m < k) {
    out = Path(m, d.subspan(0, k));
    out.push_back(Mth(d.subspan(k)));
  } else {
    out = Path(m - k, d.subspan(k));
    out.push_back(Mth(d.subspan(0, k)));
  }
  return out;
}

// SUBPROOF(m, D[n], b). Precondition: 0 < m <= n.
inline std::vector<Hash> Subproof(size_t m, Leaves d, bool b) {
  const size_t n = d.size();
  assert(0 < m && m <= n);
  if (m == n) {
    if (b) return {};
    return {Mth(d)};
  }
  const size_t k = SplitPoint(n);
  std::vector<Hash> out;
  if (m <= k) {
    out = Subproof(m, d.subspan(0, k), b);
    out.push_back(Mth(d.subspan(k)));
  } else {
    out = Subproof(m - k, d.subspan(k), false);
    out.push_back(Mth(d.subspan(0, k)));
  }
  return out;
}

// PROOF(m, D[n]) = SUBPROOF(m, D[n], true). Precondition: 0 < m <= n.
inline std::vector<Hash> Proof(size_t m, Leaves d) {
  return Subproof(m, d, true);
}

}  // namespace jitgate::merkle::reference

#endif  // JITGATE_STORE_MERKLE_REFERENCE_TEST_UTIL_H_
