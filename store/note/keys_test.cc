#include "store/note/keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/crypto/crypto.h"
#include "store/note/note_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::note {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::note::testing::MustHex;
using ::testing::HasSubstr;

// Derived log key of testdata/note/derived-jitgate-vectors.json.
constexpr char kLogSeedHex[] = "0cd89f0638f35b8b76523230ec84f85bec5a79e33eb441815ca58e80a82434fd";
constexpr char kLogSkey[] =
    "PRIVATE+KEY+log.jitgate.test/v1+1c71b808+AQzYnwY481uLdlIyMOyE+FvsWnnjPrRBgVyljoCoJDT9";
constexpr char kLogVkey[] = "log.jitgate.test/v1+1c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8";
constexpr char kPeterSkey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr char kPeterVkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

std::string AsString(const crypto::SecretBytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(NoteKeyNameTest, Table) {
  struct Case {
    const char* name;
    bool valid;
  } cases[] = {
      {"example.com/foo", true},
      {"PeterNeumann", true},
      {"oid/1.3.6.1.4.1", true},
      {"caf\xc3\xa9", true},                 // é
      {"", false},
      {"a b", false},
      {"a\tb", false},
      {"a+b", false},
      {"a\x01", false},
      {"a\x7f", false},
      {"a\xc2\x85", false},                  // U+0085 NEL
      {"a\xc2\xa0", false},                  // U+00A0 NBSP
      {"a\xe2\x80\x83", false},              // U+2003 EM SPACE
      {"a\xe3\x80\x80", false},              // U+3000
      {"a\xff", false},                      // invalid UTF-8
      {"a\xc0\xaf", false},                  // overlong '/'
      {"a\xed\xa0\x80", false},              // surrogate U+D800
      {"a\xe2\x80", false},                  // truncated
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsValidKeyName(c.name), c.valid) << "name: " << c.name;
  }
}

TEST(NoteKeyIdTest, DerivedLogAndWitnessKeys) {
  EXPECT_EQ(KeyId("log.jitgate.test/v1", kAlgEd25519,
                  MustHex("151128871a0c165018f95168daac786ea7c4856cface6ef8a743d1f3b926647c")),
            0x1c71b808u);
  EXPECT_EQ(KeyId("witness.jitgate.test/w1", kAlgCosignatureV1,
                  MustHex("baeca62cff8f4aeaef5d2fd909715179691aa43f20915289068d1e0a962f1d01")),
            0x58755f17u);
}

TEST(NoteSignerTest, FromSeedMatchesPublishedKeys) {
  const Bytes seed = MustHex(kLogSeedHex);
  ASSERT_OK_AND_ASSIGN(Signer s, Signer::FromSeed("log.jitgate.test/v1", seed));
  EXPECT_EQ(s.name(), "log.jitgate.test/v1");
  EXPECT_EQ(s.key_id(), 0x1c71b808u);
  EXPECT_EQ(HexEncode(s.public_key()),
            "151128871a0c165018f95168daac786ea7c4856cface6ef8a743d1f3b926647c");
  EXPECT_EQ(s.VerifierKey(), kLogVkey);
  EXPECT_EQ(AsString(s.EncodeSignerKey()), kLogSkey);
}

TEST(NoteSignerTest, FromSeedRejectsBadInput) {
  const Bytes seed = MustHex(kLogSeedHex);
  EXPECT_THAT(Signer::FromSeed("a b", seed), StatusIs(StatusCode::kInvalidArgument,
                                                      HasSubstr("invalid key name")));
  EXPECT_THAT(Signer::FromSeed("x", ByteSpan(seed).first(31)),
              StatusIs(StatusCode::kInvalidArgument, "Ed25519 seed is 31 bytes, want 32"));
}

TEST(NoteSignerTest, GenerateRoundTripsThroughSkey) {
  ASSERT_OK_AND_ASSIGN(Signer s, Signer::Generate("example.com/gen"));
  crypto::SecretBytes skey = s.EncodeSignerKey();
  ASSERT_OK_AND_ASSIGN(Signer t, ParseSignerKey(AsString(skey)));
  EXPECT_EQ(t.public_key(), s.public_key());
  EXPECT_EQ(t.key_id(), s.key_id());
  ASSERT_OK_AND_ASSIGN(Verifier v, Verifier::Parse(s.VerifierKey()));
  ASSERT_OK_AND_ASSIGN(auto sig, t.Sign(AsBytes("hello\n")));
  EXPECT_TRUE(v.Verify("hello\n", sig));
  EXPECT_FALSE(v.Verify("hello!\n", sig));
  EXPECT_EQ(s.GetVerifier(), v);
}

TEST(NoteParseSignerKeyTest, PublishedGoKeys) {
  ASSERT_OK_AND_ASSIGN(Signer s, ParseSignerKey(kPeterSkey));
  EXPECT_EQ(s.name(), "PeterNeumann");
  EXPECT_EQ(s.key_id(), 0xc74f20a3u);
  EXPECT_EQ(s.VerifierKey(), kPeterVkey);
  EXPECT_EQ(AsString(s.EncodeSignerKey()), kPeterSkey);
}

TEST(NoteParseSignerKeyTest, Errors) {
  struct Case {
    std::string skey;
    std::string error;
  } cases[] = {
      {"PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key does not start with \"PRIVATE+KEY+\""},
      {"PRIVATE+KEY+PeterNeumann", "signer key does not have five '+'-separated fields"},
      {"PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: invalid key name"},
      {"PRIVATE+KEY+PeterNeumann+C74F20A3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: key ID is not 8 lower-case hex digits"},
      {"PRIVATE+KEY+PeterNeumann+c74f20a+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: key ID is not 8 lower-case hex digits"},
      {"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
       "signer key: key is not canonical base64 of a type byte and a 32-byte seed"},
      {"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n",
       "signer key: key is not canonical base64 of a type byte and a 32-byte seed"},
      // Same seed with type byte 0x04 instead of 0x01.
      {"PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: unsupported key type 0x04"},
      {"PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: key ID c74f20a4 does not match the key (want c74f20a3)"},
      {"PRIVATE+KEY+PeterNeumanm+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
       "signer key: key ID c74f20a3 does not match the key (want"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseSignerKey(c.skey),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.skey;
  }
}

TEST(NoteVerifierTest, ParseAndEncode) {
  ASSERT_OK_AND_ASSIGN(Verifier v, Verifier::Parse(kLogVkey));
  EXPECT_EQ(v.name(), "log.jitgate.test/v1");
  EXPECT_EQ(v.key_id(), 0x1c71b808u);
  EXPECT_EQ(v.alg(), kAlgEd25519);
  EXPECT_EQ(HexEncode(v.public_key()),
            "151128871a0c165018f95168daac786ea7c4856cface6ef8a743d1f3b926647c");
  EXPECT_EQ(v.Encode(), kLogVkey);

  const char* witness = "witness.jitgate.test/w1+58755f17+BLrspiz/j0rq710v2QlxUXlpGqQ/IJFSiQaNHgqWLx0B";
  ASSERT_OK_AND_ASSIGN(Verifier w, Verifier::Parse(witness));
  EXPECT_EQ(w.alg(), kAlgCosignatureV1);
  EXPECT_EQ(w.key_id(), 0x58755f17u);
  EXPECT_EQ(w.Encode(), witness);
}

TEST(NoteVerifierTest, ParseErrors) {
  struct Case {
    std::string vkey;
    std::string error;
  } cases[] = {
      // The three malformed vkeys of public-vectors.json.
      {"bananas.sigstore.dev+12344556", "verifier key does not have three '+'-separated fields"},
      {"rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
       "verifier key: key is not canonical base64"},
      {"rekor.sigstore.dev+12345678+AwEB", "verifier key: unsupported key type 0x03"},
      {"", "verifier key does not have three '+'-separated fields"},
      {"+1c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8", "verifier key: invalid key name"},
      {"log.jitgate.test/v1+1C71B808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8",
       "verifier key: key ID is not 8 lower-case hex digits"},
      {"log.jitgate.test/v1+01c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8",
       "verifier key: key ID is not 8 lower-case hex digits"},
      {"log.jitgate.test/v1+1c71b808+", "verifier key: key is empty"},
      // Non-canonical base64: the last character's unused bits are not zero.
      {"log.jitgate.test/v1+1c71b808+AR==", "verifier key: key is not canonical base64"},
      {"log.jitgate.test/v1+1c71b808+AQ==", "verifier key: Ed25519 public key is 0 bytes, want 32"},
      {"log.jitgate.test/v1+1c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8 ",
       "verifier key: key is not canonical base64"},
      {"log.jitgate.test/v1+1c71b808+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5Jg==",
       "verifier key: Ed25519 public key is 30 bytes, want 32"},
      {"log.jitgate.test/v1+1c71b809+ARURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8",
       "verifier key: key ID 1c71b809 does not match the key (want 1c71b808)"},
      // Right key, but type 0x04: the key ID commits to the type byte.
      {"log.jitgate.test/v1+1c71b808+BBURKIcaDBZQGPlRaNqseG6nxIVs+s5u+KdD0fO5JmR8",
       "verifier key: key ID 1c71b808 does not match the key"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Verifier::Parse(c.vkey),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.vkey;
  }
}

TEST(NoteVerifierTest, FromPublicKey) {
  const Bytes pub = MustHex("baeca62cff8f4aeaef5d2fd909715179691aa43f20915289068d1e0a962f1d01");
  ASSERT_OK_AND_ASSIGN(Verifier w,
                       Verifier::FromPublicKey("witness.jitgate.test/w1", kAlgCosignatureV1, pub));
  EXPECT_EQ(w.Encode(),
            "witness.jitgate.test/w1+58755f17+BLrspiz/j0rq710v2QlxUXlpGqQ/IJFSiQaNHgqWLx0B");
  EXPECT_THAT(Verifier::FromPublicKey("w", 0x02, pub),
              StatusIs(StatusCode::kInvalidArgument, "unsupported key type 0x02"));
  EXPECT_THAT(Verifier::FromPublicKey("w", kAlgEd25519, ByteSpan(pub).first(16)),
              StatusIs(StatusCode::kInvalidArgument, "Ed25519 public key is 16 bytes, want 32"));
}

TEST(NoteCosignatureTest, SignAndVerifyV1) {
  // A cosigner is an Ed25519 key used with type 0x04 and the cosignature/v1
  // message; there is no Cosigner class yet, so build one by hand.
  ASSERT_OK_AND_ASSIGN(auto key, crypto::Ed25519PrivateKey::FromSeed(MustHex(kLogSeedHex)));
  ASSERT_OK_AND_ASSIGN(Verifier v,
                       Verifier::FromPublicKey("w.example", kAlgCosignatureV1, key.public_key()));
  const std::string text = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  ASSERT_OK_AND_ASSIGN(auto sig, key.Sign(AsBytes(CosignatureV1Message(42, text))));
  ByteWriter fw;
  fw.PutU64(42);
  fw.PutBytes(sig);
  const Bytes full = fw.Release();
  EXPECT_TRUE(v.Verify(text, full));
  ASSERT_OK_AND_ASSIGN(uint64_t ts, CosignatureV1Timestamp(full));
  EXPECT_EQ(ts, 42u);
  Bytes other_ts = full;
  other_ts[7] = 43;
  EXPECT_FALSE(v.Verify(text, other_ts));
  EXPECT_FALSE(v.Verify(text, ByteSpan(full).subspan(8)));  // missing timestamp
  Bytes high = full;
  high[0] = 0x80;
  EXPECT_FALSE(v.Verify(text, high));
  EXPECT_THAT(CosignatureV1Timestamp(high),
              StatusIs(StatusCode::kInvalidArgument, "cosignature timestamp is not below 2^63"));
  EXPECT_THAT(CosignatureV1Timestamp(sig),
              StatusIs(StatusCode::kInvalidArgument, "cosignature is 64 bytes, want 72"));
  // A type-0x01 verifier for the same key does not accept the cosignature.
  ASSERT_OK_AND_ASSIGN(Verifier plain,
                       Verifier::FromPublicKey("w.example", kAlgEd25519, key.public_key()));
  EXPECT_FALSE(plain.Verify(text, full));
}

}  // namespace
}  // namespace jitgate::note
