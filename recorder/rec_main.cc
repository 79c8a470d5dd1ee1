// jitgate-rec: records a login session or a forced command into the broker's
// store (PRODUCT.md F5; docs/jitgate-rec.md). Usable as a login shell or as
// sshd's ForceCommand, like tlog-rec-session.
//
//   jitgate-rec [--socket PATH] [--host NAME] [--shell PATH] [--spool DIR]
//               [--no-spool] [--spool-max-size SIZE] [--spool-full refuse|allow]
//               [-c COMMAND]
//   jitgate-rec --forward-spool [--socket PATH] [--spool DIR]
//
// Fail closed: nothing runs unless the broker has opened the session or it
// is being spooled locally (spool and forward: docs/jitgate-rec.md "Spool"),
// and the session is killed if recording breaks mid-way. `jitgate terminate`
// ends it too: the broker tells us, we tell the user and hang it up.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/text.h"
#include "core/wire/messages.h"
#include "recorder/async_recorder.h"
#include "recorder/pty_relay.h"
#include "recorder/recording_client.h"
#include "recorder/spool.h"

namespace jitgate::recorder {
namespace {

constexpr char kDefaultSocket[] = "/run/jitgate/jitgated.sock";
constexpr char kDefaultSpool[] = "/var/spool/jitgate";
constexpr char kUsage[] =
    "usage: jitgate-rec [--socket PATH] [--host NAME] [--shell PATH] [--spool DIR]\n"
    "                   [--no-spool] [--spool-max-size SIZE] [--spool-full "
    "refuse|allow]\n"
    "                   [-c COMMAND]\n"
    "       jitgate-rec --forward-spool [--socket PATH] [--spool DIR]\n";

struct Args {
  std::string socket;
  std::string host;
  std::string shell;
  std::optional<std::string> command;
  std::string spool;
  bool no_spool = false;
  std::string spool_max_size;
  std::string spool_full;
  bool forward = false;
  bool help = false;
};

// "256M", "1G", "4096": bytes with an optional K/M/G/T suffix (powers of 1024).
std::optional<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int shift = 0;
  switch (text.back()) {
    case 'K': case 'k': shift = 10; break;
    case 'M': case 'm': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'T': case 't': shift = 40; break;
    default: break;
  }
  if (shift != 0) text.remove_suffix(1);
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (shift != 0 && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

// Parses argv by hand: as a login shell we are run with "-c CMD" by sshd and
// must not choke on anything else it passes.
bool ParseArgs(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view name, std::string* out) -> bool {
      if (a == name) {
        if (i + 1 >= argc) {
          *error = std::string(name) + " needs a value";
          return false;
        }
        *out = argv[++i];
        return true;
      }
      if (a.size() > name.size() && a.substr(0, name.size()) == name &&
          a[name.size()] == '=') {
        *out = std::string(a.substr(name.size() + 1));
        return true;
      }
      return false;
    };
    if (a == "-h" || a == "--help") {
      args->help = true;
    } else if (a == "-c") {
      if (i + 1 >= argc) {
        *error = "-c needs a command";
        return false;
      }
      args->command = argv[++i];
    } else if (a == "--no-spool") {
      args->no_spool = true;
    } else if (a == "--forward-spool") {
      args->forward = true;
    } else if (value("--socket", &args->socket) ||
               value("--host", &args->host) || value("--shell", &args->shell) ||
               value("--spool", &args->spool) ||
               value("--spool-max-size", &args->spool_max_size) ||
               value("--spool-full", &args->spool_full)) {
      if (!error->empty()) return false;
    } else {
      if (error->empty()) *error = "unknown argument " + std::string(a);
      return false;
    }
    if (!error->empty()) return false;
  }
  return true;
}

// A closed fd 0-2 would be reused by the broker socket or the pty and
// receive the session's bytes.
void SanitizeStdFds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// sshd hands an sftp subsystem request to a ForceCommand as the subsystem's
// configured command. "internal-sftp" exists only inside sshd, so run the
// same server as a program (sftp-server takes internal-sftp's options);
// anything else is returned unchanged.
std::string MapSftpSubsystem(const std::string& command) {
  static constexpr std::string_view kInternal = "internal-sftp";
  if (command.compare(0, kInternal.size(), kInternal) != 0 ||
      (command.size() > kInternal.size() && command[kInternal.size()] != ' ')) {
    return command;
  }
  for (const char* server : {"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                             "/usr/libexec/sftp-server"}) {
    if (access(server, X_OK) == 0) return server + command.substr(kInternal.size());
  }
  return command;
}

const char* Env(const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? v : "";
}

int64_t UnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Refuse(const std::string& reason) {
  fprintf(stderr,
          "jitgate-rec: session not recorded: %s; refusing to start it\n",
          reason.c_str());
  return 1;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The host name sessions are recorded under: --host, else gethostname.
std::string HostName(const std::string& flag) {
  if (!flag.empty()) return flag;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// Tells the broker what the spool holds (its metrics and `jitgate status`
// show it); best effort.
constexpr int64_t kSpoolReportTimeoutMs = 2000;
Status Report(const ForwardOptions& o, const std::string& host) {
  return ReportSpool(o.socket_path, o.client_name, host, o.dir, kSpoolReportTimeoutMs);
}

// jitgate-rec --forward-spool: delivers what the spool holds, once.
int Forward(const ForwardOptions& options) {
  int failed = 0;
  Status s = ForwardSpool(options, [&](const ForwardResult& r) {
    std::string torn = r.torn_bytes == 0 ? ""
                                         : ", a torn tail of " + std::to_string(r.torn_bytes) +
                                               " bytes left out";
    switch (r.outcome) {
      case ForwardResult::kDelivered:
        printf("jitgate-rec: delivered session %s (%llu chunks, %llu sent%s%s)\n",
               r.session.c_str(), static_cast<unsigned long long>(r.chunks),
               static_cast<unsigned long long>(r.sent), r.had_end ? "" : ", recorder lost",
               torn.c_str());
        break;
      case ForwardResult::kAlreadyDelivered:
        printf("jitgate-rec: session %s had been delivered; removed its spool file\n",
               r.session.c_str());
        break;
      case ForwardResult::kBusy:
      case ForwardResult::kSkipped:
        break;  // a live session, another forwarder, another user's
      case ForwardResult::kFailed:
        ++failed;
        fprintf(stderr, "jitgate-rec: could not forward %s: %s\n", r.path.c_str(),
                r.error.message().c_str());
        break;
    }
  });
  fflush(stdout);
  if (!s.ok()) {
    fprintf(stderr, "jitgate-rec: %s\n", s.message().c_str());
    return 1;
  }
  return failed == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  SanitizeStdFds();
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    fprintf(stderr, "jitgate-rec: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  if (args.help) {
    fputs(kUsage, stdout);
    return 0;
  }
  // Setgid (broker.recorder_group): the user must not be able to point us
  // at a broker of their own, so only the default socket is used.
  bool secure = getauxval(AT_SECURE) != 0;
  if (secure && !args.socket.empty()) {
    fprintf(
        stderr,
        "jitgate-rec: --socket is not allowed when jitgate-rec is setgid\n");
    return 2;
  }
  // Likewise the spool: a directory of the user's would let them edit the
  // recording before it is delivered.
  if (secure && !args.spool.empty()) {
    fprintf(stderr,
            "jitgate-rec: --spool is not allowed when jitgate-rec is setgid\n");
    return 2;
  }
  if (args.socket.empty()) {
    const char* env = secure_getenv("JITGATE_SOCKET");
    args.socket = env != nullptr && *env != '\0' ? env : kDefaultSocket;
  }
  // The spool: --spool or $JITGATE_SPOOL must exist; the default is used if
  // it does (packaging creates it), else sessions need the broker.
  bool spool_named = !args.spool.empty();
  if (args.spool.empty()) {
    const char* env = secure_getenv("JITGATE_SPOOL");
    spool_named = env != nullptr && *env != '\0';
    args.spool = spool_named ? env : kDefaultSpool;
  }
  std::optional<uint64_t> spool_max = ParseSize(args.spool_max_size.empty() ? "256M"
                                                                           : args.spool_max_size);
  if (!spool_max.has_value()) {
    fprintf(stderr, "jitgate-rec: --spool-max-size: not a size: %s\n%s",
            args.spool_max_size.c_str(), kUsage);
    return 2;
  }
  if (!args.spool_full.empty() && args.spool_full != "refuse" &&
      args.spool_full != "allow") {
    fprintf(stderr, "jitgate-rec: --spool-full must be refuse or allow\n%s", kUsage);
    return 2;
  }
  if (args.forward) {
    if (args.command || !args.shell.empty() || args.no_spool) {
      fprintf(stderr, "jitgate-rec: --forward-spool runs no session\n%s", kUsage);
      return 2;
    }
    ForwardOptions fo;
    fo.dir = args.spool;
    fo.socket_path = args.socket;
    if (secure) {
      // Setgid: only the caller's own sessions (the broker insists too).
      const passwd* me = getpwuid(getuid());
      if (me == nullptr) {
        fprintf(stderr, "jitgate-rec: no passwd entry for uid %u\n", getuid());
        return 1;
      }
      fo.only_user = me->pw_name;
    }
    int rc = Forward(fo);
    if (Status s = Report(fo, HostName(args.host)); !s.ok()) {
      fprintf(stderr, "jitgate-rec: spool not reported to the broker: %s\n", s.message().c_str());
    }
    return rc;
  }
  if (!args.no_spool && !IsDirectory(args.spool)) {
    if (spool_named) {
      return Refuse("spool directory " + args.spool + " does not exist");
    }
    args.no_spool = true;
  }

  errno = 0;
  const passwd* pw = getpwuid(getuid());
  if (pw == nullptr)
    return Refuse("no passwd entry for uid " + std::to_string(getuid()));
  std::string user = pw->pw_name;

  // The shell: never ourselves (we may be the account's login shell).
  std::string shell =
      args.shell.empty()
          ? std::string(pw->pw_shell != nullptr ? pw->pw_shell : "")
          : args.shell;
  if (shell.empty() || BaseName(shell) == "jitgate-rec") shell = "/bin/sh";

  std::string command;
  if (args.command) {
    command = *args.command;
  } else if (getenv("SSH_ORIGINAL_COMMAND") != nullptr) {
    command = MapSftpSubsystem(Env("SSH_ORIGINAL_COMMAND"));
  }
  RelayOptions relay;
  relay.path = shell;
  if (args.command || getenv("SSH_ORIGINAL_COMMAND") != nullptr) {
    relay.argv = {BaseName(shell), "-c", command};
  } else {
    relay.argv = {"-" + BaseName(shell)};  // a login shell
  }

  std::string host = HostName(args.host);

  bool tty = isatty(STDIN_FILENO) == 1;
  wire::OpenSession meta;
  meta.recorder = "jitgate-rec";
  if (wire::IsValidRequestId(Env("JITGATE_REQUEST_ID")))
    meta.request_id = Env("JITGATE_REQUEST_ID");
  meta.user = user;
  std::string ssh_client = Env("SSH_CLIENT");
  meta.remote_addr = ssh_client.substr(0, ssh_client.find(' '));
  meta.host = host;
  meta.target = host;
  meta.login = user;
  meta.command = command;
  meta.term = Env("TERM");
  if (tty) {
    winsize ws{};
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
      meta.cols = ws.ws_col;
      meta.rows = ws.ws_row;
    }
  }
  auto start = std::chrono::steady_clock::now();
  meta.start_unix_nanos = static_cast<uint64_t>(UnixNanos());

  if (!args.no_spool) {
    // What earlier sessions left in the spool (this one is not there yet).
    ForwardOptions fo;
    fo.dir = args.spool;
    fo.socket_path = args.socket;
    Report(fo, host).IgnoreError();
  }
  RecordingClientOptions copts;
  copts.socket_path = args.socket;
  copts.client_name = "jitgate-rec";
  if (!args.no_spool) {
    copts.spool_dir = args.spool;
    copts.spool_max_bytes = *spool_max;
    copts.spool_allow_over_limit = args.spool_full == "allow";
  }
  StatusOr<std::unique_ptr<RecordingClient>> opened =
      RecordingClient::Open(copts, meta);
  if (!opened.ok()) return Refuse(opened.status().message());
  RecordingClient* client = opened->get();
  if (client->spooling() && !client->connected()) {
    fprintf(stderr,
            "jitgate-rec: recording to the local spool (%s); it is delivered when "
            "the broker is back\n",
            client->disconnect_reason().c_str());
  }

  relay.use_pty = tty;
  relay.start = start;
  // The recording runs on a thread of its own (chunking, zstd, the spool,
  // the broker), so that relaying the session does not wait for it; a full
  // queue still holds the session back, and its errors still end it.
  RecordingClientSink sink(client);
  StatusOr<std::unique_ptr<AsyncRecorder>> started = AsyncRecorder::Start(&sink);
  if (!started.ok()) {
    wire::CloseSession end;
    end.end_unix_nanos = static_cast<uint64_t>(UnixNanos());
    end.end_reason = "recording failed";
    client->Close(end).IgnoreError();
    return Refuse(started.status().message());
  }
  AsyncRecorder* recorder = started->get();
  recorder->Bind(&relay);
  // `jitgate terminate`: the broker told us to end the session.
  relay.end_requested = [recorder]() -> std::optional<std::string> {
    std::optional<Termination> t = recorder->terminated();
    if (!t.has_value()) return std::nullopt;
    return "jitgate: session terminated by " + EscapeForTerminal(t->by) +
           (t->comment.empty() ? "" : ": " + EscapeForTerminal(t->comment));
  };
  StatusOr<RelayResult> result = RunRelay(relay);
  // What was queued reaches the client before it is closed (or fails).
  Status drained = recorder->Finish();
  if (!result.ok() || !drained.ok()) {
    // The child has been killed (or has exited while the recording failed);
    // tell the broker why if it still listens.
    wire::CloseSession end;
    end.end_unix_nanos = static_cast<uint64_t>(UnixNanos());
    end.end_reason = "recording failed";
    client->Close(end).IgnoreError();
    fprintf(stderr, "jitgate-rec: session ended: recording failed: %s\n",
            (!drained.ok() ? drained : result.status()).message().c_str());
    return 1;
  }

  wire::CloseSession end;
  end.end_unix_nanos = static_cast<uint64_t>(UnixNanos());
  end.end_reason = result->ended_on_request ? "terminated" : "closed";
  if (result->signaled) {
    end.exit_signal = SignalName(result->term_signal);
  } else {
    end.has_exit_status = true;
    end.exit_status = static_cast<uint32_t>(result->exit_status);
  }
  end.bytes_in = result->bytes_in;
  end.bytes_out = result->bytes_out;
  Status closed = client->Close(end);
  if (!closed.ok()) {
    fprintf(stderr, "jitgate-rec: session end not recorded: %s\n",
            closed.message().c_str());
    return 1;
  }
  if (!client->delivered()) {
    fprintf(stderr,
            "jitgate-rec: session %s kept in the spool until the broker is back "
            "(%s)\n",
            client->session_id().c_str(), client->disconnect_reason().c_str());
  }
  return result->ShellStatus();
}

}  // namespace
}  // namespace jitgate::recorder

int main(int argc, char** argv) { return jitgate::recorder::Main(argc, argv); }
