// `jitgate request|cert|certs|revoke|ca`: the certificate side of the broker
// protocol (PRODUCT.md F4).
#include "cli/cert_commands.h"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ca/cert.h"
#include "ca/sshkey.h"
#include "cli/approver_format.h"
#include "cli/broker_call.h"
#include "cli/cert_format.h"
#include "cli/command_line.h"
#include "core/base/cleanup.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/base/unique_fd.h"
#include "core/wire/requester.h"

extern char** environ;

namespace jitgate::cli {

namespace po = boost::program_options;

namespace {

constexpr int64_t kMaxRequestTimeoutSeconds = 7 * 24 * 3600;
constexpr char kDefaultRequestTimeout[] = "5m";
// The service name the broker's policy sees for certificate requests.
constexpr char kCertService[] = "ssh-cert";

uint64_t NowSeconds(Clock* clock) { return uint64_t(clock->NowUnixNanos() / 1'000'000'000); }

int Fail(const CertIo& io, const std::string& message) { return ErrorLine(*io.err, message, 1); }

int UsageError(const CertIo& io, const std::string& message) {
  return ErrorLine(*io.err, message, 2);
}

std::string Esc(std::string_view s) { return EscapeForTerminal(s); }

// Parses args; prints help and returns false on --help. Throws po::error.
bool Parse(const std::vector<std::string>& args, po::options_description& desc,
           const po::positional_options_description& pos, po::variables_map* vm, const CertIo& io,
           const std::string& usage, bool with_socket = true) {
  if (with_socket) AddSocketOption(desc);
  return ParseCommandLine(args, desc, pos, vm, *io.out, usage);
}

std::string SocketPath(const po::variables_map& vm, const CertIo& io) {
  return SocketPathOf(vm, io.socket_env);
}

// --- files -----------------------------------------------------------------

// Writes a certificate to path, mode 0644 (less if the umask says so),
// atomically and durably (core/base/env.h).
Status WritePublicFile(const std::string& path, std::string_view contents) {
  return DefaultEnv()->WriteFileAtomically(path, AsBytes(contents), 0644);
}

// Creates dir with mode 0700 if it does not exist. If private, an existing
// dir must also belong to this user and not be writable by group or others
// (whoever can write it can swap the key jitgate writes there).
Status EnsureDirectory(const std::string& dir, bool private_dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return OkStatus();
  if (errno != EEXIST) return ErrnoToStatus(errno, "create directory " + dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return FailedPreconditionError(dir + " is not a directory");
  if (private_dir && (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0)) {
    return FailedPreconditionError(dir +
                                   " is not private to you (owned by another user, or writable "
                                   "by group or others); fix it with chmod 700");
  }
  return OkStatus();
}

// Checks, before anything is requested, that the key can be written to
// key_path: its directory exists (the default one is created) and the path
// is not a directory.
Status PrepareKeyPath(const std::string& key_path, bool is_default, const std::string& home) {
  if (is_default) {
    RETURN_IF_ERROR(EnsureDirectory(JoinPath(home, ".ssh"), /*private_dir=*/false));
    RETURN_IF_ERROR(EnsureDirectory(DirName(key_path), /*private_dir=*/true));
  } else {
    const std::string dir = DirName(key_path);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return ErrnoToStatus(errno, "directory " + dir);
    if (!S_ISDIR(st.st_mode)) return FailedPreconditionError(dir + " is not a directory");
  }
  struct stat st;
  if (::stat(key_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FailedPreconditionError(key_path + " is a directory");
  }
  return OkStatus();
}

// --- processes and the terminal --------------------------------------------

StatusOr<int> SpawnAndWait(const std::vector<std::string>& argv) {
  if (argv.empty()) return InvalidArgumentError("no program to run");
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ);
  if (rc != 0) return ErrnoToStatus(rc, "cannot run " + argv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoToStatus(errno, "waiting for " + argv[0]);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return UnknownError(argv[0] + " was killed by signal " + std::to_string(WTERMSIG(status)));
}

std::optional<std::string> ReadLineFromTty(const std::string& prompt) {
  FILE* tty = std::fopen("/dev/tty", "r+e");
  if (tty == nullptr) return std::nullopt;
  Cleanup close_tty = [tty] { std::fclose(tty); };
  std::fputs(prompt.c_str(), tty);
  std::fflush(tty);
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n = ::getline(&line, &cap, tty);
  Cleanup free_line = [line] { std::free(line); };
  if (n < 0) return std::nullopt;
  std::string answer(line, size_t(n));
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r')) answer.pop_back();
  return answer;
}

// The requester's side of RunRequest on the terminal: progress on the error
// stream, so that stdout carries only the result.
class TerminalUi final : public wire::RequesterUi {
 public:
  explicit TerminalUi(const CertIo& io) : io_(io) {}

  std::optional<std::string> AskReason(const wire::NeedReason& ask) override {
    std::string prompt = ask.prompt.empty() ? "Reason for access: " : Esc(ask.prompt);
    return io_.ask_line ? io_.ask_line(prompt) : ReadLineFromTty(prompt);
  }
  void OnAccepted(const wire::RequestAccepted& a) override {
    *io_.err << "jitgate: request " << Esc(a.id) << " sent to approvers (" << Esc(a.approvers)
             << "); waiting up to " << FormatSeconds(a.wait_seconds) << "\u2026\n"
             << std::flush;
  }
  void OnStatus(const wire::StatusUpdate& u) override {
    if (u.message.empty()) {
      *io_.err << "jitgate: " << u.approvals << " of " << u.approvals_needed << " approvals\n";
    } else {
      *io_.err << "jitgate: " << Esc(u.message) << "\n";
    }
    *io_.err << std::flush;
  }
  void OnReconnecting(const Status& why) override {
    *io_.err << "jitgate: lost the broker (" << Esc(StatusLine(why)) << "); reconnecting\u2026\n"
             << std::flush;
  }

 private:
  const CertIo& io_;
};

// One line for a decision, naming the request once: the broker's messages
// already start "request 7f3a9c02 denied by carol: ...".
std::string DecisionLine(const wire::Decision& d) {
  std::string outcome(wire::OutcomeName(d.outcome));
  std::string message = Esc(d.message);
  if (d.id.empty()) {
    return "request not filed (" + outcome + ")" + (message.empty() ? "" : ": " + message);
  }
  std::string id = Esc(d.id);
  if (message.empty()) return "request " + id + " " + outcome;
  if (message.rfind("request " + id, 0) == 0) return message;
  return "request " + id + " " + outcome + ": " + message;
}

// Checks that cert is what this request asked for. Fails closed: any doubt
// and no key is written.
Status CheckIssuedCertificate(const ca::Certificate& cert, const ca::PublicKey& key,
                              const std::string& login) {
  if (!(cert.key() == key)) {
    return DataLossError("is for another key than the one this request sent");
  }
  if (cert.fields().type != ca::CertType::kUser) return DataLossError("is not a user certificate");
  for (const std::string& p : cert.fields().principals) {
    if (p == login) return OkStatus();
  }
  return DataLossError("does not name login " + Esc(login) + " as a principal");
}

// Fetches the CA's public key (GetCaInfo), or returns the exit code.
std::optional<ca::PublicKey> FetchCaKey(const po::variables_map& vm, const CertIo& io,
                                        int* exit_code) {
  StatusOr<wire::Client> client = ConnectToBroker(SocketPath(vm, io), io.clock);
  if (!client.ok()) {
    *exit_code = Fail(io, Esc(StatusLine(client.status())));
    return std::nullopt;
  }
  StatusOr<Reply<wire::CaInfo>> info =
      CallBroker<wire::CaInfo>(*client, wire::GetCaInfo{}, io.clock);
  if (!info.ok()) {
    *exit_code = Fail(io, Esc(StatusLine(info.status())));
    return std::nullopt;
  }
  if (info->error) {
    *exit_code = Fail(io, DescribeCertError(*info->error, CertAction::kCaInfo, ""));
    return std::nullopt;
  }
  StatusOr<ca::PublicKey> key = ca::PublicKey::FromLine(info->value->public_key);
  if (!key.ok()) {
    *exit_code =
        Fail(io, "the broker sent a CA key that cannot be read: " + Esc(key.status().message()));
    return std::nullopt;
  }
  return *std::move(key);
}

int CaPubkey(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate ca pubkey");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io, "jitgate ca pubkey [--socket PATH]")) return 0;
  int code = 0;
  std::optional<ca::PublicKey> key = FetchCaKey(vm, io, &code);
  if (!key) return code;
  *io.out << key->ToLine() << "\n";
  return 0;
}

int CaKnownHosts(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate ca known-hosts");
  desc.add_options()("patterns", po::value<std::string>(),
                     "host name patterns, comma-separated (e.g. '*.example.com,db1')");
  po::positional_options_description pos;
  pos.add("patterns", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate ca known-hosts PATTERN[,PATTERN...] [--socket PATH]")) {
    return 0;
  }
  if (!vm.count("patterns")) return UsageError(io, "missing host name PATTERN");
  const std::string& patterns = vm["patterns"].as<std::string>();
  StatusOr<std::vector<std::string>> list = SplitList(patterns, "pattern");
  if (!list.ok()) return UsageError(io, list.status().message());
  for (const std::string& p : *list) {
    // known_hosts splits at white space and '#' starts a comment.
    if (!IsPrintableText(p) || p.find_first_of(" \t#") != std::string::npos) {
      return UsageError(io, "'" + Esc(p) + "' is not a known_hosts host pattern");
    }
  }
  int code = 0;
  std::optional<ca::PublicKey> key = FetchCaKey(vm, io, &code);
  if (!key) return code;
  *io.out << "@cert-authority " << patterns << " " << key->ToLine() << "\n";
  return 0;
}

int CaSignHost(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate ca sign-host");
  std::string key_path, principals_text, validity_text, out_path;
  desc.add_options()("key", po::value(&key_path), "the host's public key file (HOSTKEY.pub)")(
      "principals", po::value(&principals_text),
      "the host's names, comma-separated (e.g. db1,db1.example.com)")(
      "validity", po::value(&validity_text),
      "how long the certificate is valid (default: the broker's)")(
      "out", po::value(&out_path), "where to write the certificate (default: HOSTKEY-cert.pub)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate ca sign-host --key HOSTKEY.pub --principals NAME[,NAME...] "
             "[--validity 30d] [--out PATH] [--socket PATH]")) {
    return 0;
  }
  if (key_path.empty()) return UsageError(io, "missing --key HOSTKEY.pub");
  if (principals_text.empty()) return UsageError(io, "missing --principals NAME[,NAME...]");
  StatusOr<std::vector<std::string>> principals = SplitList(principals_text, "principal");
  if (!principals.ok()) return UsageError(io, "--principals: " + principals.status().message());
  if (principals->size() > wire::kMaxCertPrincipals) {
    return UsageError(
        io, "--principals: at most " + std::to_string(wire::kMaxCertPrincipals) + " names");
  }
  for (const std::string& p : *principals) {
    if (!IsSafeName(p)) return UsageError(io, "--principals: '" + Esc(p) + "' is not a host name");
  }
  uint32_t validity = 0;
  if (vm.count("validity")) {
    StatusOr<int64_t> v = ParseDurationSeconds(validity_text, std::numeric_limits<uint32_t>::max());
    if (!v.ok()) return UsageError(io, "--validity: " + v.status().message());
    validity = uint32_t(*v);
  }
  if (out_path.empty()) out_path = CertPathForPublicKeyFile(key_path);

  StatusOr<ca::PublicKey> key = ca::ReadPublicKeyFile(key_path);
  if (!key.ok()) return Fail(io, Esc(key.status().message()));

  StatusOr<wire::Client> client = ConnectToBroker(SocketPath(vm, io), io.clock);
  if (!client.ok()) return Fail(io, Esc(StatusLine(client.status())));
  StatusOr<Reply<wire::HostCertificate>> reply = CallBroker<wire::HostCertificate>(
      *client, wire::SignHostKey{key->ToLine(), *principals, validity}, io.clock);
  if (!reply.ok()) return Fail(io, Esc(StatusLine(reply.status())));
  if (reply->error) return Fail(io, DescribeCertError(*reply->error, CertAction::kSignHost, ""));
  const wire::HostCertificate& hc = *reply->value;

  StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(hc.certificate);
  if (!cert.ok()) {
    return Fail(io, "the broker sent a certificate that cannot be read: " +
                        Esc(cert.status().message()) + "; nothing written");
  }
  if (!(cert->key() == *key) || cert->fields().type != ca::CertType::kHost ||
      cert->fields().serial != hc.serial) {
    return Fail(io, "the broker's certificate is not a host certificate for " + Esc(key_path) +
                        " with serial " + std::to_string(hc.serial) + "; nothing written");
  }
  if (Status s = WritePublicFile(out_path, cert->ToLine() + "\n"); !s.ok()) {
    return Fail(io, Esc(s.message()));
  }
  const ca::CertificateFields& f = cert->fields();
  std::string names;
  for (const std::string& p : f.principals) names += (names.empty() ? "" : ",") + Esc(p);
  *io.out << "host certificate serial " << f.serial << " written to " << Esc(out_path) << "\n"
          << "principals " << names << ", valid "
          << ca::FormatValidity(f.valid_after, f.valid_before, io.utc) << "\n";
  return 0;
}

int CertShow(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate cert show");
  desc.add_options()("file", po::value<std::string>(),
                     "a certificate file (e.g. id_ed25519-cert.pub)")(
      "utc", "show times in UTC instead of the local time zone");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io, "jitgate cert show FILE [--utc]", /*with_socket=*/false)) {
    return 0;
  }
  if (!vm.count("file")) return UsageError(io, "missing certificate FILE");
  const std::string& file = vm["file"].as<std::string>();
  StatusOr<std::string> text = DefaultEnv()->ReadFileToString(file, ca::kMaxKeyLineSize);
  if (!text.ok()) return Fail(io, Esc(text.status().message()));
  StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(*text);
  if (!cert.ok()) {
    if (ca::PublicKey::FromLine(*text).ok()) {
      return Fail(io, Esc(file) + " is a public key, not a certificate");
    }
    return Fail(io, Esc(file) + " is not an OpenSSH certificate: " + Esc(cert.status().message()));
  }
  // FormatCertificate escapes control characters like ssh-keygen's output
  // would need; escaping each line again also catches the invisible and
  // reordering code points it lets through.
  std::string shown = ca::FormatCertificate(*cert, file, io.utc || vm.count("utc") > 0);
  size_t start = 0;
  while (start < shown.size()) {
    size_t nl = shown.find('\n', start);
    if (nl == std::string::npos) nl = shown.size();
    *io.out << Esc(std::string_view(shown).substr(start, nl - start)) << "\n";
    start = nl + 1;
  }
  return 0;
}

}  // namespace

CertIo DefaultCertIo() {
  CertIo io{&std::cout, &std::cerr, RealClock()};
  io.socket_env = std::getenv("JITGATE_SOCKET");
  io.ssh_auth_sock = std::getenv("SSH_AUTH_SOCK");
  struct passwd* pw = ::getpwuid(::getuid());
  if (pw != nullptr) io.user = pw->pw_name;
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    io.home = home;
  } else if (pw != nullptr && pw->pw_dir != nullptr) {
    io.home = pw->pw_dir;
  }
  if (const char* tty = ::ttyname(0)) io.tty = tty;
  io.can_prompt = ::isatty(0) == 1;
  return io;
}

int RunRequestCertificate(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate request");
  std::string host, login, reason, ttl_text, out_path, source, timeout_text;
  desc.add_options()("host", po::value(&host), "the host to log in to")(
      "login", po::value(&login), "the account to log in as (the certificate's principal)")(
      "reason", po::value(&reason), "why you need access; shown to the approvers")(
      "ttl", po::value(&ttl_text),
      "how long the certificate should be valid, e.g. 10m (default and cap: the policy's)")(
      "out", po::value(&out_path),
      "private key file (default: ~/.ssh/jitgate/LOGIN@HOST); the certificate goes to "
      "PATH-cert.pub")("agent", "also add the key to ssh-agent until the certificate expires")(
      "source-address", po::value(&source),
      "addresses the certificate may be used from, comma-separated (CIDR allowed)")(
      "timeout", po::value(&timeout_text)->default_value(kDefaultRequestTimeout),
      "how long to wait for approval");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate request --host HOST --login LOGIN [--reason TEXT] [--ttl 10m] [--out PATH] "
             "[--agent] [--source-address ADDR[,ADDR...]] [--timeout 5m] [--socket PATH]")) {
    return 0;
  }
  if (host.empty()) return UsageError(io, "missing --host HOST");
  if (login.empty()) return UsageError(io, "missing --login LOGIN");
  if (!IsSafeName(host)) return UsageError(io, "--host: '" + Esc(host) + "' is not a host name");
  if (!IsSafeName(login)) {
    return UsageError(io, "--login: '" + Esc(login) + "' is not a login name");
  }
  if (reason.size() > wire::kMaxReasonField) {
    return UsageError(io, "--reason is " + std::to_string(reason.size()) + " bytes; the limit is " +
                              std::to_string(wire::kMaxReasonField));
  }
  uint32_t ttl_seconds = 0;
  if (vm.count("ttl")) {
    StatusOr<int64_t> ttl = ParseDurationSeconds(ttl_text, std::numeric_limits<uint32_t>::max());
    if (!ttl.ok()) return UsageError(io, "--ttl: " + ttl.status().message());
    ttl_seconds = uint32_t(*ttl);
  }
  StatusOr<int64_t> timeout = ParseDurationSeconds(timeout_text, kMaxRequestTimeoutSeconds);
  if (!timeout.ok()) return UsageError(io, "--timeout: " + timeout.status().message());
  // --source-address goes to the broker as typed: its CA checks each address
  // (and refuses the request if one is not an IP address or CIDR block)
  // before the request is filed, and writes the source-address option.
  if (source.size() > wire::kMaxAddressField) {
    return UsageError(io, "--source-address is " + std::to_string(source.size()) +
                              " bytes; the limit is " + std::to_string(wire::kMaxAddressField));
  }
  const bool agent = vm.count("agent") > 0;

  // Everything that can be checked locally is checked before approvers are
  // bothered.
  if (io.user.empty())
    return Fail(io, "cannot find your user name (uid " + std::to_string(::getuid()) + ")");
  if (agent && (io.ssh_auth_sock == nullptr || io.ssh_auth_sock[0] == '\0')) {
    return Fail(io,
                "--agent needs a running ssh-agent, but SSH_AUTH_SOCK is not set; nothing "
                "was requested");
  }
  const bool default_path = out_path.empty();
  if (default_path) {
    if (io.home.empty()) return Fail(io, "cannot find your home directory; use --out PATH");
    out_path = DefaultKeyPath(io.home, login, host);
  }
  const std::string cert_path = CertPathForKey(out_path);
  if (Status s = PrepareKeyPath(out_path, default_path, io.home); !s.ok()) {
    return Fail(io, Esc(s.message()) + "; nothing was requested");
  }

  // The private key lives only in memory until a matching certificate is in
  // hand.
  StatusOr<ca::PrivateKey> key = ca::PrivateKey::Generate(ca::KeyType::kEd25519);
  if (!key.ok()) return Fail(io, "cannot generate a key: " + Esc(key.status().message()));

  wire::RequestFields fields;
  fields.service = kCertService;
  fields.user = io.user;
  fields.target_user = login;
  fields.host = host;
  fields.remote_addr = source;
  fields.tty = io.tty;
  fields.reason = reason;
  fields.public_key = key->public_key().ToLine();
  fields.ttl_seconds = ttl_seconds;

  wire::RequesterOptions options;
  options.socket_path = SocketPath(vm, io);
  options.client_name = kCliClientName;
  options.clock = io.clock;
  options.timeout_ms = *timeout * 1000;
  options.can_prompt = io.can_prompt;
  TerminalUi ui(io);
  wire::RequesterResult result = wire::RunRequest(fields, options, &ui);
  if (!result.ok()) return Fail(io, Esc(StatusLine(result.status())));
  const wire::Decision& d = *result;
  if (!wire::Granted(result)) return Fail(io, DecisionLine(d));

  const std::string id = Esc(d.id);
  if (d.certificate.empty()) {
    return Fail(io, "request " + id +
                        " was approved, but the broker sent no certificate; no key was written");
  }
  StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(d.certificate);
  if (!cert.ok()) {
    return Fail(io, "the certificate for request " + id + " cannot be read (" +
                        Esc(cert.status().message()) + "); no key was written");
  }
  if (Status s = CheckIssuedCertificate(*cert, key->public_key(), login); !s.ok()) {
    return Fail(io,
                "the certificate for request " + id + " " + s.message() + "; no key was written");
  }

  if (Status s = ca::WritePrivateKeyFile(out_path, *key, "jitgate:" + d.id); !s.ok()) {
    return Fail(io, Esc(s.message()));
  }
  if (Status s = WritePublicFile(cert_path, cert->ToLine() + "\n"); !s.ok()) {
    // A key without its certificate is of no use and should not linger.
    ::unlink(out_path.c_str());
    return Fail(io, Esc(s.message()) + "; the key was removed again");
  }

  const ca::CertificateFields& f = cert->fields();
  *io.out << DecisionLine(d) << "\n"
          << "certificate serial " << f.serial << ", valid "
          << ca::FormatValidity(f.valid_after, f.valid_before, io.utc) << "\n"
          << "key " << Esc(out_path) << ", certificate " << Esc(cert_path) << "\n"
          << "ssh -i " << ShellQuote(out_path) << " " << ShellQuote(login + "@" + host) << "\n"
          << std::flush;

  if (agent) {
    std::vector<std::string> argv = {"ssh-add"};
    if (f.valid_before != ca::kValidForever) {
      uint64_t now = NowSeconds(io.clock);
      if (f.valid_before <= now) {
        return Fail(io, "the certificate has already expired; not added to the agent");
      }
      argv.push_back("-t");
      argv.push_back(std::to_string(std::min<uint64_t>(f.valid_before - now, INT_MAX)));
    }
    argv.push_back(out_path);
    StatusOr<int> rc = io.run ? io.run(argv) : SpawnAndWait(argv);
    if (!rc.ok() || *rc != 0) {
      std::string why = rc.ok() ? "exit status " + std::to_string(*rc) : rc.status().message();
      return Fail(
          io, "ssh-add failed (" + Esc(why) + "); the key and certificate are in " + Esc(out_path));
    }
  }
  return 0;
}

int RunCert(const std::vector<std::string>& args, const CertIo& io) {
  constexpr char kCertUsage[] = "usage: jitgate cert show FILE [--utc]\n";
  if (args.empty()) {
    *io.err << kCertUsage;
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    *io.out << kCertUsage;
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "show") return CertShow(rest, io);
  *io.err << "jitgate: unknown cert command '" << Esc(args[0]) << "'\n" << kCertUsage;
  return 2;
}

int RunCerts(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate certs");
  unsigned limit = 0;
  desc.add_options()("all", "every certificate, also expired and revoked ones")(
      "limit", po::value(&limit), "at most N certificates (default: the broker's, 100)")(
      "json", "one JSON document")("utc", "show times in UTC instead of the local time zone");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate certs [--all] [--limit N] [--json] [--utc] [--socket PATH]")) {
    return 0;
  }
  if (limit > 65535) return UsageError(io, "--limit must be at most 65535");
  const bool all = vm.count("all") > 0;
  StatusOr<wire::Client> client = ConnectToBroker(SocketPath(vm, io), io.clock);
  if (!client.ok()) return Fail(io, Esc(StatusLine(client.status())));
  wire::ListCerts ask{all ? wire::ListFilter::kAll : wire::kValidCerts, uint16_t(limit)};
  StatusOr<Reply<wire::CertList>> list = CallBroker<wire::CertList>(*client, ask, io.clock);
  if (!list.ok()) return Fail(io, Esc(StatusLine(list.status())));
  if (list->error) return Fail(io, DescribeCertError(*list->error, CertAction::kList, ""));
  const wire::CertList& certs = *list->value;
  if (vm.count("json")) {
    nlohmann::json items = nlohmann::json::array();
    for (const wire::CertInfo& c : certs.items) items.push_back(CertToJson(c));
    *io.out << DumpJson({{"certs", std::move(items)}, {"more", certs.more}}) << "\n";
    return 0;
  }
  if (certs.items.empty()) {
    *io.out << (all ? "no certificates\n" : "no valid certificates\n");
  } else {
    *io.out << FormatCertTable(certs.items, NowSeconds(io.clock), io.utc || vm.count("utc") > 0);
  }
  if (certs.more) *io.out << "(more certificates not shown; see --limit)\n";
  return 0;
}

int RunRevoke(const std::vector<std::string>& args, const CertIo& io) {
  po::options_description desc("jitgate revoke");
  std::string comment;
  desc.add_options()(
      "target", po::value<std::string>(),
      "a certificate serial, or a request id (prefix) to revoke all its certificates")(
      "serial", "read the argument as a certificate serial")(
      "request", "read the argument as a request id, even if it is all digits")(
      "comment", po::value(&comment), "why; recorded with the revocation");
  po::positional_options_description pos;
  pos.add("target", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate revoke SERIAL|ID [--serial|--request] [--comment TEXT] [--socket PATH]")) {
    return 0;
  }
  if (!vm.count("target")) return UsageError(io, "missing SERIAL or request ID");
  if (vm.count("serial") && vm.count("request")) {
    return UsageError(io, "--serial and --request cannot be used together");
  }
  RevokeArgKind kind = vm.count("serial")    ? RevokeArgKind::kSerial
                       : vm.count("request") ? RevokeArgKind::kRequest
                                             : RevokeArgKind::kGuess;
  const std::string& typed = vm["target"].as<std::string>();
  StatusOr<RevokeTarget> target = ClassifyRevokeArgument(typed, kind);
  if (!target.ok()) return UsageError(io, target.status().message());
  if (comment.size() > wire::kMaxCommentField) {
    return UsageError(io, "--comment is " + std::to_string(comment.size()) +
                              " bytes; the limit is " + std::to_string(wire::kMaxCommentField));
  }
  const std::string what = target->serial != 0 ? "serial " + std::to_string(target->serial)
                                               : "request " + target->request_id;

  StatusOr<wire::Client> client = ConnectToBroker(SocketPath(vm, io), io.clock);
  if (!client.ok()) return Fail(io, Esc(StatusLine(client.status())));
  StatusOr<Reply<wire::CertList>> reply = CallBroker<wire::CertList>(
      *client, wire::Revoke{target->serial, target->request_id, comment}, io.clock);
  if (!reply.ok()) {
    return Fail(io, Esc(StatusLine(reply.status())) + " (the revocation of " + what +
                        " may not be recorded)");
  }
  if (reply->error) return Fail(io, DescribeCertError(*reply->error, CertAction::kRevoke, what));
  if (reply->value->items.empty()) {
    *io.out << "nothing to revoke for " << what << " (no certificate, or all already revoked)\n";
    return 0;
  }
  for (const wire::CertInfo& c : reply->value->items) *io.out << FormatRevokedLine(c) << "\n";
  return 0;
}

int RunCa(const std::vector<std::string>& args, const CertIo& io) {
  constexpr char kCaUsage[] =
      "usage: jitgate ca pubkey [--socket PATH]\n"
      "       jitgate ca known-hosts PATTERN[,PATTERN...] [--socket PATH]\n"
      "       jitgate ca sign-host --key HOSTKEY.pub --principals NAME[,NAME...] "
      "[--validity 30d] [--out PATH] [--socket PATH]\n";
  if (args.empty()) {
    *io.err << kCaUsage;
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    *io.out << kCaUsage;
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "pubkey") return CaPubkey(rest, io);
  if (args[0] == "known-hosts") return CaKnownHosts(rest, io);
  if (args[0] == "sign-host") return CaSignHost(rest, io);
  *io.err << "jitgate: unknown ca command '" << Esc(args[0]) << "'\n" << kCaUsage;
  return 2;
}

}  // namespace jitgate::cli
