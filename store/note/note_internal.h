// Internal text-parsing helpers shared by the signed-note, checkpoint and
// tlog-proof parsers. Not part of the public API of jitgate_note.
#ifndef JITGATE_STORE_NOTE_NOTE_INTERNAL_H_
#define JITGATE_STORE_NOTE_NOTE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base/status.h"

namespace jitgate::note::internal {

// DecodeUtf8 decodes one code point from s at *pos and advances *pos. It
// follows Go's utf8.DecodeRune validity rules: no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Returns nullopt (and
// leaves *pos alone) on invalid or truncated input.
std::optional<char32_t> DecodeUtf8(std::string_view s, size_t* pos);

// IsUnicodeSpace matches Go's unicode.IsSpace (the Unicode White_Space
// property): U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
bool IsUnicodeSpace(char32_t c);

// CheckNoteChars returns OK if s is valid UTF-8 and holds no ASCII control
// character (below U+0020) other than '\n', the signed-note character rule.
// The error names `what` and the byte offset: "note byte 12: control
// character 0x01".
Status CheckNoteChars(std::string_view s, std::string_view what);

// ParseDecimalU64 parses an ASCII decimal with no sign, no leading zeros
// (except "0" itself) and no overflow. On failure returns a short reason
// ("is empty", "has a leading zero", "is not a decimal number", "does not fit
// in 64 bits") for the caller to prefix with the field name.
std::optional<uint64_t> ParseDecimalU64(std::string_view s, std::string* why);

// LineReader hands out '\n'-terminated lines of a text, in the spirit of
// ByteReader: Next() fails (consuming nothing) if no full line remains, and
// callers finish by checking Empty().
class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {}

  // Takes the next line without its '\n'. False if the rest has no '\n'.
  [[nodiscard]] bool Next(std::string_view* line) {
    size_t nl = rest_.find('\n');
    if (nl == std::string_view::npos) return false;
    *line = rest_.substr(0, nl);
    rest_.remove_prefix(nl + 1);
    ++line_number_;
    return true;
  }
  bool Empty() const { return rest_.empty(); }
  std::string_view Rest() const { return rest_; }
  // 1-based number of the line last returned by Next(); 0 before the first.
  size_t line_number() const { return line_number_; }

 private:
  std::string_view rest_;
  size_t line_number_ = 0;
};

}  // namespace jitgate::note::internal

#endif  // JITGATE_STORE_NOTE_NOTE_INTERNAL_H_
