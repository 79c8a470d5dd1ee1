// ModuleArgs: the arguments of pam_jitgate.so, parsed the way other PAM
// modules do it (defaults, then each `key=value` or flag from the stack line;
// a later key wins):
//
//   pam_jitgate.so [socket=PATH] [timeout=SECONDS]
//   [reason=required|optional|none] [debug]
//
// Anything else is an error: the module then fails closed with
// PAM_SERVICE_ERR, because a typo must never weaken the check. Internal to
// pam/ (not installed).
#ifndef JITGATE_PAM_MODULE_ARGS_H_
#define JITGATE_PAM_MODULE_ARGS_H_

#include <cstdint>
#include <string>

#include "core/base/status.h"

namespace jitgate::pam {

inline constexpr char kDefaultSocket[] = "/run/jitgate/jitgated.sock";
inline constexpr int64_t kDefaultTimeoutSeconds = 300;
inline constexpr int64_t kMaxTimeoutSeconds = 86400;

enum class ReasonMode {
  kOptional,  // ask only when the broker's policy asks (NeedReason) and we can
  kRequired,  // ask before submitting; an empty answer denies
  kNone,      // never prompt for a reason (can_prompt is false)
};

struct ModuleArgs {
  std::string socket = kDefaultSocket;
  int64_t timeout_seconds = kDefaultTimeoutSeconds;
  ReasonMode reason = ReasonMode::kOptional;
  bool debug = false;
};

// Parses argv. Fails with InvalidArgument naming the bad argument, e.g.
// `unknown argument "timout=5"` or `timeout=0: must be 1-86400 seconds`.
StatusOr<ModuleArgs> ParseModuleArgs(int argc, const char** argv);

}  // namespace jitgate::pam

#endif  // JITGATE_PAM_MODULE_ARGS_H_
