// The approver's subcommands of the jitgate CLI (docs/protocol.md §5.2):
//
//   jitgate requests [--pending|--all] [--follow] [--json] [--limit N]
//   jitgate show ID [--json]
//   jitgate approve ID [--comment TEXT] [--yes]
//   jitgate deny ID [--comment TEXT]
//   jitgate terminate SESSION [--comment TEXT]
//
// All take --socket PATH (else $JITGATE_SOCKET, else the default socket).
// Each returns the process exit code: 0 done, 1 refused or failed (one line on
// the error stream), 2 usage error. Boost.Program_options errors are thrown
// and turned into exit code 2 by main().
//
// approve and deny always fetch the request with GetRequest, print it, and
// send back the digest of exactly what was printed, so a vote can only ever
// apply to the request the approver saw.
//
// terminate ends a live recorded session (docs/protocol.md §4.4): SESSION is
// a session id or a unique prefix of at least 4 characters; root and the
// approvers of the request the session runs under may. It prints "session X
// terminated" once the broker has recorded it (the session's recorder then
// ends it), or "session X had already ended".
#ifndef JITGATE_CLI_APPROVER_COMMANDS_H_
#define JITGATE_CLI_APPROVER_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/base/clock.h"

namespace jitgate::cli {

// Where an approver command reads and writes; injected by tests.
struct ApproverIo {
  std::ostream* out;
  std::ostream* err;
  Clock* clock;
  // $JITGATE_SOCKET, or null.
  const char* socket_env;
  // Asks the approver a yes/no question; returns true only for yes. Used by
  // `approve` without --yes. Unset: read the answer from /dev/tty.
  std::function<bool(const std::string& question)> confirm;
};

// An ApproverIo on std::cout, std::cerr, the real clock, the environment and
// the controlling terminal.
ApproverIo DefaultApproverIo();

int RunRequests(const std::vector<std::string>& args, const ApproverIo& io);
int RunShow(const std::vector<std::string>& args, const ApproverIo& io);
int RunApprove(const std::vector<std::string>& args, const ApproverIo& io);
int RunDeny(const std::vector<std::string>& args, const ApproverIo& io);
int RunTerminate(const std::vector<std::string>& args, const ApproverIo& io);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_APPROVER_COMMANDS_H_
