#include "store/note/note_internal.h"

#include <cstdio>

namespace jitgate::note::internal {

std::optional<char32_t> DecodeUtf8(std::string_view s, size_t* pos) {
  size_t i = *pos;
  if (i >= s.size()) return std::nullopt;
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  size_t n;
  char32_t c;
  char32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    n = 2; c = b0 & 0x1f; min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3; c = b0 & 0x0f; min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    n = 4; c = b0 & 0x07; min = 0x10000;
  } else {
    return std::nullopt;  // continuation byte or 0xf8..0xff as a lead byte
  }
  if (s.size() - i < n) return std::nullopt;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xc0) != 0x80) return std::nullopt;
    c = (c << 6) | (b & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return std::nullopt;
  *pos = i + n;
  return c;
}

bool IsUnicodeSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

Status CheckNoteChars(std::string_view s, std::string_view what) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t at = pos;
    std::optional<char32_t> c = DecodeUtf8(s, &pos);
    if (!c) {
      return InvalidArgumentError(std::string(what) + " byte " + std::to_string(at) +
                                  ": invalid UTF-8");
    }
    if (*c < 0x20 && *c != '\n') {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned>(*c));
      return InvalidArgumentError(std::string(what) + " byte " + std::to_string(at) +
                                  ": control character " + hex);
    }
  }
  return OkStatus();
}

std::optional<uint64_t> ParseDecimalU64(std::string_view s, std::string* why) {
  if (s.empty()) {
    *why = "is empty";
    return std::nullopt;
  }
  for (char ch : s) {
    if (ch < '0' || ch > '9') {
      *why = "is not a decimal number";
      return std::nullopt;
    }
  }
  if (s.size() > 1 && s[0] == '0') {
    *why = "has a leading zero";
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char ch : s) {
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) {
      *why = "does not fit in 64 bits";
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  return v;
}

}  // namespace jitgate::note::internal
