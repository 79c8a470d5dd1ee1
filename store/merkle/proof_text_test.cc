#include "store/merkle/proof_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/crypto/crypto.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::merkle {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<Hash> SomeProof(size_t n) {
  std::vector<Hash> proof;
  for (size_t i = 0; i < n; ++i)
    proof.push_back(HashLeaf(AsBytes(std::to_string(i))));
  return proof;
}

TEST(ProofTextTest, RoundTrip) {
  for (size_t n : {0, 1, 2, 17, 64}) {
    const std::vector<Hash> proof = SomeProof(n);
    const std::string text = FormatProofText(proof);
    EXPECT_EQ(text.size(), n * 45);
    ASSERT_OK_AND_ASSIGN(std::vector<Hash> parsed, ParseProofText(text));
    EXPECT_EQ(parsed, proof);
    EXPECT_EQ(FormatProofText(parsed), text);
  }
}

TEST(ProofTextTest, KnownText) {
  // The empty leaf hash, as in transparency-dev's testdata.
  ASSERT_OK_AND_ASSIGN(
      std::vector<Hash> parsed,
      ParseProofText("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n"));
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0], HashLeaf(ByteSpan()));
  ASSERT_OK_AND_ASSIGN(std::vector<Hash> empty, ParseProofText(""));
  EXPECT_TRUE(empty.empty());
}

struct BadCase {
  const char* name;
  std::string text;
  const char* error;
};

TEST(ProofTextTest, Rejections) {
  const std::string good = FormatProofText(SomeProof(1));  // 44 chars + '\n'
  const std::string line = good.substr(0, 44);
  // 'A' ends in zero bits; '=' padding leaves the last 2 bits of the 43rd
  // character unused, so 'B' (000001) is a non-canonical alias of 'A'.
  std::string canonical_a = line;
  canonical_a[42] = 'A';
  std::string non_canonical = line;
  non_canonical[42] = 'B';
  ASSERT_OK(ParseProofText(canonical_a + "\n"));

  const std::vector<BadCase> cases = {
      {"non-canonical base64", non_canonical + "\n", "line 1: not canonical"},
      {"31-byte hash", crypto::Base64Encode(Bytes(31, 7)) + "\n",
       "line 1: hash is 31 bytes"},
      {"33-byte hash", crypto::Base64Encode(Bytes(33, 7)) + "\n",
       "line 1: hash is 33 bytes"},
      {"missing final newline", good + line, "line 2: missing final newline"},
      {"no newline at all", line, "line 1: missing final newline"},
      {"CRLF", line + "\r\n", "line 1: carriage return"},
      {"blank line", good + "\n" + good, "line 2: blank line"},
      {"only a newline", "\n", "line 1: blank line"},
      {"URL-safe alphabet", "bjQLnP-zepicpUTmu3gKLHiQHT-zNzh2hRGjBhevoB0=\n",
       "not canonical"},
      {"unpadded", line.substr(0, 43) + "\n", "43 characters"},
      {"leading space", " " + line + "\n", "45 characters"},
      {"trailing space", line + " \n", "45 characters"},
      {"NUL inside",
       line.substr(0, 10) + std::string(1, '\0') + line.substr(11) + "\n",
       "not canonical"},
      {"65 lines", FormatProofText(SomeProof(65)), "more than 64 lines"},
  };
  for (const BadCase& c : cases) {
    EXPECT_THAT(ParseProofText(c.text),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.name;
  }
}

}  // namespace
}  // namespace jitgate::merkle
