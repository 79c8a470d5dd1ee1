#include "sudo/approval_internal.h"

#include <pwd.h>

#include <charconv>
#include <cstdio>

#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/wire/wire_format.h"

namespace jitgate::sudo {

namespace {

bool IsShellSafe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
}

std::string Hex2(uint8_t c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\x%02x", c);
  return buf;
}

Status CheckCap(std::string_view what, const std::string& value, size_t cap) {
  if (value.size() <= cap) return OkStatus();
  return OutOfRangeError("the " + std::string(what) + " is " + std::to_string(value.size()) +
                         " bytes; jitgate accepts at most " + std::to_string(cap));
}

}  // namespace

std::optional<std::string_view> LookupKey(const char* const* array, std::string_view key) {
  if (array == nullptr) return std::nullopt;
  for (; *array != nullptr; ++array) {
    std::string_view entry(*array);
    if (entry.size() > key.size() && entry.substr(0, key.size()) == key &&
        entry[key.size()] == '=') {
      return entry.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

StatusOr<std::string> ParsePathOption(std::string_view key, std::string_view word,
                                      std::string_view value) {
  if (value.empty() || value[0] != '/') {
    return InvalidArgumentError(std::string(key) + " must be an absolute path: '" +
                                EscapeForTerminal(word) + "'");
  }
  return std::string(value);
}

StatusOr<int64_t> ParseIntOption(std::string_view key, std::string_view word,
                                 std::string_view value, int64_t min, int64_t max,
                                 std::string_view unit) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < min || n > max) {
    return InvalidArgumentError(std::string(key) + " must be " + std::to_string(min) + " to " +
                                std::to_string(max) + " " + std::string(unit) + ": '" +
                                EscapeForTerminal(word) + "'");
  }
  return n;
}

StatusOr<PluginOptions> ParsePluginOptions(const char* const* options) {
  PluginOptions out;
  if (options == nullptr) return out;
  for (; *options != nullptr; ++options) {
    std::string_view word(*options);
    size_t eq = word.find('=');
    std::string_view key = word.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : word.substr(eq + 1);
    if (word == "debug") {
      out.debug = true;
    } else if (key == "socket" && eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(out.socket, ParsePathOption(key, word, value));
    } else if (key == "timeout" && eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(out.timeout_seconds,
                       ParseIntOption(key, word, value, 1, kMaxTimeoutSeconds, "seconds"));
    } else if (key == "reason" && eq != std::string_view::npos) {
      if (value == "required") {
        out.reason = ReasonMode::kRequired;
      } else if (value == "optional") {
        out.reason = ReasonMode::kOptional;
      } else if (value == "none") {
        out.reason = ReasonMode::kNone;
      } else {
        return InvalidArgumentError("reason must be required, optional or none: '" +
                                    EscapeForTerminal(word) + "'");
      }
    } else {
      return InvalidArgumentError("unknown plugin option '" + EscapeForTerminal(word) +
                                  "' (known: socket=PATH timeout=SECONDS "
                                  "reason=required|optional|none debug)");
    }
  }
  return out;
}

std::string ShellQuote(std::string_view arg) {
  if (arg.empty()) return "''";
  bool safe = true;
  for (char c : arg) safe = safe && IsShellSafe(c);
  if (safe) return std::string(arg);
  std::string out;
  if (IsPrintableText(arg)) {
    out = "'";
    for (char c : arg) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    return out + "'";
  }
  out = "$'";
  for (char c : arg) {
    uint8_t b = uint8_t(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\'') {
      out += "\\'";
    } else if (b >= 0x20 && b < 0x7f) {
      out += c;
    } else {
      out += Hex2(b);
    }
  }
  return out + "'";
}

std::string CommandLine(std::string_view command_path, const char* const* argv) {
  std::string line;
  if (argv != nullptr && argv[0] != nullptr) {
    std::string_view argv0(argv[0]);
    size_t slash = command_path.rfind('/');
    std::string_view base =
        slash == std::string_view::npos ? command_path : command_path.substr(slash + 1);
    if (argv0 != command_path && argv0 != base) line = "exec -a " + ShellQuote(argv0) + " ";
  }
  line += ShellQuote(command_path);
  if (argv != nullptr && argv[0] != nullptr) {
    for (const char* const* a = argv + 1; *a != nullptr; ++a) line += " " + ShellQuote(*a);
  }
  return line;
}

StatusOr<wire::RequestFields> BuildRequestFields(const char* const* user_info,
                                                 const char* const* command_info,
                                                 const char* const* run_argv,
                                                 std::string_view fallback_host) {
  wire::RequestFields f;
  f.service = "sudo";
  std::optional<std::string_view> user = LookupKey(user_info, "user");
  if (!user.has_value() || user->empty()) {
    return InvalidArgumentError(
        "sudo did not say who the invoking user is (no user= in user_info)");
  }
  f.user = std::string(*user);
  if (std::optional<std::string_view> runas = LookupKey(command_info, "runas_user");
      runas.has_value() && !runas->empty()) {
    f.target_user = std::string(*runas);
  } else if (std::optional<std::string_view> uid = LookupKey(command_info, "runas_uid")) {
    unsigned long id = 0;
    auto [end, ec] = std::from_chars(uid->data(), uid->data() + uid->size(), id);
    if (ec != std::errc() || end != uid->data() + uid->size()) {
      return InvalidArgumentError("sudo gave an invalid runas_uid");
    }
    struct passwd pw, *found = nullptr;
    char buf[4096];
    if (getpwuid_r(uid_t(id), &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
      f.target_user = found->pw_name;
    } else {
      f.target_user = "#" + std::to_string(id);  // sudo's own notation for a bare uid
    }
  } else {
    f.target_user = "root";
  }
  std::optional<std::string_view> host = LookupKey(user_info, "host");
  f.host = std::string(host.has_value() && !host->empty() ? *host : fallback_host);
  if (f.host.empty()) return InvalidArgumentError("no host name from sudo or the system");
  f.tty = std::string(LookupKey(user_info, "tty").value_or(""));
  std::optional<std::string_view> command = LookupKey(command_info, "command");
  if (!command.has_value() || command->empty()) {
    return InvalidArgumentError("sudo gave no command (no command= in command_info)");
  }
  f.command = CommandLine(*command, run_argv);
  std::optional<std::string_view> cwd = LookupKey(command_info, "cwd");
  if (!cwd.has_value() || cwd->empty()) cwd = LookupKey(user_info, "cwd");
  f.cwd = std::string(cwd.value_or(""));

  Status s = CheckCap("command line", f.command, wire::kMaxCommandField);
  if (s.ok()) s = CheckCap("working directory", f.cwd, wire::kMaxCwdField);
  if (s.ok()) s = CheckCap("user name", f.user, wire::kMaxNameField);
  if (s.ok()) s = CheckCap("run-as user name", f.target_user, wire::kMaxNameField);
  if (s.ok()) s = CheckCap("host name", f.host, wire::kMaxNameField);
  if (s.ok()) s = CheckCap("tty name", f.tty, wire::kMaxNameField);
  if (!s.ok()) return s;
  return f;
}



std::string RefusalMessage(const wire::RequesterResult& result) {
  if (!result.ok()) {
    // "jitgate broker unreachable at ..." reads "jitgate: broker unreachable
    // at ..." once the caller adds its "jitgate: " prefix.
    std::string_view m = result.status().message();
    if (m.substr(0, 8) == "jitgate ") m.remove_prefix(8);
    return EscapeForTerminal(std::string(m));
  }
  const wire::Decision& d = *result;
  if (!d.message.empty()) return EscapeForTerminal(d.message);
  std::string id = d.id.empty() ? "the request" : "request " + EscapeForTerminal(d.id);
  switch (d.outcome) {
    case wire::Outcome::kApproved:
      return id + " was approved but not for this command";  // digest checks failed
    case wire::Outcome::kDenied:
      return id + " was denied";
    case wire::Outcome::kExpired:
      return id + " timed out waiting for approval";
    case wire::Outcome::kCancelled:
      return id + " was cancelled";
    case wire::Outcome::kError:
      break;
  }
  return "the jitgate broker could not decide " + id;
}

}  // namespace jitgate::sudo
