// `jitgate status [--socket PATH] [--json] [--max-checkpoint-age DURATION]`:
// the broker's health at a glance (docs/jitgated.md, "Health: jitgate
// status"). Anyone may ask.
//
// One line per item, marked ok, WARN or FAIL (or - for what is not
// configured). Exit status: 0 healthy; 1 when something is wrong -- the store
// does not verify, the CA key file is missing, unreadable or another key,
// entries have waited longer than --max-checkpoint-age (default 10s) for a
// checkpoint, or the broker is unreachable -- with one line on the error
// stream naming each problem; 2 for a usage error.
#ifndef JITGATE_CLI_STATUS_COMMAND_H_
#define JITGATE_CLI_STATUS_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cli/approver_commands.h"
#include "core/wire/messages.h"

namespace jitgate::cli {

inline constexpr int64_t kDefaultMaxCheckpointAgeSeconds = 10;

// What the report says: the lines to print and the problems that make the
// exit status 1.
struct StatusView {
  std::string text;                   // one line per item, newline-terminated
  std::vector<std::string> problems;  // one line each, without "jitgate: "
};

// FormatStatus renders r (times relative to r.now) and judges it:
// max_checkpoint_age is the longest an entry may wait for a checkpoint.
// Broker-supplied text is escaped for the terminal.
StatusView FormatStatus(const wire::StatusReport& r, int64_t max_checkpoint_age);

// The --json form: the report's fields, "healthy" and "problems".
std::string StatusJson(const wire::StatusReport& r, const StatusView& view);

int RunStatus(const std::vector<std::string>& args, const ApproverIo& io);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_STATUS_COMMAND_H_
