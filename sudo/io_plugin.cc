// jitgate_io: a sudo I/O plugin (sudo_plugin(5), "I/O plugin API") that
// records every byte of a sudo session into the jitgate broker's signed store
// (PRODUCT.md F5): terminal input and output, standard input, output and
// error when they are not a terminal, and window size changes, linked to the
// approval the command ran under (session_link.h). Loaded from /etc/sudo.conf
// with the approval plugin from the same file (docs/sudo.md):
//
//   Plugin jitgate_approval /usr/lib/jitgate/jitgate_sudo.so timeout=300
//   Plugin jitgate_io /usr/lib/jitgate/jitgate_sudo.so
//
// Fail closed: open() fails, so sudo runs nothing, if the session cannot be
// recorded; once recording fails mid-session every data callback rejects its
// data, which makes sudo kill the command and drop the unrecorded output (the
// callbacks return 0, "reject", not -1: on -1 sudo merely disables the
// failing callback and shows the rest of the output unrecorded).
//
// The broker connection is watched in sudo's own event loop (sudo_plugin(5),
// event_alloc), so that the broker is heard even while the session is quiet:
// a `jitgate terminate` ends the command at once (sudo's event loop is broken,
// which makes sudo kill it), and a broker that restarted is resumed within
// seconds of being back rather than at the session's next I/O.
//
// Every entry point is a noexcept trampoline; only the plugin structs are
// exported (jitgate_sudo.map). sudo calls the plugin from one thread; the
// broker connection is close-on-exec, so the command never inherits it.
#include <sudo_plugin.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/base/clock.h"
#include "core/base/text.h"
#include "recorder/recording_client.h"
#include "sudo/approval_internal.h"
#include "sudo/io_internal.h"
#include "sudo/session_link.h"

extern "C" {
extern struct io_plugin jitgate_io;
}

namespace jitgate::sudo {
namespace {

constexpr char kVersion[] = "0.1.0";
constexpr char kClientName[] = "jitgate_io 0.1.0";

using Steady = std::chrono::steady_clock;

// One recorded sudo session, from open() to close().
struct IoState {
  sudo_printf_t printf = nullptr;
  IoOptions options;
  // Null when there is nothing to record (sudo -V opens without a command).
  std::unique_ptr<recorder::RecordingClient> client;
  Steady::time_point start;
  Steady::time_point last_flush;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  bool pending = false;  // records added since the last Flush
  // Set once recording failed or the session was terminated: the one line
  // the user was shown. From then on every data callback rejects.
  std::string failure;
  bool terminated = false;
  // A one-shot timer in sudo's event loop that flushes pending records, so
  // that a quiet session still reaches the store (and `jitgate watch`)
  // within options.flush_ms. Null if sudo offers no events (API < 1.15).
  sudo_plugin_event* timer = nullptr;
  bool timer_armed = false;
  // A persistent read event on the broker connection (watched_fd, -1 when
  // not watching: disconnected, or recording has failed).
  sudo_plugin_event* reader = nullptr;
  int watched_fd = -1;
  // sudo has no terminal and runs the command on pipes (exec_nopty).
  bool no_tty = false;
  bool loop_broken = false;
  bool ended = false;  // the session's end was sent (EndSession)
};

void EndSession(IoState& state, int exit_status, int error);

IoState* g_io = nullptr;

// *errstr must outlive the call (sudo hands it to the audit plugins).
char g_errbuf[1024];

const char* SetError(const std::string& message) {
  std::snprintf(g_errbuf, sizeof(g_errbuf), "%s", message.c_str());
  return g_errbuf;
}

void PrintError(sudo_printf_t printf, const std::string& line) {
  if (printf != nullptr) printf(SUDO_CONV_ERROR_MSG, "%s\n", line.c_str());
}

int64_t SinceStartNs(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - g_io->start).count();
}

// Ends recording for good: the first failure is printed once and becomes
// every later callback's error string.
void Fail(const std::string& line) {
  if (!g_io->failure.empty()) return;
  g_io->failure = line;
  PrintError(g_io->printf, line);
}

std::string RecordingFailed(const Status& s) {
  return "jitgate: session ended: recording failed: " + EscapeForTerminal(s.message());
}

// After each call that may have read from the broker: a `jitgate terminate`
// ends the session at once (the command is killed through the rejection).
void CheckTerminated() {
  const recorder::RecordingClient& c = *g_io->client;
  if (!c.terminated_by().has_value() || !g_io->failure.empty()) return;
  g_io->terminated = true;
  const std::string& comment = c.terminate_comment();
  Fail("jitgate: session terminated by " + EscapeForTerminal(*c.terminated_by()) +
       (comment.empty() ? "" : ": " + EscapeForTerminal(comment)));
}

void FlushNow(Steady::time_point now) {
  Status s = g_io->client->Flush();
  g_io->pending = false;
  g_io->last_flush = now;
  if (!s.ok()) Fail(RecordingFailed(s));
}

void ArmTimer();
void WatchBroker();

// Ends the session from an event callback, which cannot reject data, or
// after a rejection without a pty: breaks sudo's event loop, and sudo kills
// the command (exec_pty and exec_nopty alike) but cannot report how it
// ended. Without a pty, sudo 1.9 then does not call close() either ("sudo:
// unexpected child termination condition: 0"), so the end is recorded here,
// before the command is killed.
void EndNow() {
  if (g_io->timer == nullptr || g_io->loop_broken) return;
  g_io->loop_broken = true;
  if (g_io->no_tty) EndSession(*g_io, 0, 0);
  g_io->timer->loopbreak(g_io->timer);
}

// Runs an event callback's body: events cannot report errors, so the first
// failure (out of memory included) is kept for the next data callback, and
// one that ended recording ends the session now (EndNow).
template <typename Body>
void InEvent(Body body) noexcept {
  try {
    if (g_io == nullptr || g_io->client == nullptr) return;
    body();
    if (g_io->failure.empty()) CheckTerminated();
    WatchBroker();
    if (!g_io->failure.empty()) EndNow();
  } catch (...) {
    if (g_io != nullptr && g_io->failure.empty()) g_io->failure = "jitgate: out of memory";
  }
}

// Tick reads what the broker sent or, while it is away, tries it again
// (paced by RecordingClient).
void TickBroker() {
  if (!g_io->failure.empty()) return;
  if (Status s = g_io->client->Tick(); !s.ok()) Fail(RecordingFailed(s));
}

// The broker has spoken (an acknowledgement, a termination) or closed the
// connection: read it now, even if the session is quiet.
void OnBrokerReadable(int /*fd*/, int /*what*/, void* /*closure*/) noexcept {
  InEvent(TickBroker);
}

// Keeps the read event on the connection the client has now (a reconnect
// changes it), and the timer running while the broker is away so that the
// client retries it. Stops watching once recording has failed.
void WatchBroker() {
  if (g_io->reader == nullptr) return;
  int fd = g_io->failure.empty() ? g_io->client->fd() : -1;
  if (fd != g_io->watched_fd) {
    if (g_io->watched_fd >= 0) g_io->reader->del(g_io->reader);
    g_io->watched_fd = -1;
    if (fd >= 0 &&
        g_io->reader->set(g_io->reader, fd, SUDO_PLUGIN_EV_READ | SUDO_PLUGIN_EV_PERSIST,
                          OnBrokerReadable, nullptr) == 1 &&
        g_io->reader->add(g_io->reader, nullptr) == 1) {
      g_io->watched_fd = fd;
    }
  }
  if (fd < 0 && g_io->failure.empty()) ArmTimer();
}

// Flushes what is pending; while the broker is away (spool mode, or a
// connection it closed while the session was quiet) tries it again, and
// WatchBroker keeps the timer running until it is back.
void OnFlushTimer(int /*fd*/, int /*what*/, void* /*closure*/) noexcept {
  InEvent([] {
    g_io->timer_armed = false;
    if (g_io->failure.empty() && g_io->pending) FlushNow(Steady::now());
    if (!g_io->client->connected()) TickBroker();
  });
}

void ArmTimer() {
  if (g_io->timer == nullptr || g_io->timer_armed) return;
  int64_t ms = g_io->options.flush_ms;
  timespec in{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000 * 1'000'000)};
  g_io->timer_armed = g_io->timer->add(g_io->timer, &in) == 1;
}

// Returns what the data callbacks return: 1 to pass the data on, 0 to
// reject it (sudo then terminates the command).
int Record(recorder::Stream stream, const char* buf, unsigned int len, const char** errstr) {
  if (g_io == nullptr) {
    *errstr = SetError("jitgate: I/O plugin used before open");
    return 0;
  }
  if (g_io->client == nullptr) return 1;  // sudo -V: nothing runs
  if (g_io->failure.empty() && len > 0) {
    Steady::time_point now = Steady::now();
    recorder::Record r;
    r.stream = stream;
    r.time_ns = SinceStartNs(now);
    r.data.assign(reinterpret_cast<const uint8_t*>(buf),
                  reinterpret_cast<const uint8_t*>(buf) + len);
    Status s = g_io->client->Add(std::move(r));
    if (!s.ok()) {
      Fail(RecordingFailed(s));
    } else {
      (stream == recorder::Stream::kInput ? g_io->bytes_in : g_io->bytes_out) += len;
      g_io->pending = true;
      if (now - g_io->last_flush >= std::chrono::milliseconds(g_io->options.flush_ms)) {
        FlushNow(now);
      } else {
        ArmTimer();
      }
    }
    if (g_io->failure.empty()) CheckTerminated();
    WatchBroker();
  }
  if (g_io->failure.empty()) return 1;
  *errstr = SetError(g_io->failure);
  // Without a pty, sudo 1.9 kills the command on a rejection but then
  // forgets its pid (exec_nopty: cmnd_pid = -1), so the exit is never
  // noticed and sudo would wait forever: end sudo's event loop as well.
  if (g_io->no_tty) EndNow();
  return 0;
}

int Open(unsigned int version, sudo_printf_t plugin_printf, char* const user_info[],
         char* const command_info[], char* const argv[], char* const user_env[],
         char* const plugin_options[], const char** errstr) {
  if (SUDO_API_VERSION_GET_MAJOR(version) != SUDO_API_VERSION_MAJOR) {
    *errstr = SetError("jitgate: incompatible sudo plugin API version " +
                       std::to_string(SUDO_API_VERSION_GET_MAJOR(version)) + "." +
                       std::to_string(SUDO_API_VERSION_GET_MINOR(version)));
    return -1;
  }
  StatusOr<IoOptions> options = ParseIoOptions(plugin_options);
  if (!options.ok()) {
    std::string message = "jitgate: bad Plugin line in sudo.conf: " + options.status().message();
    PrintError(plugin_printf, message);
    *errstr = SetError(message);
    return -1;
  }
  delete g_io;
  g_io = nullptr;
  auto state = std::make_unique<IoState>();
  state->printf = plugin_printf;
  state->options = *std::move(options);
  // `sudo -V` opens I/O plugins without a command (command_info NULL) only
  // to show their versions: nothing runs, nothing to record.
  if (command_info == nullptr) {
    g_io = state.release();
    return 1;
  }
  auto refuse = [&](const std::string& why) {
    std::string message = "jitgate: session not recorded: " + why + "; command not run";
    PrintError(plugin_printf, message);
    *errstr = SetError(message);
    return -1;  // sudo runs nothing and calls no close()
  };

  char hostname[HOST_NAME_MAX + 1] = {};
  if (gethostname(hostname, sizeof(hostname) - 1) != 0) hostname[0] = '\0';
  const char* ssh_client = std::getenv("SSH_CLIENT");
  StatusOr<wire::OpenSession> meta =
      BuildOpenSession(user_info, command_info, argv, user_env, hostname, ApprovedRequest(),
                       ssh_client != nullptr ? ssh_client : "");
  if (!meta.ok()) return refuse(EscapeForTerminal(meta.status().message()));
  state->start = Steady::now();
  state->last_flush = state->start;
  meta->start_unix_nanos = static_cast<uint64_t>(RealClock()->NowUnixNanos());

  recorder::RecordingClientOptions copts;
  copts.socket_path = state->options.socket;
  copts.client_name = kClientName;
  copts.connect_timeout_ms = std::min(state->options.timeout_seconds, kMaxConnectSeconds) * 1000;
  copts.ack_timeout_ms = state->options.timeout_seconds * 1000;
  copts.spool_dir = state->options.spool;
  copts.resume_when_idle = true;  // WatchBroker hears a closed connection at once
  copts.retry_interval_ms = 1000;
  StatusOr<std::unique_ptr<recorder::RecordingClient>> client =
      recorder::RecordingClient::Open(copts, *meta);
  if (!client.ok()) return refuse(EscapeForTerminal(client.status().message()));
  state->client = *std::move(client);
  if (state->client->spooling() && !state->client->connected()) {
    PrintError(plugin_printf, "jitgate: recording to the local spool " + state->options.spool +
                                  " (" + EscapeForTerminal(state->client->disconnect_reason()) +
                                  "); it is delivered when the broker is back");
  }
  state->no_tty = LookupKey(user_info, "tty").value_or("").empty();
  if (meta->cols != 0 && meta->rows != 0) {
    // The first record is the initial window, as the format recommends. It
    // only fills the chunk builder (nothing is sent), so it fails only on a
    // bug; the broker then lists the session as live, without records.
    recorder::Record r;
    r.stream = recorder::Stream::kResize;
    r.cols = meta->cols;
    r.rows = meta->rows;
    Status s = state->client->Add(std::move(r));
    if (!s.ok()) return refuse(EscapeForTerminal(s.message()));
  }
  if (jitgate_io.event_alloc != nullptr) {
    sudo_plugin_event* ev = jitgate_io.event_alloc();
    if (ev != nullptr && ev->set(ev, -1, SUDO_PLUGIN_EV_TIMEOUT, OnFlushTimer, nullptr) == 1) {
      state->timer = ev;
      // The reader's fd and callback are set when it is added (WatchBroker).
      state->reader = jitgate_io.event_alloc();
    } else if (ev != nullptr) {
      ev->free(ev);
    }
  }
  g_io = state.release();
  // The events run once sudo's event loop does (while the command runs).
  WatchBroker();
  return 1;
}

// Records the session's end, once: from close(), or from EndNow when sudo
// will not call close().
void EndSession(IoState& state, int exit_status, int error) {
  if (state.client == nullptr || state.ended) return;
  state.ended = true;
  wire::CloseSession end = SessionEnd(exit_status, error);
  end.end_unix_nanos = static_cast<uint64_t>(RealClock()->NowUnixNanos());
  if (state.terminated) {
    end.end_reason = "terminated";
  } else if (!state.failure.empty()) {
    end.end_reason = "recording failed";
  }
  if (state.loop_broken) {
    // sudo never learnt how the command ended (see EndNow).
    end.has_exit_status = false;
    end.exit_status = 0;
    end.exit_signal.clear();
  }
  end.bytes_in = state.bytes_in;
  end.bytes_out = state.bytes_out;
  Status s = state.client->Close(end);
  // After a mid-session failure the user has been told already.
  if (!s.ok() && state.failure.empty()) {
    PrintError(state.printf,
               "jitgate: session end not recorded: " + EscapeForTerminal(s.message()));
  } else if (s.ok() && !state.client->delivered()) {
    PrintError(state.printf, "jitgate: session " + state.client->session_id() +
                                 " kept in the spool until the broker is back");
  }
}

void Close(int exit_status, int error) {
  if (g_io == nullptr) return;
  std::unique_ptr<IoState> state(g_io);
  g_io = nullptr;
  if (state->timer != nullptr) {
    if (state->timer_armed) state->timer->del(state->timer);
    state->timer->free(state->timer);
  }
  if (state->reader != nullptr) {
    if (state->watched_fd >= 0) state->reader->del(state->reader);
    state->reader->free(state->reader);
  }
  EndSession(*state, exit_status, error);
}

}  // namespace
}  // namespace jitgate::sudo

namespace {

using jitgate::sudo::g_io;
using jitgate::sudo::Record;
using jitgate::sudo::RecordStream;
using jitgate::sudo::SetError;
using jitgate::sudo::SudoStream;

int TrampolineOpen(unsigned int version, sudo_conv_t /*conversation*/, sudo_printf_t plugin_printf,
                   char* const /*settings*/[], char* const user_info[], char* const command_info[],
                   int /*argc*/, char* const argv[], char* const user_env[],
                   char* const plugin_options[], const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    return jitgate::sudo::Open(version, plugin_printf, user_info, command_info, argv, user_env,
                               plugin_options, errstr);
  } catch (...) {
    *errstr = SetError("jitgate: session not recorded: out of memory; command not run");
    return -1;
  }
}

void TrampolineClose(int exit_status, int error) noexcept {
  try {
    jitgate::sudo::Close(exit_status, error);
  } catch (...) {
    // Out of memory while closing: the broker lists the session as live.
  }
}

int TrampolineShowVersion(int /*verbose*/) noexcept {
  if (g_io != nullptr && g_io->printf != nullptr) {
    g_io->printf(SUDO_CONV_INFO_MSG, "jitgate I/O plugin version %s\n", jitgate::sudo::kVersion);
  }
  return 1;
}

int Log(SudoStream stream, const char* buf, unsigned int len, const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    return Record(RecordStream(stream), buf, len, errstr);
  } catch (...) {
    if (g_io != nullptr && g_io->failure.empty()) g_io->failure = "jitgate: out of memory";
    *errstr = SetError("jitgate: session ended: recording failed: out of memory");
    return 0;
  }
}

int TrampolineTtyIn(const char* buf, unsigned int len, const char** errstr) noexcept {
  return Log(SudoStream::kTtyIn, buf, len, errstr);
}
int TrampolineTtyOut(const char* buf, unsigned int len, const char** errstr) noexcept {
  return Log(SudoStream::kTtyOut, buf, len, errstr);
}
int TrampolineStdin(const char* buf, unsigned int len, const char** errstr) noexcept {
  return Log(SudoStream::kStdin, buf, len, errstr);
}
int TrampolineStdout(const char* buf, unsigned int len, const char** errstr) noexcept {
  return Log(SudoStream::kStdout, buf, len, errstr);
}
int TrampolineStderr(const char* buf, unsigned int len, const char** errstr) noexcept {
  return Log(SudoStream::kStderr, buf, len, errstr);
}

int TrampolineChangeWinsize(unsigned int lines, unsigned int cols, const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    if (g_io == nullptr || g_io->client == nullptr) return 1;
    if (!g_io->failure.empty()) {
      *errstr = SetError(g_io->failure);
      return -1;
    }
    jitgate::recorder::Record r;
    r.stream = jitgate::recorder::Stream::kResize;
    r.time_ns = jitgate::sudo::SinceStartNs(std::chrono::steady_clock::now());
    r.cols = static_cast<uint16_t>(std::min(cols, 0xffffu));
    r.rows = static_cast<uint16_t>(std::min(lines, 0xffffu));
    jitgate::Status s = g_io->client->Add(std::move(r));
    if (!s.ok()) {
      jitgate::sudo::Fail(jitgate::sudo::RecordingFailed(s));
      *errstr = SetError(g_io->failure);
      return -1;
    }
    g_io->pending = true;
    jitgate::sudo::ArmTimer();
    return 1;
  } catch (...) {
    *errstr = SetError("jitgate: session ended: recording failed: out of memory");
    return -1;
  }
}

// A suspend or a resume is a Stream::kSuspend record naming the signal
// ("TSTP", "CONT"). Flush, so that everything before the pause is in the
// store while the command is stopped.
int TrampolineLogSuspend(int signo, const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    if (g_io == nullptr || g_io->client == nullptr) return 1;
    if (g_io->failure.empty()) {
      jitgate::recorder::Record r;
      r.stream = jitgate::recorder::Stream::kSuspend;
      r.time_ns = jitgate::sudo::SinceStartNs(std::chrono::steady_clock::now());
      std::string name = jitgate::sudo::SuspendSignalName(signo);
      r.data.assign(name.begin(), name.end());
      jitgate::Status s = g_io->client->Add(std::move(r));
      if (!s.ok()) jitgate::sudo::Fail(jitgate::sudo::RecordingFailed(s));
      g_io->pending = true;
    }
    if (g_io->failure.empty() && g_io->pending) {
      jitgate::sudo::FlushNow(std::chrono::steady_clock::now());
    }
    if (g_io->failure.empty()) return 1;
    *errstr = SetError(g_io->failure);
    return -1;
  } catch (...) {
    *errstr = SetError("jitgate: session ended: recording failed: out of memory");
    return -1;
  }
}

}  // namespace

// The exported I/O plugin (jitgate_sudo.map), named on the sudo.conf Plugin
// line. Not const: sudo fills in event_alloc when it loads the plugin.
extern "C" {
__attribute__((visibility("default"))) struct io_plugin jitgate_io = {
    SUDO_IO_PLUGIN,
    SUDO_API_VERSION,
    TrampolineOpen,
    TrampolineClose,
    TrampolineShowVersion,
    TrampolineTtyIn,
    TrampolineTtyOut,
    TrampolineStdin,
    TrampolineStdout,
    TrampolineStderr,
    nullptr,  // register_hooks
    nullptr,  // deregister_hooks
    TrampolineChangeWinsize,
    TrampolineLogSuspend,
    nullptr,  // event_alloc: set by sudo
};
}  // extern "C"
