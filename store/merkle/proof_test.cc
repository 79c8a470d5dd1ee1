#include "store/merkle/proof.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <random>

#include "store/merkle/compact_range.h"
#include "store/merkle/merkle_test_util.h"
#include "store/merkle/reference_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::merkle {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::_;
using ::testing::HasSubstr;
using testing::ToBytes;

// Checks that a valid inclusion proof verifies and that every single-point
// corruption of it is rejected with the right kind of error.
void CheckInclusionProofAndMutations(uint64_t index, uint64_t size,
                                     const Hash& leaf,
                                     const std::vector<Hash>& proof,
                                     const Hash& root) {
  SCOPED_TRACE("inclusion index " + std::to_string(index) + " size " +
               std::to_string(size));
  const std::vector<Bytes> good = ToBytes(proof);
  ASSERT_OK(VerifyInclusion(index, size, leaf, good, root));

  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<Bytes> bad = good;
    bad[i][i % kHashSize] ^= uint8_t(1u << (i % 8));
    EXPECT_TRUE(IsRootMismatch(VerifyInclusion(index, size, leaf, bad, root)))
        << "flip " << i;
    bad = good;
    bad[i].pop_back();
    EXPECT_THAT(VerifyInclusion(index, size, leaf, bad, root),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("31 bytes")));
    bad = good;
    bad.erase(bad.begin() + long(i));
    EXPECT_THAT(
        VerifyInclusion(index, size, leaf, bad, root),
        StatusIs(StatusCode::kInvalidArgument, HasSubstr("wrong proof size")));
  }
  std::vector<Bytes> longer = good;
  longer.push_back(Bytes(root.begin(), root.end()));
  EXPECT_THAT(
      VerifyInclusion(index, size, leaf, longer, root),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("wrong proof size")));

  Hash other_leaf = leaf;
  other_leaf[0] ^= 1;
  EXPECT_TRUE(
      IsRootMismatch(VerifyInclusion(index, size, other_leaf, good, root)));
  Hash other_root = root;
  other_root[31] ^= 0x80;
  EXPECT_TRUE(
      IsRootMismatch(VerifyInclusion(index, size, leaf, good, other_root)));
  // A different position in the same tree: wrong length or wrong root.
  // (A different size with the same root is not checked: an inclusion proof
  // does not bind the size when the path shape is the same, e.g. index 0 of
  // sizes 3 and 4; the checkpoint binds size and root together.)
  if (size > 1) {
    EXPECT_FALSE(VerifyInclusion(index ^ 1, size, leaf, good, root).ok());
  }
}

void CheckConsistencyProofAndMutations(uint64_t size1, uint64_t size2,
                                       const Hash& root1,
                                       const std::vector<Hash>& proof,
                                       const Hash& root2) {
  SCOPED_TRACE("consistency " + std::to_string(size1) + " -> " +
               std::to_string(size2));
  const std::vector<Bytes> good = ToBytes(proof);
  ASSERT_OK(VerifyConsistency(size1, size2, good, root1, root2));
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<Bytes> bad = good;
    bad[i][(i * 7) % kHashSize] ^= uint8_t(1u << (i % 8));
    EXPECT_TRUE(
        IsRootMismatch(VerifyConsistency(size1, size2, bad, root1, root2)))
        << "flip " << i;
    bad = good;
    bad[i].push_back(0);
    EXPECT_THAT(VerifyConsistency(size1, size2, bad, root1, root2),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("33 bytes")));
    bad = good;
    bad.erase(bad.begin() + long(i));
    EXPECT_THAT(VerifyConsistency(size1, size2, bad, root1, root2),
                StatusIs(StatusCode::kInvalidArgument,
                         size1 == size2 ? HasSubstr("not empty")
                                        : HasSubstr("wrong proof size")));
  }
  std::vector<Bytes> longer = good;
  longer.insert(longer.begin(), Bytes(root1.begin(), root1.end()));
  EXPECT_THAT(VerifyConsistency(size1, size2, longer, root1, root2),
              StatusIs(StatusCode::kInvalidArgument, _));
  Hash bad_root1 = root1;
  bad_root1[5] ^= 4;
  EXPECT_TRUE(
      IsRootMismatch(VerifyConsistency(size1, size2, good, bad_root1, root2)));
  Hash bad_root2 = root2;
  bad_root2[6] ^= 4;
  EXPECT_TRUE(
      IsRootMismatch(VerifyConsistency(size1, size2, good, root1, bad_root2)));
  if (size1 < size2) {
    EXPECT_FALSE(VerifyConsistency(size1, size2, good, root2, root1).ok());
  }
}

class ProofTest : public ::testing::Test {
 protected:
  void Build(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    leaves_ = testing::RandomLeaves(rng, n);
    tree_ = testing::TreeOf(leaves_);
  }
  std::span<const Bytes> Prefix(size_t n) const {
    return std::span(leaves_).first(n);
  }

  std::vector<Bytes> leaves_;
  MemoryTree tree_;
};

TEST_F(ProofTest, RootAtMatchesReferenceForSizes0To300) {
  Build(300, 10);
  testing::CountingSource counting(tree_);
  for (uint64_t n = 0; n <= 300; ++n) {
    counting.Reset();
    ASSERT_OK_AND_ASSIGN(Hash root, RootAt(counting, n));
    ASSERT_EQ(root, reference::Mth(Prefix(n))) << "size " << n;
    EXPECT_EQ(counting.calls(), std::popcount(n)) << "size " << n;
  }
  EXPECT_EQ(tree_.Root(), reference::Mth(leaves_));
}

TEST_F(ProofTest, InclusionProofsMatchReferenceExhaustively) {
  Build(130, 11);
  testing::CountingSource counting(tree_);
  for (uint64_t n = 1; n <= 130; ++n) {
    const Hash root = reference::Mth(Prefix(n));
    for (uint64_t i = 0; i < n; ++i) {
      counting.Reset();
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof,
                           InclusionProof(counting, i, n));
      ASSERT_EQ(proof, reference::Path(i, Prefix(n)))
          << "index " << i << " size " << n;
      ASSERT_EQ(proof.size(), InclusionProofSize(i, n));
      EXPECT_LE(counting.calls(), 2 * std::bit_width(n))
          << "index " << i << " size " << n;
      ASSERT_OK(
          VerifyInclusion(i, n, HashLeaf(leaves_[i]), ToBytes(proof), root));
      if (n <= 70)
        CheckInclusionProofAndMutations(i, n, HashLeaf(leaves_[i]), proof,
                                        root);
    }
  }
}

TEST_F(ProofTest, ConsistencyProofsMatchReferenceExhaustively) {
  Build(72, 12);
  testing::CountingSource counting(tree_);
  for (uint64_t n = 1; n <= 72; ++n) {
    const Hash root2 = reference::Mth(Prefix(n));
    for (uint64_t m = 1; m <= n; ++m) {
      counting.Reset();
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof,
                           ConsistencyProof(counting, m, n));
      ASSERT_EQ(proof, reference::Proof(m, Prefix(n))) << m << " -> " << n;
      ASSERT_EQ(proof.size(), ConsistencyProofSize(m, n)) << m << " -> " << n;
      EXPECT_LE(counting.calls(), 2 * std::bit_width(n) + 1)
          << m << " -> " << n;
      CheckConsistencyProofAndMutations(m, n, reference::Mth(Prefix(m)), proof,
                                        root2);
    }
  }
}

TEST_F(ProofTest, RandomLargeTrees) {
  std::mt19937_64 rng(13);
  Build(5000, 14);
  for (int round = 0; round < 40; ++round) {
    const uint64_t n = 1 + rng() % 5000;
    const Hash root = reference::Mth(Prefix(n));
    ASSERT_OK_AND_ASSIGN(Hash fast_root, RootAt(tree_, n));
    ASSERT_EQ(fast_root, root) << "size " << n;

    const uint64_t i = rng() % n;
    ASSERT_OK_AND_ASSIGN(std::vector<Hash> path, InclusionProof(tree_, i, n));
    ASSERT_EQ(path, reference::Path(i, Prefix(n)))
        << "index " << i << " size " << n;
    CheckInclusionProofAndMutations(i, n, HashLeaf(leaves_[i]), path, root);

    const uint64_t m = 1 + rng() % n;
    ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof,
                         ConsistencyProof(tree_, m, n));
    ASSERT_EQ(proof, reference::Proof(m, Prefix(n))) << m << " -> " << n;
    CheckConsistencyProofAndMutations(m, n, reference::Mth(Prefix(m)), proof,
                                      root);
  }
}

// A NodeSource for astronomically large trees whose leaves all have the same
// hash, so that node (L, k) is the same for every k and costs nothing to
// produce. Exercises the 64-bit edges of the builders and verifiers.
class UniformTree : public NodeSource {
 public:
  explicit UniformTree(uint64_t size) : size_(size) {
    by_level_[0] = HashLeaf(AsBytes("uniform"));
    for (int l = 1; l < 64; ++l)
      by_level_[l] = HashChildren(by_level_[l - 1], by_level_[l - 1]);
  }
  StatusOr<Hash> GetNode(int level, uint64_t index) override {
    // The node must be complete: its last leaf ((index + 1) << level) - 1
    // must be below size_, computed without overflow.
    if (level < 0 || level > 63 || index >= (size_ >> level)) {
      return NotFoundError("node is not complete");
    }
    return by_level_[level];
  }

 private:
  uint64_t size_;
  Hash by_level_[64];
};

TEST(ProofEdgeTest, BuildersRejectBadRanges) {
  MemoryTree tree;
  for (int i = 0; i < 5; ++i) tree.Append(HashLeaf(AsBytes(std::to_string(i))));
  EXPECT_THAT(InclusionProof(tree, 5, 5),
              StatusIs(StatusCode::kInvalidArgument, _));
  EXPECT_THAT(InclusionProof(tree, 0, 0),
              StatusIs(StatusCode::kInvalidArgument, _));
  EXPECT_THAT(ConsistencyProof(tree, 0, 5),
              StatusIs(StatusCode::kInvalidArgument, _));
  EXPECT_THAT(ConsistencyProof(tree, 0, 0),
              StatusIs(StatusCode::kInvalidArgument, _));
  EXPECT_THAT(ConsistencyProof(tree, 3, 2),
              StatusIs(StatusCode::kInvalidArgument, _));
  ASSERT_OK_AND_ASSIGN(auto empty, ConsistencyProof(tree, 5, 5));
  EXPECT_TRUE(empty.empty());
  // Node source errors pass through unchanged.
  EXPECT_THAT(RootAt(tree, 6), StatusIs(StatusCode::kNotFound, _));
  EXPECT_THAT(InclusionProof(tree, 0, 6), StatusIs(StatusCode::kNotFound, _));
  EXPECT_THAT(ConsistencyProof(tree, 2, 7), StatusIs(StatusCode::kNotFound, _));
}

TEST(ProofEdgeTest, HugeTreeProofsAreShortAndVerify) {
  const uint64_t kMax = (uint64_t{1} << 63) - 1;
  for (uint64_t n : {kMax, uint64_t{1} << 62, (uint64_t{1} << 40) + 12345,
                     uint64_t{3} << 50}) {
    UniformTree tree(n);
    testing::CountingSource counting(tree);
    ASSERT_OK_AND_ASSIGN(Hash root, RootAt(counting, n));
    const Hash leaf = *tree.GetNode(0, 0);
    for (uint64_t i : {uint64_t{0}, n / 3, n - 2, n - 1}) {
      SCOPED_TRACE("index " + std::to_string(i) + " size " + std::to_string(n));
      counting.Reset();
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> path,
                           InclusionProof(counting, i, n));
      EXPECT_LE(counting.calls(), 2 * 64);
      EXPECT_LE(path.size(), 64u);
      EXPECT_EQ(path.size(), InclusionProofSize(i, n));
      ASSERT_OK(VerifyInclusion(i, n, leaf, ToBytes(path), root));
      std::vector<Bytes> bad = ToBytes(path);
      bad.back()[0] ^= 1;
      EXPECT_TRUE(IsRootMismatch(VerifyInclusion(i, n, leaf, bad, root)));
    }
    for (uint64_t m : {uint64_t{1}, uint64_t{3}, n / 2 + 1, n - 1}) {
      SCOPED_TRACE("consistency " + std::to_string(m) + " -> " +
                   std::to_string(n));
      ASSERT_OK_AND_ASSIGN(Hash root1, RootAt(tree, m));
      counting.Reset();
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof,
                           ConsistencyProof(counting, m, n));
      EXPECT_LE(counting.calls(), 2 * 64 + 1);
      EXPECT_LE(proof.size(), 64u);
      EXPECT_EQ(proof.size(), ConsistencyProofSize(m, n));
      ASSERT_OK(VerifyConsistency(m, n, ToBytes(proof), root1, root));
      std::vector<Bytes> bad = ToBytes(proof);
      bad.front()[31] ^= 1;
      EXPECT_TRUE(IsRootMismatch(VerifyConsistency(m, n, bad, root1, root)));
    }
  }
}

TEST(ProofEdgeTest, VerifierInputChecks) {
  const Hash h = HashLeaf(AsBytes("x"));
  const Bytes h31(h.begin(), h.end() - 1);
  EXPECT_THAT(
      VerifyInclusion(1, 1, h, {}, h),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("beyond tree size")));
  EXPECT_THAT(VerifyInclusion(0, 1, h31, {}, h),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("leaf hash has 31 bytes")));
  EXPECT_THAT(
      VerifyInclusion(0, 1, h, {}, h31),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("root has 31 bytes")));
  ASSERT_OK(VerifyInclusion(0, 1, h, {}, h));
  EXPECT_THAT(VerifyConsistency(0, 0, {}, h, h),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("meaningless")));
  EXPECT_THAT(
      VerifyConsistency(2, 1, {}, h, h),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("size1 2 > size2 1")));
  EXPECT_THAT(VerifyConsistency(1, 2, {}, h, h),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("wrong proof size 0, want 1")));
  EXPECT_THAT(
      VerifyConsistency(1, 2, {Bytes(32)}, h31, h),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("root1 has 31 bytes")));
  const Status mismatch =
      VerifyConsistency(3, 3, {}, h, HashLeaf(AsBytes("y")));
  EXPECT_TRUE(IsRootMismatch(mismatch)) << mismatch.ToString();
  EXPECT_FALSE(IsRootMismatch(InvalidArgumentError("root mismatch")));
}

TEST(ProofEdgeTest, RootMismatchMessageNamesBothRoots) {
  MemoryTree tree;
  for (int i = 0; i < 3; ++i) tree.Append(HashLeaf(AsBytes(std::to_string(i))));
  ASSERT_OK_AND_ASSIGN(auto proof, InclusionProof(tree, 1, 3));
  const Hash wrong{};
  EXPECT_THAT(
      VerifyInclusion(1, 3, HashLeaf(AsBytes("1")), ToBytes(proof), wrong),
      StatusIs(StatusCode::kFailedPrecondition,
               HasSubstr("root mismatch: calculated " +
                         crypto::Base64Encode(tree.Root()) + ", expected " +
                         crypto::Base64Encode(wrong))));
}

TEST(ProofEdgeTest, MemoryTreeNodes) {
  MemoryTree tree;
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.Root(), EmptyRoot());
  EXPECT_THAT(tree.GetNode(0, 0), StatusIs(StatusCode::kNotFound, _));
  for (int i = 0; i < 7; ++i) tree.Append(HashLeaf(AsBytes(std::to_string(i))));
  EXPECT_OK(tree.GetNode(1, 2));
  EXPECT_THAT(tree.GetNode(1, 3),
              StatusIs(StatusCode::kNotFound, HasSubstr("(1, 3)")));
  EXPECT_THAT(tree.GetNode(3, 0), StatusIs(StatusCode::kNotFound, _));
  EXPECT_THAT(tree.GetNode(-1, 0), StatusIs(StatusCode::kNotFound, _));
  EXPECT_THAT(tree.GetNode(64, 0), StatusIs(StatusCode::kNotFound, _));
}

}  // namespace
}  // namespace jitgate::merkle
