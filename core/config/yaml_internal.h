// Helpers shared by yaml.cc and reader.cc. Not part of the public API.
#ifndef JITGATE_CORE_CONFIG_YAML_INTERNAL_H_
#define JITGATE_CORE_CONFIG_YAML_INTERNAL_H_

#include <string>
#include <string_view>

namespace jitgate::config::internal {

// Longest piece of user text (a key, a value) copied into a message or path.
inline constexpr size_t kMaxQuotedBytes = 64;

// Truncate returns s cut to at most max bytes (never inside a UTF-8
// sequence), with "..." appended when something was cut.
std::string Truncate(std::string_view s, size_t max = kMaxQuotedBytes);

// Quote returns s in single quotes for an error message: truncated, and with
// control characters, DEL and invalid bytes written as \xNN so that a
// hostile file cannot put escape sequences on an administrator's terminal.
std::string Quote(std::string_view s);

}  // namespace jitgate::config::internal

#endif  // JITGATE_CORE_CONFIG_YAML_INTERNAL_H_
