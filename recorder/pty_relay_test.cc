#include "recorder/pty_relay.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::recorder {
namespace {

using ::testing::HasSubstr;

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
  std::string ReadAll() {
    w.reset();
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(r.get(), buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }
};

// Collects records and checks that time never goes backwards.
struct Collector {
  std::vector<Record> records;
  int flushes = 0;
  Status Add(const Record& r) {
    if (!records.empty()) {
      EXPECT_GE(r.time_ns, records.back().time_ns);
    }
    records.push_back(r);
    return OkStatus();
  }
  std::string Text(Stream s) const {
    std::string out;
    for (const Record& r : records) {
      if (r.stream == s) out.append(r.data.begin(), r.data.end());
    }
    return out;
  }
};

RelayOptions Sh(const std::string& script, Collector* c) {
  RelayOptions o;
  o.path = "/bin/sh";
  o.argv = {"sh", "-c", script};
  o.on_record = [c](const Record& r) { return c->Add(r); };
  o.on_flush = [c]() {
    ++c->flushes;
    return OkStatus();
  };
  return o;
}

TEST(PtyRelayTest, PtyRelaysOutputAndExitStatus) {
  Collector c;
  Pipe in, out;
  in.w.reset();  // no input: EOF at once
  RelayOptions o = Sh("printf hello; exit 3", &c);
  o.use_pty = true;
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  o.cols = 100;
  o.rows = 30;
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_FALSE(r->signaled);
  EXPECT_EQ(r->exit_status, 3);
  EXPECT_EQ(r->ShellStatus(), 3);
  EXPECT_EQ(out.ReadAll(), "hello");
  EXPECT_EQ(c.Text(Stream::kOutput), "hello");
  EXPECT_EQ(r->bytes_out, 5u);
  ASSERT_FALSE(c.records.empty());
  EXPECT_EQ(c.records[0].stream, Stream::kResize);
  EXPECT_EQ(c.records[0].cols, 100);
  EXPECT_EQ(c.records[0].rows, 30);
  EXPECT_GE(c.flushes, 1);  // the final flush
}

TEST(PtyRelayTest, PtyChildSeesATerminalOfTheGivenSize) {
  Collector c;
  Pipe in, out;
  in.w.reset();
  RelayOptions o = Sh("test -t 0 && test -t 1 && stty size", &c);
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  o.cols = 91;
  o.rows = 27;
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 0);
  EXPECT_THAT(out.ReadAll(), HasSubstr("27 91"));
}

TEST(PtyRelayTest, PtyInputIsRecordedAndReachesTheChild) {
  Collector c;
  Pipe in, out;
  ASSERT_EQ(write(in.w.get(), "abc\n", 4), 4);
  RelayOptions o = Sh("read x; echo got-$x", &c);
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 0);
  EXPECT_EQ(c.Text(Stream::kInput), "abc\n");
  EXPECT_EQ(r->bytes_in, 4u);
  EXPECT_THAT(out.ReadAll(), HasSubstr("got-abc"));
}

// The user's side is itself a tty (as under sshd): the child's pty gets its
// settings as they were (cooked, not the raw mode we put it in), its window
// size, and the user's tty is restored afterwards.
TEST(PtyRelayTest, TtyInputIsCopiedToThePtyAndRestored) {
  int m = -1, s = -1;
  winsize ws{};
  ws.ws_col = 120;
  ws.ws_row = 40;
  ASSERT_EQ(openpty(&m, &s, nullptr, nullptr, &ws), 0);
  UniqueFd user_master(m), user_tty(s);
  termios before{};
  ASSERT_EQ(tcgetattr(user_tty.get(), &before), 0);
  ASSERT_NE(before.c_lflag & ICANON, 0u);

  Collector c;
  Pipe out;
  RelayOptions o = Sh("stty size; echo line", &c);
  o.in_fd = user_tty.get();
  o.out_fd = out.w.get();
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 0);
  std::string text = out.ReadAll();
  EXPECT_THAT(text, HasSubstr("40 120\r\n"));  // ONLCR: cooked settings
  EXPECT_THAT(text, HasSubstr("line\r\n"));
  ASSERT_FALSE(c.records.empty());
  EXPECT_EQ(c.records[0].stream, Stream::kResize);
  EXPECT_EQ(c.records[0].cols, 120);
  EXPECT_EQ(c.records[0].rows, 40);

  termios after{};
  ASSERT_EQ(tcgetattr(user_tty.get(), &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
}

TEST(PtyRelayTest, SigwinchResizesThePtyAndIsRecorded) {
  int m = -1, s = -1;
  winsize ws{};
  ws.ws_col = 77;
  ws.ws_row = 22;
  ASSERT_EQ(openpty(&m, &s, nullptr, nullptr, &ws), 0);
  UniqueFd user_master(m), user_tty(s);
  Collector c;
  Pipe out;
  // The child's parent is this process, which runs the relay. The user's
  // window changes after the pty was made (at the first resize record); the
  // child then signals us and waits for a line, which the callback types
  // once the second resize has been recorded.
  RelayOptions o = Sh("kill -WINCH $PPID; read x; stty size", &c);
  o.in_fd = user_tty.get();
  o.out_fd = out.w.get();
  int resizes = 0;
  o.on_record = [&](const Record& r) {
    if (r.stream == Stream::kResize && ++resizes == 1) {
      winsize bigger{};
      bigger.ws_col = 100;
      bigger.ws_row = 50;
      EXPECT_EQ(ioctl(user_tty.get(), TIOCSWINSZ, &bigger), 0);
    } else if (r.stream == Stream::kResize) {
      EXPECT_EQ(write(user_master.get(), "\n", 1), 1);
    }
    return c.Add(r);
  };
  ASSERT_OK(RunRelay(o).status());
  std::vector<Record> sizes;
  for (const Record& r : c.records) {
    if (r.stream == Stream::kResize) sizes.push_back(r);
  }
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[0].cols, 77);
  EXPECT_EQ(sizes[0].rows, 22);
  EXPECT_EQ(sizes[1].cols, 100);
  EXPECT_EQ(sizes[1].rows, 50);
  EXPECT_THAT(out.ReadAll(), HasSubstr("50 100"));
}

TEST(PtyRelayTest, PipesKeepStdoutAndStderrApart) {
  Collector c;
  Pipe in, out, err;
  ASSERT_EQ(write(in.w.get(), "data", 4), 4);
  in.w.reset();
  RelayOptions o = Sh("cat; echo oops >&2; exit 5", &c);
  o.use_pty = false;
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  o.err_fd = err.w.get();
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 5);
  EXPECT_EQ(out.ReadAll(), "data");
  EXPECT_EQ(err.ReadAll(), "oops\n");
  EXPECT_EQ(c.Text(Stream::kInput), "data");
  EXPECT_EQ(c.Text(Stream::kOutput), "data");
  EXPECT_EQ(c.Text(Stream::kError), "oops\n");  // recorded apart as well
  EXPECT_EQ(r->bytes_out, 9u);
  for (const Record& rec : c.records) EXPECT_NE(rec.stream, Stream::kResize);
}

TEST(PtyRelayTest, PipesRelayMoreThanAPipeBufferBothWays) {
  // cat echoes 1 MiB back: input and output must be relayed concurrently or
  // both sides would block on full pipes.
  Collector c;
  Pipe out, err;
  char path[] = "/tmp/pty_relay_test.XXXXXX";
  UniqueFd in(mkstemp(path));
  ASSERT_TRUE(in.valid());
  unlink(path);
  std::string big(1 << 20, 'x');
  ASSERT_EQ(write(in.get(), big.data(), big.size()),
            static_cast<ssize_t>(big.size()));
  ASSERT_EQ(lseek(in.get(), 0, SEEK_SET), 0);
  RelayOptions o = Sh("cat | wc -c", &c);
  o.use_pty = false;
  o.in_fd = in.get();
  o.out_fd = out.w.get();
  o.err_fd = err.w.get();
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 0);
  EXPECT_EQ(r->bytes_in, big.size());
  EXPECT_THAT(out.ReadAll(), HasSubstr("1048576"));
}

TEST(PtyRelayTest, ChildKilledBySignalIs128PlusN) {
  for (bool pty : {true, false}) {
    SCOPED_TRACE(pty ? "pty" : "pipes");
    Collector c;
    Pipe in, out, err;
    in.w.reset();
    RelayOptions o = Sh("kill -TERM $$", &c);
    o.use_pty = pty;
    o.in_fd = in.r.get();
    o.out_fd = out.w.get();
    o.err_fd = err.w.get();
    StatusOr<RelayResult> r = RunRelay(o);
    ASSERT_OK(r.status());
    EXPECT_TRUE(r->signaled);
    EXPECT_EQ(r->term_signal, SIGTERM);
    EXPECT_EQ(r->ShellStatus(), 128 + SIGTERM);
  }
}

TEST(PtyRelayTest, RecordingFailureKillsTheChild) {
  for (bool pty : {true, false}) {
    SCOPED_TRACE(pty ? "pty" : "pipes");
    Pipe in, out, err;
    in.w.reset();
    RelayOptions o;
    o.path = "/bin/sh";
    o.argv = {"sh", "-c", "echo x; exec sleep 100"};
    o.use_pty = pty;
    o.in_fd = in.r.get();
    o.out_fd = out.w.get();
    o.err_fd = err.w.get();
    o.on_record = [](const Record& r) -> Status {
      if (r.stream == Stream::kOutput) return UnavailableError("broker lost");
      return OkStatus();
    };
    auto t0 = std::chrono::steady_clock::now();
    StatusOr<RelayResult> r = RunRelay(o);
    EXPECT_THAT(r.status(), testing::StatusIs(StatusCode::kUnavailable,
                                              HasSubstr("broker lost")));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    // Nothing unrecorded was passed on.
    EXPECT_EQ(out.ReadAll(), "");
  }
}

// jitgate terminate: once asked, the relay tells the user, stops their
// input, hangs the child up and records what it still says.
TEST(PtyRelayTest, EndOnRequestTellsTheUserAndHangsUp) {
  for (bool pty : {true, false}) {
    SCOPED_TRACE(pty ? "pty" : "pipes");
    Collector c;
    Pipe in, out, err;
    bool ready = false;
    int asked = 0;
    RelayOptions o =
        Sh("trap 'echo hup; exit 5' HUP; echo ready; while :; do sleep 0.05; done", &c);
    o.on_record = [&](const Record& r) {
      if (r.stream == Stream::kOutput &&
          std::string(r.data.begin(), r.data.end()).find("ready") != std::string::npos) {
        ready = true;
      }
      return c.Add(r);
    };
    o.end_requested = [&]() -> std::optional<std::string> {
      ++asked;
      if (!ready) return std::nullopt;
      return "jitgate: session terminated by bob: done";
    };
    o.use_pty = pty;
    o.in_fd = in.r.get();  // left open: the user could still type
    o.out_fd = out.w.get();
    o.err_fd = err.w.get();
    StatusOr<RelayResult> r = RunRelay(o);
    ASSERT_OK(r.status());
    EXPECT_TRUE(r->ended_on_request);
    EXPECT_FALSE(r->signaled);
    EXPECT_EQ(r->exit_status, 5);
    const std::string line = pty ? "\r\njitgate: session terminated by bob: done\r\n"
                                 : "jitgate: session terminated by bob: done\n";
    std::string shown = pty ? out.ReadAll() : err.ReadAll();
    EXPECT_THAT(shown, HasSubstr(line));
    // The line is part of the recording, before what the child said after.
    std::string recorded = c.Text(Stream::kOutput);
    size_t at = recorded.find(line);
    ASSERT_NE(at, std::string::npos) << recorded;
    EXPECT_NE(recorded.find("hup", at), std::string::npos) << recorded;
    EXPECT_GE(asked, 1);
  }
}

TEST(PtyRelayTest, EndOnRequestKillsAChildThatIgnoresTheHangup) {
  for (bool pty : {true, false}) {
    SCOPED_TRACE(pty ? "pty" : "pipes");
    Collector c;
    Pipe in, out, err;
    in.w.reset();
    RelayOptions o = Sh("trap '' HUP; echo ready; exec sleep 100", &c);
    bool ready = false;
    o.on_record = [&](const Record& r) {
      if (r.stream == Stream::kOutput) ready = true;
      return c.Add(r);
    };
    o.end_requested = [&]() -> std::optional<std::string> {
      if (!ready) return std::nullopt;
      return "jitgate: session terminated by root";
    };
    o.end_grace_ms = 300;
    o.use_pty = pty;
    o.in_fd = in.r.get();
    o.out_fd = out.w.get();
    o.err_fd = err.w.get();
    auto t0 = std::chrono::steady_clock::now();
    StatusOr<RelayResult> r = RunRelay(o);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_OK(r.status());
    EXPECT_TRUE(r->ended_on_request);
    EXPECT_TRUE(r->signaled);
    EXPECT_EQ(r->term_signal, SIGKILL);
    EXPECT_GE(took, std::chrono::milliseconds(300));
    EXPECT_LT(took, std::chrono::seconds(10));
  }
}

TEST(PtyRelayTest, ExecFailureIs127) {
  Collector c;
  Pipe in, out, err;
  in.w.reset();
  RelayOptions o;
  o.path = "/nonexistent/jitgate-test";
  o.argv = {"x"};
  o.use_pty = false;
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  o.err_fd = err.w.get();
  o.on_record = [&c](const Record& r) { return c.Add(r); };
  StatusOr<RelayResult> r = RunRelay(o);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->exit_status, 127);
  EXPECT_THAT(err.ReadAll(), HasSubstr("/nonexistent/jitgate-test"));
}

TEST(PtyRelayTest, SignalDispositionsAreRestored) {
  struct sigaction before {};
  sigaction(SIGCHLD, nullptr, &before);
  Collector c;
  Pipe in, out;
  in.w.reset();
  RelayOptions o = Sh("exit 0", &c);
  o.in_fd = in.r.get();
  o.out_fd = out.w.get();
  ASSERT_OK(RunRelay(o).status());
  struct sigaction after {};
  sigaction(SIGCHLD, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

TEST(PtyRelayTest, SignalName) {
  EXPECT_EQ(SignalName(SIGTERM), "TERM");
  EXPECT_EQ(SignalName(SIGKILL), "KILL");
}

TEST(PtyRelayTest, NoProgramIsInvalid) {
  RelayOptions o;
  EXPECT_THAT(
      RunRelay(o).status(),
      testing::StatusIs(StatusCode::kInvalidArgument, HasSubstr("no program")));
}

}  // namespace
}  // namespace jitgate::recorder
