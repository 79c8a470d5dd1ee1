// The pure parts of replay, watch and export: the safe filter (a table of
// dangerous sequences, each removed; harmless ones kept byte for byte; every
// split of the input gives the same output; caps), the UTF-8 decoder of
// export, the playback schedule and the Player driven by a scripted control
// over a SimulatedClock (no test sleeps), and the asciicast lines.
#include "cli/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "recorder/recording_testonly.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::SimulatedClock;
using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;

std::string Filter(std::string_view in, uint64_t* dropped = nullptr) {
  SafeFilter f;
  std::string out;
  f.Write(AsBytes(in), &out);
  f.Finish(&out);
  if (dropped != nullptr) *dropped = f.dropped();
  return out;
}

// Hex-ish rendering so that failures show the escape bytes.
std::string Visible(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == 0x1b) {
      out += "\\e";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(char(c));
    }
  }
  return out;
}

// --- SafeFilter: dangerous sequences -----------------------------------------

struct DangerCase {
  int line;
  const char* what;
  std::string seq;
};

std::vector<DangerCase> DangerousSequences() {
  return {
      // OSC: clipboard, titles, palette and colours (set and query), cwd,
      // hyperlinks, iTerm2, notifications, shell integration, fonts.
      {__LINE__, "OSC 52 clipboard (BEL)", "\x1b]52;c;aGVsbG8=\x07"},
      {__LINE__, "OSC 52 clipboard (ST)", "\x1b]52;c;aGVsbG8=\x1b\\"},
      {__LINE__, "OSC 52 clipboard query", "\x1b]52;c;?\x07"},
      {__LINE__, "OSC 0 title", "\x1b]0;pwned\x07"},
      {__LINE__, "OSC 1 icon name", "\x1b]1;pwned\x1b\\"},
      {__LINE__, "OSC 2 title", "\x1b]2;pwned\x07"},
      {__LINE__, "OSC 4 palette set", "\x1b]4;1;rgb:ff/00/00\x07"},
      {__LINE__, "OSC 4 palette query", "\x1b]4;1;?\x07"},
      {__LINE__, "OSC 10 fg query", "\x1b]10;?\x07"},
      {__LINE__, "OSC 11 bg set", "\x1b]11;#000000\x1b\\"},
      {__LINE__, "OSC 12 cursor colour", "\x1b]12;red\x07"},
      {__LINE__, "OSC 104 palette reset", "\x1b]104\x07"},
      {__LINE__, "OSC 7 cwd", "\x1b]7;file://host/etc\x07"},
      {__LINE__, "OSC 8 hyperlink open", "\x1b]8;;https://evil.example/\x1b\\"},
      {__LINE__, "OSC 9 notification", "\x1b]9;hello\x07"},
      {__LINE__, "OSC 50 font query", "\x1b]50;?\x07"},
      {__LINE__, "OSC 133 shell integration", "\x1b]133;A\x07"},
      {__LINE__, "OSC 777 notify", "\x1b]777;notify;t;b\x07"},
      {__LINE__, "OSC 1337 iTerm2", "\x1b]1337;File=name=eA==;inline=1:AAAA\x07"},
      // DCS, SOS, PM, APC strings.
      {__LINE__, "DCS DECRQSS", "\x1bP$qm\x1b\\"},
      {__LINE__, "DCS DECUDK", "\x1bP1;1|17/68656c6c6f\x1b\\"},
      {__LINE__, "DCS XTGETTCAP", "\x1bP+q544e\x1b\\"},
      {__LINE__, "DCS tmux passthrough", "\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\"},
      {__LINE__, "DCS sixel", "\x1bPq#0;2;0;0;0#0~~@@\x1b\\"},
      {__LINE__, "SOS", "\x1bXhello\x1b\\"},
      {__LINE__, "PM", "\x1b^hello\x1b\\"},
      {__LINE__, "APC kitty graphics", "\x1b_Gf=100,a=T;AAAA\x1b\\"},
      // Window operations and title reports (XTWINOPS) and title modes.
      {__LINE__, "CSI 21 t report title", "\x1b[21t"},
      {__LINE__, "CSI 20 t report icon", "\x1b[20t"},
      {__LINE__, "CSI > t title modes", "\x1b[>0;1t"},
      {__LINE__, "CSI > T reset title modes", "\x1b[>0T"},
      {__LINE__, "CSI 8 t resize", "\x1b[8;50;200t"},
      {__LINE__, "CSI 3 t move", "\x1b[3;0;0t"},
      {__LINE__, "CSI 4 t resize px", "\x1b[4;1;1t"},
      {__LINE__, "CSI 9 t maximize", "\x1b[9;1t"},
      {__LINE__, "CSI 2 t iconify", "\x1b[2t"},
      {__LINE__, "CSI 14 t report px", "\x1b[14t"},
      {__LINE__, "CSI 18 t report size", "\x1b[18t"},
      {__LINE__, "CSI 22 t push title", "\x1b[22;0t"},
      {__LINE__, "CSI 23 t pop title", "\x1b[23;0t"},
      {__LINE__, "DECSLPP CSI 48 t", "\x1b[48t"},
      {__LINE__, "DECSCPP resize", "\x1b[132$|"},
      {__LINE__, "DECSNLS resize", "\x1b[48*|"},
      // Queries the terminal answers on the auditor's input.
      {__LINE__, "DSR CPR", "\x1b[6n"},
      {__LINE__, "DSR status", "\x1b[5n"},
      {__LINE__, "DECXCPR", "\x1b[?6n"},
      {__LINE__, "DSR private", "\x1b[?15n"},
      {__LINE__, "DA1", "\x1b[c"},
      {__LINE__, "DA1 0", "\x1b[0c"},
      {__LINE__, "DA2", "\x1b[>c"},
      {__LINE__, "DA2 0", "\x1b[>0c"},
      {__LINE__, "DA3", "\x1b[=c"},
      {__LINE__, "DECRQM private", "\x1b[?2004$p"},
      {__LINE__, "DECRQM ansi", "\x1b[4$p"},
      {__LINE__, "DECRQTSR", "\x1b[1$u"},
      {__LINE__, "DECRQPSR", "\x1b[1$w"},
      {__LINE__, "DECREQTPARM", "\x1b[x"},
      {__LINE__, "DECRQCRA", "\x1b[1;1;1;1;10;10*y"},
      {__LINE__, "XTVERSION", "\x1b[>q"},
      {__LINE__, "XTQMODKEYS", "\x1b[?4m"},
      {__LINE__, "XTSMGRAPHICS", "\x1b[?1;1;0S"},
      {__LINE__, "XTREPORTCOLORS", "\x1b[#R"},
      {__LINE__, "kitty keyboard query", "\x1b[?u"},
      {__LINE__, "DECID", "\x1bZ"},
      {__LINE__, "ENQ answerback", "\x05"},
      // Keyboard redefinition and locks.
      {__LINE__, "kitty keyboard push", "\x1b[>1u"},
      {__LINE__, "kitty keyboard pop", "\x1b[<u"},
      {__LINE__, "kitty keyboard set", "\x1b[=1;1u"},
      {__LINE__, "XTMODKEYS", "\x1b[>4;2m"},
      {__LINE__, "KAM keyboard lock", "\x1b[2h"},
      {__LINE__, "SRM local echo", "\x1b[12l"},
      {__LINE__, "DECSCL conformance", "\x1b[62;1\"p"},
      {__LINE__, "S8C1T", "\x1b G"},
      {__LINE__, "leave UTF-8", "\x1b%@"},
      {__LINE__, "media copy", "\x1b[5i"},
      {__LINE__, "DECTST", "\x1b[4;1y"},
      {__LINE__, "DECLL", "\x1b[1q"},
      {__LINE__, "locator reporting", "\x1b[1;1'z"},
      {__LINE__, "locator events", "\x1b[1'{"},
      {__LINE__, "mouse highlight tracking", "\x1b[1;1;1;1;1T"},
      // Input reporting modes and window-resizing modes.
      {__LINE__, "X10 mouse", "\x1b[?9h"},
      {__LINE__, "mouse 1000", "\x1b[?1000h"},
      {__LINE__, "mouse 1001", "\x1b[?1001h"},
      {__LINE__, "mouse 1002", "\x1b[?1002h"},
      {__LINE__, "mouse 1003", "\x1b[?1003h"},
      {__LINE__, "focus 1004", "\x1b[?1004h"},
      {__LINE__, "mouse utf8 1005", "\x1b[?1005h"},
      {__LINE__, "mouse sgr 1006", "\x1b[?1006h"},
      {__LINE__, "mouse urxvt 1015", "\x1b[?1015h"},
      {__LINE__, "mouse pixels 1016", "\x1b[?1016h"},
      {__LINE__, "mouse restore", "\x1b[?1000r"},
      {__LINE__, "colour scheme reports", "\x1b[?2031h"},
      {__LINE__, "resize reports", "\x1b[?2048h"},
      {__LINE__, "DECCOLM", "\x1b[?3h"},
      {__LINE__, "several bad modes", "\x1b[?1000;1006;1004h"},
      // Malformed sequences a terminal ignores.
      {__LINE__, "private marker in the middle", "\x1b[1?h"},
      {__LINE__, "parameter after intermediate", "\x1b[ 1q"},
      // C1 controls as UTF-8 characters (CSI, OSC, DCS, APC, ST, NEL).
      {__LINE__, "C1 CSI", "\xc2\x9b"},
      {__LINE__, "C1 OSC", "\xc2\x9d"},
      {__LINE__, "C1 DCS", "\xc2\x90"},
      {__LINE__, "C1 APC", "\xc2\x9f"},
      {__LINE__, "C1 ST", "\xc2\x9c"},
      {__LINE__, "C1 NEL", "\xc2\x85"},
  };
}

TEST(SafeFilterTest, DropsEveryDangerousSequence) {
  for (const DangerCase& c : DangerousSequences()) {
    SCOPED_TRACE(::testing::Message()
                 << "replay_test.cc:" << c.line << ": " << c.what << " " << Visible(c.seq));
    uint64_t dropped = 0;
    EXPECT_EQ(Visible(Filter("before" + c.seq + "after", &dropped)), "beforeafter");
    EXPECT_GE(dropped, 1u);
  }
}

TEST(SafeFilterTest, HyperlinkKeepsItsText) {
  EXPECT_EQ(Filter("\x1b]8;;https://example.com/\x1b\\click here\x1b]8;;\x1b\\ done"),
            "click here done");
}

TEST(SafeFilterTest, ModeListsLoseOnlyTheForbiddenModes) {
  EXPECT_EQ(Visible(Filter("\x1b[?1049;1000h")), Visible("\x1b[?1049h"));
  EXPECT_EQ(Visible(Filter("\x1b[?1006;25;1002l")), Visible("\x1b[?25l"));
  EXPECT_EQ(Visible(Filter("\x1b[4;2h")), Visible("\x1b[4h"));
  EXPECT_EQ(Visible(Filter("\x1b[?2004;1:2h")), Visible("\x1b[?2004h"));
}

TEST(SafeFilterTest, C1ControlsAreRemovedAndTheirParametersShownAsText) {
  // U+009B then "6n": without the CSI the parameters are harmless text.
  EXPECT_EQ(Filter("a\302\2336nb"), "a6nb");
  // A raw 8-bit C1 byte is not UTF-8: it becomes U+FFFD, never 0x9b.
  EXPECT_EQ(Filter("a\2336nb"), "a\357\277\2756nb");
  EXPECT_EQ(Filter("a\2350;t\007b"), "a\357\277\2750;t\007b");
}

// --- SafeFilter: harmless sequences ------------------------------------------

struct KeepCase {
  int line;
  const char* what;
  std::string seq;
};

std::vector<KeepCase> HarmlessSequences() {
  return {
      {__LINE__, "text", "hello, world"},
      {__LINE__, "UTF-8 text", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x8e\x89"},
      {__LINE__, "C0 controls", "a\r\n\tb\x08\x07\x0e\x0f"},
      {__LINE__, "DEL", "\x7f"},
      {__LINE__, "SGR reset", "\x1b[m"},
      {__LINE__, "SGR 0", "\x1b[0m"},
      {__LINE__, "SGR bold red", "\x1b[1;31m"},
      {__LINE__, "SGR 256", "\x1b[38;5;208m"},
      {__LINE__, "SGR truecolor", "\x1b[38;2;255;128;0m"},
      {__LINE__, "SGR truecolor colons", "\x1b[38:2::255:128:0m"},
      {__LINE__, "SGR curly underline", "\x1b[4:3m"},
      {__LINE__, "CUP", "\x1b[10;20H"},
      {__LINE__, "CUP home", "\x1b[H"},
      {__LINE__, "HVP", "\x1b[3;4f"},
      {__LINE__, "CUU", "\x1b[A"},
      {__LINE__, "CUD", "\x1b[5B"},
      {__LINE__, "CUF", "\x1b[2C"},
      {__LINE__, "CUB", "\x1b[D"},
      {__LINE__, "CHA", "\x1b[7G"},
      {__LINE__, "VPA", "\x1b[3d"},
      {__LINE__, "ED", "\x1b[2J"},
      {__LINE__, "ED scrollback", "\x1b[3J"},
      {__LINE__, "EL", "\x1b[K"},
      {__LINE__, "EL all", "\x1b[2K"},
      {__LINE__, "DECSED", "\x1b[?2J"},
      {__LINE__, "ECH", "\x1b[5X"},
      {__LINE__, "ICH DCH", "\x1b[2@\x1b[3P"},
      {__LINE__, "IL DL", "\x1b[L\x1b[2M"},
      {__LINE__, "SU SD", "\x1b[S\x1b[3T"},
      {__LINE__, "REP", "x\x1b[5b"},
      {__LINE__, "CHT CBT", "\x1b[I\x1b[Z"},
      {__LINE__, "TBC", "\x1b[3g"},
      {__LINE__, "DECSTBM", "\x1b[1;24r"},
      {__LINE__, "DECSTBM reset", "\x1b[r"},
      {__LINE__, "SCOSC SCORC", "\x1b[s\x1b[u"},
      {__LINE__, "hide cursor", "\x1b[?25l"},
      {__LINE__, "show cursor", "\x1b[?25h"},
      {__LINE__, "alternate screen", "\x1b[?1049h"},
      {__LINE__, "leave alternate screen", "\x1b[?1049l"},
      {__LINE__, "old alternate screen", "\x1b[?47h\x1b[?1047l\x1b[?1048h"},
      {__LINE__, "bracketed paste", "\x1b[?2004h"},
      {__LINE__, "synchronized output", "\x1b[?2026h\x1b[?2026l"},
      {__LINE__, "application cursor keys", "\x1b[?1h"},
      {__LINE__, "autowrap", "\x1b[?7l"},
      {__LINE__, "blinking cursor", "\x1b[?12h"},
      {__LINE__, "XTSAVE", "\x1b[?1049s"},
      {__LINE__, "IRM", "\x1b[4h"},
      {__LINE__, "LNM", "\x1b[20l"},
      {__LINE__, "cursor style", "\x1b[3 q"},
      {__LINE__, "soft reset", "\x1b[!p"},
      {__LINE__, "push/pop SGR", "\x1b[#{\x1b[#}"},
      {__LINE__, "DECFRA", "\x1b[42;1;1;5;5$x"},
      {__LINE__, "keypad modes", "\x1b=\x1b>"},
      {__LINE__, "DECSC DECRC", "\0337\0338"},
      {__LINE__, "IND NEL RI", "\033D\033E\033M"},
      {__LINE__, "HTS", "\x1bH"},
      {__LINE__, "charset G0 ASCII", "\x1b(B"},
      {__LINE__, "charset G1 line drawing", "\x1b)0"},
      {__LINE__, "SO line drawing SI", "\x0eqqq\x0f"},
      {__LINE__, "DECALN", "\x1b#8"},
      {__LINE__, "double height", "\x1b#3"},
      {__LINE__, "RIS", "\033c"},
  };
}

TEST(SafeFilterTest, KeepsHarmlessSequencesByteForByte) {
  for (const KeepCase& c : HarmlessSequences()) {
    SCOPED_TRACE(::testing::Message() << "replay_test.cc:" << c.line << ": " << c.what);
    uint64_t dropped = 0;
    EXPECT_EQ(Visible(Filter(c.seq, &dropped)), Visible(c.seq));
    EXPECT_EQ(dropped, 0u);
  }
}

TEST(SafeFilterTest, ControlsInsideASequenceRunFirst) {
  // A terminal executes C0 controls met inside a sequence and carries on.
  EXPECT_EQ(Visible(Filter("\x1b[1\n;2H")), Visible("\n\x1b[1;2H"));
  EXPECT_EQ(Visible(Filter("\x1b[6\rn")), Visible("\r"));
  // CAN and SUB abort it.
  EXPECT_EQ(Visible(Filter("\x1b[6\x18n")), Visible("\x18n"));
  // ESC restarts it, and ends a string.
  EXPECT_EQ(Visible(Filter("\x1b[6\x1b[1m")), Visible("\x1b[1m"));
  EXPECT_EQ(Visible(Filter("\x1b]0;title\x1b[1m")), Visible("\x1b[1m"));
  // A non-ASCII byte cannot be part of it: it is text.
  EXPECT_EQ(Filter("\x1b[1\xc3\xa9m"), "\xc3\xa9m");
}

TEST(SafeFilterTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(Filter("a\377b"), "a\357\277\275b");
  EXPECT_EQ(Filter("a\xe2\x9c"), "a\xef\xbf\xbd");  // incomplete at the end
  EXPECT_EQ(Filter("\xe2\x9c\x1b[1m"), "\xef\xbf\xbd\x1b[1m");
}

// A long mix of everything, for the split tests.
std::string Mixture() {
  std::string all;
  for (const KeepCase& c : HarmlessSequences()) all += c.seq + " | ";
  for (const DangerCase& c : DangerousSequences()) all += "<" + c.seq + ">";
  all += "\x1b]8;;https://x/\x1b\\link\x1b]8;;\x1b\\ \xe2\x9c\x93 \2336n \x1b[?1049;1000h \xc3";
  return all;
}

TEST(SafeFilterTest, EverySplitGivesTheSameOutput) {
  const std::string in = Mixture();
  const std::string want = Filter(in);
  ASSERT_FALSE(want.empty());
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    SafeFilter f;
    std::string out;
    f.Write(AsBytes(std::string_view(in).substr(0, cut)), &out);
    f.Write(AsBytes(std::string_view(in).substr(cut)), &out);
    f.Finish(&out);
    ASSERT_EQ(Visible(out), Visible(want)) << "split at byte " << cut;
  }
  SafeFilter bytewise;
  std::string out;
  for (char c : in) bytewise.Write(AsBytes(std::string_view(&c, 1)), &out);
  bytewise.Finish(&out);
  EXPECT_EQ(Visible(out), Visible(want));
}

TEST(SafeFilterTest, OutputNeverHoldsAnIncompleteSequence) {
  // After every Write, the terminal is back in its ground state: no output
  // ends inside ESC or CSI, and no string introducer is ever written.
  const std::string in = Mixture();
  SafeFilter f;
  std::string all;
  for (size_t i = 0; i < in.size(); i += 7) {
    std::string out;
    f.Write(AsBytes(std::string_view(in).substr(i, 7)), &out);
    SafeFilter check;  // re-filtering safe output must change nothing
    std::string again;
    check.Write(AsBytes(out), &again);
    EXPECT_EQ(Visible(again), Visible(out)) << "at " << i;
    EXPECT_EQ(check.dropped(), 0u);
    all += out;
  }
  for (std::string_view bad : {"\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x1b[6n", "\x1bZ"}) {
    EXPECT_EQ(all.find(bad), std::string::npos) << Visible(bad);
  }
}

TEST(SafeFilterTest, UnterminatedStringIsCappedAndTheRestShown) {
  std::string in = "\x1b]0;" + std::string(5000, 'a') + "visible";
  uint64_t dropped = 0;
  std::string out = Filter(in, &dropped);
  // At most kMaxSequence bytes (introducer included) are hidden.
  EXPECT_EQ(out, in.substr(SafeFilter::kMaxSequence));
  EXPECT_EQ(dropped, 1u);
  // The same across a split.
  SafeFilter f;
  std::string split;
  f.Write(AsBytes(std::string_view(in).substr(0, 3000)), &split);
  f.Write(AsBytes(std::string_view(in).substr(3000)), &split);
  EXPECT_EQ(split, out);
}

TEST(SafeFilterTest, OverlongCsiIsCapped) {
  std::string in = "\x1b[" + std::string(5000, '1') + "m";
  std::string out = Filter(in);
  EXPECT_EQ(out, in.substr(SafeFilter::kMaxSequence));
  // An unterminated DCS does not swallow the rest of the session either.
  std::string dcs = "\x1bPq" + std::string(10000, '#') + "\r\n$ rm -rf /tmp/x\r\n";
  EXPECT_THAT(Filter(dcs), ::testing::EndsWith("\r\n$ rm -rf /tmp/x\r\n"));
}

TEST(SafeFilterTest, IncompleteSequenceAtTheEndIsDropped) {
  SafeFilter f;
  std::string out;
  f.Write(AsBytes("ok\x1b[1;3"), &out);
  EXPECT_EQ(out, "ok");
  f.Finish(&out);
  EXPECT_EQ(out, "ok");
  EXPECT_EQ(f.dropped(), 1u);
}

TEST(SafeFilterTest, EpilogueLeavesTheAlternateScreenOnlyIfStillIn) {
  SafeFilter f;
  std::string out;
  const std::string base = f.Epilogue();
  EXPECT_EQ(base.find("\x1b[?1049l"), std::string::npos);
  EXPECT_THAT(base, HasSubstr("\x1b[0m"));
  EXPECT_THAT(base, HasSubstr("\x1b[?25h"));
  f.Write(AsBytes("\x1b[?1049h"), &out);
  EXPECT_EQ(f.Epilogue(), "\x1b[?1049l" + base);
  f.Write(AsBytes("\x1b[?1049l\x1b[?1047;1000h"), &out);
  EXPECT_EQ(f.Epilogue(), "\x1b[?1049l" + base);
  f.Write(AsBytes("\033c"), &out);  // RIS
  EXPECT_EQ(f.Epilogue(), base);
  // The epilogue itself passes the filter unchanged.
  SafeFilter check;
  std::string again;
  check.Write(AsBytes("\x1b[?1049l" + base), &again);
  EXPECT_EQ(Visible(again), Visible("\x1b[?1049l" + base));
  EXPECT_EQ(check.dropped(), 0u);
}

// --- UTF-8 for export ---------------------------------------------------------

std::string Decode(std::string_view in) {
  Utf8TextDecoder d;
  std::string out;
  d.Decode(AsBytes(in), &out);
  d.Finish(&out);
  return out;
}

constexpr char kFffd[] = "\xef\xbf\xbd";

TEST(Utf8TextDecoderTest, ReplacesEachMaximalInvalidSubsequence) {
  struct Case {
    int line;
    std::string in, want;
  };
  const std::string r = kFffd;
  const Case cases[] = {
      {__LINE__, "plain", "plain"},
      {__LINE__, "\xe2\x9c\x93", "\xe2\x9c\x93"},
      {__LINE__, "\xf0\x9f\x8e\x89", "\xf0\x9f\x8e\x89"},
      {__LINE__, "\xff", r},
      {__LINE__, "\xff\xfe", r + r},
      {__LINE__, "\x80", r},
      {__LINE__, "\xc0\xaf", r + r},                  // overlong
      {__LINE__, "\xe0\x80\xaf", r + r + r},          // overlong 3-byte
      {__LINE__, "\xed\xa0\x80", r + r + r},          // surrogate
      {__LINE__, "\xf4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {__LINE__, "\xf0\x9f\x98\x41", r + "A"},        // truncated 4-byte
      {__LINE__, "\xe2\x9c\xe2\x9c\x93", r + "\xe2\x9c\x93"},
      {__LINE__, "a\xe2\x9c", "a" + r},  // incomplete at the end
      {__LINE__, std::string("\0\x1b[1m", 5), std::string("\0\x1b[1m", 5)},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Visible(Decode(c.in)), Visible(c.want)) << "replay_test.cc:" << c.line;
  }
}

TEST(Utf8TextDecoderTest, CarriesACharacterAcrossCalls) {
  const std::string in = "a\342\234\223b\360\237\216\211c\377d\303\251";
  const std::string want = Decode(in);
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    Utf8TextDecoder d;
    std::string first, second;
    d.Decode(AsBytes(std::string_view(in).substr(0, cut)), &first);
    d.Decode(AsBytes(std::string_view(in).substr(cut)), &second);
    d.Finish(&second);
    EXPECT_EQ(first + second, want) << "cut " << cut;
    // Nothing of a character is written before it is complete.
    EXPECT_EQ(Decode(first), first) << "cut " << cut;
  }
  Utf8TextDecoder d;
  std::string out;
  d.Decode(AsBytes("\xe2\x9c"), &out);
  EXPECT_EQ(out, "");
  EXPECT_TRUE(d.pending());
  d.Decode(AsBytes("\x93"), &out);
  EXPECT_EQ(out, "\xe2\x9c\x93");
  EXPECT_FALSE(d.pending());
}

// --- schedule ------------------------------------------------------------------

std::vector<int64_t> Schedule(ReplayTiming t, std::vector<int64_t> times) {
  ReplaySchedule s(t);
  std::vector<int64_t> due;
  for (int64_t x : times) due.push_back(s.DueNanos(x));
  return due;
}

TEST(ReplayScheduleTest, RealTime) {
  EXPECT_THAT(Schedule({}, {0, kSec, 2 * kSec, 10 * kSec}),
              ElementsAre(0, kSec, 2 * kSec, 10 * kSec));
}

TEST(ReplayScheduleTest, Speed) {
  ReplayTiming t;
  t.speed = 2;
  EXPECT_THAT(Schedule(t, {0, kSec, 2 * kSec, 10 * kSec, 10 * kSec + 500 * kMs}),
              ElementsAre(0, kSec / 2, kSec, 5 * kSec, 5 * kSec + 250 * kMs));
  t.speed = 0.5;
  EXPECT_THAT(Schedule(t, {0, kSec, 3 * kSec}), ElementsAre(0, 2 * kSec, 6 * kSec));
}

TEST(ReplayScheduleTest, IdleLimitCapsEveryGap) {
  ReplayTiming t;
  t.idle_limit_ns = 2 * kSec;
  // Gaps 5s, 1s, 60s, 0.5s -> 2s, 1s, 2s, 0.5s; the first record waits too.
  EXPECT_THAT(Schedule(t, {5 * kSec, 6 * kSec, 66 * kSec, 66 * kSec + 500 * kMs}),
              ElementsAre(2 * kSec, 3 * kSec, 5 * kSec, 5 * kSec + 500 * kMs));
  t.speed = 2;
  EXPECT_THAT(Schedule(t, {5 * kSec, 6 * kSec}), ElementsAre(kSec, kSec + 500 * kMs));
}

TEST(ReplayScheduleTest, FromFastForwardsEarlierRecords) {
  ReplayTiming t;
  t.from_ns = 10 * kSec;
  EXPECT_THAT(Schedule(t, {0, 4 * kSec, 10 * kSec, 12 * kSec, 20 * kSec}),
              ElementsAre(0, 0, 0, 2 * kSec, 10 * kSec));
  t.idle_limit_ns = 3 * kSec;
  t.speed = 2;
  EXPECT_THAT(Schedule(t, {0, 9 * kSec, 15 * kSec, 16 * kSec}),
              ElementsAre(0, 0, 1500 * kMs, 2 * kSec));
}

TEST(ParsePlaybackOffsetTest, Forms) {
  struct Case {
    int line;
    std::string in;
    int64_t want;
  };
  const Case ok[] = {
      {__LINE__, "0", 0},
      {__LINE__, "90", 90 * kSec},
      {__LINE__, "1.5", 1500 * kMs},
      {__LINE__, "0.000000001", 1},
      {__LINE__, "1m30s", 90 * kSec},
      {__LINE__, "250ms", 250 * kMs},
      {__LINE__, "2h", 7200 * kSec},
      {__LINE__, "1:30", 90 * kSec},
      {__LINE__, "01:02:03.5", 3723 * kSec + 500 * kMs},
      {__LINE__, "100:00", 6000 * kSec},
  };
  for (const Case& c : ok) {
    StatusOr<int64_t> got = ParsePlaybackOffset(c.in);
    ASSERT_TRUE(got.ok()) << "replay_test.cc:" << c.line << " " << got.status().ToString();
    EXPECT_EQ(*got, c.want) << "replay_test.cc:" << c.line;
  }
  for (const std::string& bad :
       std::vector<std::string>{"", "-1", "1.", ".5", "1:60", "1:2:3:4", "1:75:00", "x", "1.5s",
                                "1e3", "1.0000000001", std::string(40, '1'), "\x1b[31m"}) {
    EXPECT_THAT(ParsePlaybackOffset(bad),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("bad time")))
        << Visible(bad);
  }
  // The typed text is escaped in the message.
  EXPECT_THAT(ParsePlaybackOffset("\x1b[31m"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\\x1b[31m")));
}

// --- Player --------------------------------------------------------------------

// A PlaybackControl over a SimulatedClock: time jumps to the deadline, or to
// the next scripted event if that comes first.
class ScriptedControl : public PlaybackControl {
 public:
  struct Event {
    int64_t at_mono;
    WaitResult result;
  };
  ScriptedControl(SimulatedClock* clock, std::deque<Event> events)
      : clock_(clock), events_(std::move(events)) {}

  WaitResult Wait(int64_t deadline) override {
    ++waits;
    if (!events_.empty() && events_.front().at_mono <= deadline) {
      Event e = events_.front();
      events_.pop_front();
      if (e.at_mono > clock_->MonotonicNanos())
        clock_->Advance(e.at_mono - clock_->MonotonicNanos());
      if (e.result.kind == WaitResult::kSuspended) clock_->Advance(e.result.suspended_ns);
      return e.result;
    }
    if (deadline == kForever) {
      ADD_FAILURE() << "waiting forever with no event scripted";
      return {WaitResult::kQuit};
    }
    if (deadline > clock_->MonotonicNanos()) clock_->Advance(deadline - clock_->MonotonicNanos());
    return {WaitResult::kDeadline};
  }
  int waits = 0;

 private:
  SimulatedClock* clock_;
  std::deque<Event> events_;
};

using recorder::testonly::In;
using recorder::testonly::Out;
using recorder::testonly::Resize;

struct Written {
  int64_t at;  // monotonic time of the write, relative to the start
  std::string data;
  friend bool operator==(const Written&, const Written&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Written& w) {
    return os << "{" << w.at << ", \"" << Visible(w.data) << "\"}";
  }
};

class PlayerTest : public ::testing::Test {
 protected:
  // Plays records; returns the number of records played before a quit.
  size_t Play(const PlayerOptions& o, std::deque<ScriptedControl::Event> events,
              const std::vector<recorder::Record>& records) {
    const int64_t start = clock_.MonotonicNanos();
    for (auto& e : events) e.at_mono += start;
    control_ = std::make_unique<ScriptedControl>(&clock_, std::move(events));
    Player p(o, &clock_, control_.get(), [&](std::string_view d) {
      written_.push_back({clock_.MonotonicNanos() - start, std::string(d)});
      return OkStatus();
    });
    size_t n = 0;
    for (const auto& r : records) {
      StatusOr<bool> more = p.Play(r);
      EXPECT_OK(more.status());
      if (!more.ok() || !*more) {
        quit_signal_ = p.quit_signal();
        break;
      }
      ++n;
    }
    EXPECT_OK(p.Finish());
    return n;
  }

  SimulatedClock clock_;
  std::unique_ptr<ScriptedControl> control_;
  std::vector<Written> written_;
  int quit_signal_ = -1;
};

TEST_F(PlayerTest, WritesOutputOnTimeAndSkipsInputAndResize) {
  PlayerOptions o;
  Play(o, {},
       {Out(0, "$ "), In(500 * kMs, "l"), Out(500 * kMs, "l"), Resize(kSec, 100, 30),
        Out(3 * kSec, "s\r\n")});
  EXPECT_THAT(written_,
              ElementsAre(Written{0, "$ "}, Written{500 * kMs, "l"}, Written{3 * kSec, "s\r\n"}));
}

TEST_F(PlayerTest, SpeedIdleLimitAndFrom) {
  PlayerOptions o;
  o.timing.speed = 2;
  o.timing.idle_limit_ns = kSec;
  o.timing.from_ns = 2 * kSec;
  Play(o, {}, {Out(0, "a"), Out(kSec, "b"), Out(4 * kSec, "c"), Out(4500 * kMs, "d")});
  // a, b before --from: at once. c: gap 2s from --from, capped to 1s, /2.
  EXPECT_THAT(written_, ElementsAre(Written{0, "a"}, Written{0, "b"}, Written{500 * kMs, "c"},
                                    Written{750 * kMs, "d"}));
}

TEST_F(PlayerTest, PauseShiftsEverythingAfterIt) {
  PlayerOptions o;
  Play(o, {{500 * kMs, {WaitResult::kPause}}, {5 * kSec, {WaitResult::kPause}}},
       {Out(0, "a"), Out(kSec, "b"), Out(3 * kSec, "c")});
  // Paused from 0.5s to 5s: b (due 1s) comes at 5.5s, c at 7.5s.
  EXPECT_THAT(written_,
              ElementsAre(Written{0, "a"}, Written{5500 * kMs, "b"}, Written{7500 * kMs, "c"}));
}

TEST_F(PlayerTest, SuspensionDoesNotEatTheGap) {
  PlayerOptions o;
  WaitResult stopped{WaitResult::kSuspended, 0, 10 * kSec};
  Play(o, {{200 * kMs, stopped}}, {Out(0, "a"), Out(kSec, "b")});
  EXPECT_THAT(written_, ElementsAre(Written{0, "a"}, Written{11 * kSec, "b"}));
}

TEST_F(PlayerTest, QuitStopsAndReportsTheSignal) {
  PlayerOptions o;
  size_t n = Play(o, {{1500 * kMs, {WaitResult::kQuit, 2}}},
                  {Out(0, "a"), Out(kSec, "b"), Out(2 * kSec, "c"), Out(3 * kSec, "d")});
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(quit_signal_, 2);
  EXPECT_THAT(written_, ElementsAre(Written{0, "a"}, Written{kSec, "b"}));
}

TEST_F(PlayerTest, UntimedWritesAtOnceThroughTheFilter) {
  PlayerOptions o;
  o.timed = false;
  Play(o, {},
       {Out(0, "\x1b]0;t\007a"), Out(100 * kSec, "\x1b[6nb\xe2\x9c"), Out(200 * kSec, "\x93")});
  EXPECT_THAT(written_, ElementsAre(Written{0, "a"}, Written{0, "b"}, Written{0, "\xe2\x9c\x93"}));
  EXPECT_EQ(control_->waits, 0);
}

TEST_F(PlayerTest, NoSafePassesEverything) {
  PlayerOptions o;
  o.timed = false;
  o.safe = false;
  Play(o, {}, {Out(0, "\x1b]0;t\007a"), Out(1, "\x1b[6n")});
  EXPECT_THAT(written_, ElementsAre(Written{0, "\x1b]0;t\007a"}, Written{0, "\x1b[6n"}));
}

TEST(TerminalSizeWarningTest, OnlyWhenSmaller) {
  EXPECT_EQ(TerminalSizeWarning(80, 24, 80, 24), std::nullopt);
  EXPECT_EQ(TerminalSizeWarning(80, 24, 0, 0), std::nullopt);
  EXPECT_EQ(TerminalSizeWarning(120, 40, 200, 60), std::nullopt);
  EXPECT_THAT(TerminalSizeWarning(132, 24, 80, 24).value_or(""),
              HasSubstr("the session used a 132x24 terminal but yours is 80x24"));
  EXPECT_TRUE(TerminalSizeWarning(80, 50, 200, 40).has_value());
}

// --- asciicast -------------------------------------------------------------------

TEST(FormatEventTimeTest, MicrosecondsSinceStart) {
  EXPECT_EQ(FormatEventTime(0), "0.000000");
  EXPECT_EQ(FormatEventTime(1), "0.000000");
  EXPECT_EQ(FormatEventTime(1'234'567'891), "1.234567");
  EXPECT_EQ(FormatEventTime(3600 * kSec + 1000), "3600.000001");
  EXPECT_EQ(FormatEventTime(-5), "0.000000");
}

TEST(AsciicastWriterTest, HeaderAndEvents) {
  recorder::SessionInfo s;
  s.id = "0123456789abcdef";
  s.user = "alice";
  s.login = "root";
  s.target = "db1";
  s.term = "xterm-256color";
  s.cols = 100;
  s.rows = 30;
  s.start_unix_nanos = 1767225600 * kSec + 999'999'999;
  EXPECT_EQ(AsciicastWriter::Header(s),
            "{\"version\":2,\"width\":100,\"height\":30,\"timestamp\":1767225600,"
            "\"env\":{\"TERM\":\"xterm-256color\"},"
            "\"title\":\"jitgate session 0123456789abcdef: alice as root@db1\"}\n");
  s.cols = s.rows = 0;
  s.term.clear();
  s.command = "uptime";
  EXPECT_EQ(AsciicastWriter::Header(s),
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1767225600,"
            "\"title\":\"jitgate session 0123456789abcdef: alice as root@db1\","
            "\"command\":\"uptime\"}\n");

  AsciicastWriter w;
  std::string out;
  w.Add(Out(0, "$ \x1b[1mhi\x1b[0m"), &out);
  w.Add(In(1'500'000, "l"), &out);
  w.Add(Out(2'000'000, "caf\xc3"), &out);  // é split across records
  w.Add(Out(3'000'000, "\xa9\r\n"), &out);
  w.Add(Out(3'500'000, "\xe2\x9c"), &out);  // only the start of a character: no line
  w.Add(Resize(4 * kSec, 132, 43), &out);
  w.Add(Out(5 * kSec, "\x93 \xff\"\\\x01"), &out);
  w.Add(In(6 * kSec, "\xf0\x9f"), &out);  // left incomplete
  w.Finish(&out);
  EXPECT_EQ(out,
            "[0.000000, \"o\", \"$ \\u001b[1mhi\\u001b[0m\"]\n"
            "[0.001500, \"i\", \"l\"]\n"
            "[0.002000, \"o\", \"caf\"]\n"
            "[0.003000, \"o\", \"\xc3\xa9\\r\\n\"]\n"
            "[4.000000, \"r\", \"132x43\"]\n"
            "[5.000000, \"o\", \"\xe2\x9c\x93 \xef\xbf\xbd\\\"\\\\\\u0001\"]\n"
            "[6.000000, \"i\", \"\xef\xbf\xbd\"]\n");
}

TEST(AsciicastWriterTest, StderrJoinsTheOutputAndSuspendsAreLeftOut) {
  using recorder::testonly::Err;
  using recorder::testonly::Suspend;
  AsciicastWriter w;
  std::string out;
  w.Add(Out(0, "ok\n"), &out);
  w.Add(Err(kSec, "warn\xc3"), &out);  // split character, on stderr's own decoder
  w.Add(Out(2 * kSec, "x"), &out);
  w.Add(Suspend(3 * kSec, "TSTP"), &out);
  w.Add(Err(4 * kSec, "\xa9\n"), &out);
  w.Finish(&out);
  EXPECT_EQ(out,
            "[0.000000, \"o\", \"ok\\n\"]\n"
            "[1.000000, \"o\", \"warn\"]\n"
            "[2.000000, \"o\", \"x\"]\n"
            "[4.000000, \"o\", \"\xc3\xa9\\n\"]\n");
}

}  // namespace
}  // namespace jitgate::cli
