#include "ca/sshkey.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "ca/ca_test_util.h"
#include "core/base/bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::ca {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;
using testing::OpensshTestdata;
using testing::ReadFileOrDie;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Every public key in the testdata: fingerprint as ssh-keygen -l, line round trip.
TEST(PublicKeyTest, TestdataFingerprintsAndLines) {
  for (const char* name : {"ed25519_1", "ed25519_2", "ecdsa_1", "rsa_1", "rsa_2", "ed25519_sk1",
                           "ed25519_sk2", "ecdsa_sk1", "ecdsa_sk2", "rsa_1_sha1", "rsa_1_sha512"}) {
    SCOPED_TRACE(name);
    const std::string line = Trim(ReadFileOrDie(OpensshTestdata(std::string("sshkey/") + name + ".pub")));
    std::string comment;
    ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromLine(line, &comment));
    EXPECT_EQ(key.ToLine(comment), line);
    const std::string fp_path = OpensshTestdata(std::string("sshkey/") + name + ".fp");
    if (::access(fp_path.c_str(), R_OK) == 0) {
      EXPECT_EQ(key.Fingerprint(), Trim(ReadFileOrDie(fp_path)));
    }
    ASSERT_OK_AND_ASSIGN(PublicKey again, PublicKey::FromBlob(key.blob()));
    EXPECT_EQ(again, key);
  }
}

TEST(PublicKeyTest, RefusesUnsupportedAndCertificates) {
  const std::string mldsa = ReadFileOrDie(OpensshTestdata("sshkey/mldsa44_ed25519_1.pub"));
  EXPECT_THAT(PublicKey::FromLine(mldsa), StatusIs(StatusCode::kUnimplemented, HasSubstr("mldsa44")));
  // ecdsa_2 is a P-521 key: only P-256 is supported.
  EXPECT_THAT(PublicKey::FromLine(ReadFileOrDie(OpensshTestdata("sshkey/ecdsa_2.pub"))),
              StatusIs(StatusCode::kUnimplemented, HasSubstr("ecdsa-sha2-nistp521")));
  const std::string cert = ReadFileOrDie(OpensshTestdata("sshkey/ed25519_1-cert.pub"));
  EXPECT_THAT(PublicKey::FromLine(cert), StatusIs(StatusCode::kInvalidArgument, HasSubstr("certificate")));
}

TEST(PublicKeyTest, EveryTruncationAndTrailingByteFails) {
  for (const char* name : {"ed25519_1", "ecdsa_1", "rsa_1", "ecdsa_sk1"}) {
    ASSERT_OK_AND_ASSIGN(PublicKey key,
                         PublicKey::FromLine(ReadFileOrDie(OpensshTestdata(std::string("sshkey/") + name + ".pub"))));
    const Bytes& blob = key.blob();
    for (size_t n = 0; n < blob.size(); ++n) {
      EXPECT_FALSE(PublicKey::FromBlob(ByteSpan(blob).first(n)).ok()) << name << " len " << n;
    }
    Bytes longer = blob;
    longer.push_back(0);
    EXPECT_THAT(PublicKey::FromBlob(longer), StatusIs(StatusCode::kInvalidArgument, HasSubstr("trailing")));
  }
}

TEST(PublicKeyTest, RefusesNonMinimalMpintAndOffCurvePoint) {
  ASSERT_OK_AND_ASSIGN(PublicKey rsa, PublicKey::FromLine(ReadFileOrDie(OpensshTestdata("sshkey/rsa_1.pub"))));
  // e = 65537 is "00 00 00 03 01 00 01"; re-encode it with a spare zero byte.
  ByteReader r(rsa.blob());
  ByteSpan type, e, n;
  ASSERT_TRUE(r.GetU32Prefixed(&type) && r.GetU32Prefixed(&e) && r.GetU32Prefixed(&n));
  ByteWriter w;
  w.PutU32Prefixed(type);
  Bytes padded_e = {0};
  padded_e.insert(padded_e.end(), e.begin(), e.end());
  w.PutU32Prefixed(padded_e);
  w.PutU32Prefixed(n);
  EXPECT_THAT(PublicKey::FromBlob(w.span()), StatusIs(StatusCode::kInvalidArgument, HasSubstr("exponent")));

  ASSERT_OK_AND_ASSIGN(PublicKey ec, PublicKey::FromLine(ReadFileOrDie(OpensshTestdata("sshkey/ecdsa_1.pub"))));
  Bytes bad = ec.blob();
  bad.back() ^= 1;  // y no longer matches x
  EXPECT_THAT(PublicKey::FromBlob(bad), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
}

TEST(KeyLineTest, Parsing) {
  ASSERT_OK_AND_ASSIGN(KeyLine kl, ParseKeyLine("  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFOG6kY7Rf4UtCFvPwKgo/BztXck2xC4a2WyA34XtIwZ  a b\tc \n"));
  EXPECT_EQ(kl.type, "ssh-ed25519");
  EXPECT_EQ(kl.comment, "a b\tc");
  EXPECT_THAT(ParseKeyLine("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIFOG6kY7Rf4UtCFvPwKgo/BztXck2xC4a2WyA34XtIwZ"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(ParseKeyLine("ssh-ed25519"), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(ParseKeyLine("ssh-ed25519 AAAA*"), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(ParseKeyLine(std::string("ssh-ed25519 AAAA\0", 17)), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
}

// Testdata private keys in the OpenSSH format (ecdsa_n and rsa_n are
// ecdsa_1 and rsa_1 re-encoded): the public half matches the .pub file.
// Encrypted, PEM and unsupported keys are refused cleanly.
TEST(PrivateKeyTest, TestdataKeys) {
  for (const char* name : {"ed25519_1", "ed25519_2", "ecdsa_n", "rsa_n"}) {
    SCOPED_TRACE(name);
    std::string comment;
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::ParseOpenSsh(
                                             ReadFileOrDie(OpensshTestdata(std::string("sshkey/") + name)), &comment));
    std::string base(name);
    if (base.ends_with("_n")) base = base.substr(0, base.size() - 2) + "_1";
    ASSERT_OK_AND_ASSIGN(PublicKey pub,
                         PublicKey::FromLine(ReadFileOrDie(OpensshTestdata("sshkey/" + base + ".pub"))));
    EXPECT_EQ(key.public_key(), pub);
    // Sign and verify.
    const Bytes msg = {1, 2, 3};
    ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(msg));
    EXPECT_OK(pub.Verify(msg, sig));
    // Serialize and parse back.
    ASSERT_OK_AND_ASSIGN(crypto::SecretBytes text, key.SerializeOpenSsh(comment));
    std::string comment2;
    ASSERT_OK_AND_ASSIGN(PrivateKey again, PrivateKey::ParseOpenSsh(AsChars(text.span()), &comment2));
    EXPECT_EQ(again.public_key(), pub);
    EXPECT_EQ(comment2, comment);
  }
  for (const char* name : {"ed25519_1_pw", "ecdsa_n_pw", "rsa_n_pw"}) {
    EXPECT_THAT(PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata(std::string("sshkey/") + name))),
                StatusIs(StatusCode::kFailedPrecondition, HasSubstr("encrypted")))
        << name;
  }
  EXPECT_THAT(PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata("sshkey/mldsa44_ed25519_1"))),
              StatusIs(StatusCode::kUnimplemented, ::testing::_));
  EXPECT_THAT(PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata("sshkey/ed25519_sk1"))),
              StatusIs(StatusCode::kUnimplemented, ::testing::_));
  for (const char* name : {"ecdsa_1", "rsa_1", "rsa_2", "ecdsa_1_pw", "rsa_1_pw"}) {
    EXPECT_THAT(PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata(std::string("sshkey/") + name))),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("not an OpenSSH private key")))
        << name;
  }
}

TEST(PrivateKeyTest, MismatchedHalvesAreRefused) {
  // Swap in ed25519_2's public section: the private half no longer matches.
  const std::string k1 = ReadFileOrDie(OpensshTestdata("sshkey/ed25519_1"));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::ParseOpenSsh(k1));
  ASSERT_OK_AND_ASSIGN(PublicKey other, PublicKey::FromLine(ReadFileOrDie(OpensshTestdata("sshkey/ed25519_2.pub"))));
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes text, key.SerializeOpenSsh("x"));
  std::string body(AsChars(text.span()));
  // Decode, patch the public blob, re-encode.
  std::string b64;
  for (const std::string_view line : {std::string_view(body)}) {
    size_t s = line.find('\n') + 1, e = line.rfind("-----END");
    for (char c : line.substr(s, e - s)) {
      if (c != '\n') b64 += c;
    }
  }
  Bytes raw;
  ASSERT_TRUE(crypto::Base64Decode(b64, &raw));
  const Bytes& mine = key.public_key().blob();
  auto it = std::search(raw.begin(), raw.end(), mine.begin(), mine.end());
  ASSERT_NE(it, raw.end());
  std::copy(other.blob().begin(), other.blob().end(), it);
  const std::string patched = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + crypto::Base64Encode(raw) +
                              "\n-----END OPENSSH PRIVATE KEY-----\n";
  EXPECT_THAT(PrivateKey::ParseOpenSsh(patched), StatusIs(StatusCode::kInvalidArgument, HasSubstr("match")));
}

class GeneratedKeyTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(GeneratedKeyTest, SignVerifyAndFileRoundTrip) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam(), 2048));
  const Bytes msg = {'h', 'i'};
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(msg));
  EXPECT_OK(key.public_key().Verify(msg, sig));
  EXPECT_THAT(key.public_key().Verify(Bytes{'h', 'o'}, sig), StatusIs(StatusCode::kUnauthenticated, ::testing::_));
  Bytes bad = sig;
  bad[bad.size() - 3] ^= 0x10;
  EXPECT_FALSE(key.public_key().Verify(msg, bad).ok());

  jitgate::testing::TempDir dir;
  const std::string path = dir.Join("key");
  ASSERT_OK(WritePrivateKeyFile(path, key, "me@host"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::string comment;
  ASSERT_OK_AND_ASSIGN(PrivateKey again, ReadPrivateKeyFile(path, &comment));
  EXPECT_EQ(again.public_key(), key.public_key());
  EXPECT_EQ(comment, "me@host");

  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_THAT(ReadPrivateKeyFile(path), StatusIs(StatusCode::kPermissionDenied, HasSubstr("0640")));
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_THAT(ReadPrivateKeyFile(path), StatusIs(StatusCode::kPermissionDenied, ::testing::_));
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_OK(ReadPrivateKeyFile(path).status());
}

// Sign copies a context prepared once per key (Ed25519, ECDSA); several
// threads signing with one key at once must each get a valid signature, and
// Ed25519's must equal the one made alone (it is deterministic).
TEST_P(GeneratedKeyTest, ConcurrentSignaturesVerify) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam(), 2048));
  constexpr int kThreads = 4;
  const int per_thread = GetParam() == KeyType::kRsa ? 5 : 200;
  const Bytes msg = {'s', 'a', 'm', 'e'};
  ASSERT_OK_AND_ASSIGN(Bytes alone, key.Sign(msg));
  std::vector<std::vector<Bytes>> sigs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        StatusOr<Bytes> sig = key.Sign(msg);
        sigs[size_t(t)].push_back(sig.ok() ? *std::move(sig) : Bytes());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::vector<Bytes>& v : sigs) {
    for (const Bytes& sig : v) {
      ASSERT_OK(key.public_key().Verify(msg, sig));
      if (GetParam() == KeyType::kEd25519) {
        EXPECT_EQ(sig, alone);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GeneratedKeyTest,
                         ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa));

TEST(PrivateKeyTest, RsaAlgorithms) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata("sshkey/rsa_n"))));
  const Bytes msg = {7};
  ASSERT_OK_AND_ASSIGN(Bytes s256, key.Sign(msg, "rsa-sha2-256"));
  ASSERT_OK_AND_ASSIGN(std::string alg, SignatureAlgorithm(s256));
  EXPECT_EQ(alg, "rsa-sha2-256");
  EXPECT_OK(key.public_key().Verify(msg, s256));
  EXPECT_THAT(key.Sign(msg, "ssh-rsa"), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
  // A signature labelled with another key type's algorithm is refused.
  ASSERT_OK_AND_ASSIGN(PrivateKey ed, PrivateKey::ParseOpenSsh(ReadFileOrDie(OpensshTestdata("sshkey/ed25519_1"))));
  ASSERT_OK_AND_ASSIGN(Bytes edsig, ed.Sign(msg));
  EXPECT_THAT(key.public_key().Verify(msg, edsig), StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(PrivateKey::Generate(KeyType::kRsa, 1024), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
}

TEST(PrivateKeyTest, CorruptFilesFailCleanly) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEd25519));
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes text, key.SerializeOpenSsh("c"));
  const std::string good(AsChars(text.span()));
  // Flip every base64 character in turn (to another valid one).
  const size_t start = good.find('\n') + 1, end = good.rfind("-----END");
  for (size_t i = start; i < end; ++i) {
    if (good[i] == '\n' || good[i] == '=') continue;
    std::string bad = good;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    // A flip may land in the comment and be accepted, but it must never
    // yield a different key.
    StatusOr<PrivateKey> got = PrivateKey::ParseOpenSsh(bad);
    if (got.ok()) {
      EXPECT_EQ(got->public_key(), key.public_key()) << "flip at " << i;
    }
  }
  EXPECT_THAT(PrivateKey::ParseOpenSsh(good.substr(0, good.size() - 10)), StatusIs(StatusCode::kInvalidArgument, ::testing::_));
}

}  // namespace
}  // namespace jitgate::ca
