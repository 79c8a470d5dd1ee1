// pam_jitgate.so: asks the jitgate broker for a live approval (PRODUCT.md F1,
// F2) in the auth or account phase of any service, and fails closed.
//
// Tiny on purpose (STYLE.md §5, §6): parse the arguments, read the PAM items,
// run one request through core/wire/requester (which talks to the broker over
// its unix socket and waits in poll() with one deadline), relay messages and
// prompts through the conversation, map the answer to a PAM code. No policy,
// no threads, no exit(). Every pam_sm_* entry point is a trampoline that
// catches everything (std::bad_alloc is the only exception the code below can
// raise) and fails closed. docs/pam.md is the user documentation.
#include <limits.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/text.h"
#include "core/wire/requester.h"
#include "pam/module_args.h"

namespace jitgate::pam {
namespace {

// pam_set_data key: the approval that auth got, so that account in the same
// handle does not ask again.
constexpr char kApprovalDataKey[] = "jitgate_approval";
constexpr char kClientName[] = "pam_jitgate 0.1.0";

enum class Phase { kAuth, kAccount };

int DenyCode(Phase phase) {
  return phase == Phase::kAuth ? PAM_AUTH_ERR : PAM_PERM_DENIED;
}
const char* PhaseName(Phase phase) {
  return phase == Phase::kAuth ? "auth" : "account";
}

// What auth stores for account. Bound to the identities it was granted for.
struct Approval {
  std::string id;
  std::string user;
  std::string target_user;
};

void CleanupApproval(pam_handle_t*, void* data, int) {
  delete static_cast<Approval*>(data);
}

// Text from the broker or the user shown on a terminal: control characters
// (escape sequences, newlines) become '?' (docs/protocol.md §3).
std::string Printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}


// A PAM item as a string ("" if unset).
std::string Item(pam_handle_t* pamh, int type) {
  const void* v = nullptr;
  if (pam_get_item(pamh, type, &v) != PAM_SUCCESS || v == nullptr)
    return std::string();
  return std::string(static_cast<const char*>(v));
}

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using PamResponse = std::unique_ptr<char, FreeDeleter>;

// The module's own clock. Not core/base's RealClock(): that singleton is
// leaked on purpose, which in a module that libpam loads and unloads with
// every handle becomes a leak per login in the host process.
class ModuleClock final : public Clock {
 public:
  int64_t NowUnixNanos() override { return Read(CLOCK_REALTIME); }
  int64_t MonotonicNanos() override { return Read(CLOCK_MONOTONIC); }

 private:
  static int64_t Read(clockid_t id) {
    struct timespec ts {};
    (void)clock_gettime(id, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
};

// The person waiting, through the PAM conversation.
//
// sshd buffers PAM_TEXT_INFO until the next prompt or the end of the phase
// (measured with OpenSSH 9.2; docs/pam.md). In sshd's auth phase
// (keyboard-interactive) the only way to show text live is a prompt, so in
// "live prompt" mode progress is shown as "... Press Enter to check" prompts;
// everywhere else (sudo, su, sshd's account phase) it goes out as info text.
class PamUi : public wire::RequesterUi {
 public:
  PamUi(pam_handle_t* pamh, bool can_prompt, bool live_prompt, bool quiet)
      : pamh_(pamh),
        can_prompt_(can_prompt),
        live_prompt_(live_prompt),
        quiet_(quiet) {}

  std::optional<std::string> AskReason(const wire::NeedReason& ask) override {
    std::string prompt =
        ask.prompt.empty() ? std::string("Reason: ") : Printable(ask.prompt);
    std::optional<std::string> answer = Prompt(prompt);
    if (!answer) {
      // The conversation cannot ask (sshd's account phase): an optional
      // reason is simply not given; a required one cancels.
      return ask.required ? std::nullopt
                          : std::optional<std::string>(std::string());
    }
    return answer;
  }

  void OnAccepted(const wire::RequestAccepted& a) override {
    id_ = a.id;
    std::string text;
    if (!accepted_once_) {
      text = "jitgate: request " + Printable(a.id) + " sent to approvers (" +
             Printable(a.approvers) + "); waiting up to " +
             FormatSeconds(a.wait_seconds);
    } else {
      text = "jitgate: reconnected; request " + Printable(a.id) +
             " still waits for " + Printable(a.approvers) + " (up to " +
             FormatSeconds(a.wait_seconds) + ")";
    }
    accepted_once_ = true;
    Progress(text);
  }

  void OnStatus(const wire::StatusUpdate& u) override {
    std::string text = "jitgate: request " + Printable(id_) + ": " +
                       Printable(u.message) + " (" +
                       std::to_string(u.approvals) + " of " +
                       std::to_string(u.approvals_needed) + " approvals, " +
                       FormatSeconds(u.wait_seconds) + " left)";
    Progress(text);
  }

  void OnReconnecting(const Status& why) override {
    // Never a prompt here: the reconnect should not wait for a key press.
    Notice("jitgate: lost the connection to the broker (" +
           Printable(why.message()) + "); reconnecting");
  }

  void Info(const std::string& text) {
    if (!quiet_) (void)pam_info(pamh_, "%s", text.c_str());
  }
  // Text the person must see even under PAM_SILENT (sudo authenticates with
  // it): that they are waiting, and for whom. A silent hang is worse than a
  // message the caller asked to suppress, so it goes out as an error message.
  void Notice(const std::string& text) {
    if (quiet_) {
      (void)pam_error(pamh_, "%s", text.c_str());
    } else {
      (void)pam_info(pamh_, "%s", text.c_str());
    }
  }
  void Error(const std::string& text) {
    (void)pam_error(pamh_, "%s", text.c_str());
  }

 private:
  // An ECHO_ON prompt; nullopt if the conversation cannot prompt.
  std::optional<std::string> Prompt(const std::string& text) {
    if (!can_prompt_) return std::nullopt;
    char* raw = nullptr;
    int rc = pam_prompt(pamh_, PAM_PROMPT_ECHO_ON, &raw, "%s", text.c_str());
    PamResponse response(raw);
    if (rc != PAM_SUCCESS || response == nullptr) return std::nullopt;
    return std::string(response.get());
  }

  // Progress text: a "Press Enter" prompt in live mode (falling back to info
  // text for good if the prompt fails), info text otherwise.
  void Progress(const std::string& text) {
    if (live_prompt_) {
      char* raw = nullptr;
      int rc = pam_prompt(pamh_, PAM_PROMPT_ECHO_ON, &raw,
                          "%s. Press Enter to check... ", text.c_str());
      PamResponse response(raw);
      if (rc == PAM_SUCCESS) return;
      live_prompt_ = false;
    }
    Notice(text + "...");
  }

  pam_handle_t* pamh_;
  bool can_prompt_;
  bool live_prompt_;
  bool quiet_;
  bool accepted_once_ = false;
  std::string id_;
};

// The user-facing line for an error Status from RunRequest.
std::string FailureText(const Status& s) {
  constexpr std::string_view kUnreachable = "jitgate broker unreachable at ";
  std::string msg = Printable(s.message());
  if (std::string_view(msg).substr(0, kUnreachable.size()) == kUnreachable) {
    return "jitgate: broker unreachable at " + msg.substr(kUnreachable.size()) +
           "; access denied";
  }
  return "jitgate: " + msg + "; access denied";
}

int Authorize(pam_handle_t* pamh, Phase phase, int flags, int argc,
              const char** argv) {
  StatusOr<ModuleArgs> parsed = ParseModuleArgs(argc, argv);
  if (!parsed.ok()) {
    pam_syslog(pamh, LOG_ERR, "bad module argument: %s; failing closed",
               parsed.status().message().c_str());
    (void)pam_error(pamh, "%s",
                    "jitgate: the PAM module is misconfigured; access denied");
    return PAM_SERVICE_ERR;
  }
  const ModuleArgs& args = *parsed;

  wire::RequestFields fields;
  fields.service = Item(pamh, PAM_SERVICE);
  const char* target = nullptr;
  if (pam_get_user(pamh, &target, nullptr) != PAM_SUCCESS ||
      target == nullptr || target[0] == '\0') {
    pam_syslog(pamh, LOG_ERR, "%s: no user name; failing closed",
               PhaseName(phase));
    return phase == Phase::kAuth ? PAM_USER_UNKNOWN : PAM_PERM_DENIED;
  }
  fields.target_user = target;
  std::string ruser = Item(pamh, PAM_RUSER);
  fields.user = ruser.empty() ? fields.target_user : ruser;
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  fields.host = host;
  fields.remote_addr = Item(pamh, PAM_RHOST);
  fields.tty = Item(pamh, PAM_TTY);

  // An approval from auth in this handle covers account for the same people.
  const void* data = nullptr;
  if (phase == Phase::kAccount &&
      pam_get_data(pamh, kApprovalDataKey, &data) == PAM_SUCCESS &&
      data != nullptr) {
    const auto* approval = static_cast<const Approval*>(data);
    if (approval->user == fields.user &&
        approval->target_user == fields.target_user) {
      if (args.debug) {
        pam_syslog(pamh, LOG_DEBUG,
                   "account: request %s was approved in auth; not asking again",
                   approval->id.c_str());
      }
      return PAM_SUCCESS;
    }
    pam_syslog(
        pamh, LOG_WARNING,
        "account: the user changed since auth's approval of %s; asking again",
        approval->id.c_str());
  }

  // sshd sets PAM_TTY to "ssh" before the session (PAM_TTY_KLUDGE): there the
  // account phase cannot prompt at all, and the auth phase
  // (keyboard-interactive) shows info text only with a prompt.
  const bool sshd_preauth = fields.tty == "ssh";
  const void* conv = nullptr;
  const bool conversation =
      pam_get_item(pamh, PAM_CONV, &conv) == PAM_SUCCESS && conv != nullptr;
  const bool can_prompt = conversation && args.reason != ReasonMode::kNone &&
                          !(phase == Phase::kAccount && sshd_preauth);
  const bool live_prompt =
      conversation && phase == Phase::kAuth && sshd_preauth;
  PamUi ui(pamh, can_prompt, live_prompt, (flags & PAM_SILENT) != 0);

  if (args.debug) {
    pam_syslog(pamh, LOG_DEBUG,
               "%s: asking %s: service=%s user=%s target_user=%s host=%s "
               "rhost=%s tty=%s "
               "timeout=%llds can_prompt=%d live_prompt=%d",
               PhaseName(phase), args.socket.c_str(), fields.service.c_str(),
               fields.user.c_str(), fields.target_user.c_str(),
               fields.host.c_str(), fields.remote_addr.c_str(),
               fields.tty.c_str(), static_cast<long long>(args.timeout_seconds),
               can_prompt, live_prompt);
  }

  if (args.reason == ReasonMode::kRequired) {
    char* raw = nullptr;
    int rc = PAM_CONV_ERR;
    if (can_prompt) {
      std::string prompt = "Reason for " + Printable(fields.service) + " as " +
                           Printable(fields.target_user) + " on " +
                           Printable(fields.host) + ": ";
      rc = pam_prompt(pamh, PAM_PROMPT_ECHO_ON, &raw, "%s", prompt.c_str());
    }
    PamResponse response(raw);
    if (rc != PAM_SUCCESS || response == nullptr || response.get()[0] == '\0') {
      pam_syslog(pamh, LOG_NOTICE, "%s: no reason given by %s; access denied",
                 PhaseName(phase), fields.user.c_str());
      ui.Error(rc == PAM_SUCCESS
                   ? "jitgate: a reason is required; access denied"
                   : "jitgate: a reason is required but cannot be asked here; "
                     "access denied");
      return DenyCode(phase);
    }
    fields.reason = response.get();
  }

  ModuleClock clock;
  wire::RequesterOptions options;
  options.clock = &clock;
  options.socket_path = args.socket;
  options.client_name = kClientName;
  options.timeout_ms = args.timeout_seconds * 1000;
  options.can_prompt = can_prompt;
  wire::RequesterResult result = wire::RunRequest(fields, options, &ui);

  if (!result.ok()) {
    const Status& s = result.status();
    pam_syslog(
        pamh, LOG_ERR, "%s: %s for user %s (target %s): %s; access denied",
        PhaseName(phase), std::string(StatusCodeName(s.code())).c_str(),
        fields.user.c_str(), fields.target_user.c_str(), s.message().c_str());
    ui.Error(FailureText(s));
    return DenyCode(phase);
  }
  const wire::Decision& d = *result;
  std::string id = Printable(d.id);
  std::string message = Printable(d.message);
  if (!wire::Granted(result)) {
    std::string outcome(wire::OutcomeName(d.outcome));
    pam_syslog(
        pamh, LOG_NOTICE, "%s: request %s %s for user %s (target %s): %s",
        PhaseName(phase), id.c_str(), outcome.c_str(), fields.user.c_str(),
        fields.target_user.c_str(), message.c_str());
    // jitgated's messages already name the request and the decision
    // ("request 7f3a9c02 denied by carol: not now"); say it once.
    std::string head = "jitgate: request " +
                       (id.empty() ? std::string("not filed") : id) + " " +
                       outcome;
    std::string text;
    if (message.empty()) {
      text = head;
    } else if (!id.empty() && message.rfind("request " + id, 0) == 0) {
      text = "jitgate: " + message;
    } else {
      text = head + ": " + message;
    }
    if (text.find("access denied") == std::string::npos) {
      text += "; access denied";
    }
    ui.Error(text);
    return DenyCode(phase);
  }

  // Approved, with the digest checked by RunRequest.
  std::string env = "JITGATE_REQUEST_ID=" + id;
  if (pam_putenv(pamh, env.c_str()) != PAM_SUCCESS) {
    pam_syslog(pamh, LOG_ERR,
               "%s: request %s approved but pam_putenv failed; failing closed",
               PhaseName(phase), id.c_str());
    ui.Error("jitgate: internal error recording the approval; access denied");
    return DenyCode(phase);
  }
  if (phase == Phase::kAuth) {
    auto* approval = new Approval{d.id, fields.user, fields.target_user};
    if (pam_set_data(pamh, kApprovalDataKey, approval, CleanupApproval) !=
        PAM_SUCCESS) {
      delete approval;  // account will simply ask again
    }
  }
  std::string by;
  for (const std::string& name : d.decided_by)
    by += (by.empty() ? "" : ", ") + Printable(name);
  pam_syslog(pamh, LOG_NOTICE,
             "%s: request %s approved for user %s (target %s) by %s",
             PhaseName(phase), id.c_str(), fields.user.c_str(),
             fields.target_user.c_str(), by.empty() ? "?" : by.c_str());
  if (message.empty()) {
    ui.Info("jitgate: request " + id + " approved");
  } else if (message.rfind("request " + id, 0) == 0) {
    ui.Info("jitgate: " + message);
  } else {
    ui.Info("jitgate: request " + id + " approved: " + message);
  }
  return PAM_SUCCESS;
}

// Runs Authorize with nothing escaping into the C caller.
int Trampoline(pam_handle_t* pamh, Phase phase, int flags, int argc,
               const char** argv) noexcept {
  try {
    return Authorize(pamh, phase, flags, argc, argv);
  } catch (...) {
    // Only allocation can throw here. Do not allocate to report it.
    pam_syslog(pamh, LOG_CRIT,
               "%s: internal error (out of memory?); failing closed",
               PhaseName(phase));
    return DenyCode(phase);
  }
}

}  // namespace
}  // namespace jitgate::pam

// The module is built with -fvisibility=hidden; these three are the exports
// (pam_jitgate.map makes everything else local as well).
#define JITGATE_PAM_EXPORT extern "C" __attribute__((visibility("default")))

JITGATE_PAM_EXPORT int pam_sm_authenticate(pam_handle_t* pamh, int flags,
                                           int argc, const char** argv) {
  return jitgate::pam::Trampoline(pamh, jitgate::pam::Phase::kAuth, flags, argc,
                                  argv);
}

JITGATE_PAM_EXPORT int pam_sm_acct_mgmt(pam_handle_t* pamh, int flags, int argc,
                                        const char** argv) {
  return jitgate::pam::Trampoline(pamh, jitgate::pam::Phase::kAccount, flags,
                                  argc, argv);
}

// jitgate issues no credentials; sshd calls this through the auth stack.
JITGATE_PAM_EXPORT int pam_sm_setcred(pam_handle_t*, int, int, const char**) {
  return PAM_SUCCESS;
}
