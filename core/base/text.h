// Text for people: escaping untrusted bytes before they reach a terminal, and
// compact durations. Shared by the CLI, the sudo plugin and the broker so that
// every user-facing surface escapes and spells time the same way. Pure
// functions; thread-safe.
#ifndef JITGATE_CORE_BASE_TEXT_H_
#define JITGATE_CORE_BASE_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jitgate {

// Decodes one UTF-8 sequence at s[i]. Returns its length and stores the code
// point, or returns 0 if the bytes there are not a valid, shortest-form
// sequence of a scalar value (no surrogates, nothing above U+10FFFF).
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

// Code points that are valid but must not reach a terminal raw: C1 controls
// (CSI and friends on some terminals) and characters that are invisible or
// reorder the text around them ("Trojan Source").
bool IsDangerousCodePoint(uint32_t cp);

// True if every character of s is printable: no C0/C1 control, DEL, invalid
// UTF-8 or dangerous code point.
bool IsPrintableText(std::string_view s);

// s with every control character, DEL and invalid UTF-8 byte shown as \xNN
// and every dangerous code point as \u{XXXX}; printable UTF-8 is kept.
std::string EscapeForTerminal(std::string_view s);

// "45s", "5m", "4m30s", "1h2m3s"; negative counts as 0.
std::string FormatSeconds(int64_t seconds);

// FormatRfc3339Nanos: UTC with nanoseconds, "2024-01-01T00:00:00.000000000Z"
// (the audit log's time format); "" if the time cannot be represented.
std::string FormatRfc3339Nanos(int64_t unix_nanos);

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_TEXT_H_
