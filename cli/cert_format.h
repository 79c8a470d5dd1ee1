// Pure parsing and formatting for the certificate commands (`jitgate request`,
// `cert show`, `certs`, `revoke`, `ca`): command-line values in, text out.
//
// Every string that came from the broker or from a certificate is passed
// through EscapeForTerminal before it is returned for printing, so a hostile
// key id or principal cannot drive the terminal. All functions are pure (the
// current time and the time zone choice are parameters; local time reads
// the TZ environment) and thread-compatible.
#ifndef JITGATE_CLI_CERT_FORMAT_H_
#define JITGATE_CLI_CERT_FORMAT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "core/wire/messages.h"

namespace jitgate::cli {

// ParseDurationSeconds reads a duration typed on the command line: plain
// seconds ("90") or core/config's unit syntax ("90s", "10m", "1h30m", "2d").
// The result must be whole seconds in [1, max_seconds]. kInvalidArgument
// with a one-line reason otherwise ("bad duration '5x': ...").
StatusOr<int64_t> ParseDurationSeconds(std::string_view text, int64_t max_seconds);

// What `jitgate revoke ARG` names: a certificate serial or a request id
// (prefix). Exactly one of serial != 0 and !request_id.empty().
struct RevokeTarget {
  uint64_t serial = 0;
  std::string request_id;  // normalized (lower case), 4..32 of [0-9a-z]
};

// How to read the argument: by its shape, or forced by --serial / --request.
enum class RevokeArgKind { kGuess, kSerial, kRequest };

// ParseSerial accepts 1 to 20 decimal digits whose value fits in a uint64
// and is not zero; nullopt otherwise.
std::optional<uint64_t> ParseSerial(std::string_view text);

// ClassifyRevokeArgument: with kGuess, an argument ParseSerial accepts is a
// serial and anything else a request id or prefix; kSerial and kRequest
// insist on one reading. kInvalidArgument naming what was expected.
StatusOr<RevokeTarget> ClassifyRevokeArgument(std::string_view arg, RevokeArgKind kind);

// ShellQuote makes s one word for a POSIX shell, so the printed ssh command
// line can be pasted: s itself if it has only [A-Za-z0-9@%+=:,./_-] (and is
// not empty), else '...' with each ' as '\'', or -- if s holds a byte that
// must not reach a terminal raw -- bash's $'...' with such bytes as \xNN.
// The result is always printable.
std::string ShellQuote(std::string_view s);

// SplitList splits "a,b,c" at commas. Elements must be non-empty.
// kInvalidArgument naming `what` otherwise.
StatusOr<std::vector<std::string>> SplitList(std::string_view text, std::string_view what);

// IsSafeName: a login, host name or principal that can be used as a file
// name part and a certificate principal: 1..kMaxNameField printable
// characters without white space, '/', ',' or a leading '.' or '-'.
bool IsSafeName(std::string_view name);

// The default private key path of `jitgate request`: <home>/.ssh/jitgate/<login>@<host>.
std::string DefaultKeyPath(std::string_view home, std::string_view login, std::string_view host);

// The certificate path ssh and ssh-add look for next to a private key:
// key_path + "-cert.pub".
std::string CertPathForKey(std::string_view key_path);

// The certificate path for a host public key file: "/etc/ssh/x.pub" ->
// "/etc/ssh/x-cert.pub"; a name without ".pub" gets "-cert.pub" appended.
std::string CertPathForPublicKeyFile(std::string_view pub_path);

// "2026-11-25 20:21:48", in UTC or the local time zone.
std::string FormatTime(uint64_t unix_seconds, bool utc);

// The VALID column of `jitgate certs`: "revoked by carol", "expired",
// "not yet valid", "forever", "until 12:34:56" (later on the day of now) or
// "until 2026-12-25 12:34".
std::string FormatCertState(const wire::CertInfo& c, uint64_t now, bool utc);

// The table of `jitgate certs` (header, one row per certificate, columns
// SERIAL KIND PRINCIPALS KEY ID VALID REQUEST), each line ending in '\n'.
std::string FormatCertTable(const std::vector<wire::CertInfo>& certs, uint64_t now, bool utc);

// One certificate as JSON: serial, kind ("user"/"host"), key_id, principals,
// valid_after, valid_before, fingerprint, request, issued_to, issued_at,
// revoked_at, revoked_by, revoke_comment. Numbers are numbers, times Unix
// seconds (0 = not revoked). Dump with DumpJson (approver_format.h).
nlohmann::json CertToJson(const wire::CertInfo& c);

// One line for a revoked certificate (no newline):
//   revoked certificate 42 (user, key id "jitgate:7f3a9c02:bob", principals root)
std::string FormatRevokedLine(const wire::CertInfo& c);

// What the user was doing, for error messages.
enum class CertAction { kRequest, kList, kRevoke, kSignHost, kCaInfo };

// One line (without "jitgate: ") for a broker Error answering a certificate
// command about `target` (the argument typed, may be empty). kNoCa gives
// the broker's own message.
std::string DescribeCertError(const wire::Error& e, CertAction action, std::string_view target);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_CERT_FORMAT_H_
