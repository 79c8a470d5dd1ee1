#include "pam/module_args.h"

#include <sys/un.h>

#include <string_view>

namespace jitgate::pam {
namespace {

// Strictly decimal, no sign, no spaces, no overflow.
bool ParseSeconds(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

StatusOr<ModuleArgs> ParseModuleArgs(int argc, const char** argv) {
  ModuleArgs args;
  for (int i = 0; i < argc; ++i) {
    if (argv == nullptr || argv[i] == nullptr)
      return InvalidArgumentError("null argument");
    std::string_view arg(argv[i]);
    if (arg == "debug") {
      args.debug = true;
      continue;
    }
    size_t eq = arg.find('=');
    std::string_view key = arg.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : arg.substr(eq + 1);
    if (eq == std::string_view::npos) {
      return InvalidArgumentError("unknown argument \"" + std::string(arg) +
                                  "\"");
    }
    if (key == "socket") {
      if (value.empty() || value[0] != '/' ||
          value.size() >= sizeof(sockaddr_un::sun_path)) {
        return InvalidArgumentError(
            "socket=" + std::string(value) +
            ": must be an absolute path of at most " +
            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
      }
      args.socket = std::string(value);
    } else if (key == "timeout") {
      int64_t seconds = 0;
      if (!ParseSeconds(value, &seconds) || seconds < 1 ||
          seconds > kMaxTimeoutSeconds) {
        return InvalidArgumentError(
            "timeout=" + std::string(value) + ": must be 1-" +
            std::to_string(kMaxTimeoutSeconds) + " seconds");
      }
      args.timeout_seconds = seconds;
    } else if (key == "reason") {
      if (value == "required") {
        args.reason = ReasonMode::kRequired;
      } else if (value == "optional") {
        args.reason = ReasonMode::kOptional;
      } else if (value == "none") {
        args.reason = ReasonMode::kNone;
      } else {
        return InvalidArgumentError("reason=" + std::string(value) +
                                    ": must be required, optional or none");
      }
    } else {
      return InvalidArgumentError("unknown argument \"" + std::string(arg) +
                                  "\"");
    }
  }
  return args;
}

}  // namespace jitgate::pam
