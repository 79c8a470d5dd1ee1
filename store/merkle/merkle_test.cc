#include "store/merkle/merkle.h"

#include <gtest/gtest.h>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"

namespace jitgate::merkle {
namespace {

Hash FromHex(std::string_view hex) {
  Bytes b;
  EXPECT_TRUE(HexDecode(hex, &b)) << hex;
  Hash h{};
  EXPECT_EQ(b.size(), h.size()) << hex;
  std::copy_n(b.begin(), std::min(b.size(), h.size()), h.begin());
  return h;
}

TEST(HasherTest, EmptyRootIsSha256OfNothing) {
  EXPECT_EQ(
      EmptyRoot(),
      FromHex(
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

TEST(HasherTest, LeafHashUsesPrefixZero) {
  // transparency-dev/merkle rfc6962_test.go.
  EXPECT_EQ(
      HashLeaf(ByteSpan()),
      FromHex(
          "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
  EXPECT_EQ(
      HashLeaf(AsBytes("L123456")),
      FromHex(
          "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"));
  const Bytes prefixed = {0x00, 'a', 'b'};
  EXPECT_EQ(HashLeaf(AsBytes("ab")), crypto::Sha256(prefixed));
}

TEST(HasherTest, NodeHashUsesPrefixOne) {
  const Hash l = HashLeaf(AsBytes("l"));
  const Hash r = HashLeaf(AsBytes("r"));
  Bytes buf{0x01};
  buf.insert(buf.end(), l.begin(), l.end());
  buf.insert(buf.end(), r.begin(), r.end());
  EXPECT_EQ(HashChildren(l, r), crypto::Sha256(buf));
  EXPECT_NE(HashChildren(l, r), HashChildren(r, l));
}

TEST(HasherTest, LeafAndNodeDomainsDiffer) {
  // A leaf whose content is the concatenation of two hashes must not collide
  // with the node over those hashes (second-preimage protection).
  const Hash l = HashLeaf(AsBytes("l"));
  const Hash r = HashLeaf(AsBytes("r"));
  Bytes concat(l.begin(), l.end());
  concat.insert(concat.end(), r.begin(), r.end());
  EXPECT_NE(HashLeaf(concat), HashChildren(l, r));
}

}  // namespace
}  // namespace jitgate::merkle
