#include "core/crypto/crypto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/bytes.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::crypto {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

// Decodes a hex literal from a test vector; a typo in a vector fails loudly.
Bytes Hex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(HexDecode(hex, &out)) << "bad hex in test vector: " << hex;
  return out;
}

std::string HexOf(ByteSpan b) { return HexEncode(b); }

// ---------------------------------------------------------------- SHA-256

// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
TEST(Sha256Test, NistVectors) {
  struct Case {
    std::string_view input;
    std::string_view digest;
  };
  const Case kCases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmno"
       "pjklmnopqklmnopqrlmnopq"
       "rsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string("input \"") + std::string(c.input) + "\"");
    EXPECT_EQ(HexOf(Sha256(AsBytes(c.input))), c.digest);
  }
}

TEST(Sha256Test, MillionAIncrementalEqualsOneShot) {
  constexpr std::string_view kMillionA =
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const std::string data(1000000, 'a');
  EXPECT_EQ(HexOf(Sha256(AsBytes(data))), kMillionA);

  // Uneven chunk sizes cross the 64-byte block boundary in every phase.
  Sha256Hasher hasher;
  size_t off = 0;
  size_t step = 1;
  while (off < data.size()) {
    size_t n = std::min(step, data.size() - off);
    hasher.Update(AsBytes(std::string_view(data).substr(off, n)));
    off += n;
    step = step * 7 % 997 + 1;
  }
  EXPECT_EQ(HexOf(hasher.Finish()), kMillionA);

  // Finish() resets the hasher: the next digest starts from scratch.
  hasher.Update(AsBytes("abc"));
  EXPECT_EQ(HexOf(hasher.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf(hasher.Finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, PrefixedAndNodeEqualConcatenation) {
  const Bytes a = {1, 2, 3, 4, 5};
  const Bytes b(40, 0xab);
  for (uint8_t prefix : {uint8_t{0}, uint8_t{1}, uint8_t{0xff}}) {
    SCOPED_TRACE(int(prefix));
    Bytes leaf = {prefix};
    leaf.insert(leaf.end(), a.begin(), a.end());
    EXPECT_EQ(Sha256Prefixed(prefix, a), Sha256(leaf));

    Bytes node = leaf;
    node.insert(node.end(), b.begin(), b.end());
    EXPECT_EQ(Sha256Node(prefix, a, b), Sha256(node));
    // Empty parts are allowed.
    EXPECT_EQ(Sha256Node(prefix, {}, {}), Sha256(Bytes{prefix}));
    EXPECT_EQ(Sha256Prefixed(prefix, {}), Sha256(Bytes{prefix}));
  }
  // RFC 6962: the hash of an empty leaf is SHA-256(0x00).
  EXPECT_EQ(HexOf(Sha256Prefixed(0, {})),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

// ---------------------------------------------------------------- Ed25519

struct Ed25519Vector {
  std::string_view name;
  std::string_view seed;
  std::string_view public_key;
  std::string_view message;
  std::string_view signature;
};

// RFC 8032 §7.1, TEST 1-3.
constexpr Ed25519Vector kRfc8032Vectors[] = {
    {"TEST 1",
     "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb882159"
     "0a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2",
     "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43"
     "e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3",
     "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538"
     "d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519Test, Rfc8032Vectors) {
  for (const Ed25519Vector& v : kRfc8032Vectors) {
    SCOPED_TRACE(std::string(v.name));
    const Bytes seed = Hex(v.seed);
    const Bytes message = Hex(v.message);
    ASSERT_OK_AND_ASSIGN(Ed25519PrivateKey key,
                         Ed25519PrivateKey::FromSeed(seed));
    EXPECT_EQ(HexOf(key.public_key()), v.public_key);
    EXPECT_EQ(HexOf(key.seed().span()), v.seed);

    ASSERT_OK_AND_ASSIGN(Ed25519Signature sig, key.Sign(message));
    EXPECT_EQ(HexOf(sig), v.signature);
    EXPECT_TRUE(Ed25519Verify(key.public_key(), message, sig));
    // The published signature verifies on its own, independent of our signer.
    EXPECT_TRUE(Ed25519Verify(Hex(v.public_key), message, Hex(v.signature)));
  }
}

TEST(Ed25519Test, AnyFlippedBitFailsVerification) {
  const Ed25519Vector& v = kRfc8032Vectors[2];
  const Bytes pub = Hex(v.public_key);
  const Bytes msg = Hex(v.message);
  const Bytes sig = Hex(v.signature);
  ASSERT_TRUE(Ed25519Verify(pub, msg, sig));

  for (size_t bit = 0; bit < sig.size() * 8; ++bit) {
    Bytes bad = sig;
    bad[bit / 8] ^= uint8_t(1u << (bit % 8));
    EXPECT_FALSE(Ed25519Verify(pub, msg, bad)) << "signature bit " << bit;
  }
  for (size_t bit = 0; bit < msg.size() * 8; ++bit) {
    Bytes bad = msg;
    bad[bit / 8] ^= uint8_t(1u << (bit % 8));
    EXPECT_FALSE(Ed25519Verify(pub, bad, sig)) << "message bit " << bit;
  }
  for (size_t bit = 0; bit < pub.size() * 8; ++bit) {
    Bytes bad = pub;
    bad[bit / 8] ^= uint8_t(1u << (bit % 8));
    EXPECT_FALSE(Ed25519Verify(bad, msg, sig)) << "public key bit " << bit;
  }
  // Another vector's key does not verify this signature.
  EXPECT_FALSE(Ed25519Verify(Hex(kRfc8032Vectors[0].public_key), msg, sig));
}

TEST(Ed25519Test, WrongSizesAreRejected) {
  const Ed25519Vector& v = kRfc8032Vectors[1];
  Bytes pub = Hex(v.public_key);
  const Bytes msg = Hex(v.message);
  Bytes sig = Hex(v.signature);

  EXPECT_FALSE(Ed25519Verify(ByteSpan(pub).first(31), msg, sig));
  EXPECT_FALSE(Ed25519Verify(ByteSpan(), msg, sig));
  EXPECT_FALSE(Ed25519Verify(pub, msg, ByteSpan(sig).first(63)));
  EXPECT_FALSE(Ed25519Verify(pub, msg, ByteSpan()));
  Bytes long_pub = pub;
  long_pub.push_back(0);
  EXPECT_FALSE(Ed25519Verify(long_pub, msg, sig));
  Bytes long_sig = sig;
  long_sig.push_back(0);
  EXPECT_FALSE(Ed25519Verify(pub, msg, long_sig));

  EXPECT_THAT(Ed25519PrivateKey::FromSeed(Bytes(31, 1)).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
  EXPECT_THAT(Ed25519PrivateKey::FromSeed(Bytes(33, 1)).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
  EXPECT_THAT(Ed25519PrivateKey::FromSeed({}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
}

TEST(Ed25519Test, GeneratedKeysSignAndDiffer) {
  ASSERT_OK_AND_ASSIGN(Ed25519PrivateKey a, Ed25519PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(Ed25519PrivateKey b, Ed25519PrivateKey::Generate());
  EXPECT_NE(a.public_key(), b.public_key());
  ASSERT_OK_AND_ASSIGN(Ed25519Signature sig, a.Sign(AsBytes("hello")));
  EXPECT_TRUE(Ed25519Verify(a.public_key(), AsBytes("hello"), sig));
  EXPECT_FALSE(Ed25519Verify(b.public_key(), AsBytes("hello"), sig));

  // A moved key keeps signing; its public key travels with it.
  const Ed25519PublicKey pub = a.public_key();
  Ed25519PrivateKey moved = std::move(a);
  EXPECT_EQ(moved.public_key(), pub);
  ASSERT_OK_AND_ASSIGN(Ed25519Signature again, moved.Sign(AsBytes("hello")));
  EXPECT_EQ(again, sig);  // deterministic
}

// ---------------------------------------------------------------- Base64

TEST(Base64Test, Rfc4648Vectors) {
  struct Case {
    std::string_view plain;
    std::string_view encoded;
  };
  // RFC 4648 §10.
  const Case kCases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.plain));
    EXPECT_EQ(Base64Encode(AsBytes(c.plain)), c.encoded);
    Bytes out = {0xde, 0xad};  // replaced, not appended to
    ASSERT_TRUE(Base64Decode(c.encoded, &out));
    EXPECT_EQ(AsChars(out), c.plain);
  }
}

TEST(Base64Test, RoundTripsAllByteValuesAndLengths) {
  Bytes data;
  for (int i = 0; i < 256; ++i) data.push_back(uint8_t(255 - i));
  for (size_t n = 0; n <= data.size(); ++n) {
    ByteSpan in = ByteSpan(data).first(n);
    std::string enc = Base64Encode(in);
    EXPECT_EQ(enc.size(), 4 * ((n + 2) / 3));
    Bytes out;
    ASSERT_TRUE(Base64Decode(enc, &out)) << enc;
    EXPECT_EQ(out, Bytes(in.begin(), in.end()));
  }
  // Both '+' and '/' appear in the standard alphabet.
  EXPECT_EQ(Base64Encode(Bytes{0xfb, 0xff, 0xbf}), "+/+/");
}

TEST(Base64Test, StrictRejections) {
  const std::string_view kBad[] = {
      "Zg",        // missing padding
      "Zg=",       // short padding
      "Zm9",       // length not a multiple of 4
      "Zh==",      // non-canonical: trailing bits of 'h' are not zero
      "Zm9=",      // non-canonical: trailing bits of '9' are not zero
      "Zm8=Zm8=",  // padding in the middle
      "Z===",      // too much padding
      "====",      // padding only
      "Zm=v",      // '=' followed by data
      "Zm9v\n",    // trailing newline
      "Zm9 v",     // space
      " Zm9v",     // leading space
      "Zm9v\r\nZm9v",
      "Zm9-",  // base64url alphabet is not accepted
      "Zm9_",         "Zm9*", std::string_view("Zm\0v", 4),  // embedded NUL
  };
  for (std::string_view bad : kBad) {
    Bytes out = {7};
    EXPECT_FALSE(Base64Decode(bad, &out)) << "accepted \"" << bad << "\"";
    EXPECT_EQ(out, Bytes{7})
        << "output modified on failure for \"" << bad << "\"";
  }
}

// ---------------------------------------------------------------- CRC32C

TEST(Crc32cTest, CheckValue) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c({}), 0u);
}

// RFC 3720 §B.4 (iSCSI).
TEST(Crc32cTest, IscsiVectors) {
  EXPECT_EQ(Crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(Bytes(32, 0xFF)), 0x62A8AB43u);
  Bytes ascending(32);
  Bytes descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[size_t(i)] = uint8_t(i);
    descending[size_t(i)] = uint8_t(31 - i);
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, ExtendEqualsConcatenation) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(char(i * 31 + 7));
  const uint32_t whole = Crc32c(AsBytes(data));
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{999},
                       size_t{1000}}) {
    SCOPED_TRACE(split);
    std::string_view a = std::string_view(data).substr(0, split);
    std::string_view b = std::string_view(data).substr(split);
    EXPECT_EQ(Crc32cExtend(Crc32c(AsBytes(a)), AsBytes(b)), whole);
  }
  EXPECT_EQ(Crc32cExtend(Crc32c(AsBytes("1234")), AsBytes("56789")),
            0xE3069283u);
}

// ---------------------------------------------------------------- misc

TEST(ConstantTimeEqualsTest, Basics) {
  EXPECT_TRUE(ConstantTimeEquals({}, {}));
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("bbc")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("ab")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes(""), AsBytes("a")));
  // Same bytes, different length: a prefix is not equal.
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("abc"), AsBytes("abcd")));
}

TEST(RandomBytesTest, FillsAndDiffersAcrossCalls) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  ASSERT_OK(RandomBytes(a));
  ASSERT_OK(RandomBytes(b));
  // 2^-256 chance of a false failure.
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<uint8_t, 32>{}));
  ASSERT_OK(RandomBytes(std::span<uint8_t>()));
}

TEST(CleanseTest, ZeroesLiveMemory) {
  std::array<uint8_t, 17> buf;
  buf.fill(0x5a);
  Cleanse(buf.data(), buf.size());
  EXPECT_EQ(buf, (std::array<uint8_t, 17>{}));
  Cleanse(nullptr, 0);  // no-op
}

// Wiping freed memory cannot be observed without undefined behaviour, so
// these tests check the ownership contract that makes wiping sufficient:
// exactly one SecretBytes owns a given buffer, and a moved-from one is empty
// (so no second, unwiped copy of the key is left behind).
TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  const Bytes key = {1, 2, 3, 4, 5, 6, 7, 8};
  SecretBytes a(key);
  const uint8_t* buffer = a.data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(a.size(),
            0u);  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(b.data(), buffer) << "move must transfer the buffer, not copy it";
  EXPECT_EQ(Bytes(b.span().begin(), b.span().end()), key);

  SecretBytes c(size_t{3});
  c = std::move(b);
  EXPECT_EQ(b.size(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(c.data(), buffer);
  EXPECT_EQ(Bytes(c.span().begin(), c.span().end()), key);
}

TEST(SecretBytesTest, CopiesAreIndependent) {
  const Bytes key = {9, 8, 7};
  SecretBytes a(key);
  SecretBytes b(a);
  ASSERT_NE(a.data(), b.data());
  b.data()[0] = 0;
  EXPECT_EQ(a.data()[0], 9);

  SecretBytes c(size_t{10});
  EXPECT_EQ(c.size(), 10u);
  EXPECT_EQ(Bytes(c.span().begin(), c.span().end()), Bytes(10, 0));
  c = a;
  EXPECT_EQ(Bytes(c.span().begin(), c.span().end()), key);
  SecretBytes& alias = c;
  c = alias;  // self-assignment keeps the contents
  EXPECT_EQ(Bytes(c.span().begin(), c.span().end()), key);
}

}  // namespace
}  // namespace jitgate::crypto
