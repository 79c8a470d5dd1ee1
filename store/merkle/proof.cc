#include "store/merkle/proof.h"

#include <algorithm>
#include <bit>
#include <string>
#include <string_view>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"

namespace jitgate::merkle {
namespace {

constexpr std::string_view kRootMismatch = "root mismatch";

// Level of the perfect subtree of k leaves. Precondition: k is a power of 2.
int LevelOf(uint64_t k) { return std::countr_zero(k); }

// Returns MTH(D[begin:end]) for a range that is the left-aligned part of a
// subtree: begin is a multiple of bit_ceil(end - begin). Such a range is the
// concatenation of the perfect subtrees named by the set bits of its size,
// largest first, so it costs popcount(end - begin) GetNode calls.
// Precondition: begin < end.
StatusOr<Hash> RangeHash(NodeSource& nodes, uint64_t begin, uint64_t end) {
  Hash parts[64];
  int count = 0;
  uint64_t pos = begin;
  const uint64_t n = end - begin;
  for (int level = 63; level >= 0; --level) {
    if (((n >> level) & 1) == 0) continue;
    ASSIGN_OR_RETURN(parts[count], nodes.GetNode(level, pos >> level));
    ++count;
    pos += uint64_t{1} << level;
  }
  Hash root = parts[count - 1];
  for (int i = count - 1; i-- > 0;) root = HashChildren(parts[i], root);
  return root;
}

// Node for the left half [begin, begin + k) of a split; k is a power of two
// and begin a multiple of it.
StatusOr<Hash> LeftHalf(NodeSource& nodes, uint64_t begin, uint64_t k) {
  return nodes.GetNode(LevelOf(k), begin >> LevelOf(k));
}

std::string B64(ByteSpan h) { return crypto::Base64Encode(h); }

Status RootMismatch(std::string_view which, const Hash& calculated,
                    ByteSpan expected) {
  std::string msg(kRootMismatch);
  if (!which.empty()) msg += " for " + std::string(which);
  msg += ": calculated " + B64(calculated) + ", expected " + B64(expected);
  return FailedPreconditionError(std::move(msg));
}

Status CheckHashSize(ByteSpan h, std::string_view what) {
  if (h.size() == kHashSize) return OkStatus();
  return InvalidArgumentError(std::string(what) + " has " +
                              std::to_string(h.size()) + " bytes, want " +
                              std::to_string(kHashSize));
}

// Checks the component count and sizes, and copies the components out.
StatusOr<std::vector<Hash>> CheckProof(const std::vector<Bytes>& proof,
                                       size_t want) {
  if (proof.size() != want) {
    return InvalidArgumentError("wrong proof size " +
                                std::to_string(proof.size()) + ", want " +
                                std::to_string(want));
  }
  std::vector<Hash> out(proof.size());
  for (size_t i = 0; i < proof.size(); ++i) {
    RETURN_IF_ERROR(
        CheckHashSize(proof[i], "proof[" + std::to_string(i) + "]"));
    std::copy(proof[i].begin(), proof[i].end(), out[i].begin());
  }
  return out;
}

Hash ToHash(ByteSpan b) {
  Hash h;
  std::copy(b.begin(), b.end(), h.begin());
  return h;
}

bool Equal(ByteSpan a, ByteSpan b) { return std::ranges::equal(a, b); }

}  // namespace

StatusOr<Hash> RootAt(NodeSource& nodes, uint64_t size) {
  if (size == 0) return EmptyRoot();
  return RangeHash(nodes, 0, size);
}

StatusOr<std::vector<Hash>> InclusionProof(NodeSource& nodes, uint64_t index,
                                           uint64_t size) {
  if (index >= size) {
    return InvalidArgumentError("inclusion proof: index " +
                                std::to_string(index) +
                                " is beyond tree size " + std::to_string(size));
  }
  // PATH(m, D[n]) = PATH(m, one half) + [MTH(other half)]: walking down from
  // the root yields the components last to first. Invariant: begin is a
  // multiple of bit_ceil(end - begin) and begin <= index < end.
  std::vector<Hash> proof;
  proof.reserve(InclusionProofSize(index, size));
  uint64_t begin = 0;
  uint64_t end = size;
  while (end - begin > 1) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    const uint64_t mid = begin + k;
    if (index < mid) {
      ASSIGN_OR_RETURN(Hash right, RangeHash(nodes, mid, end));
      proof.push_back(right);
      end = mid;
    } else {
      ASSIGN_OR_RETURN(Hash left, LeftHalf(nodes, begin, k));
      proof.push_back(left);
      begin = mid;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

StatusOr<std::vector<Hash>> ConsistencyProof(NodeSource& nodes, uint64_t size1,
                                             uint64_t size2) {
  if (size1 == 0 || size1 > size2) {
    return InvalidArgumentError(
        "consistency proof: need 0 < size1 <= size2, got size1=" +
        std::to_string(size1) + " size2=" + std::to_string(size2));
  }
  // SUBPROOF(m, D[begin:end], whole), walked from the root down; components
  // come out last to first. Invariant: begin < size1 <= end, and begin is a
  // multiple of bit_ceil(end - begin).
  std::vector<Hash> proof;
  proof.reserve(ConsistencyProofSize(size1, size2));
  uint64_t begin = 0;
  uint64_t end = size2;
  bool whole = true;  // b in RFC 6962: D[begin:end] is the first tree's root
  while (size1 != end) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    const uint64_t mid = begin + k;
    if (size1 <= mid) {
      ASSIGN_OR_RETURN(Hash right, RangeHash(nodes, mid, end));
      proof.push_back(right);
      end = mid;
    } else {
      ASSIGN_OR_RETURN(Hash left, LeftHalf(nodes, begin, k));
      proof.push_back(left);
      begin = mid;
      whole = false;
    }
  }
  // SUBPROOF(m, D[m], false) = {MTH(D[m])}; the verifier knows the root of
  // the first tree, so it is left out when that is the whole subtree.
  if (!whole) {
    ASSIGN_OR_RETURN(Hash last, RangeHash(nodes, begin, end));
    proof.push_back(last);
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

size_t InclusionProofSize(uint64_t index, uint64_t size) {
  // Inner: levels below the point where the paths to `index` and to the
  // last leaf part; border: left siblings on the right edge above it.
  const int inner = std::bit_width(index ^ (size - 1));
  const int border = inner >= 64 ? 0 : std::popcount(index >> inner);
  return static_cast<size_t>(inner + border);
}

size_t ConsistencyProofSize(uint64_t size1, uint64_t size2) {
  if (size1 == size2) return 0;
  const uint64_t last1 = size1 - 1;
  const int inner = std::bit_width(last1 ^ (size2 - 1));
  const int border = inner >= 64 ? 0 : std::popcount(last1 >> inner);
  // The lowest `shift` levels of the path to leaf size1-1 lie inside the
  // perfect subtree whose root is the seed; the seed itself is sent unless
  // it is root1 (size1 a power of two).
  const int shift = std::countr_zero(size1);
  const int seed = std::has_single_bit(size1) ? 0 : 1;
  return static_cast<size_t>(seed + (inner - shift) + border);
}

Status VerifyInclusion(uint64_t index, uint64_t size, ByteSpan leaf_hash,
                       const std::vector<Bytes>& proof, ByteSpan root) {
  if (index >= size) {
    return InvalidArgumentError("inclusion: index " + std::to_string(index) +
                                " is beyond tree size " + std::to_string(size));
  }
  RETURN_IF_ERROR(CheckHashSize(leaf_hash, "leaf hash"));
  RETURN_IF_ERROR(CheckHashSize(root, "root"));
  ASSIGN_OR_RETURN(std::vector<Hash> path,
                   CheckProof(proof, InclusionProofSize(index, size)));

  // RFC 9162 §2.1.3.2. The length check above makes the sn checks below
  // unreachable; they stay as the RFC's own guard.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = ToHash(leaf_hash);
  for (const Hash& p : path) {
    if (sn == 0) return InvalidArgumentError("inclusion: proof too long");
    if ((fn & 1) != 0 || fn == sn) {
      r = HashChildren(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return InvalidArgumentError("inclusion: proof too short");
  if (!Equal(r, root)) return RootMismatch("", r, root);
  return OkStatus();
}

std::vector<Bytes> ProofBytes(const std::vector<Hash>& proof) {
  std::vector<Bytes> out;
  out.reserve(proof.size());
  for (const Hash& h : proof) out.emplace_back(h.begin(), h.end());
  return out;
}

Status VerifyConsistency(uint64_t size1, uint64_t size2,
                         const std::vector<Bytes>& proof, ByteSpan root1,
                         ByteSpan root2) {
  if (size1 == 0) {
    return InvalidArgumentError(
        "consistency: proof from the empty tree is meaningless");
  }
  if (size1 > size2) {
    return InvalidArgumentError("consistency: size1 " + std::to_string(size1) +
                                " > size2 " + std::to_string(size2));
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return InvalidArgumentError(
          "consistency: size1 == size2 but the proof is not empty");
    }
    if (!Equal(root1, root2)) {
      return FailedPreconditionError(std::string(kRootMismatch) +
                                     " for equal sizes: root1 " + B64(root1) +
                                     ", root2 " + B64(root2));
    }
    return OkStatus();
  }
  RETURN_IF_ERROR(CheckHashSize(root1, "root1"));
  RETURN_IF_ERROR(CheckHashSize(root2, "root2"));
  ASSIGN_OR_RETURN(std::vector<Hash> path,
                   CheckProof(proof, ConsistencyProofSize(size1, size2)));

  // RFC 9162 §2.1.4.2. Step 1 (empty path) is covered by the size check.
  if (std::has_single_bit(size1)) path.insert(path.begin(), ToHash(root1));
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return InvalidArgumentError("consistency: proof too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return InvalidArgumentError("consistency: proof too short");
  if (!Equal(fr, root1))
    return RootMismatch("size1=" + std::to_string(size1), fr, root1);
  if (!Equal(sr, root2))
    return RootMismatch("size2=" + std::to_string(size2), sr, root2);
  return OkStatus();
}

bool IsRootMismatch(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         status.message().starts_with(kRootMismatch);
}

void MemoryTree::Append(const Hash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  for (size_t level = 0; levels_[level].size() % 2 == 0; ++level) {
    const std::vector<Hash>& below = levels_[level];
    Hash parent = HashChildren(below[below.size() - 2], below.back());
    if (levels_.size() == level + 1) levels_.emplace_back();
    levels_[level + 1].push_back(parent);
  }
}

Hash MemoryTree::Root() const {
  const uint64_t n = size();
  if (n == 0) return EmptyRoot();
  // The perfect subtrees of n, smallest (rightmost) first, folded leftwards.
  bool have = false;
  Hash root{};
  for (int level = 0; level < 64; ++level) {
    if (((n >> level) & 1) == 0) continue;
    const Hash& node = levels_[size_t(level)][(n >> level) - 1];
    root = have ? HashChildren(node, root) : node;
    have = true;
  }
  return root;
}

StatusOr<Hash> MemoryTree::GetNode(int level, uint64_t index) {
  if (level < 0 || size_t(level) >= levels_.size() ||
      index >= levels_[size_t(level)].size()) {
    return NotFoundError(
        "node (" + std::to_string(level) + ", " + std::to_string(index) +
        ") is not complete in a tree of " + std::to_string(size()) + " leaves");
  }
  return levels_[size_t(level)][index];
}

}  // namespace jitgate::merkle
