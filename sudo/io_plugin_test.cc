// Loads the built jitgate_sudo.so with dlopen(RTLD_NOW), as sudo does, and
// drives the I/O plugin (and, for the link, the approval plugin from the same
// object) with synthetic sudo arrays against a scripted broker that answers
// like jitgated's recorder side (tests/testing/fake_broker.h). sudo's event
// loop is replaced by a fake sudo_plugin_event whose timer the test fires.
// End-to-end runs under the real sudo: tests/integration/approval/test_sudo_io.py.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sudo_plugin.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status_macros.h"
#include "recorder/recording.h"
#include "sudo/sudo_testonly.h"
#include "tests/testing/fake_broker.h"

namespace jitgate::sudo {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::vector<std::pair<int, std::string>>* g_printed = nullptr;

int FakePrintf(int type, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[4096];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (g_printed != nullptr) g_printed->emplace_back(type, buf);
  return n;
}

// sudo's plugin events, reduced to what a test needs: the plugin's flush
// timer, which the test fires, and its reader of the broker connection,
// which the test fires when the connection is readable.
struct FakeEvent {
  sudo_plugin_event pub;  // first: the plugin sees a pointer to it
  sudo_plugin_ev_callback_t callback = nullptr;
  void* closure = nullptr;
  int fd = -1;
  int events = 0;  // 0 until set
  bool added = false;
  timespec timeout{};
  int adds = 0;
};
std::vector<FakeEvent*> g_events;  // allocated and not yet freed
int g_events_freed = 0;
int g_loopbreaks = 0;

FakeEvent* Of(sudo_plugin_event* pev) { return reinterpret_cast<FakeEvent*>(pev); }
int EvSet(sudo_plugin_event* pev, int fd, int events, sudo_plugin_ev_callback_t cb,
          void* closure) {
  FakeEvent* ev = Of(pev);
  if (ev->added) return -1;  // sudo_ev_set on an active event is a bug
  if (events != SUDO_PLUGIN_EV_TIMEOUT &&
      events != (SUDO_PLUGIN_EV_READ | SUDO_PLUGIN_EV_PERSIST)) {
    return -1;
  }
  if ((events & SUDO_PLUGIN_EV_READ) != 0 && fd < 0) return -1;
  ev->fd = fd;
  ev->events = events;
  ev->callback = cb;
  ev->closure = closure;
  return 1;
}
int EvAdd(sudo_plugin_event* pev, timespec* timeout) {
  if (Of(pev)->callback == nullptr) return -1;
  Of(pev)->added = true;
  Of(pev)->adds++;
  Of(pev)->timeout = timeout != nullptr ? *timeout : timespec{};
  return 1;
}
int EvDel(sudo_plugin_event* pev) {
  Of(pev)->added = false;
  return 1;
}
void EvLoopbreak(sudo_plugin_event* /*pev*/) { ++g_loopbreaks; }
void EvFree(sudo_plugin_event* pev) {
  std::erase(g_events, Of(pev));
  ++g_events_freed;
  delete Of(pev);
}
sudo_plugin_event* EvAlloc() {
  auto* ev = new FakeEvent;
  std::memset(&ev->pub, 0, sizeof(ev->pub));
  ev->pub.set = EvSet;
  ev->pub.add = EvAdd;
  ev->pub.del = EvDel;
  ev->pub.loopbreak = EvLoopbreak;
  ev->pub.free = EvFree;
  g_events.push_back(ev);
  return &ev->pub;
}
FakeEvent* Timer() {
  for (FakeEvent* ev : g_events) {
    if (ev->events == SUDO_PLUGIN_EV_TIMEOUT) return ev;
  }
  return nullptr;
}
// The reader while it is added (watching the broker connection), else null.
FakeEvent* Reader() {
  for (FakeEvent* ev : g_events) {
    if ((ev->events & SUDO_PLUGIN_EV_READ) != 0 && ev->added) return ev;
  }
  return nullptr;
}
// Fires the timer as sudo's loop would once it expired.
void FireTimer() {
  FakeEvent* t = Timer();
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(t->added);
  t->added = false;
  t->callback(-1, SUDO_PLUGIN_EV_TIMEOUT, t->closure);
}
// As sudo's loop does: fires the reader if its fd becomes readable within
// timeout_ms. Returns whether it fired.
bool FireReaderWhenReadable(int timeout_ms) {
  FakeEvent* r = Reader();
  if (r == nullptr) return false;
  pollfd p{r->fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return false;
  r->callback(r->fd, SUDO_PLUGIN_EV_READ, r->closure);
  return true;
}

using testonly::Argv;

// What the scripted broker does with a recording connection.
struct RecorderScript {
  bool drop_after_open = false;  // close the connection (and stop listening) after SessionOpened
  bool terminate_after_open = false;  // push SessionTerminated (bob) after SessionOpened
  // Connection 0 is closed after SessionOpened (a broker restart), 1 at once
  // (not up yet); from 2 on the session must be resumed.
  bool restart_after_open = false;
  // The termination or restart waits for Go(), the test's go-ahead once
  // open() has returned (copies of the script share it).
  std::shared_ptr<std::promise<void>> go = std::make_shared<std::promise<void>>();
  std::shared_future<void> act_when = go->get_future().share();
  void Go() const { go->set_value(); }
  std::shared_ptr<std::promise<void>> first_chunk;  // set when the first chunk arrives
};

// Like jitgated: HelloAck; SubmitRequest (the approval plugin) is approved at
// once; OpenSession is answered SessionOpened, every chunk acknowledged,
// CloseSession answered SessionClosed with the chunks received.
FakeBroker::Script Jitgated(RecorderScript how = {}) {
  return [how](FakeBrokerConnection& c) -> Status {
    if (how.restart_after_open && c.index() == 1) {
      c.Close();
      return OkStatus();
    }
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::Message m, c.Read());
    if (auto* submit = std::get_if<wire::SubmitRequest>(&m)) {
      RETURN_IF_ERROR(c.Send(FakeBroker::DecisionFor(c.broker().NextId(), submit->fields,
                                                     wire::Outcome::kApproved, "approved")));
      c.WaitForClientClose(1000);
      return OkStatus();
    }
    auto* open = std::get_if<wire::OpenSession>(&m);
    if (open == nullptr) {
      return InternalError("expected OpenSession, got " + wire::MessageTypeName(wire::TypeOf(m)));
    }
    if (how.restart_after_open && c.index() >= 2 && open->session != "s1abc") {
      return InternalError("connection " + std::to_string(c.index()) + " did not resume s1abc");
    }
    RETURN_IF_ERROR(c.Send(wire::SessionOpened{"s1abc", 0}));
    if (how.drop_after_open) {
      c.broker().StopListening();
      c.Close();
      return OkStatus();
    }
    if ((how.restart_after_open && c.index() == 0) || how.terminate_after_open) {
      if (how.act_when.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        return DeadlineExceededError("the test never said go");
      }
    }
    if (how.restart_after_open && c.index() == 0) {
      c.Close();
      return OkStatus();
    }
    if (how.terminate_after_open) {
      RETURN_IF_ERROR(c.Send(wire::SessionTerminated{"bob", "wrong host"}));
    }
    uint64_t chunks = 0;
    while (true) {
      StatusOr<wire::Message> next = c.Read();
      if (!next.ok()) {
        return next.status().code() == StatusCode::kUnavailable ? OkStatus() : next.status();
      }
      if (std::holds_alternative<wire::SessionData>(*next)) {
        if (chunks++ == 0 && how.first_chunk) how.first_chunk->set_value();
        RETURN_IF_ERROR(c.Send(wire::SessionAck{chunks}));
      } else if (auto* end = std::get_if<wire::CloseSession>(&*next)) {
        RETURN_IF_ERROR(c.Send(wire::SessionClosed{end->chunks}));
        c.WaitForClientClose(1000);
        return OkStatus();
      } else {
        return InternalError("unexpected " + wire::MessageTypeName(wire::TypeOf(*next)));
      }
    }
  };
}

class IoPluginTest : public ::testing::Test {
 protected:
  // Loaded once and never unloaded, as sudo does (see approval_plugin_test).
  static void SetUpTestSuite() {
    handle_ = dlopen(JITGATE_SUDO_SO, RTLD_NOW | RTLD_LOCAL);
    if (handle_ != nullptr) {
      io_ = static_cast<io_plugin*>(dlsym(handle_, "jitgate_io"));
      approval_ = static_cast<approval_plugin*>(dlsym(handle_, "jitgate_approval"));
    }
  }
  void SetUp() override {
    g_printed = &printed_;
    ASSERT_NE(handle_, nullptr) << dlerror();
    ASSERT_NE(io_, nullptr) << dlerror();
    ASSERT_NE(approval_, nullptr) << dlerror();
    io_->event_alloc = nullptr;  // tests that want events install EvAlloc
    g_events.clear();
    g_events_freed = 0;
    g_loopbreaks = 0;
  }
  void TearDown() override { g_printed = nullptr; }

  int Open(const std::string& socket, std::vector<std::string> options = {}, bool tty = true) {
    std::vector<std::string> info = {"pid=4242",        "user=alice", "uid=1001", "gid=1001",
                                     "cwd=/home/alice", "host=db1",   "lines=24", "cols=80"};
    if (tty) info.push_back("tty=/dev/pts/3");
    Argv settings({"progname=sudo"});
    Argv user_info(info);
    Argv command_info(
        {"command=/usr/bin/psql", "runas_uid=107", "runas_user=postgres", "cwd=/srv"});
    Argv argv({"psql", "-c", "select 1"});
    Argv user_env({"PATH=/usr/bin", "TERM=xterm-256color", "HOME=/var/lib/postgresql"});
    options.insert(options.begin(), "socket=" + socket);
    Argv plugin_options(options);
    errstr_ = nullptr;
    return io_->open(SUDO_API_VERSION, nullptr, FakePrintf, settings.get(), user_info.get(),
                     command_info.get(), 3, argv.get(), user_env.get(), plugin_options.get(),
                     &errstr_);
  }

  std::string Errors() const {
    std::string all;
    for (const auto& [type, text] : printed_) {
      if (type == SUDO_CONV_ERROR_MSG) all += text;
    }
    return all;
  }

  // Everything the broker received, decoded.
  struct Seen {
    std::vector<wire::OpenSession> opens;
    std::vector<recorder::Record> records;
    std::vector<Bytes> chunks;
    std::vector<wire::CloseSession> closes;
  };
  static Seen Collect(const FakeBroker& broker) {
    Seen s;
    for (const wire::Message& m : broker.Received()) {
      if (auto* o = std::get_if<wire::OpenSession>(&m)) s.opens.push_back(*o);
      if (auto* c = std::get_if<wire::CloseSession>(&m)) s.closes.push_back(*c);
      if (auto* d = std::get_if<wire::SessionData>(&m)) {
        s.chunks.push_back(d->chunk);
        StatusOr<recorder::Chunk> chunk = recorder::DecodeChunk(d->chunk);
        EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
        if (!chunk.ok()) continue;
        EXPECT_EQ(chunk->session, "s1abc");
        for (recorder::Record& r : chunk->records) s.records.push_back(std::move(r));
      }
    }
    return s;
  }

  static recorder::Record Data(recorder::Stream stream, std::string_view text) {
    recorder::Record r;
    r.stream = stream;
    r.data.assign(text.begin(), text.end());
    return r;
  }
  static recorder::Record Resize(uint16_t cols, uint16_t rows) {
    recorder::Record r;
    r.stream = recorder::Stream::kResize;
    r.cols = cols;
    r.rows = rows;
    return r;
  }

  std::vector<std::pair<int, std::string>> printed_;
  static inline void* handle_ = nullptr;
  static inline io_plugin* io_ = nullptr;
  static inline approval_plugin* approval_ = nullptr;
  const char* errstr_ = nullptr;
};

TEST_F(IoPluginTest, IsAnIoPluginOfThisApi) {
  EXPECT_EQ(io_->type, unsigned(SUDO_IO_PLUGIN));
  EXPECT_EQ(io_->version, unsigned(SUDO_API_VERSION));
  for (void* fn :
       {reinterpret_cast<void*>(io_->open), reinterpret_cast<void*>(io_->close),
        reinterpret_cast<void*>(io_->show_version), reinterpret_cast<void*>(io_->log_ttyin),
        reinterpret_cast<void*>(io_->log_ttyout), reinterpret_cast<void*>(io_->log_stdin),
        reinterpret_cast<void*>(io_->log_stdout), reinterpret_cast<void*>(io_->log_stderr),
        reinterpret_cast<void*>(io_->change_winsize), reinterpret_cast<void*>(io_->log_suspend)}) {
    EXPECT_NE(fn, nullptr);
  }
  EXPECT_EQ(approval_->type, unsigned(SUDO_APPROVAL_PLUGIN));
  // Internals stay hidden (jitgate_sudo.map).
  EXPECT_EQ(dlsym(handle_, "_ZN7jitgate4sudo15ApprovedRequestEv"), nullptr);
  EXPECT_EQ(dlsym(handle_, "_ZN7jitgate8recorder15RecordingClient5FlushEv"), nullptr);
}

TEST_F(IoPluginTest, RecordsEveryStreamAndTheExitStatus) {
  FakeBroker broker(Jitgated());
  ASSERT_EQ(Open(broker.socket_path()), 1) << (errstr_ ? errstr_ : "");
  const char* err = nullptr;
  EXPECT_EQ(io_->log_ttyin("ls\r", 3, &err), 1);
  EXPECT_EQ(io_->log_ttyout("file\r\n", 6, &err), 1);
  EXPECT_EQ(io_->change_winsize(40, 120, &err), 1);
  EXPECT_EQ(io_->log_stdin("in", 2, &err), 1);
  EXPECT_EQ(io_->log_stdout("out", 3, &err), 1);
  EXPECT_EQ(io_->log_stderr("err", 3, &err), 1);
  EXPECT_EQ(io_->log_suspend(SIGTSTP, &err), 1);
  EXPECT_EQ(io_->log_suspend(SIGCONT, &err), 1);
  EXPECT_EQ(io_->log_stdout(std::string_view("\0\xff", 2).data(), 2, &err), 1);
  io_->close(W_EXITCODE(3, 0), 0);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
  EXPECT_THAT(Errors(), IsEmpty());

  Seen seen = Collect(broker);
  ASSERT_EQ(seen.opens.size(), 1u);
  const wire::OpenSession& o = seen.opens[0];
  EXPECT_EQ(o.session, "");
  EXPECT_EQ(o.recorder, "sudo");
  EXPECT_EQ(o.request_id, "");  // the approval plugin did not run
  EXPECT_EQ(o.user, "alice");
  EXPECT_EQ(o.login, "postgres");
  EXPECT_EQ(o.host, "db1");
  EXPECT_EQ(o.command, "/usr/bin/psql -c 'select 1'");
  EXPECT_EQ(o.term, "xterm-256color");
  EXPECT_EQ(o.cols, 80);
  EXPECT_EQ(o.rows, 24);
  EXPECT_GT(o.start_unix_nanos, 0u);

  using recorder::Stream;
  std::vector<recorder::Record> want = {Resize(80, 24),
                                        Data(Stream::kInput, "ls\r"),
                                        Data(Stream::kOutput, "file\r\n"),
                                        Resize(120, 40),
                                        Data(Stream::kInput, "in"),
                                        Data(Stream::kOutput, "out"),
                                        Data(Stream::kError, "err"),
                                        Data(Stream::kSuspend, "TSTP"),
                                        Data(Stream::kSuspend, "CONT"),
                                        Data(Stream::kOutput, std::string_view("\0\xff", 2))};
  ASSERT_EQ(seen.records.size(), want.size());
  int64_t last = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(seen.records[i].stream, want[i].stream);
    EXPECT_EQ(seen.records[i].data, want[i].data);
    EXPECT_EQ(seen.records[i].cols, want[i].cols);
    EXPECT_EQ(seen.records[i].rows, want[i].rows);
    EXPECT_GE(seen.records[i].time_ns, last);
    last = seen.records[i].time_ns;
  }
  ASSERT_EQ(seen.closes.size(), 1u);
  const wire::CloseSession& c = seen.closes[0];
  EXPECT_TRUE(c.has_exit_status);
  EXPECT_EQ(c.exit_status, 3u);
  EXPECT_EQ(c.exit_signal, "");
  EXPECT_EQ(c.end_reason, "closed");
  EXPECT_EQ(c.bytes_in, 5u);
  EXPECT_EQ(c.bytes_out, 14u);
  EXPECT_EQ(c.chunks, seen.chunks.size());
  EXPECT_GT(c.end_unix_nanos, o.start_unix_nanos);
}

TEST_F(IoPluginTest, KilledOrNotRunCommandsEndSo) {
  FakeBroker broker(Jitgated());
  ASSERT_EQ(Open(broker.socket_path(), {}, /*tty=*/false), 1);
  io_->close(W_EXITCODE(0, SIGKILL), 0);
  ASSERT_EQ(Open(broker.socket_path(), {}, false), 1);
  io_->close(0, ENOENT);
  ASSERT_TRUE(broker.WaitUntilFinished(2));
  Seen seen = Collect(broker);
  ASSERT_EQ(seen.closes.size(), 2u);
  EXPECT_FALSE(seen.closes[0].has_exit_status);
  EXPECT_EQ(seen.closes[0].exit_signal, "KILL");
  EXPECT_FALSE(seen.closes[1].has_exit_status);
  EXPECT_EQ(seen.closes[1].end_reason, "not run: No such file or directory");
  // Without a terminal there is no window, and so no resize record.
  EXPECT_EQ(seen.opens[0].cols, 0);
  EXPECT_THAT(seen.records, IsEmpty());
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST_F(IoPluginTest, RecordingNamesTheApprovalFromTheSameObject) {
  FakeBroker broker(Jitgated());
  Argv user_info({"user=alice", "host=db1", "cwd=/"});
  Argv empty({});
  Argv approval_options({"socket=" + broker.socket_path()});
  ASSERT_EQ(approval_->open(SUDO_API_VERSION, nullptr, FakePrintf, empty.get(), user_info.get(), 0,
                            empty.get(), empty.get(), approval_options.get(), &errstr_),
            1);
  Argv command_info({"command=/usr/bin/psql", "runas_user=postgres"});
  Argv run_argv({"psql", "-c", "select 1"});
  ASSERT_EQ(approval_->check(command_info.get(), run_argv.get(), empty.get(), &errstr_), 1)
      << (errstr_ ? errstr_ : "");
  ASSERT_EQ(Open(broker.socket_path()), 1) << (errstr_ ? errstr_ : "");
  io_->close(W_EXITCODE(0, 0), 0);
  approval_->close();

  // The next sudo process (here: the approval plugin opened again) starts
  // without a link, and a recording without an approval names none.
  ASSERT_EQ(approval_->open(SUDO_API_VERSION, nullptr, FakePrintf, empty.get(), user_info.get(), 0,
                            empty.get(), empty.get(), approval_options.get(), &errstr_),
            1);
  approval_->close();
  ASSERT_EQ(Open(broker.socket_path()), 1);
  io_->close(W_EXITCODE(0, 0), 0);

  ASSERT_TRUE(broker.WaitUntilFinished(3));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
  Seen seen = Collect(broker);
  ASSERT_EQ(seen.opens.size(), 2u);
  EXPECT_EQ(seen.opens[0].request_id, "7f3a9c02");
  EXPECT_EQ(seen.opens[1].request_id, "");
}

TEST_F(IoPluginTest, UnreachableBrokerRefusesTheCommand) {
  FakeBroker broker(Jitgated());
  std::string gone = broker.dir() + "/nobody-here.sock";
  EXPECT_EQ(Open(gone), -1);
  ASSERT_NE(errstr_, nullptr);
  EXPECT_EQ(std::string(errstr_), "jitgate: session not recorded: jitgate broker unreachable at " +
                                      gone + ": No such file or directory; command not run");
  EXPECT_EQ(Errors(), std::string(errstr_) + "\n");  // one line
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(IoPluginTest, RecordingFailureMidSessionRejectsEverythingAfter) {
  RecorderScript how;
  how.drop_after_open = true;
  FakeBroker broker(Jitgated(how));
  // Without a terminal: open() adds no resize record, and so does not look
  // at the connection before the first data arrives.
  ASSERT_EQ(Open(broker.socket_path(), {"timeout=2"}, /*tty=*/false), 1)
      << (errstr_ ? errstr_ : "");
  ASSERT_TRUE(broker.WaitUntilFinished(1));  // the broker is gone for good
  // The first data finds the connection gone; the one reconnect finds no
  // broker.
  std::mt19937 rng(7);
  std::string noise(32 * 1024, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  const char* err = nullptr;
  int rc = 1;
  for (int i = 0; i < 8 && rc == 1; ++i) rc = io_->log_stdout(noise.data(), noise.size(), &err);
  EXPECT_EQ(rc, 0);  // reject: sudo kills the command and drops the data
  ASSERT_NE(err, nullptr);
  EXPECT_THAT(err, StartsWith("jitgate: session ended: recording failed: "));
  EXPECT_THAT(err, HasSubstr("No such file or directory"));
  // Everything after is rejected too, with the same line, printed once.
  const char* err2 = nullptr;
  EXPECT_EQ(io_->log_ttyin("x", 1, &err2), 0);
  EXPECT_STREQ(err2, err);
  EXPECT_EQ(io_->log_stdout("y", 1, &err2), 0);
  EXPECT_EQ(io_->change_winsize(1, 1, &err2), -1);
  io_->close(W_EXITCODE(0, SIGTERM), 0);
  EXPECT_EQ(Errors(), std::string(err) + "\n");
}

TEST_F(IoPluginTest, QuietSessionIsFlushedByTheTimer) {
  auto first = std::make_shared<std::promise<void>>();
  std::future<void> arrived = first->get_future();
  RecorderScript how;
  how.first_chunk = first;
  FakeBroker broker(Jitgated(how));
  io_->event_alloc = EvAlloc;
  // A long interval: only the timer flushes, however slow this machine is.
  ASSERT_EQ(Open(broker.socket_path(), {"flush=60000"}), 1);
  FakeEvent* timer = Timer();
  ASSERT_NE(timer, nullptr);
  EXPECT_FALSE(timer->added);  // nothing pending yet: no timer
  ASSERT_NE(Reader(), nullptr);  // the broker connection is watched from the start
  const char* err = nullptr;
  EXPECT_EQ(io_->log_ttyout("$ ", 2, &err), 1);
  ASSERT_TRUE(timer->added);
  EXPECT_EQ(timer->timeout.tv_sec, 60);
  EXPECT_EQ(timer->timeout.tv_nsec, 0);
  EXPECT_EQ(io_->log_ttyout("x", 1, &err), 1);
  EXPECT_EQ(timer->adds, 1);  // armed once while pending
  FireTimer();
  EXPECT_EQ(arrived.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_FALSE(timer->added);  // not re-armed until there is more
  io_->close(W_EXITCODE(0, 0), 0);
  EXPECT_EQ(g_events_freed, 2);
  EXPECT_EQ(g_loopbreaks, 0);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  Seen seen = Collect(broker);
  ASSERT_GE(seen.records.size(), 3u);
  EXPECT_EQ(seen.records[1].data, Bytes({'$', ' '}));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

// A `jitgate terminate` reaches a session that prints nothing (an idle root
// shell): sudo's loop is broken at once, which makes sudo kill the command.
TEST_F(IoPluginTest, TerminateEndsAQuietSessionAtOnce) {
  RecorderScript how;
  how.terminate_after_open = true;
  FakeBroker broker(Jitgated(how));
  io_->event_alloc = EvAlloc;
  ASSERT_EQ(Open(broker.socket_path()), 1);
  how.Go();
  ASSERT_NE(Reader(), nullptr);
  ASSERT_TRUE(FireReaderWhenReadable(5000)) << "the termination never arrived";
  EXPECT_EQ(g_loopbreaks, 1);
  EXPECT_EQ(Errors(), "jitgate: session terminated by bob: wrong host\n");
  EXPECT_EQ(Reader(), nullptr);  // nothing more to hear
  const char* err = nullptr;
  EXPECT_EQ(io_->log_ttyin("ls\r", 3, &err), 0);
  EXPECT_STREQ(err, "jitgate: session terminated by bob: wrong host");
  io_->close(W_EXITCODE(1, SIGKILL), 0);  // what sudo reports after a loopbreak
  EXPECT_EQ(g_loopbreaks, 1);
  EXPECT_EQ(g_events_freed, 2);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  Seen seen = Collect(broker);
  ASSERT_EQ(seen.closes.size(), 1u);
  EXPECT_EQ(seen.closes[0].end_reason, "terminated");
  EXPECT_FALSE(seen.closes[0].has_exit_status);  // sudo cannot know it
  EXPECT_EQ(seen.closes[0].bytes_in, 0u);  // the rejected input was not recorded
  for (const Status& e : broker.ScriptErrors()) ADD_FAILURE() << e.ToString();
}

// Without a terminal sudo (exec_nopty) does not call close() after its loop
// was broken: the end is recorded before the loop is.
TEST_F(IoPluginTest, TerminateWithoutATerminalRecordsTheEndAtOnce) {
  RecorderScript how;
  how.terminate_after_open = true;
  FakeBroker broker(Jitgated(how));
  io_->event_alloc = EvAlloc;
  ASSERT_EQ(Open(broker.socket_path(), {}, /*tty=*/false), 1);
  const char* err = nullptr;
  EXPECT_EQ(io_->log_stdout("started\n", 8, &err), 1);
  how.Go();
  ASSERT_TRUE(FireReaderWhenReadable(5000)) << "the termination never arrived";
  EXPECT_EQ(g_loopbreaks, 1);
  ASSERT_TRUE(broker.WaitUntilFinished(1));  // closed before sudo kills the command
  Seen seen = Collect(broker);
  ASSERT_EQ(seen.closes.size(), 1u);
  EXPECT_EQ(seen.closes[0].end_reason, "terminated");
  EXPECT_FALSE(seen.closes[0].has_exit_status);
  EXPECT_EQ(seen.closes[0].bytes_out, 8u);
  ASSERT_FALSE(seen.records.empty());
  EXPECT_EQ(seen.records.back().data, Bytes({'s', 't', 'a', 'r', 't', 'e', 'd', '\n'}));
  // Should a later sudo call close() after all, nothing is sent twice.
  io_->close(0, 0);
  EXPECT_EQ(Collect(broker).closes.size(), 1u);
  EXPECT_EQ(Errors(), "jitgate: session terminated by bob: wrong host\n");
  for (const Status& e : broker.ScriptErrors()) ADD_FAILURE() << e.ToString();
}

// The broker restarts while the session is quiet: the closed connection is
// let go (no failure: the broker is not back yet), retried on the timer, and
// the session is resumed as soon as the broker answers, before any I/O.
TEST_F(IoPluginTest, QuietSessionIsResumedSoonAfterTheBrokerIsBack) {
  RecorderScript how;
  how.restart_after_open = true;
  FakeBroker broker(Jitgated(how));
  io_->event_alloc = EvAlloc;
  ASSERT_EQ(Open(broker.socket_path()), 1) << Errors();
  how.Go();
  ASSERT_TRUE(FireReaderWhenReadable(5000)) << "the closed connection was not noticed";
  EXPECT_EQ(Reader(), nullptr);
  ASSERT_NE(Timer(), nullptr);
  EXPECT_TRUE(Timer()->added);  // retrying
  EXPECT_EQ(Errors(), "");
  for (int i = 0; i < 200 && Reader() == nullptr; ++i) {  // at most 10 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Timer()->added) FireTimer();
  }
  ASSERT_NE(Reader(), nullptr) << "not resumed";
  EXPECT_EQ(broker.connections(), 3);  // the refused try, then the resume
  EXPECT_EQ(Errors(), "");
  EXPECT_EQ(g_loopbreaks, 0);
  const char* err = nullptr;
  EXPECT_EQ(io_->log_ttyout("after", 5, &err), 1);
  io_->close(W_EXITCODE(0, 0), 0);
  ASSERT_TRUE(broker.WaitUntilFinished(3));
  Seen seen = Collect(broker);
  ASSERT_EQ(seen.opens.size(), 2u);
  EXPECT_EQ(seen.opens[1].session, "s1abc");
  ASSERT_EQ(seen.closes.size(), 1u);
  EXPECT_EQ(seen.closes[0].end_reason, "closed");
  ASSERT_FALSE(seen.records.empty());
  EXPECT_EQ(seen.records.back().data, Bytes({'a', 'f', 't', 'e', 'r'}));
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST_F(IoPluginTest, LargeOutputArrivesIntact) {
  FakeBroker broker(Jitgated());
  ASSERT_EQ(Open(broker.socket_path(), {}, false), 1);
  std::mt19937 rng(1);
  std::string sent;
  const char* err = nullptr;
  for (int i = 0; i < 64; ++i) {  // 4 MiB in sudo's 64 KiB reads, text and noise
    std::string piece(64 * 1024, '\0');
    for (size_t j = 0; j < piece.size(); ++j) {
      piece[j] = i % 2 == 0 ? "abcdefgh\n"[j % 9] : static_cast<char>(rng());
    }
    ASSERT_EQ(io_->log_stdout(piece.data(), piece.size(), &err), 1) << err;
    sent += piece;
  }
  io_->close(W_EXITCODE(0, 0), 0);
  ASSERT_TRUE(broker.WaitUntilFinished(1));
  Seen seen = Collect(broker);
  std::string got;
  for (const recorder::Record& r : seen.records) got.append(r.data.begin(), r.data.end());
  EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
  for (const Bytes& chunk : seen.chunks) EXPECT_LE(chunk.size(), recorder::kMaxChunkBody);
  ASSERT_EQ(seen.closes.size(), 1u);
  EXPECT_EQ(seen.closes[0].bytes_out, sent.size());
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST_F(IoPluginTest, ShowVersionRecordsNothing) {
  FakeBroker broker(Jitgated());
  Argv empty({});
  Argv options({"socket=" + broker.socket_path()});
  // sudo -V opens I/O plugins without command_info.
  ASSERT_EQ(io_->open(SUDO_API_VERSION, nullptr, FakePrintf, empty.get(), empty.get(), nullptr, 0,
                      empty.get(), empty.get(), options.get(), &errstr_),
            1);
  EXPECT_EQ(io_->show_version(0), 1);
  io_->close(0, 0);
  EXPECT_EQ(broker.connections(), 0);
  ASSERT_EQ(printed_.size(), 1u);
  EXPECT_EQ(printed_[0].second, "jitgate I/O plugin version 0.1.0\n");
}

TEST_F(IoPluginTest, BadConfigurationOrApiIsAnError) {
  EXPECT_EQ(Open("/run/x.sock", {"timeout=0"}), -1);
  EXPECT_THAT(errstr_, HasSubstr("bad Plugin line in sudo.conf: timeout must be 1 to 3600"));
  EXPECT_THAT(Errors(), HasSubstr("timeout=0"));
  EXPECT_EQ(Open("relative.sock"), -1);
  EXPECT_THAT(errstr_, HasSubstr("socket must be an absolute path"));
  Argv empty({});
  EXPECT_EQ(io_->open(SUDO_API_MKVERSION(2, 0), nullptr, FakePrintf, empty.get(), empty.get(),
                      empty.get(), 0, empty.get(), empty.get(), empty.get(), &errstr_),
            -1);
  EXPECT_THAT(errstr_, HasSubstr("incompatible sudo plugin API version 2.0"));
  // A command sudo did not describe is not run.
  FakeBroker broker(Jitgated());
  Argv options({"socket=" + broker.socket_path()});
  EXPECT_EQ(io_->open(SUDO_API_VERSION, nullptr, FakePrintf, empty.get(), empty.get(), empty.get(),
                      0, empty.get(), empty.get(), options.get(), &errstr_),
            -1);
  EXPECT_THAT(errstr_, HasSubstr("session not recorded: sudo did not say who the invoking user"));
  EXPECT_EQ(broker.connections(), 0);
}

}  // namespace
}  // namespace jitgate::sudo
