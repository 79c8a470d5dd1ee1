// Interop with the stock OpenSSH tools, both ways: what jitgate writes
// (certificates, private keys, KRLs) ssh-keygen reads identically, and what
// ssh-keygen writes jitgate reads. Skipped if ssh-keygen is not installed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ca/ca_test_util.h"
#include "ca/cert.h"
#include "ca/krl.h"
#include "ca/sshkey.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::ca {
namespace {

using ::testing::HasSubstr;
using testing::ReadFileOrDie;
using RunFn = testing::CommandResult (*)(const std::vector<std::string>&);
constexpr RunFn RunTool = &testing::Run;
using testing::WriteFileOrDie;

constexpr const char* kSshKeygen = "/usr/bin/ssh-keygen";

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveSshKeygen()) GTEST_SKIP() << "ssh-keygen not installed";
  }
  jitgate::testing::TempDir dir_;
};

std::string FirstTwoFields(const std::string& line) {
  const size_t a = line.find(' ');
  const size_t b = line.find_first_of(" \n", a + 1);
  return line.substr(0, b);
}

struct IssueCase {
  KeyType ca;
  KeyType subject;
  CertType type;
};

// Certificates we issue are accepted by `ssh-keygen -L`, which prints the
// same fields FormatCertificate prints.
TEST_F(InteropTest, SshKeygenShowsOurCertificates) {
  const IssueCase cases[] = {
      {KeyType::kEd25519, KeyType::kEd25519, CertType::kUser},
      {KeyType::kEd25519, KeyType::kRsa, CertType::kHost},
      {KeyType::kEcdsaP256, KeyType::kEcdsaP256, CertType::kUser},
      {KeyType::kEcdsaP256, KeyType::kEd25519, CertType::kHost},
      {KeyType::kRsa, KeyType::kEcdsaP256, CertType::kUser},
      {KeyType::kRsa, KeyType::kRsa, CertType::kHost},
  };
  int n = 0;
  for (const IssueCase& c : cases) {
    SCOPED_TRACE(n);
    ASSERT_OK_AND_ASSIGN(PrivateKey ca_key, PrivateKey::Generate(c.ca, 2048));
    PrivateKeySigner signer(std::move(ca_key));
    ASSERT_OK_AND_ASSIGN(PrivateKey subject, PrivateKey::Generate(c.subject, 2048));
    CertificateFields f;
    f.serial = 1000 + uint64_t(n);
    f.type = c.type;
    f.key_id = "jitgate:7f3a9c02:bob";
    f.valid_after = 1700000000;
    f.valid_before = 1700000900;
    if (c.type == CertType::kUser) {
      f.principals = {"root", "deploy"};
      f.critical_options = {CertOption::WithValue("source-address", "10.0.0.5/32,192.168.0.0/16"),
                            CertOption::WithValue("force-command", "/usr/bin/uptime")};
      f.extensions = {CertOption::Flag("permit-pty"), CertOption::Flag("permit-agent-forwarding"),
                      CertOption::Flag("no-touch-required"), CertOption::Flag("flag@jitgate.dev"),
                      CertOption::WithValue("request@jitgate.dev", "7f3a9c02")};
    } else {
      f.principals = {"db1.example.com", "db1"};
    }
    ASSERT_OK_AND_ASSIGN(Certificate cert, IssueCertificate(subject.public_key(), f, signer));
    const std::string path = dir_.Join("cert" + std::to_string(n) + "-cert.pub");
    WriteFileOrDie(path, cert.ToLine("test") + "\n");
    const testing::CommandResult got = RunTool({kSshKeygen, "-L", "-f", path});
    EXPECT_EQ(got.exit_code, 0) << got.output;
    EXPECT_EQ(got.output, FormatCertificate(cert, path, /*utc=*/true));
    // ssh-keygen -l prints the certified key's fingerprint.
    const testing::CommandResult fp = RunTool({kSshKeygen, "-l", "-f", path});
    EXPECT_THAT(fp.output, HasSubstr(" " + subject.public_key().Fingerprint() + " "));
    ++n;
  }
}

// The testdata certificates print as ssh-keygen prints them.
TEST_F(InteropTest, FormatMatchesSshKeygenOnTestdata) {
  for (const char* rel : {"sshkey/rsa_1_sha512-cert.pub", "sshkey/ecdsa_sk1-cert.pub", "sshkey/ed25519_1-cert.pub",
                          "authopt/unknown_critical.cert", "authopt/no_permit.cert", "authopt/host.cert"}) {
    const std::string path = testing::OpensshTestdata(rel);
    ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromLine(ReadFileOrDie(path)));
    const testing::CommandResult got = RunTool({kSshKeygen, "-L", "-f", path});
    EXPECT_EQ(got.output, FormatCertificate(cert, path, /*utc=*/true)) << rel;
  }
}

// Private keys we write load in `ssh-keygen -y`, and ssh-keygen can sign
// certificates with them, which we then parse and verify.
TEST_F(InteropTest, SshKeygenReadsOurPrivateKeys) {
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa}) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(t));
    const std::string path = dir_.Join(std::string("ours_") + std::string(KeyTypeLabel(t)));
    ASSERT_OK(WritePrivateKeyFile(path, key, "ours@jitgate"));
    const testing::CommandResult y = RunTool({kSshKeygen, "-y", "-f", path});
    ASSERT_EQ(y.exit_code, 0) << y.output;
    EXPECT_EQ(FirstTwoFields(y.output), key.public_key().ToLine());

    // ssh-keygen signs a user key with our CA key file.
    ASSERT_OK_AND_ASSIGN(PrivateKey user, PrivateKey::Generate(KeyType::kEd25519));
    const std::string user_pub = path + "_user.pub";
    WriteFileOrDie(user_pub, user.public_key().ToLine("u") + "\n");
    const testing::CommandResult s = RunTool({kSshKeygen, "-q", "-s", path, "-I", "made-by-ssh-keygen", "-n", "alice",
                                          "-z", "77", "-V", "+5m", "-O", "source-address=10.1.2.3", user_pub});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromLine(ReadFileOrDie(path + "_user-cert.pub")));
    EXPECT_OK(cert.VerifySignature());
    EXPECT_EQ(cert.signature_key(), key.public_key());
    EXPECT_EQ(cert.key(), user.public_key());
    EXPECT_EQ(cert.fields().serial, 77u);
    EXPECT_EQ(cert.fields().key_id, "made-by-ssh-keygen");
    EXPECT_EQ(cert.Encode(), cert.blob());
  }
}

// Keys ssh-keygen generates load in ours.
TEST_F(InteropTest, WeReadSshKeygenKeys) {
  for (const char* t : {"ed25519", "ecdsa", "rsa"}) {
    SCOPED_TRACE(t);
    const std::string path = dir_.Join(std::string("theirs_") + t);
    const testing::CommandResult g = RunTool({kSshKeygen, "-q", "-t", t, "-N", "", "-C", "theirs@host", "-f", path});
    ASSERT_EQ(g.exit_code, 0) << g.output;
    std::string comment;
    ASSERT_OK_AND_ASSIGN(PrivateKey key, ReadPrivateKeyFile(path, &comment));
    EXPECT_EQ(comment, "theirs@host");
    ASSERT_OK_AND_ASSIGN(PublicKey pub, ReadPublicKeyFile(path + ".pub"));
    EXPECT_EQ(key.public_key(), pub);
    const testing::CommandResult l = RunTool({kSshKeygen, "-l", "-f", path + ".pub"});
    EXPECT_THAT(l.output, HasSubstr(" " + pub.Fingerprint() + " "));
    // And what we sign with their key, they verify (via a certificate).
    PrivateKeySigner signer(std::move(key));
    CertificateFields f;
    f.serial = 5;
    f.key_id = "k";
    f.principals = {"p"};
    f.valid_after = 1;
    f.valid_before = kValidForever;
    ASSERT_OK_AND_ASSIGN(Certificate cert, IssueCertificate(pub, f, signer));
    const std::string cert_path = path + "-cert.pub";
    WriteFileOrDie(cert_path, cert.ToLine() + "\n");
    const testing::CommandResult show = RunTool({kSshKeygen, "-L", "-f", cert_path});
    EXPECT_EQ(show.output, FormatCertificate(cert, cert_path)) << show.output;
  }
}

// A KRL we write makes `ssh-keygen -Q` report exactly the revoked
// certificates; a KRL ssh-keygen writes parses and agrees with it.
TEST_F(InteropTest, KrlBothWays) {
  ASSERT_OK_AND_ASSIGN(PrivateKey ca_key, PrivateKey::Generate(KeyType::kEd25519));
  PrivateKeySigner ca(std::move(ca_key));
  const std::string ca_pub = dir_.Join("ca.pub");
  WriteFileOrDie(ca_pub, ca.public_key().ToLine("ca") + "\n");
  ASSERT_OK_AND_ASSIGN(PrivateKey other_key, PrivateKey::Generate(KeyType::kEd25519));
  PrivateKeySigner other_ca(std::move(other_key));

  struct Issued {
    std::string path;
    Certificate cert;
  };
  std::vector<Issued> certs;
  auto issue = [&](const Signer& by, uint64_t serial, const std::string& id) {
    ASSERT_OK_AND_ASSIGN(PrivateKey user, PrivateKey::Generate(KeyType::kEd25519));
    CertificateFields f;
    f.serial = serial;
    f.key_id = id;
    f.principals = {"root"};
    f.valid_after = 1;
    f.valid_before = kValidForever;
    ASSERT_OK_AND_ASSIGN(Certificate c, IssueCertificate(user.public_key(), f, by));
    const std::string path = dir_.Join("c" + std::to_string(certs.size()) + "-cert.pub");
    WriteFileOrDie(path, c.ToLine() + "\n");
    certs.push_back({path, std::move(c)});
  };
  for (uint64_t s = 1; s <= 12; ++s) issue(ca, s, "jitgate:req" + std::to_string(s) + ":bob");
  issue(ca, 100, "jitgate:revoked-id:bob");
  issue(other_ca, 2, "jitgate:req2:bob");       // same serial, other CA: not revoked
  issue(other_ca, 200, "jitgate:any-ca:bob");   // key id revoked for any CA

  Krl krl;
  krl.version = 1;
  krl.generated_date = 1700000000;
  krl.comment = "jitgate";
  ASSERT_OK(krl.RevokeSerial(ca.public_key(), 2));
  ASSERT_OK(krl.RevokeSerial(ca.public_key(), 7));
  ASSERT_OK(krl.RevokeSerialRange(ca.public_key(), 9, 11));
  ASSERT_OK(krl.RevokeKeyId(ca.public_key(), "jitgate:revoked-id:bob"));
  ASSERT_OK(krl.RevokeKeyId(std::nullopt, "jitgate:any-ca:bob"));
  const std::string krl_path = dir_.Join("krl");
  const Bytes enc = krl.Encode();
  WriteFileOrDie(krl_path, std::string(AsChars(enc)));

  for (const Issued& i : certs) {
    const bool want = krl.IsRevoked(i.cert);
    const testing::CommandResult q = RunTool({kSshKeygen, "-Q", "-f", krl_path, i.path});
    EXPECT_EQ(q.exit_code, want ? 1 : 0) << i.path << ": " << q.output;
    EXPECT_THAT(q.output, HasSubstr(want ? ": REVOKED" : ": ok")) << i.cert.fields().serial;
  }
  int revoked = 0;
  for (const Issued& i : certs) revoked += krl.IsRevoked(i.cert) ? 1 : 0;
  EXPECT_EQ(revoked, 7);  // serials 2, 7, 9, 10, 11, the id, the any-CA id

  // The other way: ssh-keygen -k writes a KRL (it picks bitmaps, ranges and
  // lists itself); we parse it and agree on every certificate.
  const std::string spec = dir_.Join("spec");
  WriteFileOrDie(spec, "serial: 2\nserial: 7\nserial: 9-11\nserial: 3\nserial: 5\nid: jitgate:revoked-id:bob\n");
  const std::string their_krl = dir_.Join("their.krl");
  const testing::CommandResult k = RunTool({kSshKeygen, "-k", "-f", their_krl, "-s", ca_pub, spec});
  ASSERT_EQ(k.exit_code, 0) << k.output;
  const std::string bytes = ReadFileOrDie(their_krl);
  ASSERT_OK_AND_ASSIGN(Krl theirs, Krl::Parse(AsBytes(bytes)));
  for (const Issued& i : certs) {
    const testing::CommandResult q = RunTool({kSshKeygen, "-Q", "-f", their_krl, i.path});
    EXPECT_EQ(theirs.IsRevoked(i.cert), q.exit_code == 1) << i.cert.fields().serial << " " << q.output;
  }
  ASSERT_EQ(theirs.cert_sections().size(), 1u);
  EXPECT_THAT(theirs.cert_sections().begin()->second.serials,
              ::testing::ElementsAre(::testing::Pair(2, 3), ::testing::Pair(5, 5), ::testing::Pair(7, 7),
                                     ::testing::Pair(9, 11)));
}

}  // namespace
}  // namespace jitgate::ca
