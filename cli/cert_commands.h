// The certificate subcommands of the jitgate CLI (PRODUCT.md F4,
// docs/cli-certs.md):
//
//   jitgate request --host HOST --login LOGIN [--reason TEXT] [--ttl 10m]
//                   [--out PATH] [--agent] [--source-address ADDR[,ADDR...]]
//                   [--timeout 5m] [--socket PATH]
//   jitgate cert show FILE [--utc]
//   jitgate certs [--all] [--limit N] [--json] [--utc] [--socket PATH]
//   jitgate revoke SERIAL|ID [--serial|--request] [--comment TEXT] [--socket PATH]
//   jitgate ca pubkey [--socket PATH]
//   jitgate ca known-hosts PATTERN[,PATTERN...] [--socket PATH]
//   jitgate ca sign-host --key HOSTKEY.pub --principals NAME[,NAME...]
//                        [--validity 30d] [--out PATH] [--socket PATH]
//
// The socket is --socket, else $JITGATE_SOCKET, else the default. Each
// function returns the exit code: 0 done, 1 refused or failed (one line on
// the error stream), 2 usage error. Boost.Program_options errors are thrown
// and turned into exit code 2 by main().
//
// `request` generates the key pair in memory and writes the private key only
// after the broker has approved and returned a certificate for exactly that
// key and login: a denial, an error or a bad certificate leaves no key file.
#ifndef JITGATE_CLI_CERT_COMMANDS_H_
#define JITGATE_CLI_CERT_COMMANDS_H_

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace jitgate::cli {

// Where the certificate commands read and write, and what they know about
// the invoking user; DefaultCertIo() fills it from the process, tests inject.
struct CertIo {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  Clock* clock = nullptr;
  const char* socket_env = nullptr;     // $JITGATE_SOCKET, or null
  std::string user = {};                // the invoking user's name; "" if unknown
  std::string home = {};                // $HOME, else the passwd entry's; "" if unknown
  std::string tty = {};                 // ttyname(0), or ""
  const char* ssh_auth_sock = nullptr;  // $SSH_AUTH_SOCK, or null
  // stdin is a terminal: the broker may ask for a reason.
  bool can_prompt = false;
  // Shows prompt and reads one line (without its newline); nullopt if there
  // is no one to ask. Unset: the controlling terminal (/dev/tty).
  std::function<std::optional<std::string>(const std::string& prompt)> ask_line = nullptr;
  // Runs argv (argv[0] looked up in PATH, no shell) and returns its exit
  // status, or an error if it could not be run or was killed. Unset:
  // posix_spawnp with this process's environment and stdio.
  std::function<StatusOr<int>(const std::vector<std::string>& argv)> run = nullptr;
  // Times are shown in UTC instead of the local time zone.
  bool utc = false;
};

// A CertIo for this process: std::cout, std::cerr, the real clock and the
// environment, the user of getuid(), ttyname(0), isatty(0).
CertIo DefaultCertIo();

int RunRequestCertificate(const std::vector<std::string>& args, const CertIo& io);
// `jitgate cert SUBCOMMAND ...` (only `show`).
int RunCert(const std::vector<std::string>& args, const CertIo& io);
int RunCerts(const std::vector<std::string>& args, const CertIo& io);
int RunRevoke(const std::vector<std::string>& args, const CertIo& io);
// `jitgate ca SUBCOMMAND ...` (pubkey, known-hosts, sign-host).
int RunCa(const std::vector<std::string>& args, const CertIo& io);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_CERT_COMMANDS_H_
