// Pure formatting for the approver commands (`jitgate requests|show|approve|deny`).
//
// Everything a requester controls (command, reason, cwd, tty, even user and
// host names as the PAM host reported them) reaches the approver's terminal
// through these functions, so each string from the broker is passed through
// EscapeForTerminal first: an approver must see exactly what they approve,
// and a request must not be able to rewrite the screen (ESC sequences,
// carriage returns, bidi overrides that reorder the text). All functions are
// pure (the current time is a parameter) and thread-compatible.
#ifndef JITGATE_CLI_APPROVER_FORMAT_H_
#define JITGATE_CLI_APPROVER_FORMAT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/text.h"
#include "core/wire/messages.h"

namespace jitgate::cli {

// The broker's socket: the --socket flag if given, else $JITGATE_SOCKET if set
// and non-empty, else the default /run/jitgate/jitgated.sock.
std::string ResolveSocketPath(const std::optional<std::string>& flag, const char* env_value);

inline constexpr char kDefaultSocketPath[] = "/run/jitgate/jitgated.sock";

// Makes untrusted bytes safe to print on a terminal. Printable ASCII and valid,
// harmless UTF-8 pass unchanged; C0 controls, DEL and every byte of an invalid
// or overlong UTF-8 sequence become \xNN; C1 controls and the invisible or
// reordering code points (bidi embeddings, overrides and isolates, zero-width
// characters, line/paragraph separators, BOM) become \u{XXXX}. Backslashes are
// left alone so that commands read as typed; the escapes are therefore
// unambiguous only about what is *not* printed raw, which is the property
// that matters to an approver.
// (core/base/text.h, shared with the sudo plugin.)
using ::jitgate::EscapeForTerminal;

// A short human duration: "42s", "4m12s", "1h02m", "3d04h". Negative values
// are treated as 0.
std::string FormatDuration(int64_t seconds);

// When a request expires, relative to now: "expires in 4m12s", "expired 3s ago"
// (for pending requests), or "" for requests that are no longer pending.
std::string FormatExpiry(const wire::RequestInfo& r, uint64_t now);

// "2026-11-25 20:21:48 UTC".
std::string FormatUtc(uint64_t unix_seconds);

// Number of approve votes in r.votes.
int CountApprovals(const wire::RequestInfo& r);

// One line per request (no trailing newline), for `jitgate requests`:
//   7f3a9c02  pending   sudo    alice → root@db1  systemctl restart nginx  (0/1, expires in 4m12s)
std::string FormatRequestLine(const wire::RequestInfo& r, uint64_t now);

// The full, labelled view of a request shown by `show`, `approve` and `deny`:
// service, user → target_user@host, from, tty, command, cwd, reason, filed by,
// policy approvers, votes, created and expiry, digest. Ends with a newline.
std::string FormatRequestDetail(const wire::RequestInfo& r, uint64_t now);

// The request as a JSON object for scripts. Strings that are not valid UTF-8
// have invalid bytes replaced by U+FFFD (the digest is exact regardless);
// control characters are JSON-escaped by the serializer, so the output is
// terminal-safe.
nlohmann::json RequestToJson(const wire::RequestInfo& r);

// Serializes j on one line without throwing on invalid UTF-8.
std::string DumpJson(const nlohmann::json& j);

// What the approver was trying to do, for error messages.
enum class ApproverAction { kList, kShow, kApprove, kDeny, kFollow };

// One line (without the "jitgate: " prefix) for a broker Error answering an
// approver command about `id` (the id or prefix typed, or the full id once
// known), e.g. "you cannot approve your own request 7f3a9c02".
std::string DescribeBrokerError(const wire::Error& e, ApproverAction action, std::string_view id);

// Normalizes an id or prefix typed by an approver to the wire's alphabet
// (lower case; the broker folds i/l/o itself). Returns nullopt unless the
// result is 4-32 characters of [0-9a-z].
std::optional<std::string> NormalizeIdSelector(std::string_view typed);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_APPROVER_FORMAT_H_
