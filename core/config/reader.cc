#include "core/config/reader.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "core/base/status_macros.h"
#include "core/config/yaml_internal.h"

namespace jitgate::config {

using internal::Quote;

namespace {

Status Error(const Mark& mark, std::string_view message) {
  return InvalidArgumentError(mark.ToString() + ": " + std::string(message));
}

// "'broker.socket'" or "top level": how messages name a node.
std::string Label(const Node& node) {
  return node.path().empty() ? std::string("top level") : Quote(node.path());
}

// "in 'broker'" or "at top level".
std::string Where(const Node& node) {
  return node.path().empty() ? std::string("at top level")
                             : "in " + Quote(node.path());
}

// "file:line: 'broker.socket': expected X, got Y".
Status TypeError(const Node& node, std::string_view expected) {
  return Error(node.mark(), Label(node) + ": expected " +
                                std::string(expected) + ", got " +
                                std::string(KindName(node.kind())));
}

Status RequireMapping(const Node& map) {
  if (!map.is_mapping()) return TypeError(map, "a mapping");
  return OkStatus();
}

// Looks key up in map for a keyed getter: nullptr with OK if absent and
// optional; an error if absent and required or if map is not a mapping.
StatusOr<const Node*> Lookup(const Node& map, std::string_view key,
                             bool required) {
  RETURN_IF_ERROR(RequireMapping(map));
  const Node* node = Find(map, key);
  if (node == nullptr && required) {
    return Error(map.mark(),
                 "missing required key " + Quote(key) + " " + Where(map));
  }
  return node;
}

// Shared shape of the keyed getters: T from As(node) if present, else the
// fallback (optional) or an error (required).
template <typename T, typename Convert>
StatusOr<T> GetWith(const Node& map, std::string_view key, const T* fallback,
                    Convert as) {
  ASSIGN_OR_RETURN(const Node* node, Lookup(map, key, fallback == nullptr));
  if (node == nullptr) return *fallback;
  return as(*node);
}

// Nanoseconds per unit, largest first: units must appear in this order.
struct Unit {
  std::string_view name;
  int64_t nanos;
};
constexpr Unit kUnits[] = {
    {"d", int64_t{86400} * 1000000000}, {"h", int64_t{3600} * 1000000000},
    {"m", int64_t{60} * 1000000000},    {"s", int64_t{1000000000}},
    {"ms", int64_t{1000000}},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status BadDuration(std::string_view text, std::string_view why) {
  return InvalidArgumentError("bad duration " + Quote(text) + ": " +
                              std::string(why));
}

}  // namespace

const Node* Find(const Node& map, std::string_view key) {
  if (!map.is_mapping()) return nullptr;
  for (const MappingEntry& e : map.entries()) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

Status CheckKeys(const Node& mapping,
                 std::initializer_list<std::string_view> allowed) {
  RETURN_IF_ERROR(RequireMapping(mapping));
  for (const MappingEntry& e : mapping.entries()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || e.key == a;
    if (known) continue;
    std::string expected;
    for (std::string_view a : allowed) {
      if (!expected.empty()) expected += ", ";
      expected += a;
    }
    return Error(e.key_mark, "unknown key " + Quote(e.key) + " " +
                                 Where(mapping) +
                                 " (expected one of: " + expected + ")");
  }
  return OkStatus();
}

StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return BadDuration(text, "empty");
  if (text[0] == '-')
    return BadDuration(text, "negative durations are not allowed");
  int64_t total = 0;
  size_t next_unit = 0;  // index into kUnits of the largest unit still allowed
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      return BadDuration(text,
                         "expected a digit at " + Quote(text.substr(i, 1)));
    }
    int64_t n = 0;
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      if (n > (std::numeric_limits<int64_t>::max() - (text[i] - '0')) / 10) {
        return BadDuration(text, "too large");
      }
      n = n * 10 + (text[i] - '0');
    }
    size_t unit_start = i;
    while (i < text.size() && !IsDigit(text[i])) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) return BadDuration(text, "missing unit (s, m, h, d)");
    if (unit[0] == '.')
      return BadDuration(text,
                         "fractions are not supported (write e.g. 1h30m)");
    size_t u = 0;
    while (u < std::size(kUnits) && kUnits[u].name != unit) ++u;
    if (u == std::size(kUnits)) {
      return BadDuration(
          text, "unknown unit " + Quote(unit) + " (expected ms, s, m, h, d)");
    }
    if (u < next_unit) {
      return BadDuration(text,
                         "unit " + Quote(unit) +
                             " repeated or out of order (write e.g. 1h30m)");
    }
    next_unit = u + 1;
    if (n > (std::numeric_limits<int64_t>::max() - total) / kUnits[u].nanos) {
      return BadDuration(text, "too large");
    }
    total += n * kUnits[u].nanos;
  }
  return std::chrono::nanoseconds(total);
}

StatusOr<std::string> AsString(const Node& node) {
  if (!node.is_scalar()) return TypeError(node, "a string");
  // A NUL would silently truncate the value when it reaches a C API (a path
  // given to open(), a user name given to getpwnam()).
  if (node.value().find('\0') != std::string::npos) {
    return Error(node.mark(), Label(node) + ": contains a NUL byte");
  }
  return node.value();
}

StatusOr<bool> AsBool(const Node& node) {
  if (node.is_scalar() && !node.quoted()) {
    if (node.value() == "true") return true;
    if (node.value() == "false") return false;
  }
  if (node.is_scalar()) {
    return Error(node.mark(), Label(node) + ": expected true or false, got " +
                                  (node.quoted() ? "a quoted string " : "") +
                                  Quote(node.value()));
  }
  return TypeError(node, "true or false");
}

StatusOr<int64_t> AsInt64(const Node& node, int64_t min, int64_t max) {
  if (!node.is_scalar()) return TypeError(node, "an integer");
  const std::string& v = node.value();
  auto bad = [&](std::string_view why) {
    return Error(node.mark(),
                 Label(node) + ": " + std::string(why) + ", got " + Quote(v));
  };
  if (node.quoted()) return bad("expected an integer, not a quoted string");
  const bool negative = !v.empty() && v[0] == '-';
  const std::string_view digits = std::string_view(v).substr(negative ? 1 : 0);
  if (digits.empty()) return bad("expected a decimal integer");
  for (char c : digits) {
    if (!IsDigit(c)) return bad("expected a decimal integer");
  }
  if (digits.size() > 1 && digits[0] == '0')
    return bad("leading zeros are not allowed");
  // Accumulate negatively so that INT64_MIN is representable.
  int64_t n = 0;
  for (char c : digits) {
    const int d = c - '0';
    if (n < (std::numeric_limits<int64_t>::min() + d) / 10)
      return bad("out of range");
    n = n * 10 - d;
  }
  if (!negative) {
    if (n == std::numeric_limits<int64_t>::min()) return bad("out of range");
    n = -n;
  }
  if (n < min || n > max) {
    return bad("expected an integer from " + std::to_string(min) + " to " +
               std::to_string(max));
  }
  return n;
}

StatusOr<std::chrono::nanoseconds> AsDuration(const Node& node) {
  if (!node.is_scalar()) return TypeError(node, "a duration");
  auto d = ParseDuration(node.value());
  if (!d.ok())
    return Error(node.mark(), Label(node) + ": " + d.status().message());
  return d;
}

StatusOr<std::vector<std::string>> AsStringList(const Node& node) {
  if (!node.is_sequence()) return TypeError(node, "a list");
  std::vector<std::string> out;
  out.reserve(node.items().size());
  for (const Node& item : node.items()) {
    ASSIGN_OR_RETURN(std::string s, AsString(item));
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<std::string> GetString(const Node& map, std::string_view key) {
  return GetWith<std::string>(map, key, nullptr, AsString);
}
StatusOr<std::string> GetString(const Node& map, std::string_view key,
                                std::string fallback) {
  return GetWith<std::string>(map, key, &fallback, AsString);
}

StatusOr<bool> GetBool(const Node& map, std::string_view key) {
  return GetWith<bool>(map, key, nullptr, AsBool);
}
StatusOr<bool> GetBool(const Node& map, std::string_view key, bool fallback) {
  return GetWith<bool>(map, key, &fallback, AsBool);
}

StatusOr<int64_t> GetInt64(const Node& map, std::string_view key, int64_t min,
                           int64_t max) {
  return GetWith<int64_t>(map, key, nullptr,
                          [&](const Node& n) { return AsInt64(n, min, max); });
}
StatusOr<int64_t> GetInt64(const Node& map, std::string_view key, int64_t min,
                           int64_t max, int64_t fallback) {
  return GetWith<int64_t>(map, key, &fallback,
                          [&](const Node& n) { return AsInt64(n, min, max); });
}

StatusOr<std::chrono::nanoseconds> GetDuration(const Node& map,
                                               std::string_view key) {
  return GetWith<std::chrono::nanoseconds>(map, key, nullptr, AsDuration);
}
StatusOr<std::chrono::nanoseconds> GetDuration(
    const Node& map, std::string_view key, std::chrono::nanoseconds fallback) {
  return GetWith<std::chrono::nanoseconds>(map, key, &fallback, AsDuration);
}

StatusOr<std::vector<std::string>> GetStringList(const Node& map,
                                                 std::string_view key) {
  return GetWith<std::vector<std::string>>(map, key, nullptr, AsStringList);
}
StatusOr<std::vector<std::string>> GetStringList(
    const Node& map, std::string_view key, std::vector<std::string> fallback) {
  return GetWith<std::vector<std::string>>(map, key, &fallback, AsStringList);
}

StatusOr<const Node*> GetMapping(const Node& map, std::string_view key,
                                 bool required) {
  ASSIGN_OR_RETURN(const Node* node, Lookup(map, key, required));
  if (node != nullptr && !node->is_mapping())
    return TypeError(*node, "a mapping");
  return node;
}

StatusOr<const Node*> GetSequence(const Node& map, std::string_view key,
                                  bool required) {
  ASSIGN_OR_RETURN(const Node* node, Lookup(map, key, required));
  if (node != nullptr && !node->is_sequence())
    return TypeError(*node, "a list");
  return node;
}

}  // namespace jitgate::config
