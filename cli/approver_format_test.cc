#include "cli/approver_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "cli/golden_testonly.h"

namespace jitgate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kNow = 1'790'000'000;  // 2026-09-21

wire::RequestInfo SudoRequest() {
  wire::RequestInfo r;
  r.id = "7f3a9c02";
  r.fields = {"sudo",
              "alice",
              "root",
              "db1",
              "",
              "/dev/pts/3",
              "/usr/bin/systemctl restart nginx",
              "/home/alice",
              "deploy hotfix #412",
              "",
              0};
  r.digest = wire::RequestDigest(r.fields);
  r.state = wire::RequestState::kPending;
  r.filed_by = "uid 0 (root) pid 4242 sudo";
  r.approvers = "1 of oncall";
  r.approvals_needed = 1;
  r.created_at = kNow - 48;
  r.expires_at = kNow + 252;
  return r;
}

struct EscapeCase {
  int line;
  std::string in;
  std::string want;
};

TEST(EscapeForTerminalTest, Table) {
  const EscapeCase cases[] = {
      {__LINE__, "systemctl restart nginx", "systemctl restart nginx"},
      {__LINE__, "", ""},
      {__LINE__, "a\x1b]0;pwned\x07z", "a\\x1b]0;pwned\\x07z"},
      {__LINE__, "ls\rrm -rf /", "ls\\x0drm -rf /"},
      {__LINE__, "two\nlines\t", "two\\x0alines\\x09"},
      {__LINE__, "del\x7f", "del\\x7f"},
      {__LINE__, "back\\slash", "back\\slash"},
      {__LINE__, "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x94\x91",
       "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x94\x91"},
      {__LINE__, "bad\xff", "bad\\xff"},
      {__LINE__, "trunc\xe2\x86", "trunc\\xe2\\x86"},
      {__LINE__, "overlong\xc0\xaf", "overlong\\xc0\\xaf"},
      {__LINE__, "overlong3\xe0\x80\xaf", "overlong3\\xe0\\x80\\xaf"},
      {__LINE__, "surrogate\xed\xa0\x80", "surrogate\\xed\\xa0\\x80"},
      {__LINE__, "too-big\xf4\x90\x80\x80", "too-big\\xf4\\x90\\x80\\x80"},
      {__LINE__,
       "c1\xc2\x9b"
       "31m",
       "c1\\u{009b}31m"},
      {__LINE__,
       "rlo\xe2\x80\xae"
       "txt.exe",
       "rlo\\u{202e}txt.exe"},
      {__LINE__, "zw\xe2\x80\x8bj", "zw\\u{200b}j"},
      {__LINE__, "iso\xe2\x81\xa6x", "iso\\u{2066}x"},
      {__LINE__, "bom\xef\xbb\xbf", "bom\\u{feff}"},
      {__LINE__, std::string("nul\0x", 5), "nul\\x00x"},
  };
  for (const EscapeCase& c : cases) {
    EXPECT_EQ(EscapeForTerminal(c.in), c.want) << "case at line " << c.line;
  }
}

TEST(EscapeForTerminalTest, OutputNeverContainsControlBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  std::string out = EscapeForTerminal(all);
  for (unsigned char c : out) {
    EXPECT_TRUE(c >= 0x20 && c != 0x7f) << int(c);
  }
}

TEST(FormatDurationTest, Table) {
  EXPECT_EQ(FormatDuration(-5), "0s");
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(59), "59s");
  EXPECT_EQ(FormatDuration(60), "1m00s");
  EXPECT_EQ(FormatDuration(252), "4m12s");
  EXPECT_EQ(FormatDuration(3599), "59m59s");
  EXPECT_EQ(FormatDuration(3600), "1h00m");
  EXPECT_EQ(FormatDuration(3720), "1h02m");
  EXPECT_EQ(FormatDuration(86399), "23h59m");
  EXPECT_EQ(FormatDuration(86400 * 3 + 3600 * 4 + 5), "3d04h");
}

TEST(FormatExpiryTest, PendingAndDecided) {
  wire::RequestInfo r = SudoRequest();
  EXPECT_EQ(FormatExpiry(r, kNow), "expires in 4m12s");
  EXPECT_EQ(FormatExpiry(r, kNow + 255), "expired 3s ago");
  r.state = wire::RequestState::kApproved;
  EXPECT_EQ(FormatExpiry(r, kNow), "");
}

TEST(FormatUtcTest, Epoch) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01 00:00:00 UTC");
  EXPECT_EQ(FormatUtc(1'764'102'108), "2025-11-25 20:21:48 UTC");
}

TEST(FormatRequestLineTest, OneLine) {
  EXPECT_EQ(FormatRequestLine(SudoRequest(), kNow),
            "7f3a9c02  pending   sudo  alice \u2192 root@db1  /usr/bin/systemctl restart nginx  "
            "(0/1, expires in 4m12s)");
  wire::RequestInfo ssh = SudoRequest();
  ssh.fields.service = "sshd";
  ssh.fields.command = "";
  ssh.fields.remote_addr = "10.0.0.7";
  ssh.state = wire::RequestState::kDenied;
  ssh.votes = {{wire::Verdict::kDeny, "carol", kNow - 1, "no"}};
  EXPECT_EQ(FormatRequestLine(ssh, kNow),
            "7f3a9c02  denied    sshd  alice \u2192 root@db1 from 10.0.0.7  (0/1)");
}

TEST(FormatRequestLineTest, EscapesAndStaysOneLine) {
  wire::RequestInfo r = SudoRequest();
  r.fields.command = "true\n7f3a9c03  pending   sudo  bob \u2192 root@db1  \x1b[2Jls";
  std::string line = FormatRequestLine(r, kNow);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("true\\x0a7f3a9c03"));
  EXPECT_THAT(line, HasSubstr("\\x1b[2Jls"));
}

TEST(FormatRequestDetailTest, ShowsEveryField) {
  wire::RequestInfo r = SudoRequest();
  r.approvals_needed = 2;
  r.approvers = "2 of oncall";
  r.votes = {{wire::Verdict::kApprove, "bob", 1'764'102'108, "looks fine"}};
  std::string d = FormatRequestDetail(r, kNow);
  EXPECT_EQ(d,
            "request   7f3a9c02 (pending)\n"
            "service   sudo\n"
            "user      alice \u2192 root@db1\n"
            "from      -\n"
            "tty       /dev/pts/3\n"
            "command   /usr/bin/systemctl restart nginx\n"
            "cwd       /home/alice\n"
            "reason    deploy hotfix #412\n"
            "filed by  uid 0 (root) pid 4242 sudo\n"
            "policy    approvers 2 of oncall; 1 of 2 approvals\n"
            "votes     approved by bob at 2025-11-25 20:21:48 UTC: \"looks fine\"\n"
            "created   2026-09-21 14:12:32 UTC (48s ago)\n"
            "expires   in 4m12s\n"
            "digest    " +
                HexEncode(r.digest) + "\n");
}

TEST(FormatRequestDetailTest, LoginAndEmptyFields) {
  wire::RequestInfo r = SudoRequest();
  r.fields.command = "";
  r.fields.cwd = "";
  r.fields.reason = "";
  r.fields.tty = "";
  r.state = wire::RequestState::kExpired;
  std::string d = FormatRequestDetail(r, kNow);
  EXPECT_THAT(d, HasSubstr("command   (login shell)\n"));
  EXPECT_THAT(d, HasSubstr("reason    (none given)\n"));
  EXPECT_THAT(d, HasSubstr("votes     none yet\n"));
  EXPECT_THAT(d, HasSubstr("request   7f3a9c02 (expired)\n"));
  EXPECT_THAT(d, Not(HasSubstr("expires")));
}

TEST(FormatRequestDetailTest, RequesterTextIsEscaped) {
  wire::RequestInfo r = SudoRequest();
  r.fields.reason = "ok\x1b[1A\rreason    approved by security";
  std::string d = FormatRequestDetail(r, kNow);
  EXPECT_THAT(d, HasSubstr("reason    ok\\x1b[1A\\x0dreason    approved by security\n"));
}

TEST(RequestToJsonTest, FieldsAndVotes) {
  wire::RequestInfo r = SudoRequest();
  r.votes = {{wire::Verdict::kDeny, "carol", 5, "freeze"}};
  nlohmann::json j = RequestToJson(r);
  EXPECT_EQ(j["id"], "7f3a9c02");
  EXPECT_EQ(j["state"], "pending");
  EXPECT_EQ(j["service"], "sudo");
  EXPECT_EQ(j["user"], "alice");
  EXPECT_EQ(j["target_user"], "root");
  EXPECT_EQ(j["command"], "/usr/bin/systemctl restart nginx");
  EXPECT_EQ(j["digest"], HexEncode(r.digest));
  EXPECT_EQ(j["approvals"], 0);
  EXPECT_EQ(j["approvals_needed"], 1);
  EXPECT_EQ(j["expires_at"], kNow + 252);
  ASSERT_EQ(j["votes"].size(), 1u);
  EXPECT_EQ(j["votes"][0]["verdict"], "deny");
  EXPECT_EQ(j["votes"][0]["approver"], "carol");
}

TEST(RequestToJsonTest, InvalidUtf8AndControlsStaySafe) {
  wire::RequestInfo r = SudoRequest();
  r.fields.command = "rm \xff\x1b[2J";
  std::string line = DumpJson(RequestToJson(r));
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_THAT(line, HasSubstr("rm \xef\xbf\xbd\\u001b[2J"));
  EXPECT_EQ(nlohmann::json::parse(line)["id"], "7f3a9c02");
}

TEST(DescribeBrokerErrorTest, ClearMessages) {
  using wire::ErrorCode;
  auto d = [](ErrorCode c, ApproverAction a, std::string_view id, std::string msg = "") {
    return DescribeBrokerError(wire::Error{c, std::move(msg)}, a, id);
  };
  EXPECT_EQ(d(ErrorCode::kSelfApproval, ApproverAction::kApprove, "7f3a9c02"),
            "you cannot approve your own request 7f3a9c02");
  EXPECT_EQ(d(ErrorCode::kSelfApproval, ApproverAction::kDeny, "7f3a9c02"),
            "you cannot deny your own request 7f3a9c02");
  EXPECT_EQ(d(ErrorCode::kNotFound, ApproverAction::kShow, "7f3a"),
            "no request matches 7f3a (or you may not see it)");
  EXPECT_EQ(d(ErrorCode::kAmbiguous, ApproverAction::kApprove, "7f3a"),
            "7f3a matches several requests; type more of its id");
  EXPECT_EQ(d(ErrorCode::kPermissionDenied, ApproverAction::kApprove, "7f3a9c02"),
            "you are not an approver of request 7f3a9c02; nothing was changed");
  EXPECT_THAT(d(ErrorCode::kDigestMismatch, ApproverAction::kApprove, "7f3a9c02"),
              HasSubstr("nothing was approved"));
  EXPECT_THAT(d(ErrorCode::kDigestMismatch, ApproverAction::kDeny, "7f3a9c02"),
              HasSubstr("nothing was denied"));
  EXPECT_EQ(d(ErrorCode::kDuplicateVote, ApproverAction::kApprove, "7f3a9c02"),
            "you have already voted on request 7f3a9c02");
  EXPECT_THAT(d(ErrorCode::kNotPending, ApproverAction::kApprove, "7f3a9c02"),
              HasSubstr("no longer pending"));
  EXPECT_EQ(d(ErrorCode::kInternal, ApproverAction::kList, "", "state store\x1b[0m failed"),
            "broker error (internal): state store\\x1b[0m failed");
}

TEST(NormalizeIdSelectorTest, Table) {
  EXPECT_EQ(NormalizeIdSelector("7f3a"), "7f3a");
  EXPECT_EQ(NormalizeIdSelector("7F3A9C02"), "7f3a9c02");
  EXPECT_EQ(NormalizeIdSelector("7f3"), std::nullopt);
  EXPECT_EQ(NormalizeIdSelector("7f3a-9c"), std::nullopt);
  EXPECT_EQ(NormalizeIdSelector("7f3a\x1b"), std::nullopt);
  EXPECT_EQ(NormalizeIdSelector(std::string(33, 'a')), std::nullopt);
  EXPECT_EQ(NormalizeIdSelector(std::string(32, 'a')), std::string(32, 'a'));
}

TEST(ResolveSocketPathTest, FlagThenEnvThenDefault) {
  EXPECT_EQ(ResolveSocketPath(std::string("/tmp/a.sock"), "/tmp/b.sock"), "/tmp/a.sock");
  EXPECT_EQ(ResolveSocketPath(std::nullopt, "/tmp/b.sock"), "/tmp/b.sock");
  EXPECT_EQ(ResolveSocketPath(std::nullopt, ""), "/run/jitgate/jitgated.sock");
  EXPECT_EQ(ResolveSocketPath(std::nullopt, nullptr), "/run/jitgate/jitgated.sock");
}

}  // namespace
}  // namespace jitgate::cli

namespace jitgate::cli {
namespace {

std::string ReadGolden(const std::string& name, const std::string& got) {
  return testonly::ReadGolden(JITGATE_CLI_TESTDATA, name, got);
}

// A request whose requester tried to take over the approver's terminal: the
// golden file holds exactly what the approver sees (cli/testdata/*.out.ok).
wire::RequestInfo HostileRequest() {
  wire::RequestInfo r = SudoRequest();
  r.id = "9d2kq7xm";
  r.fields.command = "/bin/sh -c $'echo ok\\x1b[2K\\rapproved'";
  r.fields.reason =
      "urgent\x1b]0;title\x07\r\nreason    ticket #1 \xe2\x80\xae"
      "cod.exe \xff";
  r.fields.cwd = "/tmp/\x1b[31mred";
  r.votes = {{wire::Verdict::kApprove, "bob", 1'764'102'108, "fine by me"},
             {wire::Verdict::kDeny, "carol", 1'764'102'168, ""}};
  r.approvals_needed = 2;
  r.approvers = "2 of oncall";
  r.digest = {};
  return r;
}

TEST(GoldenOutputTest, ShowHostileRequest) {
  std::string got = FormatRequestDetail(HostileRequest(), kNow);
  EXPECT_EQ(got, ReadGolden("show_hostile.out.ok", got));
}

TEST(GoldenOutputTest, RequestsList) {
  wire::RequestInfo ssh = SudoRequest();
  ssh.id = "a1b2c3d4";
  ssh.fields = {"sshd", "alice", "alice", "db2", "10.0.0.7", "ssh", "", "", "debug replica", "", 0};
  ssh.expires_at = kNow + 7200;
  std::string out = FormatRequestLine(SudoRequest(), kNow) + "\n" +
                    FormatRequestLine(HostileRequest(), kNow) + "\n" +
                    FormatRequestLine(ssh, kNow) + "\n";
  EXPECT_EQ(out, ReadGolden("requests.out.ok", out));
}

}  // namespace
}  // namespace jitgate::cli
