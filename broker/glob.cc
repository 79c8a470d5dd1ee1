#include "broker/glob.h"

#include <cctype>

namespace jitgate::broker {

namespace {

Status BadPattern(std::string_view why) {
  return InvalidArgumentError(std::string(why));
}

void AddByte(std::bitset<256>& set, unsigned char c, bool ignore_case) {
  set.set(c);
  if (ignore_case && std::isalpha(c)) {
    set.set(static_cast<unsigned char>(std::tolower(c)));
    set.set(static_cast<unsigned char>(std::toupper(c)));
  }
}

}  // namespace

StatusOr<Glob> Glob::Compile(std::string_view pattern, bool ignore_case) {
  if (pattern.size() > kMaxGlobBytes) {
    return BadPattern("pattern longer than " + std::to_string(kMaxGlobBytes) +
                      " bytes");
  }
  Glob glob;
  glob.pattern_ = std::string(pattern);
  size_t i = 0;
  while (i < pattern.size()) {
    const unsigned char c = pattern[i];
    Token token{Token::Kind::kByte, {}};
    if (c == '*') {
      ++i;
      // "**" means the same as "*"; one token keeps matching linear.
      if (glob.tokens_.empty() ||
          glob.tokens_.back().kind != Token::Kind::kStar) {
        glob.tokens_.push_back({Token::Kind::kStar, {}});
      }
      continue;
    }
    if (c == '?') {
      token.bytes.set();
      ++i;
    } else if (c == '\\') {
      if (i + 1 == pattern.size()) return BadPattern("trailing '\\'");
      AddByte(token.bytes, pattern[i + 1], ignore_case);
      i += 2;
    } else if (c == '[') {
      size_t j = i + 1;
      bool negate = false;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
        negate = true;
        ++j;
      }
      bool first = true;
      bool closed = false;
      while (j < pattern.size()) {
        unsigned char lo = pattern[j];
        if (lo == ']' && !first) {
          closed = true;
          ++j;
          break;
        }
        if (lo == '[' && j + 1 < pattern.size() &&
            (pattern[j + 1] == ':' || pattern[j + 1] == '.' ||
             pattern[j + 1] == '=')) {
          return BadPattern(
              "character classes such as '[:digit:]' are not supported "
              "(write a range such as [0-9])");
        }
        if (lo == '\\') {
          if (++j == pattern.size()) return BadPattern("trailing '\\'");
          lo = pattern[j];
        }
        ++j;
        first = false;
        unsigned char hi = lo;
        // A '-' just before the closing ']' is a literal '-'.
        if (j + 1 < pattern.size() && pattern[j] == '-' &&
            pattern[j + 1] != ']') {
          hi = pattern[j + 1];
          j += 2;
          if (hi == '\\') {
            if (j == pattern.size()) return BadPattern("trailing '\\'");
            hi = pattern[j++];
          }
          if (hi < lo) {
            return BadPattern(std::string("reversed range '") +
                              static_cast<char>(lo) + "-" +
                              static_cast<char>(hi) + "'");
          }
        }
        for (unsigned v = lo; v <= hi; ++v)
          AddByte(token.bytes, v, ignore_case);
      }
      if (!closed) return BadPattern("unterminated '['");
      if (negate) token.bytes.flip();
      i = j;
    } else {
      AddByte(token.bytes, c, ignore_case);
      ++i;
    }
    glob.tokens_.push_back(token);
  }
  return glob;
}

bool Glob::Matches(std::string_view text) const {
  // Classic single-backtrack matching: every token but '*' consumes exactly
  // one byte, so on a mismatch it is enough to let the most recent '*'
  // swallow one more byte. O(tokens x text), no recursion.
  size_t t = 0;  // next token
  size_t s = 0;  // next text byte
  size_t star_token = std::string::npos;
  size_t star_text = 0;
  while (s < text.size()) {
    if (t < tokens_.size() && tokens_[t].kind == Token::Kind::kStar) {
      star_token = t++;
      star_text = s;
    } else if (t < tokens_.size() &&
               tokens_[t].bytes.test(static_cast<unsigned char>(text[s]))) {
      ++t;
      ++s;
    } else if (star_token != std::string::npos) {
      t = star_token + 1;
      s = ++star_text;
    } else {
      return false;
    }
  }
  while (t < tokens_.size() && tokens_[t].kind == Token::Kind::kStar) ++t;
  return t == tokens_.size();
}

}  // namespace jitgate::broker
