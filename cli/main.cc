// jitgate: the command line for requesters, approvers, auditors and operators.
#include <boost/program_options/errors.hpp>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/approver_commands.h"
#include "cli/cert_commands.h"
#include "cli/log_commands.h"
#include "cli/session_commands.h"
#include "cli/status_command.h"

namespace {

constexpr char kUsage[] =
    "usage: jitgate COMMAND [options]\n"
    "commands:\n"
    "  request      ask for SSH access; get a short-lived certificate and key\n"
    "  requests     list access requests (--pending, --all, --follow, --json)\n"
    "  show ID      show one request in full\n"
    "  approve ID   approve a request after reviewing it\n"
    "  deny ID      deny a request\n"
    "  certs        list issued SSH certificates (--all, --json)\n"
    "  cert show F  print a certificate file like ssh-keygen -L\n"
    "  revoke X     revoke a certificate (serial X) or a request's certificates (id X)\n"
    "  ca ...       the SSH CA: pubkey, known-hosts PATTERNS, sign-host\n"
    "  log ...      the signed store: keygen, init, annotate, checkpoint, entry, prove\n"
    "  verify       verify a whole store (and that it extends a saved checkpoint),\n"
    "               or an evidence bundle offline (--bundle FILE --key PUB)\n"
    "  sessions     list recorded sessions (--user, --target, --since, --json)\n"
    "  replay S     play session S back on this terminal (escape sequences filtered)\n"
    "  watch S      follow a live session as it is recorded\n"
    "  terminate S  end live session S (root and the approvers of its request)\n"
    "  export S     write session S as an asciicast v2 file (--format asciicast)\n"
    "               or as an evidence bundle with proofs (--bundle FILE)\n"
    "  search TEXT  find TEXT in sessions' typed input and output (-i, --json)\n"
    "  status       the broker's health at a glance; exit 1 if something is wrong\n"
    "Run 'jitgate COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  // Boost.Program_options reports bad options by exception; they stop here.
  try {
    if (args[0] == "log") return jitgate::cli::RunLog(rest);
    if (args[0] == "verify") return jitgate::cli::RunVerify(rest);
    if (args[0] == "request") {
      return jitgate::cli::RunRequestCertificate(rest, jitgate::cli::DefaultCertIo());
    }
    if (args[0] == "cert") return jitgate::cli::RunCert(rest, jitgate::cli::DefaultCertIo());
    if (args[0] == "certs") return jitgate::cli::RunCerts(rest, jitgate::cli::DefaultCertIo());
    if (args[0] == "revoke") return jitgate::cli::RunRevoke(rest, jitgate::cli::DefaultCertIo());
    if (args[0] == "ca") return jitgate::cli::RunCa(rest, jitgate::cli::DefaultCertIo());
    if (args[0] == "requests") return jitgate::cli::RunRequests(rest, jitgate::cli::DefaultApproverIo());
    if (args[0] == "show") return jitgate::cli::RunShow(rest, jitgate::cli::DefaultApproverIo());
    if (args[0] == "approve") return jitgate::cli::RunApprove(rest, jitgate::cli::DefaultApproverIo());
    if (args[0] == "deny") return jitgate::cli::RunDeny(rest, jitgate::cli::DefaultApproverIo());
    if (args[0] == "sessions") return jitgate::cli::RunSessions(rest, jitgate::cli::DefaultSessionIo());
    if (args[0] == "replay") return jitgate::cli::RunReplay(rest, jitgate::cli::DefaultSessionIo());
    if (args[0] == "watch") return jitgate::cli::RunWatch(rest, jitgate::cli::DefaultSessionIo());
    if (args[0] == "export") return jitgate::cli::RunExport(rest, jitgate::cli::DefaultSessionIo());
    if (args[0] == "search") return jitgate::cli::RunSearch(rest, jitgate::cli::DefaultSessionIo());
    if (args[0] == "status") return jitgate::cli::RunStatus(rest, jitgate::cli::DefaultApproverIo());
    if (args[0] == "terminate") {
      return jitgate::cli::RunTerminate(rest, jitgate::cli::DefaultApproverIo());
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "jitgate: unknown command '" << args[0] << "'\n" << kUsage;
    return 2;
  } catch (const boost::program_options::error& e) {
    std::cerr << "jitgate: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "jitgate: " << e.what() << "\n";
    return 1;
  }
}
