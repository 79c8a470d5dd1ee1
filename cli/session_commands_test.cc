// The auditor's commands against a real store in a temporary directory:
// three recorded sessions (ended, live, killed) written through
// store::Store exactly as the recorders write them (session_start and
// session_end audit events, transcript chunks), then `sessions`, `replay`,
// `watch` and `export` run on it. Playback runs on a SimulatedClock through a
// scripted control, so no test sleeps. If asciinema is installed, the export
// is also read back by `asciinema cat`.
#include "cli/session_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <sstream>

#include "cli/golden_testonly.h"
#include "core/base/env.h"
#include "core/crypto/crypto.h"
#include "recorder/recording_testonly.h"
#include "store/note/keys.h"
#include "store/store.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::SimulatedClock;
using ::jitgate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = int64_t{1767225600} * kSec;  // 2026-01-01 00:00:00 UTC

constexpr char kAlice[] = "a1b2c3d4e5f60718";
constexpr char kBob[] = "b0b0b0b0c1c1c1c1";
constexpr char kCarol[] = "c0ffee0000000001";

std::string ReadGolden(const std::string& name, const std::string& got) {
  return testonly::ReadGolden(JITGATE_CLI_TESTDATA, name, got);
}

using recorder::testonly::In;
using recorder::testonly::Out;
using recorder::testonly::Resize;

// A PlaybackControl over a SimulatedClock: time jumps to the deadline (or to
// the next scripted key), and an optional hook runs at every wait so a test
// can append to the store while `watch` polls.
class ScriptedControl : public PlaybackControl {
 public:
  ScriptedControl(SimulatedClock* clock, std::deque<std::pair<int64_t, WaitResult>> events,
                  std::function<void(int)> on_wait)
      : clock_(clock), events_(std::move(events)), on_wait_(std::move(on_wait)) {}

  WaitResult Wait(int64_t deadline) override {
    if (on_wait_) on_wait_(waits_);
    ++waits_;
    if (!events_.empty() && events_.front().first <= deadline) {
      auto [at, result] = events_.front();
      events_.pop_front();
      if (at > clock_->MonotonicNanos()) clock_->Advance(at - clock_->MonotonicNanos());
      return result;
    }
    if (deadline == kForever) {
      ADD_FAILURE() << "waiting forever with nothing scripted";
      return {WaitResult::kQuit};
    }
    if (deadline > clock_->MonotonicNanos()) clock_->Advance(deadline - clock_->MonotonicNanos());
    return {WaitResult::kDeadline};
  }

 private:
  SimulatedClock* clock_;
  std::deque<std::pair<int64_t, WaitResult>> events_;
  std::function<void(int)> on_wait_;
  int waits_ = 0;
};

class SessionCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<note::Signer> signer =
        note::Signer::FromSeed("sessions.test.jitgate/log", crypto::Sha256(AsBytes("k")));
    ASSERT_OK(signer.status());
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("log.key"),
                                                signer->EncodeSignerKey().span(), 0600));
    ASSERT_OK(store::CreateStore(DefaultEnv(), store_dir_, dir_.Join("log.key")));
    store::StoreOptions so;
    so.key_path = dir_.Join("log.key");
    ASSERT_OK_AND_ASSIGN(store_, store::Store::Open(store_dir_, so));

    alice_ = Info(kAlice, "alice", "root", "db1", "192.0.2.10", kT0, "7f3a9c02");
    alice_.approvers = {"oscar"};
    alice_.cert_serial = 42;
    bob_ = Info(kBob, "bob", "deploy", "web2", "198.51.100.7", kT0 + 3600 * kSec, "");
    bob_.recorder = "jitgate-rec";
    bob_.command = "";
    carol_ = Info(kCarol, "carol", "root", "db1", "203.0.113.5", kT0 + 7200 * kSec, "9c0ffee1");

    // Alice's terminal: colours, a character split across records and
    // chunks, a byte that is not UTF-8, a resize and her typing.
    alice_records_ = {
        Out(0, "$ "),
        In(kSec, "l"),
        Out(kSec, "l"),
        Out(2 * kSec, "\x1b[1;32mgreen\x1b[0m caf\xc3"),
        Out(2500 * kMs, "\xa9 \xe2\x9c\x93\r\n"),
        Resize(3 * kSec, 132, 43),
        Out(4 * kSec, "bad \xff byte\r\n"),
        Out(10 * kSec, "logout\r\n"),
    };
    // Bob's output is hostile: a title, a cursor report query, a clipboard write.
    bob_records_ = {
        Out(0, "\x1b]0;evil title\x07welcome\r\n"),
        Out(500 * kMs, "\x1b[6n\x1b]52;c;cm0gLXJmIC8K\x07$ "),
    };

    Append(1, recorder::SessionStartJson(alice_));
    AppendChunk(kAlice, 0, {alice_records_.begin(), alice_records_.begin() + 4});
    Append(1, recorder::SessionStartJson(bob_));
    AppendChunk(kAlice, 1, {alice_records_.begin() + 4, alice_records_.end()});
    AppendChunk(kBob, 0, bob_records_);
    alice_.ended = true;
    alice_.end_unix_nanos = kT0 + 10500 * kMs;
    alice_.exit_status = 0;
    alice_.end_reason = "closed";
    alice_.chunks = 2;
    alice_.bytes_in = 1;
    alice_.bytes_out = 71;
    Append(1, recorder::SessionEndJson(alice_));
    Append(1, recorder::SessionStartJson(carol_));
    AppendChunk(kCarol, 0, {Out(0, "bye\r\n")});
    carol_.ended = true;
    carol_.end_unix_nanos = kT0 + 7201 * kSec;
    carol_.exit_signal = "TERM";
    carol_.end_reason = "terminated";
    carol_.chunks = 1;
    carol_.bytes_out = 5;
    Append(1, recorder::SessionEndJson(carol_));

    io_.out = &out_;
    io_.err = &err_;
    io_.clock = &clock_;
    io_.make_control = [this]() -> StatusOr<std::unique_ptr<PlaybackControl>> {
      return std::unique_ptr<PlaybackControl>(
          std::make_unique<ScriptedControl>(&clock_, keys_, on_wait_));
    };
  }

  void TearDown() override {
    if (store_) {
      EXPECT_OK(store_->Close());
    }
  }

  static recorder::SessionInfo Info(std::string id, std::string user, std::string login,
                                    std::string target, std::string from, int64_t start,
                                    std::string request) {
    recorder::SessionInfo s;
    s.id = std::move(id);
    s.recorder = "bastion";
    s.request_id = std::move(request);
    s.user = std::move(user);
    s.remote_addr = std::move(from);
    s.host = "bastion1";
    s.target = std::move(target);
    s.login = std::move(login);
    s.term = "xterm-256color";
    s.cols = 100;
    s.rows = 30;
    s.start_unix_nanos = start;
    return s;
  }

  void Append(uint8_t type, std::string_view body) {
    StatusOr<uint64_t> i = store_->AppendAsync(type, AsBytes(body));
    ASSERT_OK(i.status());
    ASSERT_OK(store_->WaitDurable(*i));
  }

  void AppendChunk(const std::string& session, uint64_t index,
                   std::vector<recorder::Record> records) {
    recorder::Chunk c;
    c.session = session;
    c.index = index;
    c.records = std::move(records);
    StatusOr<Bytes> body = recorder::EncodeChunk(c);
    ASSERT_OK(body.status());
    Append(2, AsChars(*body));
  }

  // The concatenated output bytes of a session, as recorded.
  static std::string OutputOf(const std::vector<recorder::Record>& records) {
    std::string all;
    for (const auto& r : records) {
      if (r.stream == recorder::Stream::kOutput) all.append(AsChars(r.data));
    }
    return all;
  }

  int Run(int (*cmd)(const std::vector<std::string>&, const SessionIo&),
          std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.push_back("--store");
    args.push_back(store_dir_);
    return cmd(args, io_);
  }

  TempDir dir_;
  std::string store_dir_ = dir_.Join("store");
  std::unique_ptr<store::Store> store_;
  recorder::SessionInfo alice_, bob_, carol_;
  std::vector<recorder::Record> alice_records_, bob_records_;
  SimulatedClock clock_{kT0 + 3 * 3600 * kSec};
  std::ostringstream out_, err_;
  SessionIo io_;
  std::deque<std::pair<int64_t, WaitResult>> keys_;
  std::function<void(int)> on_wait_;
};

// --- sessions ---------------------------------------------------------------------

TEST_F(SessionCommandsTest, SessionsTable) {
  EXPECT_EQ(Run(RunSessions, {}), 0) << err_.str();
  EXPECT_EQ(out_.str(), ReadGolden("sessions.out.ok", out_.str()));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(SessionCommandsTest, SessionsJsonHasEveryField) {
  ASSERT_EQ(Run(RunSessions, {"--json"}), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["sessions"].size(), 3u);
  const nlohmann::json& a = j["sessions"][0];
  EXPECT_EQ(a["id"], kAlice);
  EXPECT_EQ(a["recorder"], "bastion");
  EXPECT_EQ(a["request_id"], "7f3a9c02");
  EXPECT_EQ(a["user"], "alice");
  EXPECT_EQ(a["remote_addr"], "192.0.2.10");
  EXPECT_EQ(a["host"], "bastion1");
  EXPECT_EQ(a["target"], "db1");
  EXPECT_EQ(a["login"], "root");
  EXPECT_EQ(a["approvers"], nlohmann::json::array({"oscar"}));
  EXPECT_EQ(a["cert_serial"], 42);
  EXPECT_EQ(a["command"], "");
  EXPECT_EQ(a["term"], "xterm-256color");
  EXPECT_EQ(a["cols"], 100);
  EXPECT_EQ(a["rows"], 30);
  EXPECT_EQ(a["start_unix_nanos"], kT0);
  EXPECT_EQ(a["start_time"], "2026-01-01T00:00:00.000000000Z");
  EXPECT_EQ(a["ended"], true);
  EXPECT_EQ(a["end_unix_nanos"], kT0 + 10500 * kMs);
  EXPECT_EQ(a["end_time"], "2026-01-01T00:00:10.500000000Z");
  EXPECT_EQ(a["exit_status"], 0);
  EXPECT_EQ(a["exit_signal"], "");
  EXPECT_EQ(a["end_reason"], "closed");
  EXPECT_EQ(a["chunks"], 2);
  EXPECT_EQ(a["bytes_in"], 1);
  EXPECT_EQ(a["bytes_out"], 71);
  EXPECT_EQ(a.size(), 25u);  // the 23 SessionInfo fields + start_time, end_time
  EXPECT_EQ(j["sessions"][1]["id"], kBob);
  EXPECT_EQ(j["sessions"][1]["ended"], false);
  EXPECT_TRUE(j["sessions"][1]["end_time"].is_null());
  EXPECT_EQ(j["sessions"][2]["exit_signal"], "TERM");
}

std::vector<std::string> IdsIn(const std::string& table) {
  std::vector<std::string> ids;
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) ids.push_back(line.substr(0, line.find(' ')));
  return ids;
}

TEST_F(SessionCommandsTest, SessionsFilters) {
  ASSERT_EQ(Run(RunSessions, {"--user", "bob"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kBob));
  ASSERT_EQ(Run(RunSessions, {"--target", "db1"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kAlice, kCarol));
  ASSERT_EQ(Run(RunSessions, {"--target", "deploy@web2"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kBob));
  ASSERT_EQ(Run(RunSessions, {"--target", "root@web2"}), 0);
  EXPECT_EQ(out_.str(), "no sessions\n");
  ASSERT_EQ(Run(RunSessions, {"--user", "alice", "--target", "db1"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kAlice));
  // Running at or after 01:30: bob (live) and carol (02:00).
  ASSERT_EQ(Run(RunSessions, {"--since", "2026-01-01T01:30:00Z"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kBob, kCarol));
  // Alice ended at 00:00:10.5: a since inside her session includes her.
  ASSERT_EQ(Run(RunSessions, {"--since", "2026-01-01T01:00:05+01:00"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kAlice, kBob, kCarol));
  ASSERT_EQ(Run(RunSessions, {"--since", "2026-01-02"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kBob));
  // The clock is at 03:00, so "2h" means since 01:00.
  ASSERT_EQ(Run(RunSessions, {"--since", "2h"}), 0);
  EXPECT_THAT(IdsIn(out_.str()), ElementsAre(kBob, kCarol));
  ASSERT_EQ(Run(RunSessions, {"--since", "2h", "--json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["sessions"].size(), 2u);

  EXPECT_EQ(Run(RunSessions, {"--since", "yesterday"}), 2);
  EXPECT_EQ(err_.str(),
            "jitgate: bad --since 'yesterday': expected an RFC 3339 time "
            "(2026-01-02T15:04:05Z), a date (2026-01-02) or a duration (2h, 7d)\n");
}

TEST_F(SessionCommandsTest, SessionsOnAMissingStore) {
  out_.str("");
  EXPECT_EQ(RunSessions({"--store", dir_.Join("nope")}, io_), 1);
  const std::string err = err_.str();
  EXPECT_THAT(err, StartsWith("jitgate: store "));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(ParseSinceTimeTest, Forms) {
  const int64_t now = kT0 + 86400 * kSec;
  struct Case {
    int line;
    std::string in;
    int64_t want;
  };
  const Case cases[] = {
      {__LINE__, "2026-01-01T00:00:00Z", kT0},
      {__LINE__, "2026-01-01t00:00:00z", kT0},
      {__LINE__, "2026-01-01 00:00:00Z", kT0},
      {__LINE__, "2026-01-01T02:00:00+02:00", kT0},
      {__LINE__, "2025-12-31T19:00:00-05:00", kT0},
      {__LINE__, "2026-01-01T00:00:00.25Z", kT0 + 250 * kMs},
      {__LINE__, "2026-01-01T00:00:00.123456789123Z", kT0 + 123456789},
      {__LINE__, "2026-01-01", kT0},
      {__LINE__, "2024-02-29", int64_t{1709164800} * kSec},
      {__LINE__, "1970-01-01", 0},
      {__LINE__, "2h", now - 7200 * kSec},
      {__LINE__, "1h30m", now - 5400 * kSec},
      {__LINE__, "7d", now - 7 * 86400 * kSec},
      {__LINE__, "90", now - 90 * kSec},
  };
  for (const Case& c : cases) {
    StatusOr<int64_t> got = ParseSinceTime(c.in, now);
    ASSERT_TRUE(got.ok()) << "session_commands_test.cc:" << c.line << " "
                          << got.status().ToString();
    EXPECT_EQ(*got, c.want) << "session_commands_test.cc:" << c.line;
  }
  for (const char* bad : {"", "2026-13-01", "2026-02-30", "2025-02-29", "2026-01-01T24:00:00Z",
                          "2026-01-01T00:00:00", "2026-01-01T00:00Z", "2026-1-1", "-2h", "2x", "0s",
                          "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+5:00"}) {
    EXPECT_THAT(ParseSinceTime(bad, now), ::jitgate::testing::StatusIs(StatusCode::kInvalidArgument,
                                                                       HasSubstr("bad --since")))
        << bad;
  }
}

TEST(SessionFormatTest, HostileFieldsAreEscaped) {
  recorder::SessionInfo s;
  s.id = "abcd";
  s.user = "eve\x1b]0;pwn\x07";
  s.login = "root";
  s.target = "db\342\200\2561";
  s.start_unix_nanos = kT0;
  std::string table = FormatSessionTable({s});
  EXPECT_EQ(table.find('\x1b'), std::string::npos);
  EXPECT_THAT(table, HasSubstr("eve\\x1b]0;pwn\\x07"));
  EXPECT_THAT(table, HasSubstr("db\\u{202e}1"));
  EXPECT_THAT(table, HasSubstr("live"));
  EXPECT_EQ(DescribeSessionEnd(s), "exit status unknown");
  s.ended = true;
  s.exit_status = 3;
  s.end_reason = "expired";
  EXPECT_EQ(DescribeSessionEnd(s), "exit 3 (expired)");
}

// --- replay -------------------------------------------------------------------------

TEST_F(SessionCommandsTest, ReplayRawNoSafeIsTheRecordedBytes) {
  ASSERT_EQ(Run(RunReplay, {kAlice, "--raw", "--no-safe"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), OutputOf(alice_records_));
  ASSERT_EQ(Run(RunReplay, {kBob, "--raw", "--no-safe"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), OutputOf(bob_records_));
}

TEST_F(SessionCommandsTest, ReplayRawIsSafeByDefault) {
  // Alice's output is harmless; only the byte that is not UTF-8 changes.
  ASSERT_EQ(Run(RunReplay, {kAlice, "--raw"}), 0) << err_.str();
  std::string want = OutputOf(alice_records_);
  want.replace(want.find('\xff'), 1, "\xef\xbf\xbd");
  EXPECT_EQ(out_.str(), want);
  EXPECT_EQ(err_.str(), "");
  // Bob's title, cursor query and clipboard write are gone.
  ASSERT_EQ(Run(RunReplay, {kBob, "--raw"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "welcome\r\n$ ");
  EXPECT_THAT(err_.str(), HasSubstr("has not ended; replaying what is recorded so far"));
  EXPECT_THAT(err_.str(), HasSubstr("safe mode removed 3 escape sequence(s)"));
}

TEST_F(SessionCommandsTest, ReplayFindsAPrefix) {
  ASSERT_EQ(Run(RunReplay, {"c0ff", "--raw"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "bye\r\n");
}

TEST_F(SessionCommandsTest, ReplayErrors) {
  EXPECT_EQ(Run(RunReplay, {"ffffffff", "--raw"}), 1);
  EXPECT_EQ(err_.str(), "jitgate: no session \"ffffffff\"\n");
  EXPECT_EQ(Run(RunReplay, {"A1B2\x1b[2J", "--raw"}), 2);
  EXPECT_EQ(err_.str(),
            "jitgate: 'A1B2\\x1b[2J' is not a session id (1 to 32 characters of 0-9 and a-z)\n");
  EXPECT_EQ(Run(RunReplay, {}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("missing SESSION"));
  EXPECT_EQ(Run(RunReplay, {kAlice, "--speed", "0"}), 2);
  EXPECT_EQ(Run(RunReplay, {kAlice, "--speed", "nan"}), 2);
  EXPECT_EQ(Run(RunReplay, {kAlice, "--idle-limit", "0"}), 2);
  EXPECT_EQ(Run(RunReplay, {kAlice, "--from", "soon"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--from: bad time 'soon'"));
  EXPECT_EQ(Run(RunReplay, {kAlice, "--raw", "--speed", "2"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--raw writes everything at once"));
}

TEST_F(SessionCommandsTest, ReplayKeepsTheRecordedTiming) {
  const int64_t start = clock_.MonotonicNanos();
  ASSERT_EQ(Run(RunReplay, {kAlice}), 0) << err_.str();
  EXPECT_EQ(clock_.MonotonicNanos() - start, 10 * kSec);
  std::string want = OutputOf(alice_records_);
  want.replace(want.find('\xff'), 1, "\xef\xbf\xbd");
  EXPECT_EQ(out_.str(), want);  // not a terminal: no epilogue
}

TEST_F(SessionCommandsTest, ReplaySpeedIdleLimitAndFrom) {
  int64_t start = clock_.MonotonicNanos();
  ASSERT_EQ(Run(RunReplay, {kAlice, "--speed", "2"}), 0) << err_.str();
  EXPECT_EQ(clock_.MonotonicNanos() - start, 5 * kSec);
  // Output gaps 1, 1, 0.5, 1.5, 6 s, each capped at 1 s.
  start = clock_.MonotonicNanos();
  ASSERT_EQ(Run(RunReplay, {kAlice, "--idle-limit", "1"}), 0) << err_.str();
  EXPECT_EQ(clock_.MonotonicNanos() - start, 4500 * kMs);
  // From 4 s: everything before is shown at once, then 6 s to the end.
  start = clock_.MonotonicNanos();
  ASSERT_EQ(Run(RunReplay, {kAlice, "--from", "0:04"}), 0) << err_.str();
  EXPECT_EQ(clock_.MonotonicNanos() - start, 6 * kSec);
}

TEST_F(SessionCommandsTest, ReplayQuitsOnAKeyOrASignal) {
  keys_ = {{clock_.MonotonicNanos() + 1500 * kMs, {WaitResult::kQuit}}};
  ASSERT_EQ(Run(RunReplay, {kAlice}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "$ l");
  keys_ = {{clock_.MonotonicNanos() + 1500 * kMs, {WaitResult::kQuit, 2}}};
  EXPECT_EQ(Run(RunReplay, {kAlice}), 130);
  EXPECT_EQ(out_.str(), "$ l");
}

TEST_F(SessionCommandsTest, ReplayOnATerminal) {
  io_.out_is_terminal = true;
  io_.terminal_cols = 80;
  io_.terminal_rows = 24;
  ASSERT_EQ(Run(RunReplay, {kAlice}), 0) << err_.str();
  // The session was resized to 132x43: one warning, before anything else.
  EXPECT_EQ(err_.str(),
            "jitgate: warning: the session used a 132x43 terminal but yours is 80x24; the replay "
            "may look wrong until you enlarge it\n");
  EXPECT_THAT(out_.str(), ::testing::EndsWith(SafeFilter().Epilogue()));
  ASSERT_EQ(Run(RunReplay, {kBob, "--no-safe"}), 0) << err_.str();
  EXPECT_THAT(err_.str(), HasSubstr("--no-safe: the recording's escape sequences reach your "
                                    "terminal unfiltered"));
  EXPECT_EQ(out_.str(), OutputOf(bob_records_));
}

// --- watch ----------------------------------------------------------------------------

TEST_F(SessionCommandsTest, WatchFollowsALiveSessionUntilItEnds) {
  // Bob's session goes on while we watch: at the second poll one more chunk
  // arrives, at the fourth the session ends.
  on_wait_ = [this](int wait) {
    if (wait == 1) AppendChunk(kBob, 1, {Out(2 * kSec, "ls\r\n\x1b]2;x\007file\r\n")});
    if (wait == 3) {
      recorder::SessionInfo end = bob_;
      end.ended = true;
      end.end_unix_nanos = bob_.start_unix_nanos + 3 * kSec;
      end.exit_status = 0;
      end.end_reason = "closed";
      end.chunks = 2;
      Append(1, recorder::SessionEndJson(end));
    }
  };
  const int64_t start = clock_.MonotonicNanos();
  ASSERT_EQ(Run(RunWatch, {"b0b0"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "welcome\r\n$ ls\r\nfile\r\n");
  EXPECT_EQ(err_.str(),
            "jitgate: session ended: exit 0\n"
            "jitgate: safe mode removed 4 escape sequence(s) or control character(s) "
            "(docs/auditor.md; --no-safe shows them)\n");
  EXPECT_EQ(clock_.MonotonicNanos() - start, 4 * 200 * kMs);
}

TEST_F(SessionCommandsTest, WatchAnEndedSessionPrintsItAndStops) {
  ASSERT_EQ(Run(RunWatch, {kCarol}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "bye\r\n");
  EXPECT_EQ(err_.str(), "jitgate: session ended: signal TERM (terminated)\n");
}

TEST_F(SessionCommandsTest, WatchStopsOnCtrlC) {
  keys_ = {{clock_.MonotonicNanos() + 500 * kMs, {WaitResult::kQuit, 2}}};
  EXPECT_EQ(Run(RunWatch, {kBob}), 130);
  EXPECT_EQ(out_.str(), "welcome\r\n$ ");
}

TEST_F(SessionCommandsTest, WatchPausePrintsNothingUntilResumed) {
  const int64_t t = clock_.MonotonicNanos();
  keys_ = {{t + 100 * kMs, {WaitResult::kPause}},
           {t + 5 * kSec, {WaitResult::kPause}},
           {t + 5100 * kMs, {WaitResult::kQuit}}};
  on_wait_ = [this](int wait) {
    if (wait == 1) AppendChunk(kBob, 1, {Out(2 * kSec, "late\r\n")});
  };
  EXPECT_EQ(Run(RunWatch, {kBob}), 0);
  EXPECT_EQ(out_.str(), "welcome\r\n$ late\r\n");
}

// --- export ---------------------------------------------------------------------------

TEST_F(SessionCommandsTest, SearchFindsTextAcrossChunksWithOffsets) {
  // "café" is split across two records in two chunks.
  ASSERT_EQ(Run(RunSearch, {"caf\xc3\xa9"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), std::string(kAlice) +
                            "  +2.000s  output  alice  root@db1  "
                            "$ l\\x1b[1;32mgreen\\x1b[0m [[caf\xc3\xa9]] \xe2\x9c\x93\\x0d\\x0abad "
                            "\\xff byte\\x0d\\x0alogout\\x0d\\x0a\n");
  // Typed input, found in the input stream only; -i; JSON.
  out_.str("");
  ASSERT_EQ(Run(RunSearch, {"L", "-i", "--json", "--user", "alice"}), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["matches"].size(), 3u) << out_.str();  // typed l, echoed l, logout
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["sessions_searched"], 1);
  EXPECT_EQ(j["matches"][0]["stream"], "input");
  EXPECT_EQ(j["matches"][0]["offset_ns"], 1'000'000'000);
  EXPECT_EQ(j["matches"][0]["session"], kAlice);
  EXPECT_EQ(j["matches"][0]["match"], "l");
  EXPECT_EQ(j["matches"][1]["stream"], "output");
  EXPECT_EQ(j["matches"][2]["after"], "ogout\r\n");
  // Filters, and nothing found.
  out_.str("");
  ASSERT_EQ(Run(RunSearch, {"logout", "--user", "bob"}), 0);
  EXPECT_EQ(out_.str(), "no matches in 1 sessions\n");
  out_.str("");
  EXPECT_EQ(Run(RunSearch, {""}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("missing TEXT"));
  // A hostile recording's escape sequences are shown escaped.
  out_.str("");
  ASSERT_EQ(Run(RunSearch, {"evil"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("\\x1b]0;[[evil]] title\\x07"));
}

TEST_F(SessionCommandsTest, ExportAsciicast) {
  ASSERT_EQ(Run(RunExport, {kAlice, "--format", "asciicast"}), 0) << err_.str();
  const std::string cast = out_.str();
  EXPECT_EQ(cast, ReadGolden("session_export.cast.ok", cast));
  std::vector<std::string> lines;
  std::istringstream in(cast);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 9u);
  nlohmann::json header = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(header["version"], 2);
  EXPECT_EQ(header["width"], 100);
  EXPECT_EQ(header["height"], 30);
  EXPECT_EQ(header["timestamp"], 1767225600);
  EXPECT_EQ(header["env"]["TERM"], "xterm-256color");
  EXPECT_EQ(header["title"], "jitgate session a1b2c3d4e5f60718: alice as root@db1");
  EXPECT_EQ(lines[1], "[0.000000, \"o\", \"$ \"]");
  EXPECT_EQ(lines[2], "[1.000000, \"i\", \"l\"]");
  EXPECT_EQ(lines[3], "[1.000000, \"o\", \"l\"]");
  EXPECT_EQ(lines[4], "[2.000000, \"o\", \"\\u001b[1;32mgreen\\u001b[0m caf\"]");
  EXPECT_EQ(lines[5], "[2.500000, \"o\", \"\xc3\xa9 \xe2\x9c\x93\\r\\n\"]");
  EXPECT_EQ(lines[6], "[3.000000, \"r\", \"132x43\"]");
  EXPECT_EQ(lines[7], "[4.000000, \"o\", \"bad \xef\xbf\xbd byte\\r\\n\"]");
  EXPECT_EQ(lines[8], "[10.000000, \"o\", \"logout\\r\\n\"]");
  for (size_t i = 1; i < lines.size(); ++i) {
    nlohmann::json e = nlohmann::json::parse(lines[i]);
    ASSERT_TRUE(e.is_array() && e.size() == 3) << lines[i];
    EXPECT_TRUE(e[0].is_number() && e[1].is_string() && e[2].is_string()) << lines[i];
  }
}

TEST_F(SessionCommandsTest, ExportToAFileAndReadItWithAsciinema) {
  const std::string file = dir_.Join("alice.cast");
  ASSERT_EQ(Run(RunExport, {kAlice, "--format", "asciicast", "--out", file}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "exported session a1b2c3d4e5f60718 to " + file + " (asciicast v2, 8 events)\n");
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  StatusOr<std::string> cast = DefaultEnv()->ReadFileToString(file);
  ASSERT_OK(cast.status());
  EXPECT_EQ(*cast, ReadGolden("session_export.cast.ok", *cast));
  // No temporary file is left behind.
  StatusOr<std::vector<std::string>> names = DefaultEnv()->ListDir(dir_.path());
  ASSERT_OK(names.status());
  for (const std::string& n : *names) EXPECT_EQ(n.find(".tmp."), std::string::npos) << n;

  // What a player shows: the output decoded as UTF-8, as export decodes it.
  Utf8TextDecoder d;
  std::string want;
  d.Decode(AsBytes(OutputOf(alice_records_)), &want);
  d.Finish(&want);
  if (access("/usr/bin/asciinema", X_OK) != 0 || access("/usr/bin/script", X_OK) != 0) {
    GTEST_SKIP() << "asciinema (Debian package asciinema) or script (util-linux) is not "
                    "installed: not reading the export back with `asciinema cat`";
  }
  // asciinema cat insists on a controlling terminal; script(1) provides one.
  const std::string shown = dir_.Join("shown");
  const std::string cmd = "script -q -e -c 'asciinema cat " + file + " > " + shown +
                          "' /dev/null < /dev/null > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  StatusOr<std::string> got = DefaultEnv()->ReadFileToString(shown);
  ASSERT_OK(got.status());
  EXPECT_EQ(*got, want);
}

TEST_F(SessionCommandsTest, ExportErrors) {
  EXPECT_EQ(Run(RunExport, {kAlice, "--format", "ttyrec"}), 2);
  EXPECT_EQ(err_.str(), "jitgate: unknown --format 'ttyrec' (supported: asciicast)\n");
  EXPECT_EQ(
      Run(RunExport, {kAlice, "--format", "asciicast", "--out", dir_.Join("no/such/dir/x.cast")}),
      1);
  EXPECT_THAT(err_.str(), StartsWith("jitgate: "));
  EXPECT_EQ(Run(RunExport, {"ffffffff", "--format", "asciicast"}), 1);
  EXPECT_EQ(err_.str(), "jitgate: no session \"ffffffff\"\n");
}

TEST_F(SessionCommandsTest, ExportOfALiveSession) {
  ASSERT_EQ(Run(RunExport, {kBob, "--format", "asciicast"}), 0) << err_.str();
  EXPECT_THAT(err_.str(), HasSubstr("has not ended; exporting what is recorded so far"));
  // Not filtered: the file is data, and JSON escapes every control character.
  EXPECT_THAT(out_.str(), HasSubstr("\\u001b]0;evil title\\u0007welcome"));
  EXPECT_EQ(out_.str().find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace jitgate::cli
