#include "store/note/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/crypto/crypto.h"
#include "store/note/note_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::note {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kRoot[] = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";

std::string Body(const std::string& origin, const std::string& size, const std::string& root,
                 const std::string& rest = "") {
  return origin + "\n" + size + "\n" + root + "\n" + rest;
}

TEST(NoteCheckpointTest, ParseAndMarshal) {
  const std::string text = Body("example.com/log", "8", kRoot);
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, ParseCheckpointBody(text));
  EXPECT_EQ(cp.origin, "example.com/log");
  EXPECT_EQ(cp.size, 8u);
  EXPECT_EQ(HexEncode(cp.root),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  EXPECT_TRUE(cp.extensions.empty());
  EXPECT_EQ(MarshalCheckpoint(cp), text);
}

TEST(NoteCheckpointTest, ExtensionsAndLimits) {
  const std::string text = Body("o", "18446744073709551615", kRoot, "ext one\n\xe2\x80\x94 two\n");
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, ParseCheckpointBody(text));
  EXPECT_EQ(cp.size, UINT64_MAX);
  EXPECT_THAT(cp.extensions, ElementsAre("ext one", "\xe2\x80\x94 two"));
  EXPECT_EQ(MarshalCheckpoint(cp), text);
  ASSERT_OK_AND_ASSIGN(Checkpoint zero, ParseCheckpointBody(Body("o", "0", kRoot)));
  EXPECT_EQ(zero.size, 0u);
}

TEST(NoteCheckpointTest, ParseErrors) {
  struct Case {
    std::string text;
    std::string error;
  } cases[] = {
      {"", "checkpoint is empty"},
      {"o\n8\n", "checkpoint has 2 lines, want at least 3"},
      {"o\n8\n" + std::string(kRoot), "checkpoint does not end with a newline"},
      {Body("o", "8", kRoot, "ext"), "checkpoint does not end with a newline"},
      {Body("", "8", kRoot), "checkpoint line 1: origin is empty"},
      {Body("o", "", kRoot), "checkpoint line 2: size is empty"},
      {Body("o", "08", kRoot), "checkpoint line 2: size has a leading zero"},
      {Body("o", "00", kRoot), "checkpoint line 2: size has a leading zero"},
      {Body("o", "+8", kRoot), "checkpoint line 2: size is not a decimal number"},
      {Body("o", "-1", kRoot), "checkpoint line 2: size is not a decimal number"},
      {Body("o", " 8", kRoot), "checkpoint line 2: size is not a decimal number"},
      {Body("o", "8 ", kRoot), "checkpoint line 2: size is not a decimal number"},
      {Body("o", "0x8", kRoot), "checkpoint line 2: size is not a decimal number"},
      {Body("o", "18446744073709551616", kRoot), "checkpoint line 2: size does not fit in 64 bits"},
      {Body("o", "99999999999999999999999", kRoot),
       "checkpoint line 2: size does not fit in 64 bits"},
      {Body("o", "8", ""), "checkpoint line 3: root hash is 0 bytes, want 32"},
      {Body("o", "8", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh="),
       "checkpoint line 3: root hash is not canonical base64"},
      {Body("o", "8", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg"),
       "checkpoint line 3: root hash is not canonical base64"},
      {Body("o", "8", "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg="),
       "checkpoint line 3: root hash is not canonical base64"},
      {Body("o", "8", "AAAA"), "checkpoint line 3: root hash is 3 bytes, want 32"},
      {Body("o", "8", kRoot, "\n"), "checkpoint line 4: extension line is empty"},
      {Body("o", "8", kRoot, "a\n\n"), "checkpoint line 5: extension line is empty"},
      {Body("o\r", "8", kRoot), "checkpoint byte 1: control character 0x0d"},
      {Body("o\xc3", "8", kRoot), "checkpoint byte 1: invalid UTF-8"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseCheckpointBody(c.text), StatusIs(StatusCode::kInvalidArgument, c.error))
        << ::testing::PrintToString(c.text);
  }
}

class NoteSignedCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(Signer s, Signer::FromSeed("example.com/log", Bytes(32, 1)));
    log_ = std::make_unique<Signer>(std::move(s));
    cp_.origin = "example.com/log";
    cp_.size = 8;
    cp_.root.fill(0xab);
  }
  std::unique_ptr<Signer> log_;
  Checkpoint cp_;
};

TEST_F(NoteSignedCheckpointTest, SignThenOpen) {
  ASSERT_OK_AND_ASSIGN(std::string msg, SignCheckpoint(cp_, *log_));
  EXPECT_EQ(msg.substr(0, MarshalCheckpoint(cp_).size() + 1), MarshalCheckpoint(cp_) + "\n");
  ASSERT_OK_AND_ASSIGN(Checkpoint got, OpenCheckpoint(msg, log_->GetVerifier(), "example.com/log"));
  EXPECT_EQ(got, cp_);
}

TEST_F(NoteSignedCheckpointTest, OpenErrors) {
  ASSERT_OK_AND_ASSIGN(std::string msg, SignCheckpoint(cp_, *log_));
  EXPECT_THAT(OpenCheckpoint(msg, log_->GetVerifier(), "example.com/other"),
              StatusIs(StatusCode::kInvalidArgument,
                       "checkpoint origin \"example.com/log\" is not the expected "
                       "\"example.com/other\""));
  ASSERT_OK_AND_ASSIGN(Signer other, Signer::FromSeed("example.com/log", Bytes(32, 2)));
  EXPECT_THAT(OpenCheckpoint(msg, other.GetVerifier(), "example.com/log"),
              StatusIs(StatusCode::kUnauthenticated, "note has no signature from a known key"));
  std::string altered = msg;
  altered[16] = '9';  // size line "8" -> "9"
  EXPECT_THAT(OpenCheckpoint(altered, log_->GetVerifier(), "example.com/log"),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(NoteSignedCheckpointTest, VerifyBeforeParse) {
  // A validly signed note whose body is not a checkpoint: the signature is
  // checked first, and only then the body is rejected.
  ASSERT_OK_AND_ASSIGN(std::string msg, SignNote("example.com/log\n08\nAAAA\n", {log_.get()}));
  EXPECT_THAT(OpenCheckpoint(msg, log_->GetVerifier(), "example.com/log"),
              StatusIs(StatusCode::kInvalidArgument, "checkpoint line 2: size has a leading zero"));
  // The same body with a bad signature fails on the signature.
  ASSERT_OK_AND_ASSIGN(Signer other, Signer::FromSeed("example.com/log", Bytes(32, 3)));
  EXPECT_THAT(OpenCheckpoint(msg, other.GetVerifier(), "example.com/log"),
              StatusIs(StatusCode::kUnauthenticated, _));
}

TEST_F(NoteSignedCheckpointTest, SignRejectsInvalidCheckpoints) {
  Checkpoint bad = cp_;
  bad.origin = "";
  EXPECT_THAT(SignCheckpoint(bad, *log_),
              StatusIs(StatusCode::kInvalidArgument, "checkpoint line 1: origin is empty"));
  bad = cp_;
  bad.origin = "a\nb";
  EXPECT_THAT(SignCheckpoint(bad, *log_),
              StatusIs(StatusCode::kInvalidArgument,
                       "checkpoint line 2: size is not a decimal number"));
  // An origin that smuggles whole lines parses, but not back to itself.
  bad.origin = "o\n8\n" + std::string(kRoot);
  EXPECT_THAT(SignCheckpoint(bad, *log_),
              StatusIs(StatusCode::kInvalidArgument, "checkpoint fields contain a newline"));
  bad = cp_;
  bad.extensions = {""};
  EXPECT_THAT(SignCheckpoint(bad, *log_),
              StatusIs(StatusCode::kInvalidArgument, "checkpoint line 4: extension line is empty"));
  bad = cp_;
  bad.extensions = {"x\ty"};
  EXPECT_THAT(SignCheckpoint(bad, *log_),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("control character 0x09")));
}

TEST_F(NoteSignedCheckpointTest, Cosigners) {
  ASSERT_OK_AND_ASSIGN(std::string msg, SignCheckpoint(cp_, *log_));
  ASSERT_OK_AND_ASSIGN(auto wkey, crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 5)));
  ASSERT_OK_AND_ASSIGN(Verifier w, Verifier::FromPublicKey("w.example", kAlgCosignatureV1,
                                                           wkey.public_key()));
  const std::string text = MarshalCheckpoint(cp_);
  ASSERT_OK_AND_ASSIGN(auto sig, wkey.Sign(AsBytes(CosignatureV1Message(99, text))));
  ByteWriter cw;
  cw.PutU64(99);
  cw.PutBytes(sig);
  const Bytes cs = cw.Release();
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
  n.signatures.push_back(NoteSignature{"w.example", w.key_id(), cs});
  const std::string cosigned = FormatNote(n);
  ASSERT_OK_AND_ASSIGN(OpenedCheckpoint o, OpenCheckpointWithCosigners(
                                               cosigned, log_->GetVerifier(), "example.com/log", {w}));
  EXPECT_EQ(o.checkpoint, cp_);
  EXPECT_EQ(o.note.verified.size(), 2u);
  // A cosignature alone is not the log's signature.
  ASSERT_OK_AND_ASSIGN(Signer other, Signer::FromSeed("example.com/log", Bytes(32, 3)));
  EXPECT_THAT(OpenCheckpointWithCosigners(cosigned, other.GetVerifier(), "example.com/log", {w}),
              StatusIs(StatusCode::kUnauthenticated,
                       "checkpoint is not signed by the log key example.com/log"));
}

}  // namespace
}  // namespace jitgate::note
