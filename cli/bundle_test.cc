// Evidence bundles: the format's exact bytes and round trip, the exporter
// against a real store, the offline verifier, and that any change to a bundle
// fails verification (an entry byte, a proof hash, the checkpoint text, the
// signature, a dropped, repeated or reordered entry, a wrong key, every
// single-byte flip and every truncation). A session recorded through a real
// pty by the recorder library is exported and verified with the real
// `jitgate export --bundle` and `jitgate verify --bundle`.
#include "cli/bundle.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/log_commands.h"
#include "cli/session_commands.h"
#include "core/base/env.h"
#include "core/crypto/crypto.h"
#include "recorder/pty_relay.h"
#include "recorder/recording_testonly.h"
#include "store/format.h"
#include "store/note/checkpoint.h"
#include "store/note/keys.h"
#include "store/reader.h"
#include "store/store.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using recorder::testonly::In;
using recorder::testonly::Out;
using recorder::testonly::Resize;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kT0 = int64_t{1767225600} * kSec;  // 2026-01-01 00:00:00 UTC
constexpr char kKeyName[] = "bundle.test.jitgate/log";
constexpr char kAlice[] = "a1b2c3d4e5f60718";
constexpr char kBob[] = "b0b0b0b0c1c1c1c1";
constexpr char kQuiet[] = "c0ffee0000000001";

note::Signer MakeSigner(std::string_view name, std::string_view seed) {
  StatusOr<note::Signer> s = note::Signer::FromSeed(name, crypto::Sha256(AsBytes(seed)));
  EXPECT_OK(s.status());
  return std::move(s).value();
}

recorder::SessionInfo Info(std::string id, std::string user, int64_t start) {
  recorder::SessionInfo s;
  s.id = std::move(id);
  s.recorder = "bastion";
  s.request_id = "7f3a9c02";
  s.user = std::move(user);
  s.remote_addr = "192.0.2.10";
  s.host = "bastion1";
  s.target = "db1";
  s.login = "root";
  s.approvers = {"oscar"};
  s.term = "xterm";
  s.cols = 80;
  s.rows = 24;
  s.start_unix_nanos = start;
  return s;
}

void End(recorder::SessionInfo* s, uint64_t chunks, int64_t end) {
  s->ended = true;
  s->end_unix_nanos = end;
  s->exit_status = 0;
  s->end_reason = "closed";
  s->chunks = chunks;
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signer_ = std::make_unique<note::Signer>(MakeSigner(kKeyName, "k"));
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("log.key"),
                                                signer_->EncodeSignerKey().span(), 0600));
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("log.pub"),
                                                AsBytes(signer_->VerifierKey() + "\n"), 0644));
    ASSERT_OK(store::CreateStore(DefaultEnv(), store_dir_, dir_.Join("log.key")));
    store::StoreOptions so;
    so.key_path = dir_.Join("log.key");
    so.timed_checkpoints = false;
    ASSERT_OK_AND_ASSIGN(store_, store::Store::Open(store_dir_, so));
  }

  void TearDown() override {
    if (store_) {
      EXPECT_OK(store_->Close());
    }
  }

  uint64_t Append(uint8_t type, std::string_view body) {
    StatusOr<uint64_t> i = store_->Append(type, AsBytes(body));
    EXPECT_OK(i.status());
    return i.ok() ? *i : 0;
  }

  Bytes ChunkBody(const std::string& session, uint64_t index, std::vector<recorder::Record> records,
                  recorder::ChunkEncoding enc = recorder::ChunkEncoding::kPlain) {
    recorder::Chunk c;
    c.session = session;
    c.index = index;
    c.records = std::move(records);
    StatusOr<Bytes> body = recorder::EncodeChunk(c, enc);
    EXPECT_OK(body.status());
    return body.ok() ? *body : Bytes{};
  }

  uint64_t AppendChunk(const std::string& session, uint64_t index,
                       std::vector<recorder::Record> records,
                       recorder::ChunkEncoding enc = recorder::ChunkEncoding::kPlain) {
    return Append(2, AsChars(ChunkBody(session, index, std::move(records), enc)));
  }

  // Alice: start, chunk 0, chunk 1 (compressed), end, interleaved with Bob's
  // live session, an annotation and a resend of alice's chunk 1; then a
  // session with no chunks (kQuiet).
  void RecordSessions() {
    alice_ = Info(kAlice, "alice", kT0);
    recorder::SessionInfo bob = Info(kBob, "bob", kT0 + kSec);
    alice_start_ = Append(1, recorder::SessionStartJson(alice_));
    AppendChunk(kAlice, 0, {Resize(0, 80, 24), Out(0, "$ "), In(kSec, "l")});
    Append(1, recorder::SessionStartJson(bob));
    Append(3, R"({"author":"ops","text":"maintenance"})");
    AppendChunk(kBob, 0, {Out(0, "bob's prompt $ ")});
    const Bytes c1 =
        ChunkBody(kAlice, 1,
                  {Out(2 * kSec, "ls\r\nfile-a  file-b\r\n"), Out(3 * kSec, std::string(300, 'x'))},
                  recorder::ChunkEncoding::kZstd);
    Append(2, AsChars(c1));
    Append(2, AsChars(c1));  // a recorder's resend after a lost acknowledgement
    End(&alice_, 2, kT0 + 4 * kSec);
    alice_end_ = Append(1, recorder::SessionEndJson(alice_));
    quiet_ = Info(kQuiet, "carol", kT0 + 5 * kSec);
    Append(1, recorder::SessionStartJson(quiet_));
    End(&quiet_, 0, kT0 + 6 * kSec);
    Append(1, recorder::SessionEndJson(quiet_));
    ASSERT_OK(store_->PublishCheckpoint());
  }

  StatusOr<Bytes> Export(const std::string& id) {
    Bytes out;
    StatusOr<BundleExport> e =
        WriteSessionBundle(DefaultEnv(), store_dir_, id, [&out](ByteSpan data) {
          out.insert(out.end(), data.begin(), data.end());
          return OkStatus();
        });
    if (!e.ok()) return e.status();
    EXPECT_EQ(e->bytes, out.size());
    EXPECT_EQ(e->vkey, signer_->VerifierKey());
    return out;
  }

  // Alice's bundle, parsed.
  Bundle AliceBundle() {
    RecordSessions();
    StatusOr<Bytes> raw = Export(kAlice);
    EXPECT_OK(raw.status());
    alice_raw_ = raw.ok() ? *raw : Bytes{};
    StatusOr<Bundle> b = ParseBundle(alice_raw_);
    EXPECT_OK(b.status());
    return b.ok() ? *b : Bundle{};
  }

  StatusOr<BundleSummary> Verify(const Bundle& b) {
    StatusOr<Bytes> raw = EncodeBundle(b);
    if (!raw.ok()) return raw.status();
    return VerifyBundleBytes(*raw, signer_->GetVerifier());
  }

  TempDir dir_;
  std::string store_dir_ = dir_.Join("store");
  std::unique_ptr<note::Signer> signer_;
  std::unique_ptr<store::Store> store_;
  recorder::SessionInfo alice_, quiet_;
  uint64_t alice_start_ = 0, alice_end_ = 0;
  Bytes alice_raw_;
};

// --- format --------------------------------------------------------------------

TEST_F(BundleTest, ExactFraming) {
  Bundle b = AliceBundle();
  ASSERT_EQ(b.items.size(), 4u);
  ByteReader r(alice_raw_);
  ByteSpan magic;
  ASSERT_TRUE(r.GetBytes(8, &magic));
  EXPECT_EQ(AsChars(magic), std::string_view("JGBNDL\0\1", 8));
  uint8_t type = 0;
  ByteSpan body;
  ASSERT_TRUE(r.GetU8(&type));
  ASSERT_TRUE(r.GetU32Prefixed(&body));
  EXPECT_EQ(type, 1);  // KEY
  EXPECT_EQ(AsChars(body), signer_->VerifierKey());
  ASSERT_TRUE(r.GetU8(&type));
  ASSERT_TRUE(r.GetU32Prefixed(&body));
  EXPECT_EQ(type, 2);  // CHECKPOINT
  EXPECT_THAT(std::string(AsChars(body)), StartsWith(std::string(kKeyName) + "\n10\n"));
  for (const BundleItem& item : b.items) {
    ASSERT_TRUE(r.GetU8(&type));
    ASSERT_TRUE(r.GetU32Prefixed(&body));
    EXPECT_EQ(type, 3);  // ENTRY
    EXPECT_EQ(Bytes(body.begin(), body.end()), item.entry);
    ASSERT_TRUE(r.GetU8(&type));
    ASSERT_TRUE(r.GetU32Prefixed(&body));
    EXPECT_EQ(type, 4);  // PROOF: a standard tlog-proof, checkpoint included
    EXPECT_THAT(std::string(AsChars(body)), StartsWith("c2sp.org/tlog-proof@v1\nindex " +
                                                       std::to_string(item.proof.index) + "\n"));
    EXPECT_EQ(AsChars(body), note::FormatTlogProof(item.proof));
    EXPECT_EQ(item.proof.checkpoint, b.checkpoint);
  }
  EXPECT_TRUE(r.Empty());
  // The log indexes: start, chunk 0, the first copy of chunk 1, end.
  EXPECT_EQ(b.items[0].proof.index, alice_start_);
  EXPECT_EQ(b.items[1].proof.index, 1u);
  EXPECT_EQ(b.items[2].proof.index, 5u);
  EXPECT_EQ(b.items[3].proof.index, alice_end_);
}

TEST_F(BundleTest, RoundTrip) {
  Bundle b = AliceBundle();
  ASSERT_OK_AND_ASSIGN(Bytes again, EncodeBundle(b));
  EXPECT_EQ(again, alice_raw_);
  ASSERT_OK_AND_ASSIGN(Bundle parsed, ParseBundle(again));
  EXPECT_EQ(parsed, b);
}

TEST_F(BundleTest, ParserRejectsMalformedFraming) {
  Bundle b = AliceBundle();
  const Bytes& raw = alice_raw_;
  auto with = [&](size_t at, uint8_t v) {
    Bytes m = raw;
    m[at] = v;
    return m;
  };
  EXPECT_THAT(ParseBundle(Bytes{}), StatusIs(StatusCode::kInvalidArgument, HasSubstr("too short")));
  EXPECT_THAT(ParseBundle(with(0, 'X')),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bad magic")));
  EXPECT_THAT(ParseBundle(with(7, 2)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("version 2 is not supported")));
  EXPECT_THAT(ParseBundle(with(8, 2)),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("bundle offset 8: section type 2, want 1 (KEY)")));
  // A KEY length over the cap is refused before anything is read for it.
  Bytes big = raw;
  StoreU32BE(big.data() + 9, 0xfffffff0u);
  EXPECT_THAT(ParseBundle(big),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("over its 1024-byte cap")));
  // A length within the cap but past the end of the file.
  Bytes tail(raw.begin(), raw.begin() + 8 + 5 + 10);
  EXPECT_THAT(ParseBundle(tail),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("bytes, but only 10 remain")));
  // Header only: a bundle needs an entry.
  const size_t header = 8 + 5 + b.vkey.size() + 5 + b.checkpoint.size();
  EXPECT_THAT(ParseBundle(ByteSpan(raw.data(), header)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("holds no entry")));
  // An ENTRY without its PROOF.
  const size_t first_entry = header + 5 + b.items[0].entry.size();
  EXPECT_THAT(ParseBundle(ByteSpan(raw.data(), first_entry)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated")));
  // Trailing garbage after the last PROOF.
  Bytes trailing = raw;
  trailing.push_back(0);
  EXPECT_THAT(ParseBundle(trailing),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated")));
}

TEST_F(BundleTest, WriterRefusesWhatWouldNotParse) {
  Bundle b = AliceBundle();
  Bundle extra = b;
  extra.items[1].proof.extra = Bytes{1, 2, 3};
  EXPECT_THAT(EncodeBundle(extra), StatusIs(StatusCode::kInvalidArgument, HasSubstr("extra line")));
  Bundle other = b;
  other.items[2].proof.checkpoint += "— x AAAAAAAA\n";
  EXPECT_THAT(EncodeBundle(other),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("another checkpoint")));
  Bundle badkey = b;
  badkey.vkey = "not a key";
  EXPECT_THAT(EncodeBundle(badkey), StatusIs(StatusCode::kInvalidArgument, HasSubstr("KEY")));
  Bundle badentry = b;
  badentry.items[0].entry[0] = 9;  // entry version
  EXPECT_THAT(EncodeBundle(badentry), StatusIs(StatusCode::kInvalidArgument, HasSubstr("ENTRY")));
  Bundle empty = b;
  empty.items.clear();
  EXPECT_THAT(EncodeBundle(empty), StatusIs(StatusCode::kInvalidArgument, HasSubstr("at least")));
}

// --- export and verify -----------------------------------------------------------

TEST_F(BundleTest, ExportedBundleVerifies) {
  Bundle b = AliceBundle();
  ASSERT_OK_AND_ASSIGN(BundleSummary s, VerifyBundleBytes(alice_raw_, signer_->GetVerifier()));
  EXPECT_EQ(s.session.id, kAlice);
  EXPECT_EQ(s.session.user, "alice");
  EXPECT_TRUE(s.session.ended);
  EXPECT_EQ(s.session.chunks, 2u);
  EXPECT_EQ(s.items, 4u);
  EXPECT_EQ(s.first_entry, alice_start_);
  EXPECT_EQ(s.last_entry, alice_end_);
  EXPECT_EQ(s.origin, kKeyName);
  EXPECT_EQ(s.checkpoint_size, 10u);
  EXPECT_EQ(FormatBundleSummary(s),
            "session a1b2c3d4e5f60718 (alice as root@db1, 2026-01-01T00:00:00.000000000Z, exit "
            "0): session_start, 2 chunks and session_end, log entries 0..7, proven against "
            "checkpoint bundle.test.jitgate/log size 10");
  // Every entry of the bundle is what the store holds at that index.
  ASSERT_OK_AND_ASSIGN(auto reader, store::StoreReader::Open(store_dir_));
  for (const BundleItem& item : b.items) {
    ASSERT_OK_AND_ASSIGN(Bytes stored, reader->ReadEntry(item.proof.index));
    EXPECT_EQ(stored, item.entry);
  }
}

TEST_F(BundleTest, SessionWithoutChunksVerifies) {
  RecordSessions();
  ASSERT_OK_AND_ASSIGN(Bytes raw, Export(kQuiet));
  ASSERT_OK_AND_ASSIGN(BundleSummary s, VerifyBundleBytes(raw, signer_->GetVerifier()));
  EXPECT_EQ(s.items, 2u);
  EXPECT_EQ(s.session.user, "carol");
}

TEST_F(BundleTest, ExportRefusesIncompleteOrUnprovenSessions) {
  RecordSessions();
  EXPECT_THAT(Export(kBob), StatusIs(StatusCode::kFailedPrecondition,
                                     HasSubstr("has no session_end among the 10 entries")));
  EXPECT_THAT(Export("dddddddd"), StatusIs(StatusCode::kNotFound, HasSubstr("no session_start")));
  // A session that ended after the latest checkpoint: not provable yet.
  recorder::SessionInfo late = Info("eeeeeeee", "dave", kT0 + 9 * kSec);
  Append(1, recorder::SessionStartJson(late));
  End(&late, 0, kT0 + 10 * kSec);
  Append(1, recorder::SessionEndJson(late));
  EXPECT_THAT(Export("eeeeeeee"), StatusIs(StatusCode::kNotFound, HasSubstr("10 entries")));
  ASSERT_OK(store_->PublishCheckpoint());
  EXPECT_OK(Export("eeeeeeee").status());
}

TEST_F(BundleTest, ExportRefusesAConflictingChunkCopy) {
  recorder::SessionInfo s = Info(kAlice, "alice", kT0);
  Append(1, recorder::SessionStartJson(s));
  AppendChunk(kAlice, 0, {Out(0, "one")});
  AppendChunk(kAlice, 0, {Out(0, "two")});  // same index, other bytes
  End(&s, 1, kT0 + kSec);
  Append(1, recorder::SessionEndJson(s));
  ASSERT_OK(store_->PublishCheckpoint());
  EXPECT_THAT(Export(kAlice), StatusIs(StatusCode::kDataLoss,
                                       HasSubstr("entry 2: chunk 0 differs from its first copy")));
}

TEST_F(BundleTest, ExportRefusesAMissingChunk) {
  recorder::SessionInfo s = Info(kAlice, "alice", kT0);
  Append(1, recorder::SessionStartJson(s));
  AppendChunk(kAlice, 0, {Out(0, "one")});
  AppendChunk(kAlice, 2, {Out(0, "three")});
  End(&s, 3, kT0 + kSec);
  Append(1, recorder::SessionEndJson(s));
  ASSERT_OK(store_->PublishCheckpoint());
  EXPECT_THAT(Export(kAlice),
              StatusIs(StatusCode::kDataLoss, HasSubstr("entry 2: chunk 2 where chunk 1 belongs")));
}

TEST_F(BundleTest, ExportRefusesAWrongChunkCountOrEventOrder) {
  recorder::SessionInfo s = Info(kAlice, "alice", kT0);
  End(&s, 3, kT0 + kSec);
  Append(1, recorder::SessionEndJson(s));  // before its session_start
  Append(1, recorder::SessionStartJson(s));
  ASSERT_OK(store_->PublishCheckpoint());
  EXPECT_THAT(Export(kAlice),
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("entry 0: session_end of session " + std::string(kAlice) +
                                 " comes before its session_start")));
  recorder::SessionInfo q = Info(kQuiet, "carol", kT0);
  Append(1, recorder::SessionStartJson(q));
  AppendChunk(kQuiet, 0, {Out(0, "one")});
  End(&q, 3, kT0 + kSec);
  Append(1, recorder::SessionEndJson(q));
  ASSERT_OK(store_->PublishCheckpoint());
  EXPECT_THAT(Export(kQuiet), StatusIs(StatusCode::kDataLoss,
                                       HasSubstr("counts 3 chunks, the store holds 1 before it")));
}

// --- any change fails ----------------------------------------------------------

TEST_F(BundleTest, FlippedEntryByteFails) {
  Bundle b = AliceBundle();
  for (size_t i = 0; i < b.items.size(); ++i) {
    // Past the entry's version and type bytes, so that the entry still parses
    // and it is the proof that fails.
    for (size_t at : {size_t{2}, size_t{9}, size_t{10}, b.items[i].entry.size() - 1}) {
      Bundle m = b;
      m.items[i].entry[at] ^= 0x01;
      EXPECT_THAT(Verify(m), StatusIs(StatusCode::kDataLoss,
                                      HasSubstr("item " + std::to_string(i) + " (log entry " +
                                                std::to_string(b.items[i].proof.index) +
                                                "): inclusion proof does not verify")))
          << "item " << i << " byte " << at;
    }
  }
}

TEST_F(BundleTest, FlippedProofHashFails) {
  Bundle b = AliceBundle();
  for (size_t i = 0; i < b.items.size(); ++i) {
    ASSERT_FALSE(b.items[i].proof.path.empty());
    for (size_t h = 0; h < b.items[i].proof.path.size(); ++h) {
      Bundle m = b;
      m.items[i].proof.path[h][31] ^= 0x80;
      EXPECT_THAT(Verify(m),
                  StatusIs(StatusCode::kDataLoss, HasSubstr("inclusion proof does not verify")))
          << "item " << i << " hash " << h;
    }
    Bundle shorter = b;
    shorter.items[i].proof.path.pop_back();
    EXPECT_THAT(Verify(shorter), StatusIs(StatusCode::kDataLoss, HasSubstr("inclusion proof")));
    Bundle moved = b;
    moved.items[i].proof.index ^= 1;
    EXPECT_FALSE(Verify(moved).ok()) << "item " << i;
  }
}

TEST_F(BundleTest, ChangedCheckpointTextFails) {
  Bundle b = AliceBundle();
  // Another size or root, consistently everywhere in the bundle: the
  // signature no longer holds.
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\n10\n", "\n12\n"}, {std::string(kKeyName) + "\n", "other.origin/log\n"}}) {
    Bundle m = b;
    size_t at = m.checkpoint.find(from);
    ASSERT_NE(at, std::string::npos);
    m.checkpoint.replace(at, from.size(), to);
    for (BundleItem& item : m.items) item.proof.checkpoint = m.checkpoint;
    EXPECT_THAT(Verify(m), StatusIs(StatusCode::kUnauthenticated, HasSubstr("checkpoint"))) << to;
  }
  Bundle root = b;
  size_t nl = root.checkpoint.find('\n', root.checkpoint.find('\n') + 1) + 1;
  root.checkpoint[nl + 3] = root.checkpoint[nl + 3] == 'A' ? 'B' : 'A';
  for (BundleItem& item : root.items) item.proof.checkpoint = root.checkpoint;
  EXPECT_THAT(Verify(root), StatusIs(StatusCode::kUnauthenticated, HasSubstr("checkpoint")));
  // Only the CHECKPOINT section changed: its signature no longer holds
  // (checked before any proof is read).
  Bytes raw = alice_raw_;
  const size_t cp_at = 8 + 5 + b.vkey.size() + 5;
  raw[cp_at + b.checkpoint.find("\n10\n") + 2] = '2';
  EXPECT_THAT(VerifyBundleBytes(raw, signer_->GetVerifier()),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("checkpoint")));
  // Only the last PROOF's copy changed: it is not the signed checkpoint.
  raw = alice_raw_;
  const std::string_view all = AsChars(raw);
  const size_t last = all.rfind(b.checkpoint);
  ASSERT_GT(last, cp_at);
  raw[last + b.checkpoint.find("\n10\n") + 2] = '2';
  EXPECT_THAT(VerifyBundleBytes(raw, signer_->GetVerifier()),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr(": PROOF carries another checkpoint than the bundle's")));
}

TEST_F(BundleTest, ChangedSignatureFails) {
  Bundle b = AliceBundle();
  const size_t sig = b.checkpoint.rfind(' ') + 1;
  for (size_t at : {sig + 6, sig + 20, b.checkpoint.size() - 6}) {
    Bundle m = b;
    m.checkpoint[at] = m.checkpoint[at] == 'A' ? 'B' : 'A';
    for (BundleItem& item : m.items) item.proof.checkpoint = m.checkpoint;
    EXPECT_THAT(Verify(m), StatusIs(StatusCode::kUnauthenticated, HasSubstr("checkpoint"))) << at;
  }
  // Signed instead by another key of the same name: not the log's signature.
  note::Signer impostor = MakeSigner(kKeyName, "impostor");
  const std::string text = b.checkpoint.substr(0, b.checkpoint.find("\n\n") + 1);
  ASSERT_OK_AND_ASSIGN(std::string resigned, note::SignNote(text, {&impostor}));
  Bundle m = b;
  m.checkpoint = resigned;
  for (BundleItem& item : m.items) item.proof.checkpoint = m.checkpoint;
  EXPECT_THAT(Verify(m), StatusIs(StatusCode::kUnauthenticated, HasSubstr("checkpoint")));
}

TEST_F(BundleTest, DroppedEntryFails) {
  Bundle b = AliceBundle();
  const std::vector<std::string> why = {
      "the first entry is not a session_start", "chunk 1 where chunk 0 belongs",
      "session_end counts 2 chunks, the bundle holds 1", "ends without session_end"};
  for (size_t i = 0; i < b.items.size(); ++i) {
    Bundle m = b;
    m.items.erase(m.items.begin() + ptrdiff_t(i));
    EXPECT_THAT(Verify(m), StatusIs(StatusCode::kDataLoss, HasSubstr(why[i]))) << i;
  }
}

TEST_F(BundleTest, ReorderedOrRepeatedEntryFails) {
  Bundle b = AliceBundle();
  for (size_t i = 0; i + 1 < b.items.size(); ++i) {
    Bundle m = b;
    std::swap(m.items[i], m.items[i + 1]);
    // The session's rules catch a swap before the log order does.
    const char* why[] = {"item 0 (log entry 1): the first entry is not a session_start",
                         "item 1 (log entry 5): chunk 1 where chunk 0 belongs",
                         "item 2 (log entry 7): session_end counts 2 chunks, the bundle holds 1"};
    EXPECT_THAT(Verify(m), StatusIs(StatusCode::kDataLoss, HasSubstr(why[i]))) << i;
  }
  for (size_t i = 0; i < b.items.size(); ++i) {
    Bundle m = b;
    m.items.insert(m.items.begin() + ptrdiff_t(i), b.items[i]);
    EXPECT_THAT(Verify(m), StatusIs(StatusCode::kDataLoss, HasSubstr("not in log order"))) << i;
  }
  // Another session's entries with valid proofs are still refused.
  ASSERT_OK_AND_ASSIGN(Bytes quiet_raw, Export(kQuiet));
  ASSERT_OK_AND_ASSIGN(Bundle quiet, ParseBundle(quiet_raw));
  Bundle mixed = b;
  mixed.items.back() = quiet.items.back();  // carol's session_end, later in the log
  EXPECT_THAT(Verify(mixed), StatusIs(StatusCode::kDataLoss,
                                      HasSubstr("session_end: session event is for session")));
}

TEST_F(BundleTest, WrongKeyFails) {
  AliceBundle();
  note::Signer other = MakeSigner("other.test/log", "other");
  EXPECT_THAT(VerifyBundleBytes(alice_raw_, other.GetVerifier()),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("not the given key")));
  note::Signer same_name = MakeSigner(kKeyName, "impostor");
  EXPECT_THAT(VerifyBundleBytes(alice_raw_, same_name.GetVerifier()),
              StatusIs(StatusCode::kUnauthenticated, HasSubstr("not the given key")));
}

// Exhaustive: every single-byte change and every truncation of a whole
// bundle fails, whatever part of the file it hits.
TEST_F(BundleTest, EveryByteFlipAndTruncationFails) {
  AliceBundle();
  ASSERT_OK(VerifyBundleBytes(alice_raw_, signer_->GetVerifier()).status());
  for (size_t at = 0; at < alice_raw_.size(); ++at) {
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      Bytes m = alice_raw_;
      m[at] ^= bit;
      ASSERT_FALSE(VerifyBundleBytes(m, signer_->GetVerifier()).ok())
          << "byte " << at << " ^ " << int(bit) << " still verifies";
    }
  }
  for (size_t len = 0; len < alice_raw_.size(); ++len) {
    ASSERT_FALSE(VerifyBundleBytes(ByteSpan(alice_raw_.data(), len), signer_->GetVerifier()).ok())
        << "prefix of " << len << " bytes still verifies";
  }
}

// Seeds for cli_bundle_fuzz: with JITGATE_WRITE_BUNDLE_SEEDS=DIR set, the
// fixture's bundles are written there (tests/fuzz/corpus/cli_bundle_fuzz/).
TEST_F(BundleTest, FuzzSeedsVerifyWithTheFuzzersKey) {
  AliceBundle();
  ASSERT_OK_AND_ASSIGN(Bytes quiet, Export(kQuiet));
  // bundle_fuzz.cc verifies with this key.
  EXPECT_EQ(signer_->VerifierKey(),
            "bundle.test.jitgate/log+1640970a+AdTJ2KNXiJo1LQz4hFVYzI+AAOZe+xY/hTdIz3d0IZEe");
  if (const char* dir = std::getenv("JITGATE_WRITE_BUNDLE_SEEDS")) {
    ASSERT_OK(
        DefaultEnv()->WriteFileAtomically(std::string(dir) + "/alice.bundle", alice_raw_, 0644));
    ASSERT_OK(
        DefaultEnv()->WriteFileAtomically(std::string(dir) + "/no-chunks.bundle", quiet, 0644));
  }
}

// The committed seeds are the test vectors of docs/recording-format.md §9.1:
// they keep verifying with the fixture's key (its times differ, so its bytes do).
TEST_F(BundleTest, CommittedVectorsVerify) {
  AliceBundle();
  ASSERT_OK_AND_ASSIGN(
      std::string alice,
      DefaultEnv()->ReadFileToString(std::string(JITGATE_BUNDLE_CORPUS) + "/alice.bundle"));
  ASSERT_OK_AND_ASSIGN(BundleSummary s, VerifyBundleBytes(AsBytes(alice), signer_->GetVerifier()));
  EXPECT_EQ(s.session.id, kAlice);
  EXPECT_EQ(s.items, 4u);
  EXPECT_EQ(s.first_entry, 0u);
  EXPECT_EQ(s.last_entry, 7u);
  EXPECT_EQ(AsBytes(alice).size(), 2707u);
  ASSERT_OK_AND_ASSIGN(
      std::string quiet,
      DefaultEnv()->ReadFileToString(std::string(JITGATE_BUNDLE_CORPUS) + "/no-chunks.bundle"));
  EXPECT_OK(VerifyBundleBytes(AsBytes(quiet), signer_->GetVerifier()).status());
  ASSERT_OK_AND_ASSIGN(
      std::string truncated,
      DefaultEnv()->ReadFileToString(std::string(JITGATE_BUNDLE_CORPUS) + "/truncated.bundle"));
  EXPECT_THAT(VerifyBundleBytes(AsBytes(truncated), signer_->GetVerifier()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("remain")));
}

// --- a real recorded session through the real commands ----------------------------

// Records a real command on a real pty with the recorder library, as
// jitgate-rec does (compressed chunks from ChunkBuilder, session events
// around them), into the store.
class RecordedSessionTest : public BundleTest {
 protected:
  void RecordRealSession() {
    recorder::SessionInfo info = Info("realsession01", "alice", kT0);
    info.recorder = "jitgate-rec";
    Append(1, recorder::SessionStartJson(info));
    Append(3, R"({"author":"ops","text":"between"})");
    recorder::ChunkBuilder builder(info.id);
    uint64_t chunks = 0;
    auto store_chunks = [&](const std::vector<Bytes>& bodies) -> Status {
      for (const Bytes& body : bodies) {
        StatusOr<uint64_t> i = store_->Append(2, body);
        if (!i.ok()) return i.status();
        ++chunks;
      }
      return OkStatus();
    };
    recorder::RelayOptions opts;
    opts.path = "/bin/sh";
    // Enough varied output for several chunks, and a non-zero exit.
    opts.argv = {"sh", "-c",
                 "printf 'hello-%s\\n' $((6*7)); i=0; while [ $i -lt 20000 ]; do "
                 "echo \"line $i: $((i*7919 % 10007)) of the recorded session\"; "
                 "i=$((i+1)); done; exit 3"};
    opts.use_pty = true;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(devnull, 0);
    int sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(sink, 0);
    opts.in_fd = devnull;
    opts.out_fd = sink;
    opts.err_fd = sink;
    opts.cols = 100;
    opts.rows = 30;
    opts.on_record = [&](const recorder::Record& r) -> Status {
      if (r.stream == recorder::Stream::kOutput) output_.append(AsChars(r.data));
      StatusOr<std::vector<Bytes>> done = builder.Add(r);
      if (!done.ok()) return done.status();
      return store_chunks(*done);
    };
    StatusOr<recorder::RelayResult> result = recorder::RunRelay(opts);
    close(devnull);
    close(sink);
    ASSERT_OK(result.status());
    StatusOr<std::vector<Bytes>> rest = builder.Flush();
    ASSERT_OK(rest.status());
    ASSERT_OK(store_chunks(*rest));
    ASSERT_EQ(chunks, builder.chunks());
    ASSERT_GE(chunks, 2u) << "want a session of several chunks";
    info.ended = true;
    info.end_unix_nanos = kT0 + 60 * kSec;
    info.exit_status = result->exit_status;
    info.end_reason = "closed";
    info.chunks = chunks;
    info.bytes_out = result->bytes_out;
    Append(1, recorder::SessionEndJson(info));
    ASSERT_OK(store_->Close());
    store_.reset();
    ASSERT_EQ(result->exit_status, 3);
    ASSERT_NE(output_.find("hello-42"), std::string::npos);
  }

  std::string output_;
};

TEST_F(RecordedSessionTest, RealSessionBundleVerifiesOfflineAndAnyChangeFails) {
  RecordRealSession();
  std::ostringstream out, err;
  SessionIo io = DefaultSessionIo();
  io.out = &out;
  io.err = &err;
  const std::string file = dir_.Join("alice.bundle");
  ASSERT_EQ(RunExport({"real", "--bundle", file, "--store", store_dir_}, io), 0) << err.str();
  EXPECT_THAT(out.str(),
              StartsWith("exported session realsession01 to " + file + " (evidence bundle: "));
  EXPECT_EQ(err.str(), "");
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Offline: the store is gone; only the bundle and the public key remain.
  ASSERT_OK_AND_ASSIGN(std::string bundle, DefaultEnv()->ReadFileToString(file, 1u << 30));
  ASSERT_OK(::jitgate::testing::RemoveTree(store_dir_));
  ASSERT_FALSE(DefaultEnv()->FileExists(store_dir_));

  auto verify = [&](const std::vector<std::string>& args, std::string* o, std::string* e) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int rc = RunVerify(args);
    std::cout.flush();
    *o = ::testing::internal::GetCapturedStdout();
    *e = ::testing::internal::GetCapturedStderr();
    return rc;
  };
  std::string o, e;
  ASSERT_EQ(verify({"--bundle", file, "--key", dir_.Join("log.pub")}, &o, &e), 0) << e;
  EXPECT_THAT(o, StartsWith(file + ": OK: session realsession01 (alice as root@db1, "));
  EXPECT_THAT(o, HasSubstr("exit 3): session_start, "));
  EXPECT_EQ(std::count(o.begin(), o.end(), '\n'), 1);
  EXPECT_EQ(e, "");

  // The bundle's chunks hold exactly what the pty showed.
  ASSERT_OK_AND_ASSIGN(Bundle b, ParseBundle(AsBytes(bundle)));
  std::string replayed;
  for (const BundleItem& item : b.items) {
    ASSERT_OK_AND_ASSIGN(store::Entry entry, store::ParseEntry(item.entry));
    if (entry.type != 2) continue;
    ASSERT_OK_AND_ASSIGN(recorder::Chunk c, recorder::DecodeChunk(entry.body));
    for (const recorder::Record& r : c.records) {
      if (r.stream == recorder::Stream::kOutput) replayed.append(AsChars(r.data));
    }
  }
  EXPECT_EQ(replayed, output_);

  // Changed copies fail with one line on stderr and exit status 1.
  const std::string bad = dir_.Join("bad.bundle");
  auto expect_fails = [&](const Bytes& content, const std::string& what, const std::string& want) {
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(bad, content, 0600));
    EXPECT_EQ(verify({"--bundle", bad, "--key", dir_.Join("log.pub")}, &o, &e), 1) << what;
    EXPECT_EQ(o, "") << what;
    EXPECT_THAT(e, StartsWith("jitgate: " + bad + ": ")) << what;
    EXPECT_THAT(e, HasSubstr(want)) << what;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << what << ": " << e;
  };
  const Bytes raw(bundle.begin(), bundle.end());
  {
    Bundle m = b;
    m.items[2].entry[m.items[2].entry.size() / 2] ^= 0x20;
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "entry byte", "item 2 (log entry ");
  }
  {
    Bundle m = b;
    m.items[1].proof.path[0][0] ^= 1;
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "proof hash", "inclusion proof does not verify");
  }
  {
    Bundle m = b;
    m.items.erase(m.items.begin() + 2);
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "dropped chunk", "where chunk 1 belongs");
  }
  {
    Bundle m = b;
    std::swap(m.items[1], m.items[2]);
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "reordered chunks", "chunk 1 where chunk 0 belongs");
  }
  {
    Bundle m = b;
    m.items.insert(m.items.begin() + 2, m.items[1]);
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "repeated chunk", "item 2 (log entry 2): entries are not in log order");
  }
  {
    Bundle m = b;
    m.items.pop_back();
    ASSERT_OK_AND_ASSIGN(Bytes enc, EncodeBundle(m));
    expect_fails(enc, "dropped session_end", "ends without session_end");
  }
  {
    Bytes m(raw.begin(), raw.end() - 1);
    expect_fails(m, "truncated", "PROOF section of");
  }

  // The wrong key.
  note::Signer other = MakeSigner(kKeyName, "impostor");
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("other.pub"),
                                              AsBytes(other.VerifierKey() + "\n"), 0644));
  EXPECT_EQ(verify({"--bundle", file, "--key", dir_.Join("other.pub")}, &o, &e), 1);
  EXPECT_THAT(e, HasSubstr("not the given key"));

  // --json.
  ASSERT_EQ(verify({"--bundle", file, "--key", dir_.Join("log.pub"), "--json"}, &o, &e), 0);
  nlohmann::json j = nlohmann::json::parse(o);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["session"], "realsession01");
  EXPECT_EQ(j["entries"].get<uint64_t>(), b.items.size());
  EXPECT_EQ(j["chunks"].get<uint64_t>(), b.items.size() - 2);
}

TEST_F(BundleTest, CommandLineUsage) {
  RecordSessions();
  std::ostringstream out, err;
  SessionIo io = DefaultSessionIo();
  io.out = &out;
  io.err = &err;
  const std::string file = dir_.Join("x.bundle");
  EXPECT_EQ(RunExport({kAlice, "--store", store_dir_}, io), 2);
  EXPECT_THAT(err.str(), HasSubstr("exactly one of --format asciicast and --bundle FILE"));
  err.str("");
  EXPECT_EQ(
      RunExport({kAlice, "--bundle", file, "--format", "asciicast", "--store", store_dir_}, io), 2);
  err.str("");
  EXPECT_EQ(RunExport({kAlice, "--bundle", file, "--out", file, "--store", store_dir_}, io), 2);
  err.str("");
  // A live session has no bundle, and no file is left behind.
  EXPECT_EQ(RunExport({kBob, "--bundle", file, "--store", store_dir_}, io), 1);
  EXPECT_THAT(err.str(), HasSubstr("has not ended"));
  EXPECT_FALSE(DefaultEnv()->FileExists(file));
  // By prefix.
  out.str("");
  ASSERT_EQ(RunExport({"a1b2", "--bundle", file, "--store", store_dir_}, io), 0) << err.str();
  EXPECT_EQ(out.str(), "exported session a1b2c3d4e5f60718 to " + file +
                           " (evidence bundle: 4 entries, 2 chunks, proven against checkpoint "
                           "size 10)\n");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunVerify({"--bundle", file, "--store", store_dir_, "--key", dir_.Join("log.pub")}), 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("exactly one of --store"));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunVerify({"--bundle", file, "--checkpoint", file, "--key", dir_.Join("log.pub")}), 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("--checkpoint goes with"));
}

}  // namespace
}  // namespace jitgate::cli
