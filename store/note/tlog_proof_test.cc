#include "store/note/tlog_proof.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "store/note/note_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::note {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kHash[] = "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=";
// A structurally valid checkpoint note (signature not checked by the parser).
const std::string kCheckpoint =
    "log.jitgate.test/v1\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
    "\xe2\x80\x94 log.jitgate.test/v1 "
    "HHG4CMmEIqCYK9aA9F63BpI3VTMFjRjhivCVdcnJkv0Aj8tN6H9rZWrY+Bo13LEeAF5fcn49hP7xid4BSDva7mZQqwU=\n";

TEST(NoteTlogProofTest, ParseAndFormat) {
  const std::string text = "c2sp.org/tlog-proof@v1\nextra aGk=\nindex 5\n" + std::string(kHash) +
                           "\n" + kHash + "\n\n" + kCheckpoint;
  ASSERT_OK_AND_ASSIGN(TlogProof p, ParseTlogProof(text));
  ASSERT_TRUE(p.extra.has_value());
  EXPECT_EQ(std::string(p.extra->begin(), p.extra->end()), "hi");
  EXPECT_EQ(p.index, 5u);
  EXPECT_EQ(p.path.size(), 2u);
  EXPECT_EQ(p.checkpoint, kCheckpoint);
  EXPECT_EQ(FormatTlogProof(p), text);
}

TEST(NoteTlogProofTest, MinimalAndEmptyExtra) {
  const std::string text = "c2sp.org/tlog-proof@v1\nindex 0\n\n" + kCheckpoint;
  ASSERT_OK_AND_ASSIGN(TlogProof p, ParseTlogProof(text));
  EXPECT_FALSE(p.extra.has_value());
  EXPECT_TRUE(p.path.empty());
  EXPECT_EQ(FormatTlogProof(p), text);
  const std::string with_empty = "c2sp.org/tlog-proof@v1\nextra \nindex 0\n\n" + kCheckpoint;
  ASSERT_OK_AND_ASSIGN(TlogProof q, ParseTlogProof(with_empty));
  ASSERT_TRUE(q.extra.has_value());
  EXPECT_TRUE(q.extra->empty());
  EXPECT_EQ(FormatTlogProof(q), with_empty);
}

TEST(NoteTlogProofTest, PathCap) {
  std::string path;
  for (int i = 0; i < 63; ++i) path += std::string(kHash) + "\n";
  const std::string head = "c2sp.org/tlog-proof@v1\nindex 1\n";
  ASSERT_OK_AND_ASSIGN(TlogProof p, ParseTlogProof(head + path + "\n" + kCheckpoint));
  EXPECT_EQ(p.path.size(), 63u);
  EXPECT_THAT(ParseTlogProof(head + path + kHash + "\n\n" + kCheckpoint),
              StatusIs(StatusCode::kInvalidArgument,
                       "tlog-proof line 66: inclusion path has more than 63 hashes"));
}

TEST(NoteTlogProofTest, ParseErrors) {
  const std::string h = "c2sp.org/tlog-proof@v1\n";
  struct Case {
    std::string text;
    std::string error;
  } cases[] = {
      {"", "tlog-proof has no complete first line"},
      {"c2sp.org/tlog-proof@v1", "tlog-proof has no complete first line"},
      {"c2sp.org/tlog-proof@v2\nindex 0\n\n" + kCheckpoint,
       "tlog-proof line 1: want \"c2sp.org/tlog-proof@v1\""},
      {h, "tlog-proof ends before the index line"},
      {h + "extra aGk=\n", "tlog-proof ends before the index line"},
      {h + "extra aGk\nindex 0\n\n" + kCheckpoint,
       "tlog-proof line 2: extra is not canonical base64"},
      {h + "extra  aGk=\nindex 0\n\n" + kCheckpoint,
       "tlog-proof line 2: extra is not canonical base64"},
      {h + "Index 0\n\n" + kCheckpoint, "tlog-proof line 2: want \"index <n>\""},
      {h + "extra aGk=\nextra aGk=\nindex 0\n\n" + kCheckpoint,
       "tlog-proof line 3: want \"index <n>\""},
      {h + "index 05\n\n" + kCheckpoint, "tlog-proof line 2: index has a leading zero"},
      {h + "index \n\n" + kCheckpoint, "tlog-proof line 2: index is empty"},
      {h + "index 5 \n\n" + kCheckpoint, "tlog-proof line 2: index is not a decimal number"},
      {h + "index 18446744073709551616\n\n" + kCheckpoint,
       "tlog-proof line 2: index does not fit in 64 bits"},
      {h + "index 5\n" + kHash + "\n", "tlog-proof has no blank line before the checkpoint"},
      {h + "index 5\nAAAA\n\n" + kCheckpoint, "tlog-proof line 3: path hash is 3 bytes, want 32"},
      {h + "index 5\nvBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnmt=\n\n" + kCheckpoint,
       "tlog-proof line 3: path hash is not canonical base64"},
      {h + "index 5\n\n", "tlog-proof checkpoint: note has no blank line before the signatures"},
      {h + "index 5\n\n\n" + kCheckpoint,
       "tlog-proof checkpoint: checkpoint line 1: origin is empty"},
      {h + "index 5\n\n" + kCheckpoint + "junk",
       "tlog-proof checkpoint: note does not end with a newline"},
      {h + "index 5\n\no\n1\ncheckpoint\n\n" + kCheckpoint.substr(kCheckpoint.find("\xe2")),
       "tlog-proof checkpoint: checkpoint line 3: root hash is not canonical base64"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseTlogProof(c.text), StatusIs(StatusCode::kInvalidArgument, c.error))
        << ::testing::PrintToString(c.text);
  }
}

TEST(NoteTlogProofTest, SizeCap) {
  std::string text = "c2sp.org/tlog-proof@v1\nindex 0\n\n" + kCheckpoint;
  text.append(kMaxTlogProofSize + 1 - text.size(), 'x');
  EXPECT_THAT(ParseTlogProof(text),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("over the")));
}

}  // namespace
}  // namespace jitgate::note
