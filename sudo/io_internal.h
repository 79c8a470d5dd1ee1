// The pure parts of the sudo I/O plugin (jitgate_io in jitgate_sudo.so):
// plugin options, the session metadata built from sudo's arrays, how sudo's
// five data callbacks map onto the recording's streams, and the session's
// end from sudo's close(). Kept apart from the C ABI in io_plugin.cc so that
// they can be unit-tested without sudo. No exceptions are thrown except
// std::bad_alloc, which the C ABI trampolines catch. Thread-compatible.
#ifndef JITGATE_SUDO_IO_INTERNAL_H_
#define JITGATE_SUDO_IO_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/status.h"
#include "core/wire/messages.h"
#include "recorder/recording.h"

namespace jitgate::sudo {

// The recorder name in session_start (docs/protocol.md §4.4).
inline constexpr char kIoRecorderName[] = "sudo";
inline constexpr int64_t kDefaultIoTimeoutSeconds = 30;
inline constexpr int64_t kMaxIoTimeoutSeconds = 3600;
// Connecting to the broker never waits longer than this, whatever timeout=.
inline constexpr int64_t kMaxConnectSeconds = 10;
// Records reach the broker at most flush_ms after sudo passed them on.
inline constexpr int64_t kDefaultFlushMs = 200;
inline constexpr int64_t kMinFlushMs = 10;
inline constexpr int64_t kMaxFlushMs = 60'000;

struct IoOptions {
  std::string socket = "/run/jitgate/jitgated.sock";
  // Spool and forward (docs/jitgate-rec.md "Spool and forward"): every chunk
  // goes to DIR first, and a session whose broker is away runs on and is
  // delivered later (`jitgate-rec --forward-spool`). "" = no spool: no
  // broker, no command.
  std::string spool;
  // How long a recording call may wait for the broker (connect, the ack
  // window, the one reconnect, the close) before the session fails.
  int64_t timeout_seconds = kDefaultIoTimeoutSeconds;
  // How long recorded data may wait before it is sent to the broker (the
  // delay `jitgate watch` sees); longer means fewer, fuller chunks.
  int64_t flush_ms = kDefaultFlushMs;
};

// Parses sudo's plugin_options array (NULL-terminated; may be NULL):
// `socket=PATH spool=DIR timeout=SECONDS flush=MS`, later words overriding earlier
// ones. InvalidArgument naming the word for an unknown option, a relative
// socket or spool path, a timeout that is not an integer in 1..kMaxIoTimeoutSeconds,
// or a flush interval that is not one in kMinFlushMs..kMaxFlushMs.
StatusOr<IoOptions> ParseIoOptions(const char* const* options);

// The callback sudo handed the bytes to.
enum class SudoStream { kTtyIn, kStdin, kTtyOut, kStdout, kStderr };

// The recording (format v1) has one input and one output stream, as a
// terminal does: terminal and standard input are what the user sent
// (kInput); terminal output, standard output and standard error are what the
// command sent back (kOutput), interleaved in the order sudo read them.
recorder::Stream RecordStream(SudoStream s);

// The name of the signal sudo reports to log_suspend, without "SIG" ("TSTP",
// "CONT"), or its number if it has none: a Stream::kSuspend record's data.
std::string SuspendSignalName(int signo);

// The OpenSession for one command (docs/protocol.md §4.4): recorder "sudo";
// request_id as given (the approval, or ""); user = user_info user=; login =
// the run-as user; host and target = user_info host= (else fallback_host);
// command = the exact command line as the approval plugin shows it
// (approval_internal.h CommandLine); term = TERM from the command's
// environment (user_env); cols/rows = user_info cols=/lines= when sudo has a
// terminal (tty=); remote_addr = the first word of ssh_client (the invoking
// user's $SSH_CLIENT) if it looks like an address, else "". start time 0 (the
// caller sets it). Fails like BuildRequestFields (approval_internal.h):
// InvalidArgument if sudo gave no user or command, OutOfRange if a field
// exceeds its wire cap.
StatusOr<wire::OpenSession> BuildOpenSession(const char* const* user_info,
                                             const char* const* command_info,
                                             const char* const* argv, const char* const* user_env,
                                             std::string_view fallback_host,
                                             std::string_view request_id,
                                             std::string_view ssh_client);

// The end of the session from sudo's close(exit_status, error): error != 0
// means the command could not be run (errno; no exit status, end_reason
// "not run: <strerror>"); otherwise exit_status is a wait(2) status: the
// exit code, or the signal's name ("TERM") if the command was killed.
// end_reason is "closed"; the caller overrides it (terminated, recording
// failed) and fills in the byte counts and the end time.
wire::CloseSession SessionEnd(int wait_status, int error);

// "TERM" for SIGTERM ("SIG" dropped), or the number as text.
std::string SignalName(int sig);

}  // namespace jitgate::sudo

#endif  // JITGATE_SUDO_IO_INTERNAL_H_
