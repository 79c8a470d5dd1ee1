// Glob: the shell-style patterns of jitgate.yaml's `match` section.
//
// Syntax (a strict subset of fnmatch(3) without flags, compiled once so that a
// malformed pattern is a configuration error rather than a silent mismatch):
//   *        any run of bytes, including none, '/' and spaces
//   ?        exactly one byte
//   [abc]    one byte from the set; ranges [a-z]; negation [!a-z] or [^a-z];
//            ']' is literal when it comes first ([]x], [!]x])
//   \c       the byte c itself: \* \? \[ and \\ match a literal *, ?, [ and \ .
//   anything else matches itself.
// The whole text must match (patterns are anchored at both ends). Matching is
// byte-wise: `?` is one byte, not one UTF-8 character. POSIX classes
// ("[[:digit:]]") and locale collation are rejected, not guessed at, so two
// readers of the same policy never disagree.
//
// Commands: a sudo request's command is one string, the command line exactly as
// sudo reports it (arguments joined by single spaces), and the pattern is
// matched against all of it. `*` crosses spaces: "/usr/bin/systemctl restart *"
// allows any further arguments, "/usr/bin/systemctl restart nginx" allows only
// that exact line, and "" matches only a request with no command (a login
// shell).
#ifndef JITGATE_BROKER_GLOB_H_
#define JITGATE_BROKER_GLOB_H_

#include <bitset>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace jitgate::broker {

// Longest pattern accepted, in bytes. Matching costs O(pattern x text) in the
// worst case, so the cap bounds the work a hostile configuration can cause.
inline constexpr size_t kMaxGlobBytes = 4096;

// Glob is a compiled pattern. An immutable value type; thread-safe to share.
class Glob {
 public:
  // Compile parses pattern. ignore_case folds ASCII letters (used for host
  // names, which DNS compares case-insensitively). Fails with INVALID_ARGUMENT
  // and a message without location ("unterminated '['") on an unterminated or
  // empty bracket expression, a reversed range, a POSIX class, a trailing
  // backslash or a pattern longer than kMaxGlobBytes.
  static StatusOr<Glob> Compile(std::string_view pattern,
                                bool ignore_case = false);

  // Matches reports whether the whole of text matches the pattern.
  bool Matches(std::string_view text) const;

  // The source text of the pattern, as given to Compile.
  const std::string& pattern() const { return pattern_; }

 private:
  struct Token {
    enum class Kind { kStar, kByte };
    Kind kind;
    std::bitset<256> bytes;  // for kByte: the bytes this position accepts
  };

  Glob() = default;

  std::string pattern_;
  std::vector<Token> tokens_;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_GLOB_H_
