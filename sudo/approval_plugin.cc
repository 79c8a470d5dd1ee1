// jitgate_approval.so: a sudo approval plugin (sudo_plugin(5), "Approval
// plugin API") that asks the jitgate broker for a live approval of the exact
// command, run-as user and working directory before sudo runs it
// (PRODUCT.md F2). Loaded from /etc/sudo.conf:
//
//   Plugin jitgate_approval /usr/lib/jitgate/jitgate_approval.so timeout=300 reason=optional
//
// Every entry point is a noexcept trampoline: nothing crosses the C ABI, every
// failure denies (fails closed), and only the `jitgate_approval` symbol is
// exported (jitgate_approval.map). sudo calls open/check/close from one
// thread; each check() files a new request, so a second command needs a
// second approval.
#include <sudo_plugin.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/wire/requester.h"
#include "sudo/approval_internal.h"
#include "sudo/session_link.h"

namespace jitgate::sudo {
namespace {

constexpr char kVersion[] = "0.1.0";
constexpr char kClientName[] = "jitgate_approval 0.1.0";

// What open() learned; lives from open() to close().
struct PluginState {
  sudo_conv_t conversation = nullptr;
  sudo_printf_t printf = nullptr;
  PluginOptions options;
  bool has_tty = false;  // user_info tty= was set
  bool noninteractive = false;  // settings noninteractive=true: `sudo -n` may not prompt
  std::string user_info_storage;  // the copied user_info strings, NUL-separated
  std::vector<const char*> user_info;
};

PluginState* g_state = nullptr;

// *errstr must outlive the call that sets it (sudo hands it to the audit
// plugins afterwards, possibly after close()), so it points into this static
// buffer, which is never freed.
char g_errbuf[1024];

const char* SetError(const std::string& message) {
  std::snprintf(g_errbuf, sizeof(g_errbuf), "%s", message.c_str());
  return g_errbuf;
}

void Print(int type, const std::string& line) {
  if (g_state != nullptr && g_state->printf != nullptr) g_state->printf(type, "%s\n", line.c_str());
}

// Status lines go to the user's terminal when there is one, never into the
// command's standard output: `sudo cmd > out.json` must produce the same file
// with and without jitgate. Without a terminal they go to standard error.
void Info(const std::string& line) {
  int type = g_state != nullptr && g_state->has_tty ? SUDO_CONV_INFO_MSG | SUDO_CONV_PREFER_TTY
                                                    : SUDO_CONV_ERROR_MSG;
  Print(type, "jitgate: " + line);
}
void Debug(const std::string& line) {
  if (g_state != nullptr && g_state->options.debug) Info("debug: " + line);
}

// Asks one question with echo through sudo's conversation function; nullopt
// if sudo could not ask (no tty, EOF, interrupted).
std::optional<std::string> Ask(const std::string& prompt) {
  if (g_state == nullptr || g_state->conversation == nullptr) return std::nullopt;
  sudo_conv_message msg{};
  msg.msg_type = SUDO_CONV_PROMPT_ECHO_ON;
  msg.msg = prompt.c_str();
  sudo_conv_reply reply{};
  int rc = g_state->conversation(1, &msg, &reply, nullptr);
  std::optional<std::string> answer;
  if (rc == 0 && reply.reply != nullptr) answer = std::string(reply.reply);
  if (reply.reply != nullptr) {
    // The plugin owns the reply (sudo_plugin(5)); wipe it like a password.
    explicit_bzero(reply.reply, std::strlen(reply.reply));
    std::free(reply.reply);
  }
  return answer;
}

// Talks to the user through sudo while RunRequest waits.
class SudoUi : public wire::RequesterUi {
 public:
  std::optional<std::string> AskReason(const wire::NeedReason& ask) override {
    std::string prompt = ask.prompt.empty() ? "Reason: " : EscapeForTerminal(ask.prompt);
    return Ask(prompt);
  }
  void OnAccepted(const wire::RequestAccepted& a) override {
    Info("request " + EscapeForTerminal(a.id) + " sent to approvers (" +
         EscapeForTerminal(a.approvers) + "); waiting up to " + FormatSeconds(a.wait_seconds) +
         "\u2026");
  }
  void OnStatus(const wire::StatusUpdate& u) override {
    if (!u.message.empty()) Info(EscapeForTerminal(u.message));
  }
  void OnReconnecting(const Status& why) override {
    Info("lost the broker (" + EscapeForTerminal(why.message()) + "); reconnecting\u2026");
  }
};

int Open(unsigned int version, sudo_conv_t conversation, sudo_printf_t plugin_printf,
         char* const settings[], char* const user_info[], char* const plugin_options[],
         const char** errstr) {
  if (SUDO_API_VERSION_GET_MAJOR(version) != SUDO_API_VERSION_MAJOR) {
    *errstr = SetError("jitgate: incompatible sudo plugin API version " +
                       std::to_string(SUDO_API_VERSION_GET_MAJOR(version)) + "." +
                       std::to_string(SUDO_API_VERSION_GET_MINOR(version)));
    return -1;
  }
  StatusOr<PluginOptions> options = ParsePluginOptions(plugin_options);
  if (!options.ok()) {
    std::string message = "jitgate: bad Plugin line in sudo.conf: " + options.status().message();
    if (plugin_printf != nullptr) plugin_printf(SUDO_CONV_ERROR_MSG, "%s\n", message.c_str());
    *errstr = SetError(message);
    return -1;
  }
  ForgetApprovedRequest();
  delete g_state;
  g_state = new PluginState;
  g_state->conversation = conversation;
  g_state->printf = plugin_printf;
  g_state->options = *std::move(options);
  // sudo's arrays need not outlive open(): keep our own copy of user_info.
  std::vector<size_t> offsets;
  for (char* const* p = user_info; p != nullptr && *p != nullptr; ++p) {
    offsets.push_back(g_state->user_info_storage.size());
    g_state->user_info_storage.append(*p);
    g_state->user_info_storage.push_back('\0');
  }
  for (size_t off : offsets) g_state->user_info.push_back(g_state->user_info_storage.data() + off);
  g_state->user_info.push_back(nullptr);
  std::optional<std::string_view> tty = LookupKey(g_state->user_info.data(), "tty");
  g_state->has_tty = tty.has_value() && !tty->empty();
  // `sudo -n`: sudo's conversation fails at any prompt, so a question would
  // cancel the request. Tell the broker this client cannot ask instead; a
  // policy that merely welcomes a reason then files the request without one.
  std::optional<std::string_view> noninteractive =
      LookupKey(settings, "noninteractive");
  g_state->noninteractive = noninteractive.has_value() && *noninteractive == "true";
  Debug("socket=" + EscapeForTerminal(g_state->options.socket) +
        " timeout=" + std::to_string(g_state->options.timeout_seconds));
  return 1;
}

int Check(char* const command_info[], char* const run_argv[], const char** errstr) {
  if (g_state == nullptr) {
    *errstr = SetError("jitgate: approval plugin used before open");
    return -1;
  }
  ForgetApprovedRequest();  // only a grant for this very command may be linked
  char hostname[HOST_NAME_MAX + 1] = {};
  if (gethostname(hostname, sizeof(hostname) - 1) != 0) hostname[0] = '\0';
  StatusOr<wire::RequestFields> fields =
      BuildRequestFields(g_state->user_info.data(), command_info, run_argv, hostname);
  if (!fields.ok()) {
    std::string message = "jitgate: " + EscapeForTerminal(fields.status().message());
    Print(SUDO_CONV_ERROR_MSG, message);
    *errstr = SetError(message);
    // A command too long to file is refused; missing data from sudo is an error.
    return fields.status().code() == StatusCode::kOutOfRange ? 0 : -1;
  }
  Debug("requesting " + EscapeForTerminal(fields->user) + " \u2192 " +
        EscapeForTerminal(fields->target_user) + "@" + EscapeForTerminal(fields->host) + ": " +
        fields->command + " in " + EscapeForTerminal(fields->cwd));

  const PluginOptions& options = g_state->options;
  if (options.reason == ReasonMode::kRequired && g_state->noninteractive) {
    std::string message = "jitgate: a reason is required and sudo -n cannot ask for one; "
                          "command not run";
    Print(SUDO_CONV_ERROR_MSG, message);
    *errstr = SetError(message);
    return 0;
  }
  if (options.reason == ReasonMode::kRequired) {
    std::optional<std::string> reason =
        Ask("Reason for running this command as " + EscapeForTerminal(fields->target_user) + ": ");
    if (!reason.has_value() || reason->empty()) {
      std::string message = "jitgate: a reason is required; command not run";
      Print(SUDO_CONV_ERROR_MSG, message);
      *errstr = SetError(message);
      return 0;
    }
    if (reason->size() > wire::kMaxReasonField) reason->resize(wire::kMaxReasonField);
    fields->reason = *std::move(reason);
  }

  wire::RequesterOptions ro;
  ro.socket_path = options.socket;
  ro.client_name = kClientName;
  ro.timeout_ms = options.timeout_seconds * 1000;
  ro.can_prompt = options.reason != ReasonMode::kNone && !g_state->noninteractive;
  SudoUi ui;
  wire::RequesterResult result = wire::RunRequest(*fields, ro, &ui);
  if (wire::Granted(result)) {
    // The recording of this command names the request (jitgate_io from the
    // same shared object; session_link.h).
    NoteApprovedRequest(result->id);
    std::string by;
    for (const std::string& name : result->decided_by) by += (by.empty() ? "" : ", ") + name;
    Info("request " + EscapeForTerminal(result->id) + " approved" +
         (by.empty() ? "" : " by " + EscapeForTerminal(by)));
    return 1;
  }
  std::string message = "jitgate: " + RefusalMessage(result);
  Print(SUDO_CONV_ERROR_MSG, message);
  *errstr = SetError(message);
  return 0;
}

}  // namespace
}  // namespace jitgate::sudo

namespace {

using jitgate::sudo::g_state;
using jitgate::sudo::SetError;

int TrampolineOpen(unsigned int version, sudo_conv_t conversation, sudo_printf_t plugin_printf,
                   char* const settings[], char* const user_info[], int /*submit_optind*/,
                   char* const /*submit_argv*/[], char* const /*submit_envp*/[],
                   char* const plugin_options[], const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    return jitgate::sudo::Open(version, conversation, plugin_printf, settings, user_info,
                               plugin_options, errstr);
  } catch (...) {
    *errstr = SetError("jitgate: approval plugin failed to start (out of memory)");
    return -1;
  }
}

void TrampolineClose() noexcept {
  delete g_state;
  g_state = nullptr;
}

int TrampolineCheck(char* const command_info[], char* const run_argv[], char* const /*run_envp*/[],
                    const char** errstr) noexcept {
  const char* ignored = nullptr;
  if (errstr == nullptr) errstr = &ignored;
  try {
    return jitgate::sudo::Check(command_info, run_argv, errstr);
  } catch (...) {
    *errstr = SetError("jitgate: approval check failed (out of memory); command not run");
    return -1;
  }
}

int TrampolineShowVersion(int /*verbose*/) noexcept {
  if (g_state != nullptr && g_state->printf != nullptr) {
    g_state->printf(SUDO_CONV_INFO_MSG, "jitgate approval plugin version %s\n",
                    jitgate::sudo::kVersion);
  }
  return 1;
}

}  // namespace

// The one exported symbol (jitgate_approval.map), named on the sudo.conf
// Plugin line.
extern "C" {
__attribute__((visibility("default"))) struct approval_plugin jitgate_approval = {
    SUDO_APPROVAL_PLUGIN, SUDO_API_VERSION, TrampolineOpen,
    TrampolineClose,      TrampolineCheck,  TrampolineShowVersion,
};
}  // extern "C"
