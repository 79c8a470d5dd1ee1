// The auditor's subcommands of the jitgate CLI (PRODUCT.md F5, F6;
// docs/auditor.md):
//
//   jitgate sessions [--store DIR] [--json] [--user U] [--target T] [--since TIME]
//   jitgate replay SESSION [--store DIR] [--speed X] [--idle-limit T] [--from T]
//                  [--no-safe] [--raw]
//   jitgate watch SESSION [--store DIR]
//   jitgate export SESSION --format asciicast [--out FILE] [--store DIR]
//   jitgate export SESSION --bundle FILE [--store DIR]   (cli/bundle.h)
//   jitgate search TEXT [--store DIR] [--json] [-i] [--user U] [--target T]
//                  [--since TIME] [--max N]
//
// All read the store directory directly and only read it (like `jitgate
// verify`), so they work while the broker appends; the default store is
// /var/lib/jitgate/store. SESSION is a session id or a unique prefix of at
// least 4 characters. Each function returns the exit code: 0 done, 1 failed
// (one line on the error stream), 2 usage error, 128+N when replay or watch
// was stopped by signal N; search returns 0 with or without matches, and 1
// (after showing what it found) if a session could be read only in part. Boost.Program_options errors are thrown and turned
// into exit code 2 by main().
//
// replay and watch write the recorded output through SafeFilter (cli/replay.h)
// unless --no-safe: a recording is untrusted input to the auditor's terminal.
#ifndef JITGATE_CLI_SESSION_COMMANDS_H_
#define JITGATE_CLI_SESSION_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/replay.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "recorder/recording.h"

namespace jitgate::cli {

inline constexpr char kDefaultStoreDir[] = "/var/lib/jitgate/store";

// Where the session commands read and write; DefaultSessionIo() fills it from
// the process, tests inject.
struct SessionIo {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  Clock* clock = nullptr;
  // Standard output is a terminal: replay checks its size, safe mode resets
  // attributes at the end, and --no-safe warns.
  bool out_is_terminal = false;
  uint16_t terminal_cols = 0, terminal_rows = 0;  // of standard output; 0 unknown
  // Makes the control that replay and watch wait through. Unset: the real
  // terminal (keys from standard input in cbreak mode when it is a terminal,
  // SIGINT/SIGTERM/SIGHUP/SIGQUIT quit, Ctrl-Z suspends; the terminal mode and
  // signal dispositions are restored when the control is destroyed, and by
  // the signal handlers themselves).
  std::function<StatusOr<std::unique_ptr<PlaybackControl>>()> make_control = nullptr;
  // How often watch looks for new entries.
  int64_t watch_poll_nanos = 200'000'000;
};

// A SessionIo for this process: std::cout, std::cerr, the real clock,
// isatty(1) and TIOCGWINSZ of standard output.
SessionIo DefaultSessionIo();

int RunSessions(const std::vector<std::string>& args, const SessionIo& io);
int RunReplay(const std::vector<std::string>& args, const SessionIo& io);
int RunWatch(const std::vector<std::string>& args, const SessionIo& io);
int RunExport(const std::vector<std::string>& args, const SessionIo& io);
// Every occurrence of TEXT in the typed input or the output of the sessions
// (cli/search.h), with its time offset and context:
//   SESSION  +SECONDS.mmms  input|output  USER  LOGIN@TARGET  before[[match]]after
int RunSearch(const std::vector<std::string>& args, const SessionIo& io);

// --- pure parts, exposed for tests ------------------------------------------

// ParseSinceTime reads `--since`: an RFC 3339 time ("2026-01-02T15:04:05Z",
// "2026-01-02 15:04:05.5+02:00"), a date ("2026-01-02", midnight UTC), or a
// duration meaning that long before now ("2h", "30m", "7d", "90"). Returns
// Unix nanoseconds; kInvalidArgument with a one-line reason otherwise.
StatusOr<int64_t> ParseSinceTime(std::string_view text, int64_t now_unix_nanos);

// True if s was running at or after since: it is live, or it ended at or
// after since (which includes every session that started after since).
bool SessionActiveSince(const recorder::SessionInfo& s, int64_t since_unix_nanos);

// The `jitgate sessions` table, oldest session first, with a header line:
//   SESSION  USER  LOGIN@TARGET  FROM  START (UTC)  DURATION  EXIT  REQUEST
// DURATION is "live" while no session_end is recorded; EXIT is the status,
// "SIG<name>", "-" while live, or "?" if unknown. Every recorded string is
// escaped for the terminal. Ends with a newline.
std::string FormatSessionTable(const std::vector<recorder::SessionInfo>& sessions);

// Every SessionInfo field under its own name, plus "start_time" and
// "end_time" (RFC 3339 UTC, end_time null while live).
nlohmann::ordered_json SessionToJson(const recorder::SessionInfo& s);

// "exit 0", "signal TERM" or "exit status unknown", with the end reason in
// parentheses unless it is "closed": "exit 0 (expired)".
std::string DescribeSessionEnd(const recorder::SessionInfo& s);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_SESSION_COMMANDS_H_
