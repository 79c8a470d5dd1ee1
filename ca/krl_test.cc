#include "ca/krl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace jitgate::ca {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

struct Fixture {
  Fixture() {
    ca = std::make_unique<PrivateKeySigner>(*PrivateKey::Generate(KeyType::kEd25519));
    other_ca = std::make_unique<PrivateKeySigner>(*PrivateKey::Generate(KeyType::kEd25519));
    user = *PrivateKey::Generate(KeyType::kEd25519);
  }
  Certificate Issue(const Signer& signer, uint64_t serial, std::string key_id) const {
    CertificateFields f;
    f.serial = serial;
    f.key_id = std::move(key_id);
    f.principals = {"root"};
    f.valid_after = 1;
    f.valid_before = 2;
    return *IssueCertificate(user->public_key(), f, signer);
  }
  std::unique_ptr<PrivateKeySigner> ca, other_ca;
  std::optional<PrivateKey> user;
};

TEST(KrlTest, RangesMerge) {
  Fixture fx;
  Krl krl;
  const PublicKey& ca = fx.ca->public_key();
  ASSERT_OK(krl.RevokeSerial(ca, 5));
  ASSERT_OK(krl.RevokeSerial(ca, 7));
  ASSERT_OK(krl.RevokeSerial(ca, 6));
  ASSERT_OK(krl.RevokeSerialRange(ca, 10, 20));
  ASSERT_OK(krl.RevokeSerialRange(ca, 15, 30));
  ASSERT_OK(krl.RevokeSerialRange(ca, 31, 31));
  ASSERT_OK(krl.RevokeSerialRange(ca, 100, UINT64_MAX));
  ASSERT_OK(krl.RevokeSerial(ca, UINT64_MAX));
  EXPECT_THAT(krl.cert_sections().at(ca.blob()).serials,
              ElementsAre(Pair(5, 7), Pair(10, 31), Pair(100, UINT64_MAX)));
  EXPECT_THAT(krl.RevokeSerial(ca, 0), StatusIs(StatusCode::kInvalidArgument, HasSubstr("serial 0")));
  EXPECT_THAT(krl.RevokeSerialRange(ca, 9, 8), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
}

TEST(KrlTest, RevocationAndRoundTrip) {
  Fixture fx;
  Krl krl;
  krl.version = 3;
  krl.generated_date = 1700000000;
  krl.comment = "jitgate test";
  ASSERT_OK(krl.RevokeSerial(fx.ca->public_key(), 2));
  ASSERT_OK(krl.RevokeSerialRange(fx.ca->public_key(), 4, 5));
  ASSERT_OK(krl.RevokeKeyId(fx.ca->public_key(), "jitgate:req1:bob"));
  ASSERT_OK(krl.RevokeKeyId(std::nullopt, "anywhere"));

  EXPECT_FALSE(krl.IsRevoked(fx.Issue(*fx.ca, 1, "a")));
  EXPECT_TRUE(krl.IsRevoked(fx.Issue(*fx.ca, 2, "a")));
  EXPECT_FALSE(krl.IsRevoked(fx.Issue(*fx.ca, 3, "a")));
  EXPECT_TRUE(krl.IsRevoked(fx.Issue(*fx.ca, 5, "a")));
  EXPECT_TRUE(krl.IsRevoked(fx.Issue(*fx.ca, 9, "jitgate:req1:bob")));
  // Another CA's serial 2 is not revoked, but "any CA" key ids are.
  EXPECT_FALSE(krl.IsRevoked(fx.Issue(*fx.other_ca, 2, "a")));
  EXPECT_FALSE(krl.IsRevoked(fx.Issue(*fx.other_ca, 9, "jitgate:req1:bob")));
  EXPECT_TRUE(krl.IsRevoked(fx.Issue(*fx.other_ca, 9, "anywhere")));

  const Bytes enc = krl.Encode();
  ASSERT_OK_AND_ASSIGN(Krl back, Krl::Parse(enc));
  EXPECT_EQ(back, krl);
  EXPECT_EQ(back.Encode(), enc);

  // Revoking the user's key revokes every certificate for it.
  krl.RevokeKey(fx.user->public_key());
  EXPECT_TRUE(krl.IsRevoked(fx.Issue(*fx.other_ca, 1, "a")));
  ASSERT_OK_AND_ASSIGN(Krl back2, Krl::Parse(krl.Encode()));
  EXPECT_EQ(back2, krl);

  // Every truncation fails, except a cut exactly between sections, which is
  // a valid but different (shorter) KRL.
  for (size_t n = 0; n < enc.size(); ++n) {
    StatusOr<Krl> shorter = Krl::Parse(ByteSpan(enc).first(n));
    if (shorter.ok()) {
      EXPECT_FALSE(*shorter == back) << n;
    }
  }
}

Bytes Header() {
  ByteWriter w;
  w.PutU64(kKrlMagic);
  w.PutU32(1);
  w.PutU64(1);
  w.PutU64(0);
  w.PutU64(0);
  w.PutU32Prefixed("");
  w.PutU32Prefixed("");
  return w.Release();
}

TEST(KrlTest, ParsesBitmapAndRefusesWhatItCannotHonour) {
  Fixture fx;
  // Bitmap offset 100 with bits 0, 1, 2 and 9 set: serials 100-102 and 109.
  ByteWriter sub;
  sub.PutU64(100);
  sub.PutU32(2);
  sub.PutU8(0x02);
  sub.PutU8(0x07);
  ByteWriter sec;
  sec.PutU32Prefixed(fx.ca->public_key().blob());
  sec.PutU32Prefixed("");
  sec.PutU8(kKrlCertSerialBitmap);
  sec.PutU32Prefixed(sub.span());
  ByteWriter w;
  w.PutBytes(Header());
  w.PutU8(kKrlSectionCertificates);
  w.PutU32Prefixed(sec.span());
  ASSERT_OK_AND_ASSIGN(Krl krl, Krl::Parse(w.span()));
  EXPECT_THAT(krl.cert_sections().at(fx.ca->public_key().blob()).serials,
              ElementsAre(Pair(100, 102), Pair(109, 109)));

  ByteWriter sig;
  sig.PutBytes(Header());
  sig.PutU8(kKrlSectionSignature);
  sig.PutU32Prefixed(fx.ca->public_key().blob());
  sig.PutU32Prefixed("sig");
  EXPECT_THAT(Krl::Parse(sig.span()), StatusIs(StatusCode::kUnimplemented, HasSubstr("signed")));

  ByteWriter ext_body;
  ext_body.PutU32Prefixed("future@example.com");
  ext_body.PutU8(1);
  ext_body.PutU32Prefixed("");
  ByteWriter crit;
  crit.PutBytes(Header());
  crit.PutU8(kKrlSectionExtension);
  crit.PutU32Prefixed(ext_body.span());
  EXPECT_THAT(Krl::Parse(crit.span()), StatusIs(StatusCode::kUnimplemented, HasSubstr("critical")));

  ByteWriter zero_sub;
  zero_sub.PutU64(0);
  ByteWriter zsec;
  zsec.PutU32Prefixed("");
  zsec.PutU32Prefixed("");
  zsec.PutU8(kKrlCertSerialList);
  zsec.PutU32Prefixed(zero_sub.span());
  ByteWriter zero;
  zero.PutBytes(Header());
  zero.PutU8(kKrlSectionCertificates);
  zero.PutU32Prefixed(zsec.span());
  EXPECT_THAT(Krl::Parse(zero.span()), StatusIs(StatusCode::kInvalidArgument, HasSubstr("serial 0")));

  Bytes bad_magic = Header();
  bad_magic[0] ^= 1;
  EXPECT_THAT(Krl::Parse(bad_magic), StatusIs(StatusCode::kInvalidArgument, HasSubstr("magic")));
}

}  // namespace
}  // namespace jitgate::ca
