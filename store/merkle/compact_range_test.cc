#include "store/merkle/compact_range.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <random>

#include "store/merkle/merkle_test_util.h"
#include "store/merkle/proof.h"
#include "store/merkle/reference_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::merkle {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CompactRangeTest, EmptyRange) {
  CompactRange range;
  EXPECT_EQ(range.size(), 0u);
  EXPECT_TRUE(range.hashes().empty());
  EXPECT_EQ(range.Root(), EmptyRoot());
}

TEST(CompactRangeTest, RootMatchesReferenceForSizes0To300) {
  std::mt19937_64 rng(1);
  const std::vector<Bytes> leaves = testing::RandomLeaves(rng, 300);
  CompactRange range;
  for (size_t n = 0; n <= leaves.size(); ++n) {
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.hashes().size(), size_t(std::popcount(n))) << "size " << n;
    ASSERT_EQ(range.Root(), reference::Mth(std::span(leaves).first(n)))
        << "size " << n;
    if (n < leaves.size()) range.Append(HashLeaf(leaves[n]));
  }
}

TEST(CompactRangeTest, HashesAreThePerfectSubtreeRoots) {
  std::mt19937_64 rng(2);
  const std::vector<Bytes> leaves = testing::RandomLeaves(rng, 100);
  CompactRange range;
  for (size_t n = 1; n <= leaves.size(); ++n) {
    range.Append(HashLeaf(leaves[n - 1]));
    size_t begin = 0;
    size_t i = 0;
    for (int level = 63; level >= 0; --level) {
      if (((n >> level) & 1) == 0) continue;
      const size_t width = size_t{1} << level;
      ASSERT_EQ(range.hashes()[i],
                reference::Mth(std::span(leaves).subspan(begin, width)))
          << "size " << n << " level " << level;
      begin += width;
      ++i;
    }
  }
}

TEST(CompactRangeTest, FromHashesRoundTrip) {
  std::mt19937_64 rng(3);
  CompactRange range;
  for (int n = 0; n < 70; ++n) {
    ASSERT_OK_AND_ASSIGN(CompactRange copy, CompactRange::FromHashes(
                                                range.size(), range.hashes()));
    EXPECT_EQ(copy, range);
    EXPECT_EQ(copy.Root(), range.Root());
    // The restored range keeps appending identically.
    const Hash leaf = HashLeaf(testing::RandomLeaves(rng, 1)[0]);
    copy.Append(leaf);
    range.Append(leaf);
    EXPECT_EQ(copy, range);
  }
}

TEST(CompactRangeTest, FromHashesChecksCount) {
  EXPECT_THAT(CompactRange::FromHashes(5, {EmptyRoot()}),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("needs 2 hashes, got 1")));
  EXPECT_THAT(
      CompactRange::FromHashes(0, {EmptyRoot()}),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("needs 0 hashes")));
  EXPECT_THAT(CompactRange::FromHashes(4, {EmptyRoot(), EmptyRoot()}),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("needs 1 hashes, got 2")));
  ASSERT_OK(CompactRange::FromHashes(uint64_t{1} << 40, {EmptyRoot()}));
}

TEST(CompactRangeTest, VisitorEnumeratesPostorderExactly) {
  std::mt19937_64 rng(4);
  const std::vector<Bytes> leaves = testing::RandomLeaves(rng, 300);
  MemoryTree tree;
  CompactRange range;
  uint64_t next = 0;
  for (size_t n = 0; n < leaves.size(); ++n) {
    const Hash leaf = HashLeaf(leaves[n]);
    tree.Append(leaf);
    int last_level = -1;
    range.Append(leaf, [&](int level, uint64_t index, const Hash& hash) {
      EXPECT_EQ(level, last_level + 1) << "bottom-up order, leaf " << n;
      last_level = level;
      EXPECT_EQ(index, n >> level);
      EXPECT_EQ(PostorderIndex(level, index), next)
          << "leaf " << n << " level " << level;
      ++next;
      auto want = tree.GetNode(level, index);
      ASSERT_OK(want);
      EXPECT_EQ(hash, *want) << "node (" << level << ", " << index << ")";
    });
    EXPECT_EQ(next, PostorderNodeCount(n + 1)) << "after leaf " << n;
    // Every complete node has been visited exactly once: node count matches.
  }
}

TEST(CompactRangeTest, PostorderNodeCountSmall) {
  const uint64_t want[] = {0, 1, 3, 4, 7, 8, 10, 11, 15};
  for (uint64_t n = 0; n < std::size(want); ++n)
    EXPECT_EQ(PostorderNodeCount(n), want[n]);
  EXPECT_EQ(PostorderIndex(0, 0), 0u);
  EXPECT_EQ(PostorderIndex(0, 1), 1u);
  EXPECT_EQ(PostorderIndex(1, 0), 2u);
  EXPECT_EQ(PostorderIndex(2, 0), 6u);
  EXPECT_EQ(PostorderIndex(3, 0), 14u);
}

TEST(CompactRangeTest, PostorderLeafCountInvertsNodeCount) {
  uint64_t n = 0;
  for (uint64_t count = 0; count < 5000; ++count) {
    while (PostorderNodeCount(n + 1) <= count) ++n;
    ASSERT_EQ(PostorderLeafCount(count), n) << "count " << count;
  }
  for (uint64_t size : {uint64_t{1} << 32, (uint64_t{1} << 62) + 12345,
                        (uint64_t{1} << 63) - 1}) {
    const uint64_t count = PostorderNodeCount(size);
    EXPECT_EQ(PostorderLeafCount(count), size);
    EXPECT_EQ(PostorderLeafCount(count - 1), size - 1);
  }
  EXPECT_EQ(PostorderLeafCount(UINT64_MAX), (uint64_t{1} << 63) - 1);
}

}  // namespace
}  // namespace jitgate::merkle
