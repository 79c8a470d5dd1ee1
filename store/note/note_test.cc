#include "store/note/note.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/crypto/crypto.h"
#include "store/note/note_test_util.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::note {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kEmDash[] = "\xe2\x80\x94";

Signer MakeSigner(const std::string& name, uint8_t fill) {
  Bytes seed(32, fill);
  StatusOr<Signer> s = Signer::FromSeed(name, seed);
  EXPECT_OK(s);
  return *std::move(s);
}

// Makes the base64 of a signature line non-canonical by setting one of the
// unused low bits of its last data character (the text has '=' padding).
std::string MakeNonCanonical(std::string line) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const size_t eq = line.find('=');
  EXPECT_NE(eq, std::string::npos);
  const size_t v = kAlphabet.find(line[eq - 1]);
  line[eq - 1] = kAlphabet[v ^ 1];
  return line;
}

class NoteTest : public ::testing::Test {
 protected:
  NoteTest() : alice_(MakeSigner("alice.example/a", 1)), bob_(MakeSigner("bob.example/b", 2)) {}

  std::string Signed(const std::string& text, std::vector<const Signer*> signers) {
    StatusOr<std::string> n = SignNote(text, signers);
    EXPECT_OK(n);
    return n.ok() ? *n : "";
  }

  Signer alice_;
  Signer bob_;
};

TEST_F(NoteTest, SignParseFormatRoundTrip) {
  const std::string msg = Signed("hello\nworld\n", {&alice_, &bob_});
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
  EXPECT_EQ(n.text, "hello\nworld\n");
  ASSERT_EQ(n.signatures.size(), 2u);
  EXPECT_EQ(n.signatures[0].name, "alice.example/a");
  EXPECT_EQ(n.signatures[0].key_id, alice_.key_id());
  EXPECT_EQ(n.signatures[0].signature.size(), 64u);
  EXPECT_EQ(n.signatures[1].name, "bob.example/b");
  EXPECT_EQ(FormatNote(n), msg);
  EXPECT_EQ(msg.substr(0, 14), "hello\nworld\n\n" + std::string(kEmDash).substr(0, 1));
}

TEST_F(NoteTest, TextMayContainBlankLines) {
  // The LAST blank line separates text from signatures.
  const std::string msg = Signed("a\n\nb\n\n", {&alice_});
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
  EXPECT_EQ(n.text, "a\n\nb\n\n");
  ASSERT_OK_AND_ASSIGN(VerifiedNote v, OpenNote(msg, {alice_.GetVerifier()}));
  EXPECT_EQ(v.text, "a\n\nb\n\n");
}

TEST_F(NoteTest, ParseErrors) {
  const std::string good = Signed("text\n", {&alice_});
  const std::string sigline = good.substr(6);  // "— alice... base64\n"
  const std::string b64 = sigline.substr(sigline.find(' ', 4) + 1);
  struct Case {
    std::string msg;
    std::string error;
  } cases[] = {
      {"", "note has no blank line before the signatures"},
      {"text\n" + sigline, "note has no blank line before the signatures"},
      {"text\n\n", "note has no signature lines"},
      {good + "\n", "note has no signature lines"},
      {good + "x", "note does not end with a newline"},
      {good.substr(0, good.size() - 1), "note does not end with a newline"},
      {good + "garbage\n", "note signature line 2: does not start with an em dash (U+2014) and a space"},
      {"text\n\n- alice.example/a " + b64,
       "note signature line 1: does not start with an em dash (U+2014) and a space"},
      {"text\n\n\xe2\x80\x93 alice.example/a " + b64,  // U+2013 EN DASH
       "note signature line 1: does not start with an em dash (U+2014) and a space"},
      {"text\n\n" + std::string(kEmDash) + "alice.example/a " + b64,
       "note signature line 1: does not start with an em dash (U+2014) and a space"},
      {"text\n\n" + std::string(kEmDash) + " alice.example/a\n",
       "note signature line 1: has no space before the signature"},
      {"text\n\n" + std::string(kEmDash) + " alice.example/a \n",
       "note signature line 1: signature is empty"},
      {"text\n\n" + std::string(kEmDash) + "  alice.example/a " + b64,
       "note signature line 1: invalid key name"},
      {"text\n\n" + std::string(kEmDash) + " alice+example " + b64,
       "note signature line 1: invalid key name"},
      {"text\n\n" + std::string(kEmDash) + " alice.example/a " + b64.substr(0, b64.size() - 1) +
           " \n",
       "note signature line 1: signature is not canonical base64"},
      {"text\n\n" + MakeNonCanonical(sigline),
       "note signature line 1: signature is not canonical base64"},
      {"text\n\n" + std::string(kEmDash) + " alice.example/a AAAAAA==\n",
       "note signature line 1: signature is shorter than 5 bytes"},
      {"te\x01xt\n\n" + sigline, "note byte 2: control character 0x01"},
      {"text\r\n\n" + sigline, "note byte 4: control character 0x0d"},
      {"text\n\n" + sigline + "\t", "note byte"},
      {"t\xffxt\n\n" + sigline, "note byte 1: invalid UTF-8"},
      {"t\xe2\x80xt\n\n" + sigline, "note byte 1: invalid UTF-8"},
      {std::string(1, '\0') + "\n\n" + sigline, "note byte 0: control character 0x00"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseNote(c.msg), StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << ::testing::PrintToString(c.msg);
  }
}

TEST_F(NoteTest, SignatureCountCap) {
  const std::string good = Signed("text\n", {&alice_});
  const std::string sigline = good.substr(6);
  std::string msg = "text\n\n";
  for (int i = 0; i < 100; ++i) msg += sigline;
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
  EXPECT_EQ(n.signatures.size(), 100u);
  EXPECT_EQ(FormatNote(n), msg);
  msg += sigline;
  EXPECT_THAT(ParseNote(msg), StatusIs(StatusCode::kInvalidArgument,
                                       "note has more than 100 signature lines"));
}

TEST_F(NoteTest, SizeCap) {
  const std::string good = Signed("text\n", {&alice_});
  const std::string sigs = good.substr(5);  // "\n— ...\n"
  std::string text(kMaxNoteSize - sigs.size() - 1, 'x');
  text += '\n';
  ASSERT_EQ((text + sigs).size(), kMaxNoteSize);
  EXPECT_OK(ParseNote(text + sigs));
  text.insert(0, "y");
  EXPECT_THAT(ParseNote(text + sigs),
              StatusIs(StatusCode::kInvalidArgument,
                       "note is 1048577 bytes, over the 1048576-byte limit"));
  EXPECT_THAT(SignNote(text, {&alice_}),
              StatusIs(StatusCode::kInvalidArgument,
                       "signed note would be over the 1048576-byte limit"));
}

TEST_F(NoteTest, SignNoteErrors) {
  EXPECT_THAT(SignNote("no newline", {&alice_}),
              StatusIs(StatusCode::kInvalidArgument, "note text does not end with a newline"));
  EXPECT_THAT(SignNote("", {&alice_}),
              StatusIs(StatusCode::kInvalidArgument, "note text does not end with a newline"));
  EXPECT_THAT(SignNote("a\x1b[0m\n", {&alice_}),
              StatusIs(StatusCode::kInvalidArgument,
                       "note text byte 1: control character 0x1b"));
  EXPECT_THAT(SignNote("a\n", {}), StatusIs(StatusCode::kInvalidArgument, "no signers"));
  EXPECT_THAT(SignNote("a\n", {nullptr}), StatusIs(StatusCode::kInvalidArgument, "null signer"));
}

TEST_F(NoteTest, OpenVerifiesKnownAndIgnoresUnknown) {
  const std::string msg = Signed("hello\n", {&alice_, &bob_});
  ASSERT_OK_AND_ASSIGN(VerifiedNote v, OpenNote(msg, {alice_.GetVerifier()}));
  EXPECT_EQ(v.text, "hello\n");
  ASSERT_EQ(v.verified.size(), 1u);
  EXPECT_EQ(v.verified[0].name, "alice.example/a");
  ASSERT_EQ(v.unverified.size(), 1u);
  EXPECT_EQ(v.unverified[0].name, "bob.example/b");

  ASSERT_OK_AND_ASSIGN(VerifiedNote both, OpenNote(msg, {bob_.GetVerifier(), alice_.GetVerifier()}));
  EXPECT_EQ(both.verified.size(), 2u);
  EXPECT_TRUE(both.unverified.empty());
}

TEST_F(NoteTest, OpenRejectsBadSignatureFromKnownKeyEvenIfAnotherVerifies) {
  const std::string msg = Signed("hello\n", {&alice_, &bob_});
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
  n.signatures[1].signature[10] ^= 1;
  const std::string bad = FormatNote(n);
  EXPECT_THAT(OpenNote(bad, {alice_.GetVerifier(), bob_.GetVerifier()}),
              StatusIs(StatusCode::kUnauthenticated,
                       "note signature line 2 by " + bob_.VerifierKey().substr(0, 22) +
                           " does not verify"));
  // With only alice known, bob's bad line is an unknown key and is ignored.
  EXPECT_OK(OpenNote(bad, {alice_.GetVerifier()}));
}

TEST_F(NoteTest, OpenRejectsTamperedText) {
  std::string msg = Signed("hello\n", {&alice_});
  msg[0] = 'j';
  EXPECT_THAT(OpenNote(msg, {alice_.GetVerifier()}),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(NoteTest, OpenNeedsAKnownKey) {
  const std::string msg = Signed("hello\n", {&alice_});
  EXPECT_THAT(OpenNote(msg, {}), StatusIs(StatusCode::kUnauthenticated,
                                          "note has no signature from a known key"));
  EXPECT_THAT(OpenNote(msg, {bob_.GetVerifier()}),
              StatusIs(StatusCode::kUnauthenticated, "note has no signature from a known key"));
}

TEST_F(NoteTest, SameNameOrSameIdAloneIsUnknown) {
  // A key with alice's name but another key (so another ID) must be ignored.
  Signer impostor = MakeSigner("alice.example/a", 9);
  ASSERT_NE(impostor.key_id(), alice_.key_id());
  const std::string msg = Signed("hello\n", {&impostor, &alice_});
  ASSERT_OK_AND_ASSIGN(VerifiedNote v, OpenNote(msg, {alice_.GetVerifier()}));
  EXPECT_EQ(v.verified.size(), 1u);
  EXPECT_EQ(v.unverified.size(), 1u);

  // A line with alice's key ID but another name is also unknown.
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(Signed("hello\n", {&alice_})));
  NoteSignature renamed = n.signatures[0];
  renamed.name = "mallory.example";
  renamed.signature[0] ^= 1;
  n.signatures.push_back(renamed);
  ASSERT_OK_AND_ASSIGN(VerifiedNote w, OpenNote(FormatNote(n), {alice_.GetVerifier()}));
  EXPECT_EQ(w.verified.size(), 1u);
  ASSERT_EQ(w.unverified.size(), 1u);
  EXPECT_EQ(w.unverified[0].name, "mallory.example");
}

TEST_F(NoteTest, DuplicatesAreListedOnceButAllVerified) {
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(Signed("hello\n", {&alice_, &bob_})));
  n.signatures.push_back(n.signatures[0]);
  n.signatures.push_back(n.signatures[1]);
  const std::string msg = FormatNote(n);
  ASSERT_OK_AND_ASSIGN(VerifiedNote v, OpenNote(msg, {alice_.GetVerifier()}));
  EXPECT_EQ(v.verified.size(), 1u);
  EXPECT_EQ(v.unverified.size(), 1u);
  // A bad repeated signature by a known key still rejects the note (Go would
  // skip the repeat without verifying it).
  n.signatures[2].signature[0] ^= 1;
  EXPECT_THAT(OpenNote(FormatNote(n), {alice_.GetVerifier()}),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("line 3")));
}

TEST_F(NoteTest, AmbiguousKnownKeys) {
  ASSERT_OK_AND_ASSIGN(Verifier a, Verifier::Parse(alice_.VerifierKey()));
  const std::string msg = Signed("hello\n", {&alice_});
  // The same key twice is fine.
  EXPECT_OK(OpenNote(msg, {a, a}));
  // Two different keys sharing (name, ID) would be rejected as ambiguous,
  // but Verifier enforces ID == KeyId(name, type, key), so building such a
  // pair needs a 2^32 search; the check is defensive.
}

TEST_F(NoteTest, CosignatureV1KeyInNote) {
  ASSERT_OK_AND_ASSIGN(auto key, crypto::Ed25519PrivateKey::FromSeed(Bytes(32, 7)));
  ASSERT_OK_AND_ASSIGN(Verifier w,
                       Verifier::FromPublicKey("w.example", kAlgCosignatureV1, key.public_key()));
  const std::string text = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  const std::string signed_by_log = Signed(text, {&alice_});
  ASSERT_OK_AND_ASSIGN(Note n, ParseNote(signed_by_log));
  ASSERT_OK_AND_ASSIGN(auto sig, key.Sign(AsBytes(CosignatureV1Message(1700000000, text))));
  ByteWriter cw;
  cw.PutU64(1700000000);
  cw.PutBytes(sig);
  NoteSignature cosig{"w.example", w.key_id(), cw.Release()};
  n.signatures.push_back(cosig);
  ASSERT_OK_AND_ASSIGN(VerifiedNote v, OpenNote(FormatNote(n), {alice_.GetVerifier(), w}));
  EXPECT_THAT(v.verified, ElementsAre(n.signatures[0], cosig));
}

}  // namespace
}  // namespace jitgate::note
