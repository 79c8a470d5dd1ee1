// Typed, strict access to a parsed YAML tree (core/config/yaml.h), for
// validating jitgate.yaml.
//
// Every error is INVALID_ARGUMENT with a message that starts "file:line: " and
// names the offending key by its path, e.g.
//   jitgate.yaml:7: unknown key 'sockett' in 'broker' (expected one of: socket,
//   state_dir, submitters) jitgate.yaml:21: 'policies[1].timeout': bad duration
//   '5': missing unit (s, m, h, d)
// User text in messages is quoted, shortened and has control characters
// escaped.
//
// Scalars are typed strictly and never guessed: booleans are exactly `true` or
// `false`, integers are plain decimal without leading zeros (YAML 1.1 would
// read "010" as octal), and quoted scalars are only ever strings.
//
// Each keyed getter comes in two forms: without a fallback the key is
// required; with one, a missing key yields the fallback. A key that is present
// with the wrong type is always an error, including an empty value (`key:`).
// All functions are pure and thread-safe.
#ifndef JITGATE_CORE_CONFIG_READER_H_
#define JITGATE_CORE_CONFIG_READER_H_

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "core/config/yaml.h"

namespace jitgate::config {

// Find returns the value stored under key in map, or nullptr if map is not a
// mapping or has no such key. The pointer is valid while map lives.
const Node* Find(const Node& map, std::string_view key);

// CheckKeys fails if mapping is not a mapping, or names the first key not in
// allowed, listing allowed in the order given:
//   "file:7: unknown key 'sockett' in 'broker' (expected one of: socket,
//   state_dir, submitters)"
Status CheckKeys(const Node& mapping,
                 std::initializer_list<std::string_view> allowed);

// ParseDuration parses a duration: one or more <digits><unit> groups with
// units d, h, m, s, ms in strictly decreasing order ("30s", "5m", "1h30m",
// "250ms", "2d"). Rejects empty text, signs, fractions, spaces, repeated or
// unordered units, unknown units and values that overflow int64 nanoseconds.
// The message has no location ("bad duration '5': missing unit (s, m, h, d)");
// AsDuration and GetDuration add it.
StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// Conversions of one node, for list items and custom checks.
//
// AsString accepts any scalar (plain or quoted) without NUL bytes.
StatusOr<std::string> AsString(const Node& node);
// AsBool accepts the plain scalars true and false.
StatusOr<bool> AsBool(const Node& node);
// AsInt64 accepts a plain decimal integer in [min, max].
StatusOr<int64_t> AsInt64(const Node& node, int64_t min, int64_t max);
// AsDuration accepts a plain or quoted scalar in ParseDuration's syntax.
StatusOr<std::chrono::nanoseconds> AsDuration(const Node& node);
// AsStringList accepts a sequence (possibly empty) of AsString scalars.
StatusOr<std::vector<std::string>> AsStringList(const Node& node);

// Keyed getters. map must be a mapping. The first form fails with
// "missing required key 'k' in 'path'" when key is absent; the second returns
// fallback.
StatusOr<std::string> GetString(const Node& map, std::string_view key);
StatusOr<std::string> GetString(const Node& map, std::string_view key,
                                std::string fallback);

StatusOr<bool> GetBool(const Node& map, std::string_view key);
StatusOr<bool> GetBool(const Node& map, std::string_view key, bool fallback);

StatusOr<int64_t> GetInt64(const Node& map, std::string_view key, int64_t min,
                           int64_t max);
StatusOr<int64_t> GetInt64(const Node& map, std::string_view key, int64_t min,
                           int64_t max, int64_t fallback);

StatusOr<std::chrono::nanoseconds> GetDuration(const Node& map,
                                               std::string_view key);
StatusOr<std::chrono::nanoseconds> GetDuration(
    const Node& map, std::string_view key, std::chrono::nanoseconds fallback);

StatusOr<std::vector<std::string>> GetStringList(const Node& map,
                                                 std::string_view key);
StatusOr<std::vector<std::string>> GetStringList(
    const Node& map, std::string_view key, std::vector<std::string> fallback);

// GetMapping and GetSequence return the nested section under key, checked to
// be of that kind. When key is absent they fail if required, else return
// nullptr. The pointer is valid while map lives.
StatusOr<const Node*> GetMapping(const Node& map, std::string_view key,
                                 bool required);
StatusOr<const Node*> GetSequence(const Node& map, std::string_view key,
                                  bool required);

}  // namespace jitgate::config

#endif  // JITGATE_CORE_CONFIG_READER_H_
