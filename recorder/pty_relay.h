// RunRelay: runs one command and relays its terminal (or its stdin, stdout
// and stderr) to the caller's descriptors, handing every byte that crosses to
// a record callback. The I/O loop of jitgate-rec (PRODUCT.md F5, modelled on
// tlog-rec-session), kept apart from the broker connection so that it can be
// tested with pipes, a pty and a callback that collects records.
//
// With use_pty the child runs on a new pty (openpty, fork, login_tty): the
// window size and termios of in_fd (if it is a tty) are copied to it, in_fd
// is put in raw mode for the duration (restored on every return path), and
// SIGWINCH resizes the pty and records a kResize. Without use_pty the child
// gets three pipes; stdout and stderr stay separate (out_fd, err_fd) and are
// both recorded as kOutput.
//
// Memory is bounded: at most one read (kRelayBufferSize) is pending per
// direction, and nothing more is read from a source until it has been
// written on. A callback that blocks (RecordingClient's window is full)
// stops the loop, so the child is slowed down instead of buffered.
//
// Fail closed: if a callback returns an error, the child is sent SIGHUP,
// then SIGKILL after kill_grace_ms, it is reaped, and the callback's error
// is returned; nothing more is relayed.
//
// Ending on request (`jitgate terminate`): once end_requested returns a
// line, the relay shows it to the user, stops passing input on, hangs up
// the child and kills it after end_grace_ms, and goes on recording what the
// child still says until it exits.
//
// RunRelay installs handlers for SIGCHLD, SIGWINCH, SIGHUP and SIGTERM and
// ignores SIGPIPE while it runs, restoring the previous dispositions before
// it returns. It is therefore not thread-safe, and only one may run at a time
// in a process. SIGHUP or SIGTERM to us hangs up the child (SIGHUP) and the
// relay continues until it exits.
#ifndef JITGATE_RECORDER_PTY_RELAY_H_
#define JITGATE_RECORDER_PTY_RELAY_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "recorder/recording.h"

namespace jitgate::recorder {

// The most one turn of the relay reads from a source (a pty hands over at
// most 4 KiB per read; the relay reads on until this much or nothing is
// left) and so the largest record it makes: one record per turn, one poll,
// one write on, one queue entry.
inline constexpr size_t kRelayBufferSize = 32 * 1024;
static_assert(kRelayBufferSize <= kMaxRecordData, "a full read is one record");

struct RelayOptions {
  // The program to execv and its argv (argv[0] may be "-bash" for a login
  // shell). argv must not be empty.
  std::string path;
  std::vector<std::string> argv;
  bool use_pty = true;
  // The user's side. in_fd is only read, out_fd/err_fd only written; none is
  // closed or made non-blocking. err_fd is unused with use_pty.
  int in_fd = 0;
  int out_fd = 1;
  int err_fd = 2;
  // use_pty and in_fd a tty: put in_fd in raw mode while relaying.
  bool raw_input = true;
  // use_pty and in_fd not a tty: the pty's window size (0 = leave alone).
  uint16_t cols = 0, rows = 0;
  // Record times are nanoseconds since `start` (default: when RunRelay is
  // called); they never decrease.
  std::optional<std::chrono::steady_clock::time_point> start;

  // Called for every chunk of input (what the user typed or piped), output,
  // and window change, in order, before the bytes are passed on. The record
  // is the callback's to keep.
  std::function<Status(Record)> on_record;
  // Called at most every flush_interval_ms while records are being produced,
  // and once at the end (jitgate-rec: RecordingClient::Flush).
  std::function<Status()> on_flush;
  int64_t flush_interval_ms = 200;
  // An extra descriptor to watch (jitgate-rec: RecordingClient::fd(), asked
  // again on every turn since a reconnect changes it; -1 = none); on_readable
  // is called when it is readable or hung up (RecordingClient::Poll).
  std::function<int()> extra_fd;
  std::function<Status()> on_extra_readable;
  // Called every tick_interval_ms whatever happens (jitgate-rec:
  // RecordingClient::Tick, which retries a lost broker and syncs the
  // spool while the session is idle); its error fails the relay like the
  // other callbacks'.
  std::function<Status()> on_tick;
  int64_t tick_interval_ms = 1000;
  // After a failure: how long the child has between SIGHUP and SIGKILL.
  int64_t kill_grace_ms = 1000;
  // Asked after every turn of the loop (so after on_extra_readable): the
  // line to tell the user if the session must end now, else nullopt
  // (jitgate-rec: RecordingClient::terminated_by()). The line (no newline)
  // is written to out_fd with a pty (in raw mode, so CR LF around it), to
  // err_fd without, and recorded as output; then the user's input is no
  // longer read, the child (with a pty, its process group) gets SIGHUP, and
  // SIGKILL end_grace_ms later if it has not exited.
  std::function<std::optional<std::string>()> end_requested;
  int64_t end_grace_ms = 2000;
};

struct RelayResult {
  pid_t pid = -1;
  bool signaled = false;   // killed by term_signal
  int exit_status = 0;     // when !signaled
  int term_signal = 0;     // when signaled
  uint64_t bytes_in = 0;   // recorded as kInput
  uint64_t bytes_out = 0;  // recorded as kOutput
  bool ended_on_request = false;  // end_requested ended it
  // The shell convention: exit_status, or 128 + term_signal.
  int ShellStatus() const { return signaled ? 128 + term_signal : exit_status; }
};

// Runs options.path under the relay until the child has exited and its
// output has been drained (output still held by a background process that
// outlives the child is read only as far as it is already available).
// Errors: kInvalidArgument for bad options; the OS error if the pty, pipes
// or fork fail (nothing has run then); the callbacks' first error (the child
// has been killed and reaped). An exec failure in the child is exit status
// 127 with a line on the child's stderr, like a shell.
StatusOr<RelayResult> RunRelay(const RelayOptions& options);

// SignalName returns "TERM" for SIGTERM and so on ("SIG" dropped), or the
// number as text for a signal without a name.
std::string SignalName(int sig);

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_PTY_RELAY_H_
