// The certificate commands: their pure parts (durations, revoke arguments,
// shell quoting, the certificate table and JSON) and the commands against a
// scripted broker (tests/testing/fake_broker.h) that issues real
// certificates. End-to-end runs with jitgated and sshd are in
// tests/integration/.
#include "cli/cert_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "ca/cert.h"
#include "ca/signer.h"
#include "ca/sshkey.h"
#include "cli/approver_format.h"
#include "cli/cert_format.h"
#include "cli/golden_testonly.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "tests/testing/fake_broker.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr uint64_t kNow = 1767225600;  // 2026-01-01 00:00:00 UTC

std::string ReadGolden(const std::string& name, const std::string& got) {
  return testonly::ReadGolden(JITGATE_CLI_TESTDATA, name, got);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

uint32_t ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0xffffffff;
  return st.st_mode & 07777;
}

std::string ReadAll(const std::string& path) {
  StatusOr<std::string> s = DefaultEnv()->ReadFileToString(path);
  return s.ok() ? *s : "(unreadable " + path + ")";
}

// --- durations ---------------------------------------------------------------

TEST(ParseDurationSecondsTest, Accepts) {
  struct Case {
    const char* text;
    int64_t want;
  } cases[] = {{"90s", 90},
               {"10m", 600},
               {"1h", 3600},
               {"1h30m", 5400},
               {"90", 90},
               {"1", 1},
               {"2d", 172800},
               {"1m30s", 90},
               {"2000ms", 2},
               {"0h5m", 300},
               {"4294967295", 4294967295}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    StatusOr<int64_t> got = ParseDurationSeconds(c.text, std::numeric_limits<uint32_t>::max());
    ASSERT_OK(got.status());
    EXPECT_EQ(*got, c.want);
  }
}

TEST(ParseDurationSecondsTest, RefusesWithAReason) {
  struct Case {
    const char* text;
    const char* why;
  } cases[] = {
      {"", "empty"},
      {"0", "at least 1s"},
      {"0s", "at least 1s"},
      {"-5m", "negative"},
      {"5x", "unknown unit"},
      {"1.5h", "fractions"},
      {"1500ms", "not whole seconds"},
      {"10m1h", "out of order"},
      {" 5m", "expected a digit"},
      {"5m ", "unknown unit"},
      {"4294967296", "at most"},
      {"50000d", "at most"},
      {"99999999999999999999", "too large"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(ParseDurationSeconds(c.text, std::numeric_limits<uint32_t>::max()).status(),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.why)));
  }
  EXPECT_THAT(ParseDurationSeconds("2h", 3600).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("at most 1h")));
}

TEST(ParseDurationSecondsTest, EscapesWhatWasTyped) {
  StatusOr<int64_t> got = ParseDurationSeconds("5\x1b[2J", 100);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), Not(HasSubstr("\x1b")));
  EXPECT_THAT(got.status().message(), HasSubstr("\\x1b"));
}

// --- revoke arguments ----------------------------------------------------------

TEST(ClassifyRevokeArgumentTest, SerialOrRequestId) {
  struct Case {
    int line;
    const char* arg;
    RevokeArgKind kind;
    uint64_t serial;  // 0: a request id
    const char* id;   // nullptr: an error
  } cases[] = {
      {__LINE__, "42", RevokeArgKind::kGuess, 42, ""},
      {__LINE__, "007", RevokeArgKind::kGuess, 7, ""},
      {__LINE__, "18446744073709551615", RevokeArgKind::kGuess, 18446744073709551615u, ""},
      // Does not fit a u64: read as a request id prefix.
      {__LINE__, "18446744073709551616", RevokeArgKind::kGuess, 0, "18446744073709551616"},
      {__LINE__, "123456789012345678901", RevokeArgKind::kGuess, 0, "123456789012345678901"},
      // Zero is no serial; "0000" is a valid id prefix, "0" is too short.
      {__LINE__, "0000", RevokeArgKind::kGuess, 0, "0000"},
      {__LINE__, "0", RevokeArgKind::kGuess, 0, nullptr},
      {__LINE__, "7f3a", RevokeArgKind::kGuess, 0, "7f3a"},
      {__LINE__, "7F3A9C02", RevokeArgKind::kGuess, 0, "7f3a9c02"},
      {__LINE__, "12345678", RevokeArgKind::kRequest, 0, "12345678"},
      {__LINE__, "42", RevokeArgKind::kRequest, 0, nullptr},
      {__LINE__, "42", RevokeArgKind::kSerial, 42, ""},
      {__LINE__, "7f3a", RevokeArgKind::kSerial, 0, nullptr},
      {__LINE__, "18446744073709551616", RevokeArgKind::kSerial, 0, nullptr},
      {__LINE__, "0", RevokeArgKind::kSerial, 0, nullptr},
      {__LINE__, "+42", RevokeArgKind::kGuess, 0, nullptr},
      {__LINE__, "7f3a-9c02", RevokeArgKind::kGuess, 0, nullptr},
      {__LINE__, "", RevokeArgKind::kGuess, 0, nullptr},
      {__LINE__, "abc", RevokeArgKind::kGuess, 0, nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << __FILE__ << ":" << c.line << " '" << c.arg << "'");
    StatusOr<RevokeTarget> t = ClassifyRevokeArgument(c.arg, c.kind);
    if (c.id == nullptr) {
      EXPECT_THAT(t.status(), StatusIs(StatusCode::kInvalidArgument, Not(IsEmpty())));
      continue;
    }
    ASSERT_OK(t.status());
    EXPECT_EQ(t->serial, c.serial);
    EXPECT_EQ(t->request_id, c.id);
  }
}

TEST(ClassifyRevokeArgumentTest, ErrorsNameTheExpectedForm) {
  EXPECT_THAT(ClassifyRevokeArgument("zz", RevokeArgKind::kGuess).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("neither a certificate serial nor a request id")));
  EXPECT_THAT(ClassifyRevokeArgument("7f3a", RevokeArgKind::kSerial).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("is not a certificate serial")));
  EXPECT_THAT(ClassifyRevokeArgument("\x1b[2J", RevokeArgKind::kGuess).status().message(),
              Not(HasSubstr("\x1b")));
}

// --- shell quoting and paths ---------------------------------------------------

TEST(ShellQuoteTest, QuotesOnlyWhatNeedsIt) {
  struct Case {
    const char* in;
    const char* want;
  } cases[] = {
      {"/home/alice/.ssh/jitgate/root@db1", "/home/alice/.ssh/jitgate/root@db1"},
      {"root@db1.example.com", "root@db1.example.com"},
      {"key,v=1:2%+_-", "key,v=1:2%+_-"},
      {"", "''"},
      {"/home/al ice/k", "'/home/al ice/k'"},
      {"~/k", "'~/k'"},
      {"$HOME/k", "'$HOME/k'"},
      {"a;rm -rf /", "'a;rm -rf /'"},
      {"it's", "'it'\\''s'"},
      {"/tmp/\xc3\xa9t\xc3\xa9", "'/tmp/\xc3\xa9t\xc3\xa9'"},
      {"a\x1b[31mb", "$'a\\x1b[31mb'"},
      {"new\nline", "$'new\\x0aline'"},
      {"it's\t\\", "$'it\\x27s\\x09\\x5c'"},
      {"bidi\xe2\x80\xae", "$'bidi\\xe2\\x80\\xae'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(ShellQuote(c.in), c.want);
    EXPECT_TRUE(IsPrintableText(ShellQuote(c.in)));
  }
}

// What bash makes of the quoted word is the word itself.
TEST(ShellQuoteTest, RoundTripsThroughBash) {
  if (::access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "no bash";
  TempDir dir;
  const std::string script = dir.Join("echo.sh");
  for (std::string s : {std::string("/home/al ice/it's"), std::string("a\x1b[31mb\n"),
                        std::string("$(touch /tmp/x)`id`"), std::string("q'\\\"*"),
                        std::string("\xc3\xa9\xe2\x80\xae\xff")}) {
    SCOPED_TRACE(EscapeForTerminal(s));
    ASSERT_OK(
        DefaultEnv()->WriteFileAtomically(script, AsBytes("printf %s " + ShellQuote(s)), 0600));
    FILE* p = ::popen(("/bin/bash " + script).c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    ASSERT_EQ(::pclose(p), 0);
    EXPECT_EQ(out, s);
  }
}

TEST(PathsTest, KeyAndCertificatePaths) {
  EXPECT_EQ(DefaultKeyPath("/home/alice", "root", "db1"), "/home/alice/.ssh/jitgate/root@db1");
  EXPECT_EQ(DefaultKeyPath("/home/alice/", "root", "db1"), "/home/alice/.ssh/jitgate/root@db1");
  EXPECT_EQ(CertPathForKey("/k/root@db1"), "/k/root@db1-cert.pub");
  EXPECT_EQ(CertPathForPublicKeyFile("/etc/ssh/ssh_host_ed25519_key.pub"),
            "/etc/ssh/ssh_host_ed25519_key-cert.pub");
  EXPECT_EQ(CertPathForPublicKeyFile("hostkey"), "hostkey-cert.pub");
  EXPECT_EQ(CertPathForPublicKeyFile(".pub"), ".pub-cert.pub");
}

TEST(IsSafeNameTest, LoginsAndHosts) {
  for (const char* ok :
       {"root", "db1", "db1.example.com", "alice@corp", "10.0.0.5", "::1", "a_b-c"}) {
    EXPECT_TRUE(IsSafeName(ok)) << ok;
  }
  for (const char* bad : {"", "-oProxyCommand=x", ".hidden", "..", "a/b", "a b", "a,b", "a\tb",
                          "a\x1b", "a\xe2\x80\xae"}) {
    EXPECT_FALSE(IsSafeName(bad)) << EscapeForTerminal(bad);
  }
  EXPECT_FALSE(IsSafeName(std::string(257, 'a')));
}

TEST(SplitListTest, CommasAndEmptyElements) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> v, SplitList("db1,db1.example.com", "principal"));
  EXPECT_THAT(v, ElementsAre("db1", "db1.example.com"));
  EXPECT_THAT(SplitList("db1,", "principal").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty principal")));
  EXPECT_FALSE(SplitList("", "principal").ok());
  EXPECT_FALSE(SplitList(",a", "principal").ok());
}

// --- the certificate table and JSON --------------------------------------------

std::vector<wire::CertInfo> SampleCerts() {
  wire::CertInfo user;
  user.serial = 42;
  user.kind = wire::CertKind::kUser;
  user.key_id = "jitgate:7f3a9c02:bob";
  user.principals = {"root"};
  user.valid_after = kNow - 60;
  user.valid_before = kNow + 600;
  user.fingerprint = "SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU";
  user.request_id = "7f3a9c02";
  user.issued_to = "alice";
  user.issued_at = kNow - 60;

  wire::CertInfo host;
  host.serial = 7;
  host.kind = wire::CertKind::kHost;
  host.key_id = "jitgate-host:db1";
  host.principals = {"db1", "db1.example.com"};
  host.valid_after = kNow - 86400;
  host.valid_before = kNow + 365 * 86400;
  host.fingerprint = "SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU";
  host.issued_to = "root";
  host.issued_at = kNow - 86400;

  wire::CertInfo revoked = user;
  revoked.serial = 41;
  revoked.key_id = "jitgate:7f3a9c01:bob";
  revoked.request_id = "7f3a9c01";
  revoked.revoked_at = kNow - 30;
  revoked.revoked_by = "carol";
  revoked.revoke_comment = "laptop stolen";

  wire::CertInfo expired = user;
  expired.serial = 40;
  expired.key_id = "jitgate:7f3a9c00:dave";
  expired.request_id = "7f3a9c00";
  expired.valid_before = kNow - 1;

  // A key id and principal that try to take over the terminal.
  wire::CertInfo hostile = user;
  hostile.serial = 18446744073709551615u;
  hostile.key_id =
      "evil\x1b]0;pwned\x07\r\xe2\x80\xae"
      "exe.txt \xff";
  hostile.principals = {"ro\not", "db\x1b[2J"};
  hostile.request_id = "9d2kq7xm";
  hostile.valid_after = kNow + 60;
  return {user, host, revoked, expired, hostile};
}

TEST(FormatCertStateTest, EachState) {
  std::vector<wire::CertInfo> c = SampleCerts();
  EXPECT_EQ(FormatCertState(c[0], kNow, true), "until 00:10:00");
  EXPECT_EQ(FormatCertState(c[1], kNow, true), "until 2027-01-01 00:00");
  EXPECT_EQ(FormatCertState(c[2], kNow, true), "revoked by carol");
  EXPECT_EQ(FormatCertState(c[3], kNow, true), "expired");
  EXPECT_EQ(FormatCertState(c[4], kNow, true), "not yet valid");
  wire::CertInfo forever = c[1];
  forever.valid_before = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(FormatCertState(forever, kNow, true), "forever");
  wire::CertInfo anonymous = c[2];
  anonymous.revoked_by = "";
  EXPECT_EQ(FormatCertState(anonymous, kNow, true), "revoked");
  // valid_before itself is already outside (sshd's half-open interval), and
  // a revocation is shown even after expiry.
  EXPECT_EQ(FormatCertState(c[0], c[0].valid_before, true), "expired");
  EXPECT_EQ(FormatCertState(c[2], c[2].valid_before + 1, true), "revoked by carol");
  // Tomorrow, even if less than a day away, shows its date.
  wire::CertInfo tomorrow = c[0];
  tomorrow.valid_before = kNow + 86400 + 60;
  EXPECT_EQ(FormatCertState(tomorrow, kNow + 3600, true), "until 2026-01-02 00:01");
  EXPECT_EQ(FormatCertState(c[0], kNow - 60, true), "until 2026-01-01 00:10");
}

TEST(GoldenOutputTest, CertTable) {
  std::string got = FormatCertTable(SampleCerts(), kNow, /*utc=*/true);
  EXPECT_THAT(got, Not(HasSubstr("\x1b")));
  EXPECT_THAT(got, Not(HasSubstr("\xe2\x80\xae")));
  EXPECT_EQ(got, ReadGolden("certs.out.ok", got));
}

TEST(CertToJsonTest, NumbersAndEscapedStrings) {
  std::vector<wire::CertInfo> c = SampleCerts();
  nlohmann::json j = CertToJson(c[2]);
  EXPECT_TRUE(j["serial"].is_number_unsigned());
  EXPECT_EQ(j["serial"], 41u);
  EXPECT_EQ(j["kind"], "user");
  EXPECT_EQ(j["key_id"], "jitgate:7f3a9c01:bob");
  EXPECT_EQ(j["principals"], nlohmann::json::array({"root"}));
  EXPECT_EQ(j["valid_after"], kNow - 60);
  EXPECT_EQ(j["valid_before"], kNow + 600);
  EXPECT_EQ(j["fingerprint"], "SHA256:uvRyMR0D1bSfHw1fJ3f5Qb2wYbzVXQYUbOUm1U+VAnU");
  EXPECT_EQ(j["request"], "7f3a9c01");
  EXPECT_EQ(j["issued_to"], "alice");
  EXPECT_EQ(j["issued_at"], kNow - 60);
  EXPECT_EQ(j["revoked_at"], kNow - 30);
  EXPECT_EQ(j["revoked_by"], "carol");
  EXPECT_EQ(j["revoke_comment"], "laptop stolen");
  EXPECT_EQ(CertToJson(c[1])["kind"], "host");
  EXPECT_EQ(CertToJson(c[0])["revoked_at"], 0u);

  // The serializer escapes control characters and replaces invalid UTF-8.
  std::string dumped = DumpJson(CertToJson(c[4]));
  EXPECT_THAT(dumped, HasSubstr("\"serial\":18446744073709551615"));
  EXPECT_THAT(dumped, HasSubstr("evil\\u001b]0;pwned\\u0007\\r"));
  EXPECT_THAT(dumped, Not(HasSubstr("\x1b")));
  EXPECT_THAT(dumped, Not(HasSubstr("\xff")));
  EXPECT_TRUE(nlohmann::json::accept(dumped));
}

TEST(FormatRevokedLineTest, Escapes) {
  std::vector<wire::CertInfo> c = SampleCerts();
  EXPECT_EQ(FormatRevokedLine(c[0]),
            "revoked certificate 42 (user, key id \"jitgate:7f3a9c02:bob\", principals root)");
  EXPECT_THAT(FormatRevokedLine(c[4]), Not(HasSubstr("\x1b")));
}

TEST(DescribeCertErrorTest, Messages) {
  EXPECT_EQ(DescribeCertError({wire::ErrorCode::kNoCa, "no SSH CA is configured (ca: missing)"},
                              CertAction::kRequest, ""),
            "no SSH CA is configured (ca: missing)");
  EXPECT_EQ(DescribeCertError({wire::ErrorCode::kNoCa, ""}, CertAction::kList, ""),
            "the broker has no SSH certificate authority configured");
  EXPECT_EQ(DescribeCertError({wire::ErrorCode::kNotFound, "x"}, CertAction::kRevoke, "serial 9"),
            "no certificate or request matches serial 9 (or you may not see it)");
  EXPECT_EQ(DescribeCertError({wire::ErrorCode::kPermissionDenied, "not an admin"},
                              CertAction::kSignHost, ""),
            "you may not have host keys signed (not an admin)");
  EXPECT_THAT(DescribeCertError({wire::ErrorCode::kInternal, "boom\x1b[2J"}, CertAction::kList, ""),
              Not(HasSubstr("\x1b")));
}

// --- commands against files and a scripted broker -------------------------------

class CertCommandsTest : public ::testing::Test {
 protected:
  CertIo Io() {
    CertIo io{&out_, &err_, RealClock()};
    io.user = "alice";
    io.home = dir_.path();
    io.tty = "/dev/pts/3";
    io.ssh_auth_sock = ssh_auth_sock_;
    io.run = run_;
    io.utc = true;
    return io;
  }
  std::vector<std::string> WithSocket(std::vector<std::string> args, const std::string& socket) {
    args.push_back("--socket");
    args.push_back(socket);
    return args;
  }
  // No file at all in dir_ except what is listed.
  std::vector<std::string> Files(const std::string& dir) {
    StatusOr<std::vector<std::string>> names = DefaultEnv()->ListDir(dir);
    return names.ok() ? *names : std::vector<std::string>{"(cannot list)"};
  }

  TempDir dir_;
  std::ostringstream out_, err_;
  const char* ssh_auth_sock_ = nullptr;
  std::function<StatusOr<int>(const std::vector<std::string>&)> run_;
};

ca::PrivateKey NewKey() {
  StatusOr<ca::PrivateKey> k = ca::PrivateKey::Generate(ca::KeyType::kEd25519);
  if (!k.ok()) std::abort();
  return *std::move(k);
}

// How the scripted CA may misbehave.
using Tamper = std::function<void(ca::PublicKey* key, ca::CertificateFields* f)>;

// SubmitRequest -> RequestAccepted -> Decision(approved) carrying a
// certificate for the submitted key, issued by ca_key.
FakeBroker::Script IssueScript(std::shared_ptr<ca::Signer> signer, Tamper tamper = nullptr) {
  return [signer, tamper](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    std::string id = c.broker().NextId();
    RETURN_IF_ERROR(c.Send(FakeBroker::AcceptedFor(id, req.fields, "1 of oncall", 300)));
    RETURN_IF_ERROR(c.Send(wire::StatusUpdate{0, 1, 299, "notified bob, carol"}));
    ASSIGN_OR_RETURN(ca::PublicKey key, ca::PublicKey::FromLine(req.fields.public_key));
    ca::CertificateFields f;
    f.serial = 1234;
    f.type = ca::CertType::kUser;
    f.key_id = "jitgate:" + id + ":bob";
    f.principals = {req.fields.target_user};
    uint64_t now = uint64_t(RealClock()->NowUnixNanos() / 1'000'000'000);
    f.valid_after = now - 60;
    f.valid_before = now + (req.fields.ttl_seconds != 0 ? req.fields.ttl_seconds : 900);
    f.extensions = {ca::CertOption::Flag("permit-pty")};
    if (tamper) tamper(&key, &f);
    ASSIGN_OR_RETURN(ca::Certificate cert, ca::IssueCertificate(key, f, *signer));
    wire::Decision d = FakeBroker::DecisionFor(id, req.fields, wire::Outcome::kApproved,
                                               "request " + id + " approved by bob");
    d.certificate = cert.ToLine();
    RETURN_IF_ERROR(c.Send(d));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

std::shared_ptr<ca::Signer> NewCa() { return std::make_shared<ca::PrivateKeySigner>(NewKey()); }

TEST_F(CertCommandsTest, RequestWithUnreachableBrokerWritesNothing) {
  const std::string out = dir_.Join("key");
  int rc = RunRequestCertificate({"--host", "db1", "--login", "root", "--out", out, "--socket",
                                  dir_.Join("no-such.sock"), "--timeout", "5s"},
                                 Io());
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(err_.str(),
              StartsWith("jitgate: broker unreachable at " + dir_.Join("no-such.sock")));
  EXPECT_EQ(err_.str().find('\n'), err_.str().size() - 1) << "one line";
  EXPECT_EQ(out_.str(), "");
  EXPECT_FALSE(Exists(out));
  EXPECT_FALSE(Exists(out + "-cert.pub"));
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestApprovedWritesKeyAndCertificate) {
  std::shared_ptr<ca::Signer> ca_key = NewCa();
  FakeBroker broker(IssueScript(ca_key));
  int rc = RunRequestCertificate(
      WithSocket({"--host", "db1", "--login", "root", "--reason", "incident 4711", "--ttl", "10m",
                  "--source-address", "10.0.0.5/32,192.168.0.0/16"},
                 broker.socket_path()),
      Io());
  ASSERT_EQ(rc, 0) << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());

  // What was asked for.
  std::vector<wire::SubmitRequest> sent = broker.Submitted();
  ASSERT_EQ(sent.size(), 1u);
  const wire::RequestFields& f = sent[0].fields;
  EXPECT_EQ(f.service, "ssh-cert");
  EXPECT_EQ(f.user, "alice");
  EXPECT_EQ(f.target_user, "root");
  EXPECT_EQ(f.host, "db1");
  EXPECT_EQ(f.remote_addr, "10.0.0.5/32,192.168.0.0/16");
  EXPECT_EQ(f.tty, "/dev/pts/3");
  EXPECT_EQ(f.command, "");
  EXPECT_EQ(f.cwd, "");
  EXPECT_EQ(f.reason, "incident 4711");
  EXPECT_EQ(f.ttl_seconds, 600u);
  EXPECT_EQ(sent[0].timeout_seconds, 300u);
  EXPECT_FALSE(sent[0].can_prompt);
  ASSERT_OK_AND_ASSIGN(ca::PublicKey sent_key, ca::PublicKey::FromLine(f.public_key));
  EXPECT_EQ(sent_key.ToLine(), f.public_key) << "no comment";
  EXPECT_EQ(sent_key.type(), ca::KeyType::kEd25519);

  // What was written: the key for exactly that public key, and its certificate.
  const std::string key_path = dir_.Join(".ssh/jitgate/root@db1");
  const std::string cert_path = key_path + "-cert.pub";
  EXPECT_EQ(ModeOf(dir_.Join(".ssh/jitgate")), 0700u);
  EXPECT_EQ(ModeOf(key_path), 0600u);
  EXPECT_EQ(ModeOf(cert_path), 0644u);
  std::string comment;
  ASSERT_OK_AND_ASSIGN(ca::PrivateKey written, ca::ReadPrivateKeyFile(key_path, &comment));
  EXPECT_EQ(written.public_key(), sent_key);
  EXPECT_EQ(comment, "jitgate:7f3a9c02");
  std::string cert_text = ReadAll(cert_path);
  ASSERT_THAT(cert_text, EndsWith("\n"));
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, ca::Certificate::FromLine(cert_text));
  EXPECT_EQ(cert.key(), sent_key);
  EXPECT_EQ(cert.signature_key(), ca_key->public_key());
  EXPECT_THAT(cert.fields().principals, ElementsAre("root"));
  EXPECT_THAT(Files(dir_.Join(".ssh/jitgate")), ElementsAre("root@db1", "root@db1-cert.pub"));

  // What the user sees.
  EXPECT_EQ(out_.str(),
            "request 7f3a9c02 approved by bob\n"
            "certificate serial 1234, valid " +
                ca::FormatValidity(cert.fields().valid_after, cert.fields().valid_before, true) +
                "\n"
                "key " +
                key_path + ", certificate " + cert_path +
                "\n"
                "ssh -i " +
                ShellQuote(key_path) + " root@db1\n");
  EXPECT_EQ(err_.str(),
            "jitgate: request 7f3a9c02 sent to approvers (1 of oncall); waiting up to "
            "5m\u2026\n"
            "jitgate: notified bob, carol\n");
}

TEST_F(CertCommandsTest, RequestQuotesAnOddOutPathInTheSshLine) {
  FakeBroker broker(IssueScript(NewCa()));
  const std::string key_path = dir_.Join("my key's");
  ASSERT_EQ(
      RunRequestCertificate(
          WithSocket({"--host", "db1", "--login", "root", "--out", key_path}, broker.socket_path()),
          Io()),
      0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("\nssh -i " + ShellQuote(key_path) + " root@db1\n"));
  EXPECT_THAT(out_.str(), HasSubstr("'\\''s'"));
  EXPECT_TRUE(Exists(key_path));
  EXPECT_TRUE(Exists(key_path + "-cert.pub"));
}

TEST_F(CertCommandsTest, RequestRefusesACertificateForAnotherKey) {
  FakeBroker broker(IssueScript(
      NewCa(), [](ca::PublicKey* key, ca::CertificateFields*) { *key = NewKey().public_key(); }));
  const std::string out = dir_.Join("key");
  EXPECT_EQ(RunRequestCertificate(WithSocket({"--host", "db1", "--login", "root", "--out", out},
                                             broker.socket_path()),
                                  Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("jitgate: the certificate for request 7f3a9c02 is for another "
                                    "key than the one this request sent; no key was written\n"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestRefusesACertificateWithoutTheLogin) {
  FakeBroker broker(IssueScript(NewCa(), [](ca::PublicKey*, ca::CertificateFields* f) {
    f->principals = {"deploy", "rooted"};
  }));
  const std::string out = dir_.Join("key");
  EXPECT_EQ(RunRequestCertificate(WithSocket({"--host", "db1", "--login", "root", "--out", out},
                                             broker.socket_path()),
                                  Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("does not name login root as a principal; no key was written"));
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestRefusesAHostCertificate) {
  FakeBroker broker(IssueScript(
      NewCa(), [](ca::PublicKey*, ca::CertificateFields* f) { f->type = ca::CertType::kHost; }));
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", dir_.Join("key")},
                           broker.socket_path()),
                Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("is not a user certificate"));
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestDeniedWritesNothing) {
  FakeBroker broker(FakeBroker::Deny("request 7f3a9c02 denied by carol: not during the freeze"));
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root"}, broker.socket_path()), Io()),
            1);
  EXPECT_THAT(err_.str(),
              EndsWith("\njitgate: request 7f3a9c02 denied by carol: not during the freeze\n"));
  EXPECT_EQ(out_.str(), "");
  // The default directory may exist; no key is in it.
  EXPECT_THAT(Files(dir_.Join(".ssh/jitgate")), IsEmpty());
}

TEST_F(CertCommandsTest, RequestDeniedWithABareMessageNamesTheRequest) {
  FakeBroker broker(FakeBroker::Deny("not now"));
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root"}, broker.socket_path()), Io()),
            1);
  EXPECT_THAT(err_.str(), EndsWith("\njitgate: request 7f3a9c02 denied: not now\n"));
}

TEST_F(CertCommandsTest, RequestApprovedWithoutCertificateWritesNothing) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", dir_.Join("key")},
                           broker.socket_path()),
                Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("jitgate: request 7f3a9c02 was approved, but the broker sent "
                                    "no certificate; no key was written\n"));
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestWithoutCaShowsTheBrokersMessage) {
  FakeBroker broker(FakeBroker::SendError(wire::ErrorCode::kNoCa, "this broker has no SSH CA"));
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", dir_.Join("key")},
                           broker.socket_path()),
                Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("this broker has no SSH CA"));
  EXPECT_THAT(err_.str(), StartsWith("jitgate: broker refused"));
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestAsksForAReasonWhenTheBrokerWantsOne) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(true, "Why?\x1b[2J "));
  std::string asked;
  CertIo io = Io();
  io.can_prompt = true;
  io.ask_line = [&asked](const std::string& prompt) -> std::optional<std::string> {
    asked = prompt;
    return std::string("incident 4711");
  };
  // The canned script approves without a certificate: exit 1, but the reason went out.
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", dir_.Join("key")},
                           broker.socket_path()),
                io),
            1);
  EXPECT_EQ(asked, "Why?\\x1b[2J ");
  EXPECT_TRUE(broker.Got<wire::ProvideReason>());
}

TEST_F(CertCommandsTest, RequestWithAgentRunsSshAddUntilExpiry) {
  std::vector<std::string> ran;
  ssh_auth_sock_ = "/tmp/agent.sock";
  run_ = [&ran](const std::vector<std::string>& argv) -> StatusOr<int> {
    ran = argv;
    return 0;
  };
  FakeBroker broker(IssueScript(NewCa()));
  const std::string out = dir_.Join("key");
  ASSERT_EQ(RunRequestCertificate(WithSocket({"--host", "db1", "--login", "root", "--ttl", "10m",
                                              "--out", out, "--agent"},
                                             broker.socket_path()),
                                  Io()),
            0)
      << err_.str();
  ASSERT_EQ(ran.size(), 4u);
  EXPECT_EQ(ran[0], "ssh-add");
  EXPECT_EQ(ran[1], "-t");
  int seconds = std::atoi(ran[2].c_str());
  EXPECT_GE(seconds, 590);
  EXPECT_LE(seconds, 600);
  EXPECT_EQ(ran[3], out);
}

TEST_F(CertCommandsTest, RequestWithAgentButSshAddFailing) {
  ssh_auth_sock_ = "/tmp/agent.sock";
  run_ = [](const std::vector<std::string>&) -> StatusOr<int> { return 2; };
  FakeBroker broker(IssueScript(NewCa()));
  const std::string out = dir_.Join("key");
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", out, "--agent"},
                           broker.socket_path()),
                Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("jitgate: ssh-add failed (exit status 2); the key and "
                                    "certificate are in " +
                                    out + "\n"));
  EXPECT_TRUE(Exists(out));
}

TEST_F(CertCommandsTest, RequestWithAgentNeedsAnAgentBeforeAsking) {
  FakeBroker broker(IssueScript(NewCa()));
  EXPECT_EQ(
      RunRequestCertificate(
          WithSocket({"--host", "db1", "--login", "root", "--agent"}, broker.socket_path()), Io()),
      1);
  EXPECT_THAT(err_.str(), HasSubstr("SSH_AUTH_SOCK is not set; nothing was requested"));
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(CertCommandsTest, RequestUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--login", "root"}, "missing --host HOST"},
      {{"--host", "db1"}, "missing --login LOGIN"},
      {{"--host", "db1", "--login", "-oProxyCommand=sh"}, "is not a login name"},
      {{"--host", "../etc", "--login", "root"}, "is not a host name"},
      {{"--host", "db1", "--login", "root", "--ttl", "10x"}, "--ttl: bad duration"},
      {{"--host", "db1", "--login", "root", "--timeout", "0"}, "--timeout: bad duration"},
      {{"--host", "db1", "--login", "root", "--source-address", std::string(257, '1')},
       "--source-address is 257 bytes; the limit is 256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    err_.str("");
    EXPECT_EQ(RunRequestCertificate(c.args, Io()), 2);
    EXPECT_THAT(err_.str(), HasSubstr(c.message));
  }
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

// The broker's CA judges the addresses (a host name is refused before the
// request is filed); its refusal is one line and exit 1.
TEST_F(CertCommandsTest, RequestPassesTheSourceAddressToTheBroker) {
  FakeBroker broker(
      FakeBroker::SendError(wire::ErrorCode::kInvalidRequest,
                            "source address \"db1.lan\" is not an IP address or CIDR block"));
  const std::string out = dir_.Join("key");
  EXPECT_EQ(RunRequestCertificate(WithSocket({"--host", "db1", "--login", "root", "--out", out,
                                              "--source-address", "db1.lan"},
                                             broker.socket_path()),
                                  Io()),
            1);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_EQ(broker.Submitted()[0].fields.remote_addr, "db1.lan");
  EXPECT_EQ(err_.str(),
            "jitgate: broker refused the request (invalid_request): source address \"db1.lan\" "
            "is not an IP address or CIDR block\n");
  EXPECT_THAT(Files(dir_.path()), IsEmpty());
}

TEST_F(CertCommandsTest, RequestRefusesAMissingOutDirectoryBeforeAsking) {
  FakeBroker broker(IssueScript(NewCa()));
  EXPECT_EQ(RunRequestCertificate(
                WithSocket({"--host", "db1", "--login", "root", "--out", dir_.Join("no/key")},
                           broker.socket_path()),
                Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("nothing was requested"));
  EXPECT_EQ(broker.connections(), 0);
}

// --- cert show -----------------------------------------------------------------

StatusOr<ca::Certificate> SampleUserCertificate(std::string key_id) {
  std::shared_ptr<ca::Signer> ca_key = NewCa();
  ca::CertificateFields f;
  f.serial = 1234;
  f.type = ca::CertType::kUser;
  f.key_id = std::move(key_id);
  f.principals = {"root"};
  f.valid_after = kNow;
  f.valid_before = kNow + 600;
  f.critical_options = {ca::CertOption::WithValue("source-address", "10.0.0.5/32")};
  f.extensions = {ca::CertOption::Flag("permit-pty")};
  return ca::IssueCertificate(NewKey().public_key(), f, *ca_key);
}

TEST_F(CertCommandsTest, CertShowPrintsLikeSshKeygen) {
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, SampleUserCertificate("jitgate:7f3a9c02:bob"));
  const std::string path = dir_.Join("root@db1-cert.pub");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(path, AsBytes(cert.ToLine("c") + "\n"), 0644));
  EXPECT_EQ(RunCert({"show", path, "--utc"}, Io()), 0) << err_.str();
  EXPECT_EQ(out_.str(), ca::FormatCertificate(cert, path, /*utc=*/true));
  EXPECT_THAT(out_.str(),
              HasSubstr("        Valid: from 2026-01-01T00:00:00 to 2026-01-01T00:10:00\n"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CertCommandsTest, CertShowEscapesAHostileKeyId) {
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, SampleUserCertificate("bob\xe2\x80\xae"
                                                                   "exe.txt\x1b]0;x\x07"));
  const std::string path = dir_.Join("hostile-cert.pub");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(path, AsBytes(cert.ToLine() + "\n"), 0644));
  EXPECT_EQ(RunCert({"show", path}, Io()), 0) << err_.str();
  EXPECT_THAT(out_.str(), Not(HasSubstr("\x1b")));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\xe2\x80\xae")));
  EXPECT_THAT(out_.str(), HasSubstr("Key ID: \"bob\\u{202e}exe.txt\\x1b]0;x\\x07\""));
}

TEST_F(CertCommandsTest, CertShowRefusesWhatIsNotACertificate) {
  const std::string pub = dir_.Join("id.pub");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(
      pub, AsBytes(NewKey().public_key().ToLine("me") + "\n"), 0644));
  EXPECT_EQ(RunCert({"show", pub}, Io()), 1);
  EXPECT_EQ(err_.str(), "jitgate: " + pub + " is a public key, not a certificate\n");

  err_.str("");
  const std::string junk = dir_.Join("junk");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(junk, AsBytes("hello\x1b[2J\n"), 0644));
  EXPECT_EQ(RunCert({"show", junk}, Io()), 1);
  EXPECT_THAT(err_.str(), StartsWith("jitgate: " + junk + " is not an OpenSSH certificate: "));
  EXPECT_THAT(err_.str(), Not(HasSubstr("\x1b")));

  err_.str("");
  EXPECT_EQ(RunCert({"show", dir_.Join("missing")}, Io()), 1);
  EXPECT_THAT(err_.str(), HasSubstr("missing"));
  EXPECT_EQ(out_.str(), "");

  EXPECT_EQ(RunCert({"show"}, Io()), 2);
  EXPECT_EQ(RunCert({}, Io()), 2);
  EXPECT_EQ(RunCert({"frobnicate"}, Io()), 2);
}

std::string TestdataDir() {
  const char* root = std::getenv("JITGATE_TESTDATA");
  if (root == nullptr) return "";
  std::string dir = std::string(root) + "/openssh";
  return ::access(dir.c_str(), R_OK) == 0 ? dir : "";
}

// ssh-keygen -L's output for the file, with TZ=UTC, or "" if it cannot run.
std::string SshKeygenL(const std::string& path) {
  if (::access("/usr/bin/ssh-keygen", X_OK) != 0) return "";
  FILE* p =
      ::popen(("TZ=UTC /usr/bin/ssh-keygen -L -f " + ShellQuote(path) + " 2>&1").c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  return ::pclose(p) == 0 ? out : "";
}

TEST_F(CertCommandsTest, CertShowOpensshTestdata) {
  const std::string td = TestdataDir();
  if (td.empty()) GTEST_SKIP() << "no $JITGATE_TESTDATA/openssh";
  for (const char* rel :
       {"sshkey/rsa_1_sha512-cert.pub", "sshkey/ed25519_1-cert.pub", "sshkey/ecdsa_1-cert.pub",
        "authopt/force_command.cert", "authopt/host.cert"}) {
    SCOPED_TRACE(rel);
    const std::string path = td + "/" + rel;
    out_.str("");
    err_.str("");
    EXPECT_EQ(RunCert({"show", path, "--utc"}, Io()), 0) << err_.str();
    EXPECT_THAT(out_.str(), StartsWith(path + ":\n        Type: "));
    std::string keygen = SshKeygenL(path);
    if (!keygen.empty()) {
      EXPECT_EQ(out_.str(), keygen);
    }
  }
  out_.str("");
  ASSERT_EQ(RunCert({"show", td + "/sshkey/rsa_1_sha512-cert.pub", "--utc"}, Io()), 0);
  EXPECT_THAT(out_.str(), HasSubstr("        Key ID: \"hugo\"\n"));
  EXPECT_THAT(out_.str(), HasSubstr("                force-command /bin/ls\n"));

  // A key, and a certificate of a type jitgate does not read.
  err_.str("");
  EXPECT_EQ(RunCert({"show", td + "/sshkey/ed25519_1.pub"}, Io()), 1);
  EXPECT_THAT(err_.str(), HasSubstr("is a public key, not a certificate"));
  err_.str("");
  EXPECT_EQ(RunCert({"show", td + "/sshkey/mldsa44_ed25519_1-cert.pub"}, Io()), 1);
  EXPECT_THAT(err_.str(), HasSubstr("is not an OpenSSH certificate: "));
}

// --- certs, revoke, ca against a scripted broker -------------------------------

template <typename T>
StatusOr<T> Expect(StatusOr<wire::Message> m) {
  if (!m.ok()) return m.status();
  if (T* v = std::get_if<T>(&*m)) return std::move(*v);
  return FailedPreconditionError("unexpected " + wire::MessageTypeName(wire::TypeOf(*m)));
}

// Handshake, one command of type Ask, then reply.
template <typename Ask>
FakeBroker::Script AnswerScript(wire::Message reply) {
  return [reply](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<Ask>(c.Read()).status());
    RETURN_IF_ERROR(c.Send(reply));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

template <typename T>
std::optional<T> FirstReceived(const FakeBroker& broker) {
  for (const wire::Message& m : broker.Received()) {
    if (const T* v = std::get_if<T>(&m)) return *v;
  }
  return std::nullopt;
}

TEST_F(CertCommandsTest, CertsTableAndFilter) {
  wire::CertList list;
  list.items = {SampleCerts()[0], SampleCerts()[1]};
  list.more = true;
  FakeBroker broker(AnswerScript<wire::ListCerts>(list));
  ASSERT_EQ(RunCerts(WithSocket({}, broker.socket_path()), Io()), 0) << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  std::optional<wire::ListCerts> asked = FirstReceived<wire::ListCerts>(broker);
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(asked->filter, wire::kValidCerts);
  EXPECT_EQ(asked->limit, 0);
  EXPECT_THAT(out_.str(), StartsWith("SERIAL  KIND  PRINCIPALS"));
  EXPECT_THAT(out_.str(), HasSubstr("\n42 "));
  EXPECT_THAT(out_.str(), EndsWith("(more certificates not shown; see --limit)\n"));
}

TEST_F(CertCommandsTest, CertsAllJson) {
  wire::CertList list;
  list.items = SampleCerts();
  FakeBroker broker(AnswerScript<wire::ListCerts>(list));
  ASSERT_EQ(RunCerts(WithSocket({"--all", "--limit", "20", "--json"}, broker.socket_path()), Io()),
            0)
      << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  std::optional<wire::ListCerts> asked = FirstReceived<wire::ListCerts>(broker);
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(asked->filter, wire::ListFilter::kAll);
  EXPECT_EQ(asked->limit, 20);
  ASSERT_THAT(out_.str(), EndsWith("}\n"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\x1b")));
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["more"], false);
  ASSERT_EQ(j["certs"].size(), 5u);
  EXPECT_EQ(j["certs"][0], CertToJson(SampleCerts()[0]));
}

TEST_F(CertCommandsTest, CertsEmptyAndErrors) {
  {
    FakeBroker broker(AnswerScript<wire::ListCerts>(wire::CertList{}));
    ASSERT_EQ(RunCerts(WithSocket({}, broker.socket_path()), Io()), 0);
    EXPECT_EQ(out_.str(), "no valid certificates\n");
  }
  {
    FakeBroker broker(
        AnswerScript<wire::ListCerts>(wire::Error{wire::ErrorCode::kNoCa, "no CA here"}));
    EXPECT_EQ(RunCerts(WithSocket({}, broker.socket_path()), Io()), 1);
    EXPECT_EQ(err_.str(), "jitgate: no CA here\n");
  }
  err_.str("");
  EXPECT_EQ(RunCerts({"--socket", dir_.Join("none.sock")}, Io()), 1);
  EXPECT_THAT(err_.str(), StartsWith("jitgate: broker unreachable at "));
  EXPECT_EQ(RunCerts({"--limit", "70000"}, Io()), 2);
}

TEST_F(CertCommandsTest, RevokeBySerial) {
  wire::CertList revoked;
  wire::CertInfo c = SampleCerts()[0];
  c.revoked_at = kNow;
  c.revoked_by = "carol";
  revoked.items = {c};
  FakeBroker broker(AnswerScript<wire::Revoke>(revoked));
  ASSERT_EQ(RunRevoke(WithSocket({"42", "--comment", "laptop stolen"}, broker.socket_path()), Io()),
            0)
      << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  std::optional<wire::Revoke> sent = FirstReceived<wire::Revoke>(broker);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(*sent, (wire::Revoke{42, "", "laptop stolen"}));
  EXPECT_EQ(out_.str(),
            "revoked certificate 42 (user, key id \"jitgate:7f3a9c02:bob\", principals root)\n");
}

TEST_F(CertCommandsTest, RevokeByRequestId) {
  wire::CertList revoked;
  revoked.items = {SampleCerts()[0], SampleCerts()[2]};
  FakeBroker broker(AnswerScript<wire::Revoke>(revoked));
  ASSERT_EQ(RunRevoke(WithSocket({"7F3A"}, broker.socket_path()), Io()), 0) << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_EQ(FirstReceived<wire::Revoke>(broker), (wire::Revoke{0, "7f3a", ""}));
  EXPECT_THAT(out_.str(), HasSubstr("revoked certificate 41 "));
}

TEST_F(CertCommandsTest, RevokeAllDigitRequestIdWithFlag) {
  FakeBroker broker(AnswerScript<wire::Revoke>(wire::CertList{}));
  ASSERT_EQ(RunRevoke(WithSocket({"12345678", "--request"}, broker.socket_path()), Io()), 0);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_EQ(FirstReceived<wire::Revoke>(broker), (wire::Revoke{0, "12345678", ""}));
  EXPECT_EQ(out_.str(),
            "nothing to revoke for request 12345678 (no certificate, or all already revoked)\n");
}

TEST_F(CertCommandsTest, RevokeErrors) {
  {
    FakeBroker broker(
        AnswerScript<wire::Revoke>(wire::Error{wire::ErrorCode::kNotFound, "no such serial"}));
    EXPECT_EQ(RunRevoke(WithSocket({"99"}, broker.socket_path()), Io()), 1);
    EXPECT_EQ(err_.str(),
              "jitgate: no certificate or request matches serial 99 (or you may not see it)\n");
  }
  {
    err_.str("");
    FakeBroker broker(AnswerScript<wire::Revoke>(
        wire::Error{wire::ErrorCode::kPermissionDenied, "only admins revoke"}));
    EXPECT_EQ(RunRevoke(WithSocket({"99"}, broker.socket_path()), Io()), 1);
    EXPECT_EQ(err_.str(), "jitgate: you may not revoke certificates (only admins revoke)\n");
  }
  EXPECT_EQ(RunRevoke({}, Io()), 2);
  EXPECT_EQ(RunRevoke({"zz"}, Io()), 2);
  EXPECT_EQ(RunRevoke({"42", "--serial", "--request"}, Io()), 2);
  EXPECT_EQ(RunRevoke({"7f3a", "--serial"}, Io()), 2);
}

TEST_F(CertCommandsTest, CaPubkeyAndKnownHosts) {
  ca::PrivateKey ca_key = NewKey();
  const std::string line = ca_key.public_key().ToLine();
  wire::CaInfo info{line, 3600, 4, "/var/lib/jitgate/ca.krl"};
  {
    FakeBroker broker(AnswerScript<wire::GetCaInfo>(info));
    ASSERT_EQ(RunCa(WithSocket({"pubkey"}, broker.socket_path()), Io()), 0) << err_.str();
    EXPECT_EQ(out_.str(), line + "\n");
  }
  {
    out_.str("");
    FakeBroker broker(AnswerScript<wire::GetCaInfo>(info));
    ASSERT_EQ(RunCa(WithSocket({"known-hosts", "*.example.com,db1"}, broker.socket_path()), Io()),
              0)
        << err_.str();
    EXPECT_EQ(out_.str(), "@cert-authority *.example.com,db1 " + line + "\n");
  }
  {
    FakeBroker broker(
        AnswerScript<wire::GetCaInfo>(wire::Error{wire::ErrorCode::kNoCa, "no CA configured"}));
    EXPECT_EQ(RunCa(WithSocket({"pubkey"}, broker.socket_path()), Io()), 1);
    EXPECT_EQ(err_.str(), "jitgate: no CA configured\n");
  }
  EXPECT_EQ(RunCa({"known-hosts"}, Io()), 2);
  EXPECT_EQ(RunCa({"known-hosts", "a b"}, Io()), 2);
  EXPECT_EQ(RunCa({"known-hosts", "db1,"}, Io()), 2);
  EXPECT_EQ(RunCa({}, Io()), 2);
  EXPECT_EQ(RunCa({"krl-path"}, Io()), 2);
}

// SignHostKey -> HostCertificate issued for the sent key by ca_key.
FakeBroker::Script SignHostScript(std::shared_ptr<ca::Signer> signer, bool other_key = false) {
  return [signer, other_key](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::SignHostKey ask, Expect<wire::SignHostKey>(c.Read()));
    ASSIGN_OR_RETURN(ca::PublicKey key, ca::PublicKey::FromLine(ask.public_key));
    if (other_key) key = NewKey().public_key();
    ca::CertificateFields f;
    f.serial = 7;
    f.type = ca::CertType::kHost;
    f.key_id = "jitgate-host:" + ask.principals[0];
    f.principals = ask.principals;
    f.valid_after = kNow;
    f.valid_before = kNow + (ask.validity_seconds != 0 ? ask.validity_seconds : 86400);
    ASSIGN_OR_RETURN(ca::Certificate cert, ca::IssueCertificate(key, f, *signer));
    RETURN_IF_ERROR(c.Send(wire::HostCertificate{7, cert.ToLine()}));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

TEST_F(CertCommandsTest, CaSignHostWritesTheCertificateBesideTheKey) {
  ca::PrivateKey host_key = NewKey();
  const std::string pub = dir_.Join("ssh_host_ed25519_key.pub");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(
      pub, AsBytes(host_key.public_key().ToLine("root@db1") + "\n"), 0644));
  FakeBroker broker(SignHostScript(NewCa()));
  ASSERT_EQ(RunCa(WithSocket({"sign-host", "--key", pub, "--principals", "db1,db1.example.com",
                              "--validity", "30d"},
                             broker.socket_path()),
                  Io()),
            0)
      << err_.str();
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  std::optional<wire::SignHostKey> sent = FirstReceived<wire::SignHostKey>(broker);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->public_key, host_key.public_key().ToLine());
  EXPECT_THAT(sent->principals, ElementsAre("db1", "db1.example.com"));
  EXPECT_EQ(sent->validity_seconds, 30u * 86400);

  const std::string cert_path = dir_.Join("ssh_host_ed25519_key-cert.pub");
  EXPECT_EQ(ModeOf(cert_path), 0644u);
  ASSERT_OK_AND_ASSIGN(ca::Certificate cert, ca::Certificate::FromLine(ReadAll(cert_path)));
  EXPECT_EQ(cert.key(), host_key.public_key());
  EXPECT_EQ(cert.fields().type, ca::CertType::kHost);
  EXPECT_EQ(out_.str(), "host certificate serial 7 written to " + cert_path +
                            "\nprincipals db1,db1.example.com, valid from 2026-01-01T00:00:00 to "
                            "2026-01-31T00:00:00\n");
}

TEST_F(CertCommandsTest, CaSignHostRefusesACertificateForAnotherKey) {
  const std::string pub = dir_.Join("hostkey.pub");
  ASSERT_OK(
      DefaultEnv()->WriteFileAtomically(pub, AsBytes(NewKey().public_key().ToLine() + "\n"), 0644));
  FakeBroker broker(SignHostScript(NewCa(), /*other_key=*/true));
  const std::string out = dir_.Join("out-cert.pub");
  EXPECT_EQ(RunCa(WithSocket({"sign-host", "--key", pub, "--principals", "db1", "--out", out},
                             broker.socket_path()),
                  Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("nothing written"));
  EXPECT_FALSE(Exists(out));
}

TEST_F(CertCommandsTest, CaSignHostUsageErrors) {
  EXPECT_EQ(RunCa({"sign-host", "--principals", "db1"}, Io()), 2);
  EXPECT_EQ(RunCa({"sign-host", "--key", "k.pub"}, Io()), 2);
  EXPECT_EQ(RunCa({"sign-host", "--key", "k.pub", "--principals", "db1,,x"}, Io()), 2);
  EXPECT_EQ(
      RunCa({"sign-host", "--key", "k.pub", "--principals", "db1", "--validity", "soon"}, Io()), 2);
  err_.str("");
  EXPECT_EQ(RunCa({"sign-host", "--key", dir_.Join("missing.pub"), "--principals", "db1"}, Io()),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("missing.pub"));
}

}  // namespace
}  // namespace jitgate::cli
