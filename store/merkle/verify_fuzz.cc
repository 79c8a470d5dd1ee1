// libFuzzer target for VerifyInclusion and VerifyConsistency against a
// 64-leaf MemoryTree.
//
// Input: u8 mode, u8 index, u8 size1, u8 size2, then either (mode bit 0
// clear) proof components as u8 length + bytes, or (bit 0 set) the proofs our
// builder makes for these sizes, with bit flips (u8 component, u8 byte/bit)
// read from the rest. Mode bit 1 swaps the two roots.
//
// Properties (SHA-256 collisions aside):
//   * an unmodified proof from our builder always verifies;
//   * anything that verifies against the tree's true roots is exactly the
//     proof our builder makes (proofs are unique), so a flipped bit never
//     verifies;
//   * nothing crashes, whatever the sizes and component lengths.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/base/bytes.h"
#include "store/merkle/merkle_test_util.h"
#include "store/merkle/proof.h"

namespace {

using jitgate::ByteReader;
using jitgate::Bytes;
using jitgate::ByteSpan;
using jitgate::merkle::Hash;
using jitgate::merkle::MemoryTree;

constexpr uint64_t kTreeSize = 64;

MemoryTree& Tree() {
  static MemoryTree* tree = [] {
    auto* t = new MemoryTree;
    for (uint64_t i = 0; i < kTreeSize; ++i) {
      const uint8_t b = uint8_t(i);
      t->Append(jitgate::merkle::HashLeaf(ByteSpan(&b, 1)));
    }
    return t;
  }();
  return *tree;
}

[[noreturn]] void Fail(const char* what, const jitgate::Status& s) {
  std::fprintf(stderr, "property violated: %s (%s)\n", what,
               s.ToString().c_str());
  std::abort();
}

// The tree's root at `size`, or a fixed non-root for sizes beyond the tree.
Hash RootOr(uint64_t size) {
  auto root = jitgate::merkle::RootAt(Tree(), size);
  return root.ok() ? *root : Hash{};
}

void FlipBits(ByteReader r, std::vector<Bytes>* proof) {
  uint8_t which, where;
  while (!proof->empty() && r.GetU8(&which) && r.GetU8(&where)) {
    Bytes& c = (*proof)[which % proof->size()];
    if (!c.empty()) c[(where & 31) % c.size()] ^= uint8_t(1u << (where >> 5));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using jitgate::merkle::testing::ToBytes;
  ByteReader r(ByteSpan(data, size));
  uint8_t mode, a, b, c;
  if (!r.GetU8(&mode) || !r.GetU8(&a) || !r.GetU8(&b) || !r.GetU8(&c)) return 0;
  const uint64_t index = a;  // may be >= size1
  // Sizes may exceed the tree. The builders can then still succeed (a proof
  // for index 64 of size 65 needs only node (6, 0)), but no true root exists.
  const uint64_t size1 = b % (kTreeSize + 2);
  const uint64_t size2 = c % (kTreeSize + 2);
  MemoryTree& tree = Tree();

  std::vector<Bytes> incl;
  std::vector<Bytes> cons;
  auto built_incl = jitgate::merkle::InclusionProof(tree, index, size1);
  auto built_cons = jitgate::merkle::ConsistencyProof(tree, size1, size2);
  const bool from_builder = (mode & 1) != 0;
  if (from_builder) {
    if (built_incl.ok()) incl = ToBytes(*built_incl);
    if (built_cons.ok()) cons = ToBytes(*built_cons);
    FlipBits(r, &incl);
    FlipBits(r, &cons);
  } else {
    ByteSpan comp;
    while (incl.size() < 70 && r.GetU8Prefixed(&comp))
      incl.emplace_back(comp.begin(), comp.end());
    cons = incl;
  }

  Hash root1 = RootOr(size1);
  Hash root2 = RootOr(size2);
  if (mode & 2) std::swap(root1, root2);
  Hash leaf{};
  if (auto node = tree.GetNode(0, index); node.ok()) leaf = *node;

  const jitgate::Status si =
      jitgate::merkle::VerifyInclusion(index, size1, leaf, incl, root1);
  if (si.ok()) {
    if (!built_incl.ok() || ToBytes(*built_incl) != incl ||
        root1 != RootOr(size1)) {
      Fail("inclusion verified something other than the true proof", si);
    }
  } else if (from_builder && built_incl.ok() && ToBytes(*built_incl) == incl &&
             (mode & 2) == 0 && size1 <= kTreeSize) {
    Fail("our inclusion proof did not verify", si);
  }

  const jitgate::Status sc =
      jitgate::merkle::VerifyConsistency(size1, size2, cons, root1, root2);
  if (sc.ok()) {
    if (!built_cons.ok() || ToBytes(*built_cons) != cons ||
        root1 != RootOr(size1) || root2 != RootOr(size2)) {
      // Swapped roots of equal sizes are the same root; anything else is a bug.
      if (!(built_cons.ok() && size1 == size2 && cons.empty())) {
        Fail("consistency verified something other than the true proof", sc);
      }
    }
  } else if (from_builder && built_cons.ok() && ToBytes(*built_cons) == cons &&
             (mode & 2) == 0 && size2 <= kTreeSize) {
    Fail("our consistency proof did not verify", sc);
  }
  return 0;
}
