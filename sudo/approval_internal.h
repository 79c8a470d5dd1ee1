// The pure parts of the sudo approval plugin (jitgate_approval.so): plugin
// options, the request fields built from sudo's arrays, shell quoting of the
// command line, and text made safe for the user's terminal. Kept apart from
// the C ABI in approval_plugin.cc so that they can be unit-tested without
// sudo. No exceptions are thrown except std::bad_alloc, which the C ABI
// trampolines catch. Thread-compatible.
#ifndef JITGATE_SUDO_APPROVAL_INTERNAL_H_
#define JITGATE_SUDO_APPROVAL_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/status.h"
#include "core/base/text.h"
#include "core/wire/request.h"
#include "core/wire/requester.h"

namespace jitgate::sudo {

inline constexpr char kDefaultSocket[] = "/run/jitgate/jitgated.sock";
inline constexpr int64_t kDefaultTimeoutSeconds = 300;
inline constexpr int64_t kMaxTimeoutSeconds = 86400;

// How the plugin deals with a reason (`reason=` on the sudo.conf Plugin line).
enum class ReasonMode {
  kRequired,  // ask before filing the request; an empty answer refuses
  kOptional,  // ask only when the broker's policy wants one (NeedReason)
  kNone,      // never ask (the broker denies if its policy requires one)
};

struct PluginOptions {
  std::string socket = kDefaultSocket;
  int64_t timeout_seconds = kDefaultTimeoutSeconds;
  ReasonMode reason = ReasonMode::kOptional;
  bool debug = false;
};

// Parses sudo's plugin_options array (NULL-terminated; may itself be NULL):
// `socket=PATH timeout=SECONDS reason=required|optional|none debug`, later
// words overriding earlier ones. Fails with InvalidArgument naming the word
// for an unknown option, a relative socket path, or a timeout that is not an
// integer in 1..86400.
StatusOr<PluginOptions> ParsePluginOptions(const char* const* options);

// Shared by both plugins' option parsers. word is the whole `key=value` (for
// the message), value its value. An absolute path; an integer in min..max
// (unit names it in the message: "timeout must be 1 to 3600 seconds: 'timeout=0'").
StatusOr<std::string> ParsePathOption(std::string_view key, std::string_view word,
                                      std::string_view value);
StatusOr<int64_t> ParseIntOption(std::string_view key, std::string_view word,
                                 std::string_view value, int64_t min, int64_t max,
                                 std::string_view unit);

// The value of `key=` in one of sudo's NULL-terminated "key=value" arrays
// (user_info, command_info, settings), or nullopt. The first match wins.
std::optional<std::string_view> LookupKey(const char* const* array, std::string_view key);

// One argument quoted for a POSIX shell so that it reads back as exactly these
// bytes: bare if it is made only of [A-Za-z0-9_@%+=:,./-], in single quotes if
// it is printable text, otherwise bash's $'...' with \xNN for every control
// byte, non-ASCII byte, and '\\' / '\'' for backslash and quote. The result
// therefore never contains a control character or a byte that is not
// printable ASCII or harmless UTF-8.
std::string ShellQuote(std::string_view arg);

// The exact command line as it will run: the quoted absolute command path,
// then each quoted argument. If argv[0] is neither the path nor its basename
// (a login shell's "-bash", a multi-call binary), the line starts with
// `exec -a ARGV0 ` so that the approver sees the name the program gets.
// argv is sudo's run_argv (NULL-terminated; may be NULL).
std::string CommandLine(std::string_view command_path, const char* const* argv);

// The RequestFields for one sudo command (docs/protocol.md §3.1):
// service "sudo"; user = user_info user=; target_user = command_info
// runas_user= (else the name of runas_uid=, else "root"); host = user_info
// host= (else fallback_host); tty = user_info tty=; command = CommandLine of
// command_info command= and run_argv; cwd = command_info cwd= (else
// user_info cwd=); reason, remote_addr empty. Fails with InvalidArgument if
// sudo gave no user or command, and OutOfRange if a field exceeds its wire
// cap ("the command line is 40000 bytes; jitgate accepts at most 32768").
StatusOr<wire::RequestFields> BuildRequestFields(const char* const* user_info,
                                                 const char* const* command_info,
                                                 const char* const* run_argv,
                                                 std::string_view fallback_host);

// Text from the broker (messages, approvers' comments) is escaped with
// EscapeForTerminal and waits are spelled with FormatSeconds, both from
// core/base/text.h.

// The one line that tells the user why access was not granted (without the
// "jitgate: " prefix): the broker's decision message ("denied by carol: not
// during the freeze"), or the requester's error ("jitgate broker unreachable
// at ...", "no decision on request 7f3a9c02 within 300 s"). Precondition:
// !Granted(result).
std::string RefusalMessage(const wire::RequesterResult& result);

}  // namespace jitgate::sudo

#endif  // JITGATE_SUDO_APPROVAL_INTERNAL_H_
