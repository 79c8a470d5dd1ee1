#include "core/base/text.h"

#include <gtest/gtest.h>

namespace jitgate {
namespace {

TEST(EscapeForTerminalTest, KeepsTextEscapesControlsAndBadBytes) {
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 ok"), "caf\xc3\xa9 ok");
  EXPECT_EQ(EscapeForTerminal("a\x1b[2Jb\x7f"), "a\\x1b[2Jb\\x7f");
  EXPECT_EQ(EscapeForTerminal("\xff\xc3"), "\\xff\\xc3");           // invalid, truncated
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");           // overlong
  EXPECT_EQ(EscapeForTerminal("x\xe2\x80\xaey"), "x\\u{202e}y");   // bidi override
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"), "\\u{009b}");             // C1 CSI
}

TEST(TextTest, PrintableTextAndDurations) {
  EXPECT_TRUE(IsPrintableText("/usr/bin/id -un"));
  EXPECT_FALSE(IsPrintableText("a\tb"));
  EXPECT_FALSE(IsPrintableText("\xff"));
  EXPECT_EQ(FormatSeconds(-3), "0s");
  EXPECT_EQ(FormatSeconds(45), "45s");
  EXPECT_EQ(FormatSeconds(300), "5m");
  EXPECT_EQ(FormatSeconds(299), "4m59s");
  EXPECT_EQ(FormatSeconds(3723), "1h2m3s");
}

}  // namespace
}  // namespace jitgate
