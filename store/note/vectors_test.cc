// Every public and derived vector in $JITGATE_TESTDATA/note: C2SP, Go
// sumdb/note, the real sum.golang.org checkpoint, transparency-dev test keys
// and jitgate's derived end-to-end set. A missing vector file fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/crypto/crypto.h"
#include "store/note/checkpoint.h"
#include "store/note/keys.h"
#include "store/note/note.h"
#include "store/note/note_test_util.h"
#include "store/note/tlog_proof.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::note {
namespace {

using ::jitgate::note::testing::MustHex;
using ::jitgate::note::testing::NoteTestdataDir;
using ::jitgate::note::testing::ReadNoteFile;
using ::jitgate::testing::StatusIs;
using ::testing::_;
using ::testing::HasSubstr;
using json = nlohmann::json;

json ReadJson(const std::string& name) {
  const std::string text = ReadNoteFile(name);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << name << " is not valid JSON";
  return j;
}

std::string AsString(const crypto::SecretBytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<Verifier> ParseVkeys(const json& list) {
  std::vector<Verifier> out;
  for (const auto& k : list) {
    StatusOr<Verifier> v = Verifier::Parse(k.get<std::string>());
    EXPECT_OK(v) << k;
    if (v.ok()) out.push_back(*v);
  }
  return out;
}

// The text of a signed note file, without its signatures.
std::string TextOf(const std::string& msg) {
  StatusOr<Note> n = ParseNote(msg);
  EXPECT_OK(n);
  return n.ok() ? n->text : "";
}

// Literal RFC 9162 §2.1.3.2 inclusion verification, for cross-checking the
// derived tlog-proof only.
bool VerifyInclusion(uint64_t index, uint64_t size, const crypto::Sha256Digest& leaf,
                     const std::vector<std::array<uint8_t, 32>>& path,
                     const std::array<uint8_t, 32>& root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  crypto::Sha256Digest r = leaf;
  for (const auto& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      r = crypto::Sha256Node(0x01, p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = crypto::Sha256Node(0x01, r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

// The tlog-witness add-checkpoint body: "old N", proof lines, blank line,
// then a checkpoint note.
struct AddCheckpoint {
  uint64_t old_size = 0;
  std::vector<std::string> proof_b64;
  std::string checkpoint;
};

AddCheckpoint ParseAddCheckpoint(const std::string& body) {
  AddCheckpoint out;
  const size_t blank = body.find("\n\n");
  EXPECT_NE(blank, std::string::npos);
  std::string head = body.substr(0, blank + 1);
  out.checkpoint = body.substr(blank + 2);
  size_t pos = 0;
  bool first = true;
  while (pos < head.size()) {
    const size_t nl = head.find('\n', pos);
    const std::string line = head.substr(pos, nl - pos);
    pos = nl + 1;
    if (first) {
      EXPECT_EQ(line.substr(0, 4), "old ");
      out.old_size = std::stoull(line.substr(4));
      first = false;
    } else {
      Bytes h;
      EXPECT_TRUE(crypto::Base64Decode(line, &h)) << line;
      EXPECT_EQ(h.size(), 32u);
      out.proof_b64.push_back(line);
    }
  }
  return out;
}

TEST(NoteVectorsTest, AllFilesPresent) {
  namespace fs = std::filesystem;
  const std::string dir = NoteTestdataDir();
  ASSERT_FALSE(dir.empty());
  std::error_code ec;
  ASSERT_TRUE(fs::is_directory(dir, ec)) << dir << " is not a directory";
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) found.insert(e.path().filename().string());
  }
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_GT(found.size(), 0u) << "no vector files in " << dir;
  for (const char* want : {
           "c2sp-signed-note-example.txt",
           "c2sp-tlog-checkpoint-example-PARSE-ONLY.txt",
           "c2sp-tlog-witness-add-checkpoint-example-PARSE-ONLY.txt",
           "derived-checkpoint-BAD-size-altered.txt",
           "derived-checkpoint-size7.txt",
           "derived-checkpoint-size8-cosigned.txt",
           "derived-jitgate-vectors.json",
           "derived-tlog-proof-index5.tlog-proof",
           "derived-witness-add-checkpoint-request.txt",
           "go-note-peterneumann-enochroot.txt",
           "go-note-peterneumann.txt",
           "public-vectors.json",
           "sum-golang-org-checkpoint-6476701.txt",
       }) {
    EXPECT_TRUE(found.count(want)) << "missing vector " << want;
  }
}

TEST(NoteVectorsTest, PublicVectorsIndex) {
  const json j = ReadJson("public-vectors.json");
  ASSERT_TRUE(j.contains("vectors"));
  ASSERT_GE(j["vectors"].size(), 6u);
  int verified_files = 0, parse_only_files = 0;
  for (const auto& v : j["vectors"]) {
    const std::string file = v["file"].get<std::string>();
    SCOPED_TRACE(file);
    const std::string msg = ReadNoteFile(file);
    ASSERT_OK_AND_ASSIGN(Note parsed, ParseNote(msg));
    EXPECT_EQ(FormatNote(parsed), msg);
    const std::vector<Verifier> keys = ParseVkeys(v["vkeys"]);
    if (keys.empty()) {
      ++parse_only_files;
      continue;
    }
    ASSERT_OK_AND_ASSIGN(VerifiedNote vn, OpenNote(msg, keys));
    EXPECT_EQ(vn.verified.size(), keys.size());
    EXPECT_TRUE(vn.unverified.empty());
    EXPECT_EQ(vn.text, parsed.text);
    if (v.contains("skey")) {
      ASSERT_OK_AND_ASSIGN(Signer s, ParseSignerKey(v["skey"].get<std::string>()));
      ASSERT_OK_AND_ASSIGN(std::string resigned, SignNote(vn.text, {&s}));
      EXPECT_EQ(resigned, msg) << "re-signing must reproduce the note byte for byte";
    }
    ++verified_files;
  }
  EXPECT_EQ(verified_files, 4);
  EXPECT_EQ(parse_only_files, 2);
}

TEST(NoteVectorsTest, C2spSignedNoteExample) {
  const std::string msg = ReadNoteFile("c2sp-signed-note-example.txt");
  ASSERT_OK_AND_ASSIGN(
      Verifier v, Verifier::Parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"));
  EXPECT_EQ(KeyId("example.com/foo", kAlgEd25519, v.public_key()), 0x530d903au);
  ASSERT_OK_AND_ASSIGN(VerifiedNote vn, OpenNote(msg, {v}));
  EXPECT_EQ(vn.text, "This is an example message.\n");
}

TEST(NoteVectorsTest, GoPeterNeumannResign) {
  const std::string msg = ReadNoteFile("go-note-peterneumann.txt");
  ASSERT_OK_AND_ASSIGN(
      Signer s,
      ParseSignerKey("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"));
  EXPECT_EQ(s.VerifierKey(), "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_OK_AND_ASSIGN(std::string resigned, SignNote(TextOf(msg), {&s}));
  EXPECT_EQ(resigned, msg);
}

TEST(NoteVectorsTest, GoTwoSignatures) {
  const std::string msg = ReadNoteFile("go-note-peterneumann-enochroot.txt");
  ASSERT_OK_AND_ASSIGN(
      Verifier peter,
      Verifier::Parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));
  ASSERT_OK_AND_ASSIGN(
      Verifier enoch, Verifier::Parse("EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"));
  ASSERT_OK_AND_ASSIGN(VerifiedNote both, OpenNote(msg, {peter, enoch}));
  ASSERT_EQ(both.verified.size(), 2u);
  EXPECT_EQ(both.verified[0].name, "PeterNeumann");
  EXPECT_EQ(both.verified[1].name, "EnochRoot");

  ASSERT_OK_AND_ASSIGN(VerifiedNote only_peter, OpenNote(msg, {peter}));
  ASSERT_EQ(only_peter.verified.size(), 1u);
  ASSERT_EQ(only_peter.unverified.size(), 1u);
  EXPECT_EQ(only_peter.unverified[0].name, "EnochRoot");
  EXPECT_EQ(only_peter.unverified[0].key_id, 0xaf0cfe78u);

  // EnochRoot's seed is 32 zero bytes: re-signing with both reproduces the file.
  ASSERT_OK_AND_ASSIGN(Signer enoch_signer, Signer::FromSeed("EnochRoot", Bytes(32, 0)));
  EXPECT_EQ(enoch_signer.VerifierKey(), enoch.Encode());
  ASSERT_OK_AND_ASSIGN(
      Signer peter_signer,
      ParseSignerKey("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"));
  ASSERT_OK_AND_ASSIGN(std::string resigned,
                       SignNote(both.text, {&peter_signer, &enoch_signer}));
  EXPECT_EQ(resigned, msg);
}

TEST(NoteVectorsTest, SumGolangOrgCheckpoint) {
  const std::string msg = ReadNoteFile("sum-golang-org-checkpoint-6476701.txt");
  ASSERT_OK_AND_ASSIGN(
      Verifier v, Verifier::Parse("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"));
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, OpenCheckpoint(msg, v, "go.sum database tree"));
  EXPECT_EQ(cp.origin, "go.sum database tree");
  EXPECT_EQ(cp.size, 6476701u);
  EXPECT_EQ(crypto::Base64Encode(cp.root), "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=");
  EXPECT_THAT(OpenCheckpoint(msg, v, "sum.golang.org"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("is not the expected")));
}

TEST(NoteVectorsTest, ParseOnlyExamples) {
  {
    const std::string msg = ReadNoteFile("c2sp-tlog-checkpoint-example-PARSE-ONLY.txt");
    ASSERT_OK_AND_ASSIGN(Note n, ParseNote(msg));
    ASSERT_EQ(n.signatures.size(), 1u);
    EXPECT_EQ(n.signatures[0].name, "example.com/behind-the-sofa");
    ASSERT_OK_AND_ASSIGN(Checkpoint cp, ParseCheckpointBody(n.text));
    EXPECT_EQ(cp.origin, "example.com/behind-the-sofa");
    EXPECT_EQ(cp.size, 20852163u);
    EXPECT_EQ(MarshalCheckpoint(cp), n.text);
  }
  {
    const std::string body = ReadNoteFile("c2sp-tlog-witness-add-checkpoint-example-PARSE-ONLY.txt");
    AddCheckpoint req = ParseAddCheckpoint(body);
    EXPECT_EQ(req.old_size, 20852014u);
    EXPECT_EQ(req.proof_b64.size(), 4u);
    ASSERT_OK_AND_ASSIGN(Note n, ParseNote(req.checkpoint));
    EXPECT_EQ(n.signatures.size(), 2u);
    ASSERT_OK_AND_ASSIGN(Checkpoint cp, ParseCheckpointBody(n.text));
    EXPECT_EQ(cp.size, 20852163u);
  }
}

TEST(NoteVectorsTest, TransparencyDevKeyPairs) {
  const json j = ReadJson("public-vectors.json");
  const json& extra = j["extra_keys_from_transparency_dev_formats"];
  ASSERT_EQ(extra["pairs"].size(), 4u);
  for (const auto& pair : extra["pairs"]) {
    const std::string skey = pair[0].get<std::string>();
    const std::string vkey = pair[1].get<std::string>();
    SCOPED_TRACE(vkey);
    ASSERT_OK_AND_ASSIGN(Signer s, ParseSignerKey(skey));
    EXPECT_EQ(s.VerifierKey(), vkey);
    EXPECT_EQ(AsString(s.EncodeSignerKey()), skey);
    ASSERT_OK_AND_ASSIGN(Verifier v, Verifier::Parse(vkey));
    EXPECT_EQ(v.Encode(), vkey);
    ASSERT_OK_AND_ASSIGN(std::string msg, SignNote("x\n", {&s}));
    EXPECT_OK(OpenNote(msg, {v}));
  }

  ASSERT_OK_AND_ASSIGN(Verifier cosig,
                       Verifier::Parse(extra["cosignature_v1_vkey_type_0x04"].get<std::string>()));
  EXPECT_EQ(cosig.alg(), kAlgCosignatureV1);
  EXPECT_EQ(cosig.name(), "remora.n621.de");
  EXPECT_EQ(cosig.key_id(), 0xda77ade7u);

  const json& tsv = extra["cosignature_timestamp_vector"];
  Bytes raw;
  ASSERT_TRUE(crypto::Base64Decode(tsv["signature_b64"].get<std::string>(), &raw));
  ASSERT_EQ(raw.size(), 4 + kCosignatureV1Size);
  EXPECT_EQ(HexEncode(ByteSpan(raw).first(4)), tsv["key_id_hex"].get<std::string>());
  ASSERT_OK_AND_ASSIGN(uint64_t ts, CosignatureV1Timestamp(ByteSpan(raw).subspan(4)));
  EXPECT_EQ(ts, tsv["timestamp"].get<uint64_t>());

  ASSERT_EQ(extra["bad_vkeys"].size(), 3u);
  for (const auto& bad : extra["bad_vkeys"]) {
    EXPECT_THAT(Verifier::Parse(bad.get<std::string>()), StatusIs(StatusCode::kInvalidArgument, _))
        << bad;
  }
}

class NoteDerivedVectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    j_ = ReadJson("derived-jitgate-vectors.json");
    ASSERT_TRUE(j_.contains("log_key"));
    ASSERT_OK_AND_ASSIGN(log_vkey_, Verifier::Parse(j_["log_key"]["vkey"].get<std::string>()));
    ASSERT_OK_AND_ASSIGN(witness_vkey_,
                         Verifier::Parse(j_["witness_key"]["vkey"].get<std::string>()));
  }
  std::string Origin() const { return j_["log_key"]["name"].get<std::string>(); }

  json j_;
  StatusOr<Verifier> log_vkey_ = InternalError("unset");
  StatusOr<Verifier> witness_vkey_ = InternalError("unset");
};

TEST_F(NoteDerivedVectorsTest, Keys) {
  const json& lk = j_["log_key"];
  ASSERT_OK_AND_ASSIGN(Signer s, Signer::FromSeed(lk["name"].get<std::string>(),
                                                  MustHex(lk["seed_hex"].get<std::string>())));
  EXPECT_EQ(HexEncode(s.public_key()), lk["public_hex"].get<std::string>());
  char id[9];
  std::snprintf(id, sizeof(id), "%08x", s.key_id());
  EXPECT_EQ(id, lk["key_id_hex"].get<std::string>());
  EXPECT_EQ(s.VerifierKey(), lk["vkey"].get<std::string>());
  EXPECT_EQ(AsString(s.EncodeSignerKey()), lk["skey"].get<std::string>());
  ASSERT_OK_AND_ASSIGN(Signer parsed, ParseSignerKey(lk["skey"].get<std::string>()));
  EXPECT_EQ(parsed.public_key(), s.public_key());
  // seed = SHA-256(label)
  const crypto::Sha256Digest seed = crypto::Sha256(AsBytes(lk["seed_label"].get<std::string>()));
  EXPECT_EQ(HexEncode(seed), lk["seed_hex"].get<std::string>());

  const json& wk = j_["witness_key"];
  const Verifier& w = *witness_vkey_;
  EXPECT_EQ(w.alg(), kAlgCosignatureV1);
  EXPECT_EQ(HexEncode(w.public_key()), wk["public_hex"].get<std::string>());
  std::snprintf(id, sizeof(id), "%08x",
                KeyId(wk["name"].get<std::string>(), kAlgCosignatureV1,
                      MustHex(wk["public_hex"].get<std::string>())));
  EXPECT_EQ(id, wk["key_id_hex"].get<std::string>());
  ASSERT_OK_AND_ASSIGN(auto wpriv, crypto::Ed25519PrivateKey::FromSeed(
                                       MustHex(wk["seed_hex"].get<std::string>())));
  EXPECT_EQ(HexEncode(wpriv.public_key()), wk["public_hex"].get<std::string>());
}

TEST_F(NoteDerivedVectorsTest, CheckpointSize7) {
  const std::string msg = ReadNoteFile("derived-checkpoint-size7.txt");
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, OpenCheckpoint(msg, *log_vkey_, Origin()));
  EXPECT_EQ(cp.size, 7u);
  ASSERT_OK_AND_ASSIGN(Signer s, Signer::FromSeed(Origin(), MustHex(j_["log_key"]["seed_hex"].get<std::string>())));
  ASSERT_OK_AND_ASSIGN(std::string resigned, SignCheckpoint(cp, s));
  EXPECT_EQ(resigned, msg);
}

TEST_F(NoteDerivedVectorsTest, CheckpointSize8Cosigned) {
  const std::string msg = ReadNoteFile("derived-checkpoint-size8-cosigned.txt");
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, OpenCheckpoint(msg, *log_vkey_, Origin()));
  EXPECT_EQ(cp.size, 8u);
  ASSERT_OK_AND_ASSIGN(OpenedCheckpoint o,
                       OpenCheckpointWithCosigners(msg, *log_vkey_, Origin(), {*witness_vkey_}));
  ASSERT_EQ(o.note.verified.size(), 2u);
  EXPECT_TRUE(o.note.unverified.empty());
  const NoteSignature& cosig = o.note.verified[1];
  EXPECT_EQ(cosig.name, "witness.jitgate.test/w1");
  ASSERT_OK_AND_ASSIGN(uint64_t ts, CosignatureV1Timestamp(cosig.signature));
  EXPECT_EQ(ts, 1700000000u);
  EXPECT_EQ(ts, j_["witness_key"]["cosignature_timestamp"].get<uint64_t>());
  EXPECT_EQ(CosignatureV1Message(ts, o.note.text),
            j_["cosigned_message_for_size8"].get<std::string>());

  // The cosignature verifies with the witness vkey alone, too.
  ASSERT_OK_AND_ASSIGN(VerifiedNote wv, OpenNote(msg, {*witness_vkey_}));
  EXPECT_EQ(wv.verified.size(), 1u);

  // Re-signing with the derived seeds reproduces both signature lines.
  ASSERT_OK_AND_ASSIGN(Signer s, Signer::FromSeed(Origin(), MustHex(j_["log_key"]["seed_hex"].get<std::string>())));
  ASSERT_OK_AND_ASSIGN(std::string resigned, SignCheckpoint(cp, s));
  ASSERT_OK_AND_ASSIGN(Note resigned_note, ParseNote(resigned));
  ASSERT_OK_AND_ASSIGN(Note file_note, ParseNote(msg));
  EXPECT_EQ(resigned_note.signatures[0], file_note.signatures[0]);
  ASSERT_OK_AND_ASSIGN(auto wpriv, crypto::Ed25519PrivateKey::FromSeed(
                                       MustHex(j_["witness_key"]["seed_hex"].get<std::string>())));
  ASSERT_OK_AND_ASSIGN(auto sig, wpriv.Sign(AsBytes(CosignatureV1Message(ts, o.note.text))));
  EXPECT_EQ(Bytes(cosig.signature.begin() + 8, cosig.signature.end()), Bytes(sig.begin(), sig.end()));
}

TEST_F(NoteDerivedVectorsTest, BadSizeAlteredFails) {
  const std::string msg = ReadNoteFile("derived-checkpoint-BAD-size-altered.txt");
  EXPECT_OK(ParseNote(msg));  // structurally fine
  EXPECT_THAT(OpenCheckpoint(msg, *log_vkey_, Origin()),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("does not verify")));
  EXPECT_THAT(OpenNote(msg, {*witness_vkey_}),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(NoteDerivedVectorsTest, TlogProofIndex5) {
  const std::string text = ReadNoteFile("derived-tlog-proof-index5.tlog-proof");
  ASSERT_OK_AND_ASSIGN(TlogProof p, ParseTlogProof(text));
  EXPECT_EQ(FormatTlogProof(p), text);
  EXPECT_FALSE(p.extra.has_value());
  EXPECT_EQ(p.index, 5u);
  EXPECT_EQ(p.checkpoint, ReadNoteFile("derived-checkpoint-size8-cosigned.txt"));
  std::vector<std::string> path_hex;
  for (const auto& h : p.path) path_hex.push_back(HexEncode(h));
  EXPECT_EQ(path_hex, j_["inclusion_proof_index5_size8_hex"].get<std::vector<std::string>>());

  // Verify then use: the checkpoint must verify before its root is trusted.
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, OpenCheckpoint(p.checkpoint, *log_vkey_, Origin()));
  const crypto::Sha256Digest leaf = crypto::Sha256Prefixed(0x00, MustHex("40414243"));
  EXPECT_EQ(HexEncode(leaf), j_["leaf5_hash_hex"].get<std::string>());
  EXPECT_TRUE(VerifyInclusion(p.index, cp.size, leaf, p.path, cp.root));
  EXPECT_FALSE(VerifyInclusion(4, cp.size, leaf, p.path, cp.root));
  auto bad_path = p.path;
  bad_path[1][0] ^= 1;
  EXPECT_FALSE(VerifyInclusion(p.index, cp.size, leaf, bad_path, cp.root));
}

TEST_F(NoteDerivedVectorsTest, WitnessAddCheckpointRequest) {
  const std::string body = ReadNoteFile("derived-witness-add-checkpoint-request.txt");
  AddCheckpoint req = ParseAddCheckpoint(body);
  EXPECT_EQ(req.old_size, 7u);
  std::vector<std::string> proof_hex;
  for (const auto& b64 : req.proof_b64) {
    Bytes h;
    ASSERT_TRUE(crypto::Base64Decode(b64, &h));
    proof_hex.push_back(HexEncode(h));
  }
  EXPECT_EQ(proof_hex, j_["consistency_proof_7_8_hex"].get<std::vector<std::string>>());
  ASSERT_OK_AND_ASSIGN(Checkpoint cp, OpenCheckpoint(req.checkpoint, *log_vkey_, Origin()));
  EXPECT_EQ(cp.size, 8u);
}

}  // namespace
}  // namespace jitgate::note
