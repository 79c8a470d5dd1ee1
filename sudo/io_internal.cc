#include "sudo/io_internal.h"

#include <sys/wait.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "sudo/approval_internal.h"

namespace jitgate::sudo {

namespace {

// An IPv4 or IPv6 address as $SSH_CLIENT spells it; anything else is not
// recorded (the value comes from the user's environment: informational only).
bool LooksLikeAddress(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != '.' && c != ':') return false;
  }
  return true;
}

uint16_t ParseDimension(std::optional<std::string_view> v) {
  if (!v.has_value()) return 0;
  unsigned n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n > 0xffff) return 0;
  return static_cast<uint16_t>(n);
}

}  // namespace

StatusOr<IoOptions> ParseIoOptions(const char* const* options) {
  IoOptions out;
  if (options == nullptr) return out;
  for (; *options != nullptr; ++options) {
    std::string_view word(*options);
    size_t eq = word.find('=');
    std::string_view key = word.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : word.substr(eq + 1);
    if ((key == "socket" || key == "spool") && eq != std::string_view::npos) {
      ASSIGN_OR_RETURN((key == "socket" ? out.socket : out.spool),
                       ParsePathOption(key, word, value));
    } else if (key == "timeout" && eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(out.timeout_seconds,
                       ParseIntOption(key, word, value, 1, kMaxIoTimeoutSeconds, "seconds"));
    } else if (key == "flush" && eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(out.flush_ms, ParseIntOption(key, word, value, kMinFlushMs, kMaxFlushMs,
                                                    "milliseconds"));
    } else {
      return InvalidArgumentError("unknown plugin option '" + EscapeForTerminal(word) +
                                  "' (known: socket=PATH spool=DIR timeout=SECONDS flush=MS)");
    }
  }
  return out;
}

recorder::Stream RecordStream(SudoStream s) {
  switch (s) {
    case SudoStream::kTtyIn:
    case SudoStream::kStdin:
      return recorder::Stream::kInput;
    case SudoStream::kStderr:
      return recorder::Stream::kError;
    case SudoStream::kTtyOut:
    case SudoStream::kStdout:
      break;
  }
  return recorder::Stream::kOutput;
}

std::string SuspendSignalName(int signo) {
  const char* name = sigabbrev_np(signo);
  return name != nullptr ? std::string(name) : std::to_string(signo);
}

StatusOr<wire::OpenSession> BuildOpenSession(const char* const* user_info,
                                             const char* const* command_info,
                                             const char* const* argv, const char* const* user_env,
                                             std::string_view fallback_host,
                                             std::string_view request_id,
                                             std::string_view ssh_client) {
  // The same fields, checks and caps as the approval request, so that the
  // recording and the request it ran under describe the command alike.
  StatusOr<wire::RequestFields> f =
      BuildRequestFields(user_info, command_info, argv, fallback_host);
  if (!f.ok()) return f.status();
  wire::OpenSession m;
  m.recorder = kIoRecorderName;
  m.request_id = std::string(request_id);
  m.user = std::move(f->user);
  m.login = std::move(f->target_user);
  m.host = f->host;
  m.target = std::move(f->host);
  m.command = std::move(f->command);
  std::string_view term = LookupKey(user_env, "TERM").value_or("");
  m.term = std::string(term.substr(0, wire::kMaxNameField));
  if (!f->tty.empty()) {
    m.cols = ParseDimension(LookupKey(user_info, "cols"));
    m.rows = ParseDimension(LookupKey(user_info, "lines"));
  }
  std::string_view addr = ssh_client.substr(0, ssh_client.find(' '));
  if (LooksLikeAddress(addr)) m.remote_addr = std::string(addr);
  return m;
}

std::string SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  if (name != nullptr) return name;
  return std::to_string(sig);
}

wire::CloseSession SessionEnd(int wait_status, int error) {
  wire::CloseSession end;
  end.end_reason = "closed";
  if (error != 0) {
    const char* why = strerrordesc_np(error);
    end.end_reason =
        "not run: " + (why != nullptr ? std::string(why) : "error " + std::to_string(error));
    return end;
  }
  if (WIFSIGNALED(wait_status)) {
    end.exit_signal = SignalName(WTERMSIG(wait_status));
  } else if (WIFEXITED(wait_status)) {
    end.has_exit_status = true;
    end.exit_status = static_cast<uint32_t>(WEXITSTATUS(wait_status));
  }
  return end;
}

}  // namespace jitgate::sudo
