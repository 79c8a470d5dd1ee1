#include "cli/search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace jitgate::cli {
namespace {

using recorder::Record;
using recorder::Stream;

Record Data(Stream s, int64_t t, std::string_view d) {
  Record r;
  r.stream = s;
  r.time_ns = t;
  r.data.assign(d.begin(), d.end());
  return r;
}
Record Out(int64_t t, std::string_view d) { return Data(Stream::kOutput, t, d); }
Record In(int64_t t, std::string_view d) { return Data(Stream::kInput, t, d); }

TEST(TranscriptSearchTest, FindsTypingSpreadOverRecords) {
  TranscriptSearch s("rm -rf", false, 10);
  s.Add(Out(0, "$ "));
  const std::string typed = "sudo rm -rf /tmp/x\r";
  for (size_t i = 0; i < typed.size(); ++i) {
    s.Add(In(int64_t(100 + i), typed.substr(i, 1)));
    s.Add(Out(int64_t(100 + i), typed.substr(i, 1)));  // the echo
  }
  ASSERT_EQ(s.count(), 2u);  // typed once, echoed once
  const SearchHit& in = s.hits()[0];
  EXPECT_EQ(in.stream, Stream::kInput);
  EXPECT_EQ(in.time_ns, 105);  // the record holding the "r"
  EXPECT_EQ(in.before, "sudo ");
  EXPECT_EQ(in.match, "rm -rf");
  EXPECT_EQ(in.after, " /tmp/x\r");
  const SearchHit& out = s.hits()[1];
  EXPECT_EQ(out.stream, Stream::kOutput);
  EXPECT_EQ(out.before, "$ sudo ");
  EXPECT_EQ(out.after, " /tmp/x\r");
}

TEST(TranscriptSearchTest, StreamsAreSearchedApart) {
  // "ab" typed and "cd" shown do not make "bc".
  TranscriptSearch s("bc", false, 10);
  s.Add(In(0, "ab"));
  s.Add(Out(1, "cd"));
  EXPECT_EQ(s.count(), 0u);
}

TEST(TranscriptSearchTest, StderrIsAStreamOfItsOwnAndSuspendsAreNotSearched) {
  TranscriptSearch s("denied", false, 10);
  s.Add(Out(0, "permission den"));
  s.Add(Data(Stream::kError, 1, "ied"));  // not "denied": another stream
  s.Add(Data(Stream::kError, 2, "denied"));
  s.Add(Data(Stream::kSuspend, 3, "denied"));
  ASSERT_EQ(s.count(), 1u);
  EXPECT_EQ(s.hits()[0].stream, Stream::kError);
  EXPECT_EQ(s.hits()[0].before, "ied");
}

TEST(TranscriptSearchTest, OverlappingAndOnceOnly) {
  TranscriptSearch s("aa", false, 10);
  s.Add(Out(0, "aaa"));  // two, at 0 and 1
  s.Add(Out(5, "a"));    // one more across the boundary, none found twice
  s.Add(Out(6, "b"));
  EXPECT_EQ(s.count(), 3u);
  EXPECT_EQ(s.hits()[2].time_ns, 0);  // starts in the first record
  EXPECT_EQ(s.hits()[2].before, "aa");
  EXPECT_EQ(s.hits()[2].after, "b");
}

TEST(TranscriptSearchTest, IgnoreCaseFoldsAsciiOnlyAndKeepsTheOriginal) {
  TranscriptSearch s("password", true, 10);
  s.Add(Out(0, "Enter PassWord: \xc3\x89t\xc3\xa9"));
  ASSERT_EQ(s.count(), 1u);
  EXPECT_EQ(s.hits()[0].match, "PassWord");
  TranscriptSearch exact("password", false, 10);
  exact.Add(Out(0, "Enter PassWord: "));
  EXPECT_EQ(exact.count(), 0u);
  // Non-ASCII bytes are compared as they are.
  TranscriptSearch e("\xc3\xa9", true, 10);
  e.Add(Out(0, "\xc3\x89"));
  EXPECT_EQ(e.count(), 0u);
}

TEST(TranscriptSearchTest, ContextIsBoundedAndCompletedByLaterRecords) {
  TranscriptSearch s("X", false, 10);
  const std::string long_before(100, 'b');
  s.Add(Out(0, long_before + "X"));
  s.Add(Out(1, std::string(10, 'c')));
  s.Add(Out(2, std::string(100, 'd')));
  ASSERT_EQ(s.count(), 1u);
  EXPECT_EQ(s.hits()[0].before, std::string(kSearchContext, 'b'));
  EXPECT_EQ(s.hits()[0].after, std::string(10, 'c') + std::string(kSearchContext - 10, 'd'));
}

TEST(TranscriptSearchTest, KeepsAtMostMaxHitsButCountsAll) {
  TranscriptSearch s("x", false, 3);
  s.Add(Out(0, std::string(1000, 'x')));
  s.Add(Data(Stream::kResize, 1, ""));
  EXPECT_EQ(s.count(), 1000u);
  EXPECT_EQ(s.hits().size(), 3u);
}

TEST(TranscriptSearchTest, RawBytesNulIncluded) {
  TranscriptSearch s(std::string("\0\xff", 2), false, 10);
  s.Add(Out(0, std::string("a\0", 2)));
  s.Add(Out(1, "\xff" "b"));
  ASSERT_EQ(s.count(), 1u);
  EXPECT_EQ(s.hits()[0].time_ns, 0);
}

}  // namespace
}  // namespace jitgate::cli
