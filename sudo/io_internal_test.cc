#include "sudo/io_internal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include "sudo/sudo_testonly.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::sudo {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

using testonly::Argv;

TEST(ParseIoOptionsTest, Defaults) {
  ASSERT_OK_AND_ASSIGN(IoOptions o, ParseIoOptions(nullptr));
  EXPECT_EQ(o.socket, "/run/jitgate/jitgated.sock");
  EXPECT_EQ(o.timeout_seconds, 30);
  EXPECT_EQ(o.flush_ms, 200);
  EXPECT_EQ(o.spool, "");
  EXPECT_TRUE(ParseIoOptions(Argv({}).get()).ok());
}

TEST(ParseIoOptionsTest, LaterWordsWin) {
  ASSERT_OK_AND_ASSIGN(
      IoOptions o,
      ParseIoOptions(Argv({"socket=/a.sock", "timeout=5", "flush=10", "timeout=3600",
                           "spool=/var/spool/jitgate"}).get()));
  EXPECT_EQ(o.socket, "/a.sock");
  EXPECT_EQ(o.spool, "/var/spool/jitgate");
  EXPECT_EQ(o.timeout_seconds, 3600);
  EXPECT_EQ(o.flush_ms, 10);
}

TEST(ParseIoOptionsTest, Rejects) {
  struct Case {
    int line;
    std::string word;
    std::string want;
  } cases[] = {
      {__LINE__, "socket=rel.sock", "socket must be an absolute path: 'socket=rel.sock'"},
      {__LINE__, "socket=", "socket must be an absolute path"},
      {__LINE__, "spool=spool", "spool must be an absolute path: 'spool=spool'"},
      {__LINE__, "timeout=0", "timeout must be 1 to 3600 seconds: 'timeout=0'"},
      {__LINE__, "timeout=3601", "timeout must be 1 to 3600 seconds"},
      {__LINE__, "timeout=5s", "timeout must be 1 to 3600 seconds"},
      {__LINE__, "timeout=", "timeout must be 1 to 3600 seconds"},
      {__LINE__, "flush=9", "flush must be 10 to 60000 milliseconds: 'flush=9'"},
      {__LINE__, "flush=60001", "flush must be 10 to 60000 milliseconds"},
      {__LINE__, "reason=none", "unknown plugin option 'reason=none'"},
      {__LINE__, "debug", "unknown plugin option 'debug'"},
      {__LINE__, "socket", "unknown plugin option 'socket'"},
      {__LINE__, "x=\x1b[2J", "unknown plugin option 'x=\\x1b[2J'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "case at line " << c.line);
    EXPECT_THAT(ParseIoOptions(Argv({c.word}).get()),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)));
  }
}

TEST(RecordStreamTest, InputIsWhatTheUserSentOutputWhatTheCommandSent) {
  EXPECT_EQ(RecordStream(SudoStream::kTtyIn), recorder::Stream::kInput);
  EXPECT_EQ(RecordStream(SudoStream::kStdin), recorder::Stream::kInput);
  EXPECT_EQ(RecordStream(SudoStream::kTtyOut), recorder::Stream::kOutput);
  EXPECT_EQ(RecordStream(SudoStream::kStdout), recorder::Stream::kOutput);
  EXPECT_EQ(RecordStream(SudoStream::kStderr), recorder::Stream::kError);
}

TEST(SuspendSignalNameTest, NamesWithoutSig) {
  EXPECT_EQ(SuspendSignalName(SIGTSTP), "TSTP");
  EXPECT_EQ(SuspendSignalName(SIGCONT), "CONT");
  EXPECT_EQ(SuspendSignalName(SIGSTOP), "STOP");
  EXPECT_EQ(SuspendSignalName(0), "0");
}

TEST(BuildOpenSessionTest, FromSudosArrays) {
  Argv user_info({"user=alice", "uid=1001", "tty=/dev/pts/3", "host=db1", "lines=30", "cols=100",
                  "cwd=/home/alice"});
  Argv command_info({"command=/usr/bin/systemctl", "runas_user=postgres", "cwd=/srv"});
  Argv argv({"systemctl", "restart", "two words"});
  Argv env({"PATH=/usr/bin", "TERM=xterm-256color"});
  ASSERT_OK_AND_ASSIGN(wire::OpenSession m,
                       BuildOpenSession(user_info.get(), command_info.get(), argv.get(), env.get(),
                                        "fallback", "7f3a9c02", "192.0.2.7 51000 22"));
  EXPECT_EQ(m.session, "");
  EXPECT_EQ(m.recorder, "sudo");
  EXPECT_EQ(m.request_id, "7f3a9c02");
  EXPECT_EQ(m.user, "alice");
  EXPECT_EQ(m.login, "postgres");
  EXPECT_EQ(m.host, "db1");
  EXPECT_EQ(m.target, "db1");
  EXPECT_EQ(m.command, "/usr/bin/systemctl restart 'two words'");
  EXPECT_EQ(m.term, "xterm-256color");
  EXPECT_EQ(m.cols, 100);
  EXPECT_EQ(m.rows, 30);
  EXPECT_EQ(m.remote_addr, "192.0.2.7");
  EXPECT_EQ(m.start_unix_nanos, 0u);
  EXPECT_EQ(m.cert_serial, 0u);
}

TEST(BuildOpenSessionTest, NoTerminalNoSizeAndDefaults) {
  Argv user_info({"user=alice", "host=", "lines=24", "cols=80"});
  Argv command_info({"command=/usr/bin/id", "runas_uid=0"});
  ASSERT_OK_AND_ASSIGN(wire::OpenSession m, BuildOpenSession(user_info.get(), command_info.get(),
                                                             nullptr, nullptr, "fallback", "", ""));
  EXPECT_EQ(m.request_id, "");
  EXPECT_EQ(m.login, "root");
  EXPECT_EQ(m.host, "fallback");
  EXPECT_EQ(m.command, "/usr/bin/id");
  EXPECT_EQ(m.term, "");
  EXPECT_EQ(m.cols, 0);
  EXPECT_EQ(m.rows, 0);
  EXPECT_EQ(m.remote_addr, "");
}

TEST(BuildOpenSessionTest, OddValuesAreDropped) {
  Argv user_info({"user=alice", "host=db1", "tty=/dev/pts/1", "lines=70000", "cols=-3"});
  Argv command_info({"command=/bin/sh"});
  ASSERT_OK_AND_ASSIGN(wire::OpenSession m,
                       BuildOpenSession(user_info.get(), command_info.get(), nullptr, nullptr, "h",
                                        "", "$(reboot) 1 2"));
  EXPECT_EQ(m.cols, 0);
  EXPECT_EQ(m.rows, 0);
  EXPECT_EQ(m.remote_addr, "");
}

TEST(BuildOpenSessionTest, FailsLikeTheApprovalRequest) {
  Argv no_user({"host=db1"});
  Argv command_info({"command=/usr/bin/id"});
  EXPECT_THAT(BuildOpenSession(no_user.get(), command_info.get(), nullptr, nullptr, "h", "", ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("invoking user")));
  Argv user_info({"user=alice"});
  Argv no_command({"runas_user=root"});
  EXPECT_THAT(BuildOpenSession(user_info.get(), no_command.get(), nullptr, nullptr, "h", "", ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no command")));
  std::string huge(40000, 'x');
  Argv long_argv({"echo", huge});
  Argv echo({"command=/bin/echo"});
  EXPECT_THAT(BuildOpenSession(user_info.get(), echo.get(), long_argv.get(), nullptr, "h", "", ""),
              StatusIs(StatusCode::kOutOfRange, HasSubstr("command line")));
}

TEST(SessionEndTest, ExitCodeSignalOrNotRun) {
  wire::CloseSession exited = SessionEnd(W_EXITCODE(3, 0), 0);
  EXPECT_TRUE(exited.has_exit_status);
  EXPECT_EQ(exited.exit_status, 3u);
  EXPECT_EQ(exited.exit_signal, "");
  EXPECT_EQ(exited.end_reason, "closed");

  wire::CloseSession killed = SessionEnd(W_EXITCODE(0, SIGTERM), 0);
  EXPECT_FALSE(killed.has_exit_status);
  EXPECT_EQ(killed.exit_signal, "TERM");
  EXPECT_EQ(killed.end_reason, "closed");

  wire::CloseSession not_run = SessionEnd(0, ENOENT);
  EXPECT_FALSE(not_run.has_exit_status);
  EXPECT_EQ(not_run.exit_signal, "");
  EXPECT_EQ(not_run.end_reason, "not run: No such file or directory");
}

TEST(SignalNameTest, NamesAndNumbers) {
  EXPECT_EQ(SignalName(SIGKILL), "KILL");
  EXPECT_EQ(SignalName(SIGHUP), "HUP");
  EXPECT_EQ(SignalName(200), "200");
}

}  // namespace
}  // namespace jitgate::sudo
