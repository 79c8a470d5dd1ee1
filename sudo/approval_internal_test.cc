#include "sudo/approval_internal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "sudo/sudo_testonly.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::sudo {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

using testonly::Argv;

TEST(ParsePluginOptionsTest, Defaults) {
  StatusOr<PluginOptions> o = ParsePluginOptions(nullptr);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->socket, "/run/jitgate/jitgated.sock");
  EXPECT_EQ(o->timeout_seconds, 300);
  EXPECT_EQ(o->reason, ReasonMode::kOptional);
  EXPECT_FALSE(o->debug);
  EXPECT_TRUE(ParsePluginOptions(Argv({}).get()).ok());
}

TEST(ParsePluginOptionsTest, AllOptionsLaterWins) {
  Argv a({"socket=/tmp/a.sock", "timeout=60", "reason=required", "debug", "timeout=90",
          "reason=none"});
  StatusOr<PluginOptions> o = ParsePluginOptions(a.get());
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->socket, "/tmp/a.sock");
  EXPECT_EQ(o->timeout_seconds, 90);
  EXPECT_EQ(o->reason, ReasonMode::kNone);
  EXPECT_TRUE(o->debug);
}

TEST(ParsePluginOptionsTest, Rejects) {
  struct Case {
    int line;
    std::string word;
    std::string want;
  } cases[] = {
      {__LINE__, "socket=relative.sock", "socket must be an absolute path: 'socket=relative.sock'"},
      {__LINE__, "socket=", "socket must be an absolute path"},
      {__LINE__, "timeout=0", "timeout must be 1 to 86400 seconds: 'timeout=0'"},
      {__LINE__, "timeout=-5", "timeout must be 1 to 86400"},
      {__LINE__, "timeout=5m", "timeout must be 1 to 86400"},
      {__LINE__, "timeout=86401", "timeout must be 1 to 86400"},
      {__LINE__, "timeout=", "timeout must be 1 to 86400"},
      {__LINE__, "reason=maybe", "reason must be required, optional or none: 'reason=maybe'"},
      {__LINE__, "debug=1", "unknown plugin option 'debug=1'"},
      {__LINE__, "sockett=/x", "unknown plugin option 'sockett=/x'"},
      {__LINE__, "socket", "unknown plugin option 'socket'"},
      {__LINE__, "evil\x1b[2J", "unknown plugin option 'evil\\x1b[2J'"},
  };
  for (const Case& c : cases) {
    Argv a({c.word});
    EXPECT_THAT(ParsePluginOptions(a.get()).status(),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)))
        << "case at line " << c.line;
  }
}

TEST(LookupKeyTest, FirstExactKeyWins) {
  Argv a({"user_x=no", "user=alice", "user=mallory", "usr", "host="});
  EXPECT_EQ(LookupKey(a.get(), "user"), "alice");
  EXPECT_EQ(LookupKey(a.get(), "host"), "");
  EXPECT_EQ(LookupKey(a.get(), "usr"), std::nullopt);
  EXPECT_EQ(LookupKey(a.get(), "tty"), std::nullopt);
  EXPECT_EQ(LookupKey(nullptr, "user"), std::nullopt);
}

TEST(ShellQuoteTest, Table) {
  struct Case {
    int line;
    std::string in;
    std::string want;
  } cases[] = {
      {__LINE__, "nginx", "nginx"},
      {__LINE__, "/usr/bin/systemctl", "/usr/bin/systemctl"},
      {__LINE__, "--user=root,x:y@z%+", "--user=root,x:y@z%+"},
      {__LINE__, "", "''"},
      {__LINE__, "two words", "'two words'"},
      {__LINE__, "it's", "'it'\\''s'"},
      {__LINE__, "$(reboot)", "'$(reboot)'"},
      {__LINE__, "a;b|c&d>e`f`", "'a;b|c&d>e`f`'"},
      {__LINE__, "~root", "'~root'"},
      {__LINE__, "*", "'*'"},
      {__LINE__, "back\\slash", "'back\\slash'"},
      {__LINE__, "caf\xc3\xa9", "'caf\xc3\xa9'"},
      {__LINE__, "line1\nline2", "$'line1\\x0aline2'"},
      {__LINE__, "esc\x1b[2J", "$'esc\\x1b[2J'"},
      {__LINE__, "cr\rit's\\", "$'cr\\x0dit\\'s\\\\'"},
      {__LINE__, "bad\xff", "$'bad\\xff'"},
      {__LINE__, "rlo\xe2\x80\xae", "$'rlo\\xe2\\x80\\xae'"},
      {__LINE__, "tab\t", "$'tab\\x09'"},
  };
  for (const Case& c : cases) EXPECT_EQ(ShellQuote(c.in), c.want) << "case at line " << c.line;
}

// The property that matters: bash reads the quoted word back as the exact
// original bytes.
TEST(ShellQuoteTest, BashReadsItBack) {
  std::vector<std::string> words = {"plain",  "two words",   "it's",        "$HOME `id` $(id)",
                                    "\\",     "new\nline",   "\x1b[31mred", "\x01\x7f\x80\xff",
                                    "'\"'\"", "caf\xc3\xa9", "-",           "a b\tc\\'d"};
  for (const std::string& w : words) {
    std::string script = "printf '%s' " + ShellQuote(w);
    std::string cmd = "bash -c " + ShellQuote(script);
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string got;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) got.append(buf, n);
    EXPECT_EQ(pclose(p), 0);
    EXPECT_EQ(got, w) << ShellQuote(w);
  }
}

TEST(CommandLineTest, PathThenArguments) {
  Argv argv({"systemctl", "restart", "nginx"});
  EXPECT_EQ(CommandLine("/usr/bin/systemctl", argv.get()), "/usr/bin/systemctl restart nginx");
  Argv full({"/usr/bin/systemctl", "restart", "my unit"});
  EXPECT_EQ(CommandLine("/usr/bin/systemctl", full.get()), "/usr/bin/systemctl restart 'my unit'");
  EXPECT_EQ(CommandLine("/usr/bin/id", nullptr), "/usr/bin/id");
  Argv empty_arg({"echo", ""});
  EXPECT_EQ(CommandLine("/bin/echo", empty_arg.get()), "/bin/echo ''");
}

TEST(CommandLineTest, DifferentArgv0IsShown) {
  Argv login({"-bash"});
  EXPECT_EQ(CommandLine("/bin/bash", login.get()), "exec -a -bash /bin/bash");
  Argv multi({"reboot", "-f"});
  EXPECT_EQ(CommandLine("/bin/busybox", multi.get()), "exec -a reboot /bin/busybox -f");
  Argv shell({"bash", "-c", "rm -rf /tmp/x"});
  EXPECT_EQ(CommandLine("/bin/bash", shell.get()), "/bin/bash -c 'rm -rf /tmp/x'");
}

TEST(BuildRequestFieldsTest, FromSudoArrays) {
  Argv user_info(
      {"pid=4242", "user=alice", "uid=1001", "cwd=/home/alice", "tty=/dev/pts/3", "host=db1"});
  Argv command_info({"command=/usr/bin/systemctl", "runas_uid=0", "runas_user=postgres",
                     "cwd=/var/lib/postgresql"});
  Argv run_argv({"systemctl", "restart", "nginx"});
  StatusOr<wire::RequestFields> f =
      BuildRequestFields(user_info.get(), command_info.get(), run_argv.get(), "fallback");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(*f,
            (wire::RequestFields{"sudo", "alice", "postgres", "db1", "", "/dev/pts/3",
                                 "/usr/bin/systemctl restart nginx", "/var/lib/postgresql", "", "", 0}));
}

TEST(BuildRequestFieldsTest, Fallbacks) {
  Argv user_info({"user=alice", "cwd=/home/alice"});
  Argv command_info({"command=/usr/bin/id"});
  StatusOr<wire::RequestFields> f =
      BuildRequestFields(user_info.get(), command_info.get(), nullptr, "thishost");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->target_user, "root");
  EXPECT_EQ(f->host, "thishost");
  EXPECT_EQ(f->tty, "");
  EXPECT_EQ(f->cwd, "/home/alice");
  EXPECT_EQ(f->command, "/usr/bin/id");

  Argv by_uid({"command=/usr/bin/id", "runas_uid=0"});
  f = BuildRequestFields(user_info.get(), by_uid.get(), nullptr, "h");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->target_user, "root");  // uid 0's name from the passwd database
  Argv unknown_uid({"command=/usr/bin/id", "runas_uid=4000000"});
  f = BuildRequestFields(user_info.get(), unknown_uid.get(), nullptr, "h");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->target_user, "#4000000");
}

TEST(BuildRequestFieldsTest, MissingOrOversized) {
  Argv no_user({"cwd=/"});
  Argv no_command({"runas_user=root"});
  Argv user_info({"user=alice"});
  Argv command_info({"command=/bin/true"});
  EXPECT_THAT(BuildRequestFields(no_user.get(), command_info.get(), nullptr, "h").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("invoking user")));
  EXPECT_THAT(BuildRequestFields(user_info.get(), no_command.get(), nullptr, "h").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no command")));
  EXPECT_THAT(BuildRequestFields(user_info.get(), command_info.get(), nullptr, "").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("host")));
  Argv big_argv({"true", std::string(40000, 'x')});
  EXPECT_THAT(BuildRequestFields(user_info.get(), command_info.get(), big_argv.get(), "h").status(),
              StatusIs(StatusCode::kOutOfRange,
                       "the command line is 40010 bytes; jitgate accepts at most 32768"));
}

TEST(EscapeForTerminalTest, Table) {
  EXPECT_EQ(EscapeForTerminal("approved by bob (1 of 2)"), "approved by bob (1 of 2)");
  EXPECT_EQ(EscapeForTerminal("denied\x1b]52;c;aGk=\x07"), "denied\\x1b]52;c;aGk=\\x07");
  EXPECT_EQ(EscapeForTerminal("a\r\nb"), "a\\x0d\\x0ab");
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"
                            "2J\xe2\x80\xae\xff"),
            "\\u{009b}2J\\u{202e}\\xff");
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 \xe2\x86\x92"), "caf\xc3\xa9 \xe2\x86\x92");
}

TEST(FormatSecondsTest, Table) {
  EXPECT_EQ(FormatSeconds(0), "0s");
  EXPECT_EQ(FormatSeconds(45), "45s");
  EXPECT_EQ(FormatSeconds(300), "5m");
  EXPECT_EQ(FormatSeconds(270), "4m30s");
  EXPECT_EQ(FormatSeconds(3600), "1h");
  EXPECT_EQ(FormatSeconds(5400), "1h30m");
}

TEST(RefusalMessageTest, DecisionsAndErrors) {
  wire::Decision d;
  d.id = "7f3a9c02";
  d.outcome = wire::Outcome::kDenied;
  d.message = "denied by carol: not during the freeze";
  EXPECT_EQ(RefusalMessage(d), "denied by carol: not during the freeze");
  d.message = "";
  EXPECT_EQ(RefusalMessage(d), "request 7f3a9c02 was denied");
  d.outcome = wire::Outcome::kExpired;
  EXPECT_EQ(RefusalMessage(d), "request 7f3a9c02 timed out waiting for approval");
  d.outcome = wire::Outcome::kError;
  d.id = "";
  EXPECT_EQ(RefusalMessage(d), "the jitgate broker could not decide the request");
  EXPECT_EQ(RefusalMessage(UnavailableError(
                "jitgate broker unreachable at /run/jitgate/jitgated.sock: No such file")),
            "broker unreachable at /run/jitgate/jitgated.sock: No such file");
  d.message = "evil\x1b[2J";
  EXPECT_EQ(RefusalMessage(d), "evil\\x1b[2J");
}

}  // namespace
}  // namespace jitgate::sudo
