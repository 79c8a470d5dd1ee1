#include "broker/glob.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/testing/status_matchers.h"

namespace jitgate::broker {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

struct MatchCase {
  int line;
  const char* pattern;
  const char* text;
  bool match;
};

const MatchCase kMatchCases[] = {
    {__LINE__, "", "", true},
    {__LINE__, "", "x", false},
    {__LINE__, "*", "", true},
    {__LINE__, "*", "anything at all / with slashes", true},
    {__LINE__, "dev-*", "dev-1", true},
    {__LINE__, "dev-*", "dev-", true},
    {__LINE__, "dev-*", "prod-1", false},
    {__LINE__, "dev-*", "xdev-1", false},  // anchored at the start
    {__LINE__, "*.example.com", "db1.example.com", true},
    {__LINE__, "*.example.com", "db1.example.com.evil", false},  // and end
    {__LINE__, "db?", "db1", true},
    {__LINE__, "db?", "db", false},
    {__LINE__, "db?", "db12", false},
    {__LINE__, "db[0-9]", "db7", true},
    {__LINE__, "db[0-9]", "dbx", false},
    {__LINE__, "db[!0-9]", "dbx", true},
    {__LINE__, "db[^0-9]", "db7", false},
    {__LINE__, "db[]x]", "db]", true},
    {__LINE__, "db[!]]", "db]", false},
    {__LINE__, "db[a-]", "db-", true},
    {__LINE__, "a*b*c", "aXXbYYc", true},
    {__LINE__, "a*b*c", "aXXbYY", false},
    {__LINE__, "a**c", "ac", true},
    {__LINE__, "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    {__LINE__, "\\*", "*", true},
    {__LINE__, "\\*", "x", false},
    {__LINE__, "rm \\[x\\]", "rm [x]", true},
    {__LINE__, "[\\]]", "]", true},
    // Commands: '*' crosses spaces, so trailing arguments are allowed only
    // when the pattern says so.
    {__LINE__, "/usr/bin/systemctl restart *",
     "/usr/bin/systemctl restart nginx", true},
    {__LINE__, "/usr/bin/systemctl restart *",
     "/usr/bin/systemctl restart nginx --force", true},
    {__LINE__, "/usr/bin/systemctl restart *", "/usr/bin/systemctl stop nginx",
     false},
    {__LINE__, "/usr/bin/systemctl restart nginx",
     "/usr/bin/systemctl restart nginx ", false},
    {__LINE__, "/usr/bin/systemctl restart nginx",
     "/usr/bin/systemctl restart nginx", true},
    // Byte-wise: '?' is one byte.
    {__LINE__, "caf?", "caf\xc3\xa9", false},
    {__LINE__, "caf??", "caf\xc3\xa9", true},
};

TEST(GlobTest, MatchTable) {
  for (const MatchCase& c : kMatchCases) {
    SCOPED_TRACE("case at " __FILE__ ":" + std::to_string(c.line));
    ASSERT_OK_AND_ASSIGN(Glob g, Glob::Compile(c.pattern));
    EXPECT_EQ(g.Matches(c.text), c.match) << c.pattern << " vs " << c.text;
    EXPECT_EQ(g.pattern(), c.pattern);
  }
}

TEST(GlobTest, EmbeddedNulIsAByte) {
  ASSERT_OK_AND_ASSIGN(Glob g, Glob::Compile("a?c"));
  EXPECT_TRUE(g.Matches(std::string_view("a\0c", 3)));
}

TEST(GlobTest, IgnoreCaseFoldsAsciiOnly) {
  ASSERT_OK_AND_ASSIGN(Glob g, Glob::Compile("DEV-[a-c]*", true));
  EXPECT_TRUE(g.Matches("dev-a1"));
  EXPECT_TRUE(g.Matches("Dev-B1"));
  EXPECT_FALSE(g.Matches("dev-d1"));
  ASSERT_OK_AND_ASSIGN(Glob exact, Glob::Compile("DEV-*"));
  EXPECT_FALSE(exact.Matches("dev-1"));
}

TEST(GlobTest, RejectsMalformedPatterns) {
  EXPECT_THAT(Glob::Compile("db["),
              StatusIs(StatusCode::kInvalidArgument, "unterminated '['"));
  EXPECT_THAT(Glob::Compile("db[]"),
              StatusIs(StatusCode::kInvalidArgument, "unterminated '['"));
  EXPECT_THAT(Glob::Compile("db[!"),
              StatusIs(StatusCode::kInvalidArgument, "unterminated '['"));
  EXPECT_THAT(Glob::Compile("x\\"),
              StatusIs(StatusCode::kInvalidArgument, "trailing '\\'"));
  EXPECT_THAT(Glob::Compile("[z-a]"),
              StatusIs(StatusCode::kInvalidArgument, "reversed range 'z-a'"));
  EXPECT_THAT(
      Glob::Compile("[[:alpha:]]"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("character classes")));
  EXPECT_THAT(Glob::Compile(std::string(kMaxGlobBytes + 1, 'a')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("longer")));
  EXPECT_OK(Glob::Compile(std::string(kMaxGlobBytes, '*')));
}

TEST(GlobTest, WorstCaseStaysFast) {
  // Exponential in a naive backtracking matcher; linear-ish here.
  std::string pattern;
  for (int i = 0; i < 100; ++i) pattern += "*a";
  pattern += "b";
  ASSERT_OK_AND_ASSIGN(Glob g, Glob::Compile(pattern));
  EXPECT_FALSE(g.Matches(std::string(32 * 1024, 'a')));
}

}  // namespace
}  // namespace jitgate::broker
