// The spool file format (exact bytes: torn tails, corruption by offset), and
// spool and forward end to end against the real broker: its event loop runs
// in this process on a real Unix socket, with the real store and state
// database in a temporary directory (like broker/server_test.cc).
#include "recorder/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "broker/server.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "recorder/recording.h"
#include "recorder/recording_client.h"
#include "store/note/keys.h"
#include "store/reader.h"
#include "store/store.h"
#include "store/verify.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::recorder {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using ::testing::HasSubstr;

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}
void WriteFile(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()),
          static_cast<std::streamsize>(b.size()));
}

Bytes Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (uint8_t& x : b) x = uint8_t(rng());
  return b;
}

wire::OpenSession Meta(const std::string& session = "") {
  wire::OpenSession o;
  o.session = session;
  o.recorder = "jitgate-rec";
  o.user = "alice";
  o.remote_addr = "10.0.0.7";
  o.host = "db1";
  o.target = "db1";
  o.login = "alice";
  o.term = "xterm";
  o.cols = 80;
  o.rows = 24;
  o.start_unix_nanos = 1'700'000'000'000'000'000;
  return o;
}

// n chunks of session, each holding one 20 KB output record of noise at
// time i ms (noise does not compress, so each record is its own chunk).
std::vector<Bytes> Chunks(const std::string& session, int n) {
  ChunkBuilder b(session, /*compress=*/false);
  std::vector<Bytes> out;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.stream = Stream::kOutput;
    r.time_ns = int64_t{i} * 1'000'000;
    r.data = Noise(20'000, uint32_t(i));
    auto done = b.Add(std::move(r));
    EXPECT_OK(done.status());
    out.insert(out.end(), done->begin(), done->end());
    auto last = b.Flush();
    EXPECT_OK(last.status());
    out.insert(out.end(), last->begin(), last->end());
  }
  return out;
}

struct Contents {
  Status status;
  uint64_t first_index = 0;
  wire::OpenSession meta;
  std::vector<SpoolEntry> entries;
  uint64_t torn = 0;
};

Contents ReadSpool(const std::string& path) {
  Contents c;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    c.status = ErrnoToStatus(errno, path);
    return c;
  }
  auto r = SpoolReader::Open(fd.get(), "test.spool");
  if (!r.ok()) {
    c.status = r.status();
    return c;
  }
  c.first_index = (*r)->first_index();
  c.meta = (*r)->meta();
  while (true) {
    auto e = (*r)->Next();
    if (!e.ok()) {
      c.status = e.status();
      return c;
    }
    if (!e->has_value()) break;
    c.entries.push_back(std::move(**e));
  }
  c.torn = (*r)->torn_bytes();
  return c;
}

class SpoolFormatTest : public ::testing::Test {
 protected:
  // Writes a spool with n chunks and, if closed, an end; returns its path.
  std::string Write(int n, bool closed,
                    std::vector<uint64_t>* offsets = nullptr) {
    SpoolWriterOptions o;
    o.dir = dir_.path();
    auto w = SpoolWriter::Create(o, Meta(kId));
    EXPECT_OK(w.status());
    for (const Bytes& c : Chunks(kId, n)) {
      auto at = (*w)->AppendChunk(c);
      EXPECT_OK(at.status());
      if (offsets != nullptr) offsets->push_back(*at);
    }
    if (closed) {
      wire::CloseSession end;
      end.has_exit_status = true;
      end.exit_status = 5;
      end.end_reason = "closed";
      end.chunks = uint64_t(n);
      EXPECT_OK((*w)->AppendClose(end));
    }
    return (*w)->path();
  }

  static constexpr char kId[] = "0123456789ab";
  TempDir dir_;
};

TEST_F(SpoolFormatTest, RoundTripsMetadataChunksAndTheEnd) {
  std::vector<uint64_t> offsets;
  std::string path = Write(3, true, &offsets);
  EXPECT_EQ(path, dir_.Join(std::string(kId) + ".spool"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  Contents c = ReadSpool(path);
  ASSERT_OK(c.status);
  EXPECT_EQ(c.meta, Meta(kId));
  EXPECT_EQ(c.first_index, 0u);
  std::vector<Bytes> want = Chunks(kId, 3);
  ASSERT_EQ(c.entries.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.entries[i].type, SpoolFrameType::kChunk);
    EXPECT_EQ(c.entries[i].index, i);
    EXPECT_EQ(c.entries[i].offset, offsets[i]);
    EXPECT_EQ(c.entries[i].chunk, want[i]);
  }
  EXPECT_EQ(c.entries[3].type, SpoolFrameType::kClose);
  EXPECT_EQ(c.entries[3].close.exit_status, 5u);
  EXPECT_EQ(c.entries[3].close.chunks, 3u);
  EXPECT_EQ(c.torn, 0u);
  // The exact bytes: magic, then the header frame.
  Bytes file = ReadFile(path);
  ASSERT_OK_AND_ASSIGN(Bytes header, SpoolHeaderPayload(0, Meta(kId)));
  Bytes start(kSpoolMagic, kSpoolMagic + kSpoolMagicSize);
  Bytes frame = SpoolFrameBytes(SpoolFrameType::kHeader, header);
  start.insert(start.end(), frame.begin(), frame.end());
  ASSERT_GE(file.size(), start.size());
  EXPECT_EQ(Bytes(file.begin(), file.begin() + start.size()), start);
  EXPECT_EQ(offsets[0], start.size());
}

TEST_F(SpoolFormatTest, ATornTailAtAnyByteIsTheEndNeverAnError) {
  std::vector<uint64_t> offsets;
  std::string path = Write(3, true, &offsets);
  Bytes whole = ReadFile(path);
  const uint64_t third_end =
      offsets[2] + kSpoolFrameHeaderSize + Chunks(kId, 3)[2].size();
  // Cuts after the header (every byte around each frame boundary, and a
  // stride between): the whole frames before it are read, the rest is a
  // torn tail.
  std::set<size_t> cuts;
  for (uint64_t b : {offsets[0], offsets[1], offsets[2], third_end,
                     uint64_t(whole.size())}) {
    for (uint64_t d = 0; d <= 2 * kSpoolFrameHeaderSize; ++d) {
      if (b + d >= kSpoolFrameHeaderSize + d &&
          b + d - kSpoolFrameHeaderSize >= offsets[0]) {
        cuts.insert(b + d - kSpoolFrameHeaderSize);
      }
    }
  }
  for (size_t cut = offsets[0]; cut < whole.size(); cut += 997)
    cuts.insert(cut);
  for (size_t cut : cuts) {
    if (cut >= whole.size()) continue;
    WriteFile(path, Bytes(whole.begin(), whole.begin() + cut));
    Contents c = ReadSpool(path);
    ASSERT_OK(c.status) << "cut at " << cut;
    size_t frames = 0;
    uint64_t end = offsets[0];
    for (uint64_t at : {offsets[1], offsets[2]}) {
      if (cut >= at) {
        ++frames;
        end = at;
      }
    }
    if (cut >= third_end) {
      ++frames;
      end = third_end;
    }
    EXPECT_EQ(c.entries.size(), frames) << "cut at " << cut;
    EXPECT_EQ(c.torn, cut - end) << "cut at " << cut;
  }
  // A header cut short is no spool file.
  WriteFile(path, Bytes(whole.begin(), whole.begin() + offsets[0] - 1));
  EXPECT_THAT(ReadSpool(path).status,
              StatusIs(StatusCode::kDataLoss, HasSubstr("no header")));
}

TEST_F(SpoolFormatTest, ZerosAfterTheLastFrameAreATornTail) {
  std::string path = Write(2, false);
  Bytes b = ReadFile(path);
  size_t size = b.size();
  b.resize(size + 8192, 0);  // the size reached the disk, the data did not
  WriteFile(path, b);
  Contents c = ReadSpool(path);
  ASSERT_OK(c.status);
  EXPECT_EQ(c.entries.size(), 2u);
  EXPECT_EQ(c.torn, 8192u);
}

TEST_F(SpoolFormatTest, ACorruptFrameIsAnErrorByOffsetNeverMisread) {
  std::vector<uint64_t> offsets;
  std::string path = Write(3, true, &offsets);
  const Bytes whole = ReadFile(path);
  struct Case {
    size_t at;
    uint8_t xor_with;
    std::string error;
  };
  const Case cases[] = {
      {offsets[1] + kSpoolFrameHeaderSize + 100, 0x01,
       "checksum mismatch"},                        // payload
      {offsets[1] + 2, 0x40, "checksum mismatch"},  // the CRC
      {offsets[1] + 8, 0x07, "checksum mismatch"},  // the type
      {offsets[1] + 6, 0x01, "checksum mismatch"},  // length - 256
      {offsets[1] + 4, 0x10, "exceeds the cap"},    // length huge
  };
  for (const Case& k : cases) {
    Bytes b = whole;
    b[k.at] ^= k.xor_with;
    WriteFile(path, b);
    Contents c = ReadSpool(path);
    EXPECT_THAT(
        c.status,
        StatusIs(StatusCode::kDataLoss,
                 ::testing::AllOf(
                     HasSubstr("offset " + std::to_string(offsets[1]) + ": "),
                     HasSubstr(k.error))))
        << "byte " << k.at;
    ASSERT_EQ(c.entries.size(), 1u) << "byte " << k.at;  // chunk 0 only
    EXPECT_EQ(c.entries[0].chunk, Chunks(kId, 1)[0]);
  }
  // A damaged header or magic: no spool file.
  Bytes b = whole;
  b[kSpoolMagicSize + kSpoolFrameHeaderSize + 20] ^= 1;
  WriteFile(path, b);
  EXPECT_THAT(ReadSpool(path).status,
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("offset 8: checksum mismatch")));
  b = whole;
  b[0] = 'X';
  WriteFile(path, b);
  EXPECT_THAT(ReadSpool(path).status,
              StatusIs(StatusCode::kDataLoss, HasSubstr("bad magic")));
}

TEST_F(SpoolFormatTest, ChunksMustBeTheSessionsInOrderAndNothingFollowsTheEnd) {
  std::string path = Write(1, false);
  const Bytes base = ReadFile(path);
  auto with = [&](std::vector<Bytes> frames) {
    Bytes b = base;
    for (const Bytes& f : frames) b.insert(b.end(), f.begin(), f.end());
    WriteFile(path, b);
    return ReadSpool(path);
  };
  std::vector<Bytes> mine = Chunks(kId, 3);
  auto chunk = [](const Bytes& c) {
    return SpoolFrameBytes(SpoolFrameType::kChunk, c);
  };
  EXPECT_THAT(with({chunk(mine[2])}).status,  // 1 missing: a gap
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("chunk 2 where chunk 1 belongs")));
  EXPECT_THAT(with({chunk(mine[0])}).status,  // a repeat
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("chunk 0 where chunk 1 belongs")));
  EXPECT_THAT(with({chunk(Chunks("othersession", 2)[1])}).status,
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("a chunk of session othersession")));
  Bytes end_body;
  ASSERT_OK(wire::EncodeBody(wire::CloseSession{}, &end_body));
  Bytes end = SpoolFrameBytes(SpoolFrameType::kClose, end_body);
  EXPECT_THAT(
      with({end, chunk(mine[1])}).status,
      StatusIs(StatusCode::kDataLoss, HasSubstr("after the session's end")));
  EXPECT_THAT(
      with({SpoolFrameBytes(SpoolFrameType(9), Bytes{1})}).status,
      StatusIs(StatusCode::kDataLoss, HasSubstr("unknown frame type 9")));
  EXPECT_THAT(
      with({SpoolFrameBytes(SpoolFrameType::kClose, Bytes{1, 2})}).status,
      StatusIs(StatusCode::kDataLoss, HasSubstr("end: ")));
  Contents ok = with({chunk(mine[1]), end});
  ASSERT_OK(ok.status);
  EXPECT_EQ(ok.entries.size(), 3u);
}

TEST_F(SpoolFormatTest, RewriteDropsAcknowledgedChunksAtomically) {
  SpoolWriterOptions o;
  o.dir = dir_.path();
  ASSERT_OK_AND_ASSIGN(auto w, SpoolWriter::Create(o, Meta(kId)));
  std::vector<Bytes> chunks = Chunks(kId, 5);
  std::vector<uint64_t> offsets;
  for (const Bytes& c : chunks) {
    ASSERT_OK_AND_ASSIGN(uint64_t at, w->AppendChunk(c));
    offsets.push_back(at);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> moved,
                       w->Rewrite(3, {offsets[3], offsets[4]}));
  ASSERT_EQ(moved.size(), 2u);
  ASSERT_OK_AND_ASSIGN(uint64_t at5, w->AppendChunk(Chunks(kId, 6)[5]));
  Contents c = ReadSpool(w->path());
  ASSERT_OK(c.status);
  EXPECT_EQ(c.first_index, 3u);
  ASSERT_EQ(c.entries.size(), 3u);
  EXPECT_EQ(c.entries[0].index, 3u);
  EXPECT_EQ(c.entries[0].offset, moved[0]);
  EXPECT_EQ(c.entries[0].chunk, chunks[3]);
  EXPECT_EQ(c.entries[2].offset, at5);
  EXPECT_FALSE(std::ifstream(dir_.Join(std::string(kId) + ".tmp")).good());
  // Still locked by the writer: a forwarder leaves it alone.
  ForwardOptions fo;
  fo.dir = dir_.path();
  fo.socket_path = dir_.Join("nobody.sock");
  EXPECT_EQ(ForwardSpoolFile(w->path(), fo).outcome, ForwardResult::kBusy);
  ASSERT_OK_AND_ASSIGN(uint64_t used, SpoolUsage(dir_.path()));
  EXPECT_EQ(used, w->size());
  ASSERT_OK_AND_ASSIGN(SpoolSize size, MeasureSpool(dir_.path()));
  EXPECT_EQ(size.sessions, 1u);
  EXPECT_EQ(size.bytes, w->size());
  ASSERT_OK(w->Remove());
  ASSERT_OK_AND_ASSIGN(used, SpoolUsage(dir_.path()));
  EXPECT_EQ(used, 0u);
  ASSERT_OK_AND_ASSIGN(size, MeasureSpool(dir_.Join("missing")));
  EXPECT_EQ(size.sessions, 0u);
}

TEST_F(SpoolFormatTest, GroupCommitSyncsByBytesOrAge) {
  // Observable through the clock only: MaybeSync is a no-op until due, and
  // an append never fails because of it. (fsync itself cannot be seen
  // here; tests/integration kills the recorder for real.)
  ::jitgate::testing::SimulatedClock clock;
  SpoolWriterOptions o;
  o.dir = dir_.path();
  o.clock = &clock;
  o.sync_bytes = 1 << 30;
  o.sync_interval_ms = 1000;
  ASSERT_OK_AND_ASSIGN(auto w, SpoolWriter::Create(o, Meta(kId)));
  for (const Bytes& c : Chunks(kId, 3)) ASSERT_OK(w->AppendChunk(c).status());
  clock.Advance(2'000'000'000);
  EXPECT_OK(w->MaybeSync());
}

TEST(SessionIdTest, MintedIdsHaveTheBrokersFormat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string id, MintSessionId());
    EXPECT_TRUE(IsMintedSessionId(id)) << id;
    EXPECT_TRUE(IsValidSessionId(id));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_FALSE(IsMintedSessionId("0123456789a"));
  EXPECT_FALSE(IsMintedSessionId("0123456789ai"));  // i is not in the alphabet
  EXPECT_FALSE(IsMintedSessionId("nosuchsession"));
}

// Spool and forward against the real broker
// ------------------------------------

std::string Me() {
  passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

class SpoolForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spool_ = dir_.Join("spool");
    ASSERT_EQ(::mkdir(spool_.c_str(), 0770), 0);
    ASSERT_EQ(::mkdir(dir_.Join("run").c_str(), 0755), 0);
    socket_ = dir_.Join("run/jitgated.sock");
    auto signer = note::Signer::FromSeed("spool.test.jitgate/log",
                                         crypto::Sha256(AsBytes("k")));
    ASSERT_OK(signer.status());
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(
        dir_.Join("log.key"), signer->EncodeSignerKey().span(), 0600));
    ASSERT_OK(store::CreateStore(DefaultEnv(), dir_.Join("store"),
                                 dir_.Join("log.key")));
  }

  void StartBroker() {
    std::string yaml = "broker:\n  socket: " + socket_ +
                       "\n  state_dir: " + dir_.path() + "\n  submitters: [" +
                       Me() + "]\nstore:\n  dir: " + dir_.Join("store") +
                       "\n  key: " + dir_.Join("log.key") + "\npolicies: []\n";
    ASSERT_OK_AND_ASSIGN(config_, broker::ParseConfig(yaml, "test.yaml"));
    store::StoreOptions so;
    so.key_path = dir_.Join("log.key");
    ASSERT_OK_AND_ASSIGN(store_, store::Store::Open(dir_.Join("store"), so));
    ASSERT_OK_AND_ASSIGN(db_, broker::StateDb::Open(dir_.Join("jitgated.db")));
    broker::ServerOptions opts;
    opts.server_id = "jitgated spool test";
    opts.log_events = getenv("JITGATE_TEST_LOG") != nullptr;
    server_ = std::make_unique<broker::Server>(config_, db_.get(), store_.get(),
                                               opts);
    ASSERT_OK(server_->Start());
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
  }

  void StopBroker() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
    EXPECT_OK(run_status_);
    server_.reset();
    db_.reset();
    ASSERT_OK(store_->Close());
    store_.reset();
  }

  void TearDown() override { StopBroker(); }

  // No spool, resume_when_idle (the sudo plugin's options).
  RecordingClientOptions IdleResumeOptions() {
    RecordingClientOptions o = ClientOptions();
    o.spool_dir.clear();
    o.resume_when_idle = true;
    return o;
  }

  RecordingClientOptions ClientOptions() {
    RecordingClientOptions o;
    o.socket_path = socket_;
    o.spool_dir = spool_;
    o.connect_timeout_ms = 2000;
    o.ack_timeout_ms = 5000;
    o.retry_interval_ms = 0;  // every call tries again
    return o;
  }

  ForwardOptions Forward() {
    ForwardOptions o;
    o.dir = spool_;
    o.socket_path = socket_;
    o.timeout_ms = 5000;
    return o;
  }

  std::vector<ForwardResult> ForwardAll() {
    std::vector<ForwardResult> out;
    EXPECT_OK(ForwardSpool(Forward(),
                           [&](const ForwardResult& r) { out.push_back(r); }));
    return out;
  }

  std::vector<std::string> SpoolFiles() {
    std::vector<std::string> out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(spool_.c_str()),
                                          &::closedir);
    while (dirent* e = ::readdir(d.get())) {
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    }
    return out;
  }

  // n records of 20 KB noise at i ms each; returns the bytes by time.
  static Status AddRecords(RecordingClient& c, int from, int to) {
    for (int i = from; i < to; ++i) {
      Record r;
      r.stream = i % 3 == 0 ? Stream::kInput : Stream::kOutput;
      r.time_ns = int64_t{i} * 1'000'000;
      r.data = Noise(20'000, uint32_t(i));
      RETURN_IF_ERROR(c.Add(std::move(r)));
    }
    return c.Flush();
  }

  // The session as the store has it: bytes by record time, and its info.
  struct Stored {
    SessionInfo info;
    std::map<int64_t, Bytes> by_time;
    size_t sessions = 0;
    size_t start_events = 0;
  };
  Stored ReadStore(const std::string& id) {
    Stored s;
    auto index = SessionIndex::Open(dir_.Join("store"));
    EXPECT_OK(index.status());
    if (!index.ok()) return s;
    s.sessions = (*index)->sessions().size();
    auto info = (*index)->Find(id);
    EXPECT_OK(info.status());
    if (info.ok()) s.info = *info;
    EXPECT_OK((*index)->ForEachRecord(id, [&](const Record& r) {
      Bytes& b = s.by_time[r.time_ns];
      b.insert(b.end(), r.data.begin(), r.data.end());
      return OkStatus();
    }));
    EXPECT_THAT((*index)->problems(), ::testing::IsEmpty());
    auto reader = store::StoreReader::Open(dir_.Join("store"));
    EXPECT_OK(reader.status());
    for (uint64_t i = 0; reader.ok() && i < (*reader)->size(); ++i) {
      auto e = (*reader)->ReadEntry(i);
      if (!e.ok()) continue;
      std::string body(AsChars(*e));
      if (body.find("\"type\":\"session_start\"") != std::string::npos &&
          body.find(id) != std::string::npos) {
        ++s.start_events;
      }
    }
    return s;
  }

  static void ExpectRecords(const Stored& s, int n) {
    ASSERT_EQ(s.by_time.size(), size_t(n));
    for (int i = 0; i < n; ++i) {
      auto it = s.by_time.find(int64_t{i} * 1'000'000);
      ASSERT_NE(it, s.by_time.end()) << "record " << i;
      EXPECT_EQ(it->second, Noise(20'000, uint32_t(i)))
          << "record " << i;  // once, intact
    }
  }

  TempDir dir_;
  std::string spool_;
  std::string socket_;
  broker::Config config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<broker::StateDb> db_;
  std::unique_ptr<broker::Server> server_;
  std::thread thread_;
  Status run_status_;
};

TEST_F(SpoolForwardTest,
       BrokerDownForTheWholeSessionThenForwardedOnceComplete) {
  ASSERT_OK_AND_ASSIGN(auto client,
                       RecordingClient::Open(ClientOptions(), Meta()));
  EXPECT_TRUE(client->spooling());
  EXPECT_FALSE(client->connected());
  EXPECT_THAT(client->disconnect_reason(), HasSubstr("unreachable"));
  const std::string id = client->session_id();
  EXPECT_TRUE(IsMintedSessionId(id));
  ASSERT_OK(AddRecords(*client, 0, 10));
  ASSERT_OK(client->Tick());
  const uint64_t chunks = client->chunks_sent();
  ASSERT_GE(chunks, 3u);
  wire::CloseSession end;
  end.has_exit_status = true;
  end.exit_status = 5;
  end.end_reason = "closed";
  ASSERT_OK(client->Close(end));
  EXPECT_FALSE(client->delivered());
  const std::string path = client->spool_path();
  client.reset();
  const Bytes spooled = ReadFile(path);
  ASSERT_FALSE(spooled.empty());

  // Nobody to deliver to yet: the file stays.
  std::vector<ForwardResult> r = ForwardAll();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].outcome, ForwardResult::kFailed);
  EXPECT_THAT(r[0].error.message(), HasSubstr("unreachable"));
  EXPECT_EQ(SpoolFiles(), std::vector<std::string>{id + ".spool"});

  StartBroker();
  r = ForwardAll();
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].outcome, ForwardResult::kDelivered) << r[0].error.message();
  EXPECT_EQ(r[0].session, id);
  EXPECT_EQ(r[0].chunks, chunks);
  EXPECT_EQ(r[0].sent, chunks);
  EXPECT_TRUE(r[0].had_end);
  EXPECT_THAT(SpoolFiles(), ::testing::IsEmpty());

  // The forwarder died before removing the file: forwarding it again
  // changes nothing in the store, and removes it.
  WriteFile(path, spooled);
  r = ForwardAll();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].outcome, ForwardResult::kAlreadyDelivered)
      << r[0].error.message();
  EXPECT_THAT(SpoolFiles(), ::testing::IsEmpty());
  StopBroker();

  Stored s = ReadStore(id);
  EXPECT_EQ(s.sessions, 1u);
  EXPECT_EQ(s.start_events, 1u);
  EXPECT_TRUE(s.info.ended);
  EXPECT_EQ(s.info.exit_status, 5);
  EXPECT_EQ(s.info.end_reason, "closed");
  EXPECT_EQ(s.info.chunks, chunks);
  EXPECT_EQ(s.info.user, "alice");
  ExpectRecords(s, 10);
  auto signer = note::Signer::FromSeed("spool.test.jitgate/log",
                                       crypto::Sha256(AsBytes("k")));
  ASSERT_OK(signer.status());
  store::VerifyReport v =
      store::VerifyStore(dir_.Join("store"), signer->GetVerifier(), {});
  EXPECT_OK(v.status) << v.Summary();
}

TEST_F(SpoolForwardTest, AKilledRecordersSessionIsCompletedWithoutDuplicates) {
  StartBroker();
  RecordingClientOptions o = ClientOptions();
  o.max_unacked = 4;
  ASSERT_OK_AND_ASSIGN(auto client, RecordingClient::Open(o, Meta()));
  ASSERT_TRUE(client->connected());
  const std::string id = client->session_id();
  ASSERT_OK(AddRecords(*client, 0, 40));
  const uint64_t chunks = client->chunks_sent();
  ASSERT_GE(chunks, 8u);
  // Let acknowledgements in until at least half is at the broker, not
  // necessarily all: the recorder dies (no Close) with part of the session
  // delivered.
  for (int i = 0; i < 500 && client->chunks_acked() < chunks / 2; ++i) {
    ASSERT_OK(client->Poll());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const uint64_t acked = client->chunks_acked();
  EXPECT_GE(acked, chunks / 2);
  client.reset();  // like kill -9: the lock and the connection go

  std::vector<ForwardResult> r = ForwardAll();
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].outcome, ForwardResult::kDelivered) << r[0].error.message();
  EXPECT_EQ(r[0].chunks, chunks);
  EXPECT_LE(r[0].sent, chunks - acked);  // only what the broker lacked
  EXPECT_FALSE(r[0].had_end);
  StopBroker();
  Stored s = ReadStore(id);
  EXPECT_EQ(s.sessions, 1u);
  EXPECT_TRUE(s.info.ended);
  EXPECT_EQ(s.info.end_reason, "recorder lost");
  EXPECT_EQ(s.info.chunks, chunks);
  ExpectRecords(s, 40);
}

TEST_F(SpoolForwardTest, TheBrokerComesBackMidSessionAndTheRecorderCatchesUp) {
  StartBroker();
  ASSERT_OK_AND_ASSIGN(auto client,
                       RecordingClient::Open(ClientOptions(), Meta()));
  const std::string id = client->session_id();
  ASSERT_OK(AddRecords(*client, 0, 3));
  StopBroker();  // the session goes on, spooled
  ASSERT_OK(AddRecords(*client, 3, 8));
  ASSERT_OK(client->Tick());
  EXPECT_FALSE(client->connected());
  StartBroker();  // restores the open session
  ASSERT_OK(client->Tick());
  EXPECT_TRUE(client->connected());
  ASSERT_OK(AddRecords(*client, 8, 10));
  ASSERT_OK(client->Close(wire::CloseSession{}));
  const uint64_t chunks = client->chunks_sent();
  EXPECT_TRUE(client->delivered());
  EXPECT_THAT(SpoolFiles(), ::testing::IsEmpty());  // delivered: nothing kept
  StopBroker();
  Stored s = ReadStore(id);
  EXPECT_EQ(s.sessions, 1u);
  EXPECT_EQ(s.start_events, 1u);
  EXPECT_EQ(s.info.chunks, chunks);
  ExpectRecords(s, 10);
}

// Without a spool, with resume_when_idle (the sudo plugin): a broker that
// goes away while the session is quiet is no failure; the session is resumed
// on a Tick once the broker is back, and nothing is lost or doubled.
TEST_F(SpoolForwardTest, WithoutASpoolAQuietSessionIsLetGoAndResumedWhenTheBrokerIsBack) {
  StartBroker();
  ASSERT_OK_AND_ASSIGN(auto client, RecordingClient::Open(IdleResumeOptions(), Meta()));
  const std::string id = client->session_id();
  ASSERT_OK(AddRecords(*client, 0, 3));
  StopBroker();
  ASSERT_OK(client->Tick());  // the closed connection is let go
  EXPECT_FALSE(client->connected());
  ASSERT_OK(client->Tick());  // tried again: still away, still no failure
  EXPECT_FALSE(client->connected());
  EXPECT_THAT(client->disconnect_reason(), HasSubstr("jitgated.sock"));
  StartBroker();  // restores the open session
  ASSERT_OK(client->Tick());
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->disconnect_reason(), "");
  ASSERT_OK(AddRecords(*client, 3, 5));
  ASSERT_OK(client->Close(wire::CloseSession{}));
  EXPECT_TRUE(client->delivered());
  const uint64_t chunks = client->chunks_sent();
  StopBroker();
  Stored s = ReadStore(id);
  EXPECT_EQ(s.start_events, 1u);
  EXPECT_EQ(s.info.chunks, chunks);
  ExpectRecords(s, 5);
}

// ... but data to send while the broker is still away gets the one
// reconnect, and fails the session when that fails (no spool to keep it).
TEST_F(SpoolForwardTest, WithoutASpoolASendWhileTheBrokerIsAwayFailsTheSession) {
  StartBroker();
  ASSERT_OK_AND_ASSIGN(auto client, RecordingClient::Open(IdleResumeOptions(), Meta()));
  ASSERT_OK(AddRecords(*client, 0, 2));
  StopBroker();
  ASSERT_OK(client->Tick());
  EXPECT_FALSE(client->connected());
  EXPECT_THAT(AddRecords(*client, 2, 3),
              StatusIs(StatusCode::kUnavailable, HasSubstr("reconnecting")));
}

TEST_F(SpoolForwardTest, AFullSpoolRefusesNewSessionsUnlessAllowed) {
  WriteFile(spool_ + "/leftover.spool", Bytes(4096, 'x'));
  RecordingClientOptions o = ClientOptions();
  o.spool_max_bytes = 4095;
  EXPECT_THAT(RecordingClient::Open(o, Meta()).status(),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("over its limit of 4095")));
  EXPECT_EQ(SpoolFiles().size(), 1u);
  o.spool_allow_over_limit = true;
  ASSERT_OK_AND_ASSIGN(auto client, RecordingClient::Open(o, Meta()));
  EXPECT_FALSE(client->connected());
  o.spool_allow_over_limit = false;
  o.spool_max_bytes = 1 << 20;
  EXPECT_OK(RecordingClient::Open(o, Meta()).status());  // under the limit
}

TEST_F(SpoolForwardTest, ARefusedSessionIsNotSpooled) {
  // The broker's answer is final: a session it refuses does not run, and
  // nothing of it waits in the spool.
  StartBroker();
  wire::OpenSession bastion = Meta();
  bastion.recorder = "bastion";  // only the bastion records these
  EXPECT_THAT(RecordingClient::Open(ClientOptions(), bastion).status(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("refused")));
  EXPECT_THAT(SpoolFiles(), ::testing::IsEmpty());
}

TEST_F(SpoolForwardTest, ASpoolThatLacksAcknowledgedChunksIsRefusedNotGapped) {
  // A spool that starts at chunk 3 for a session the broker has no chunk
  // of: delivering it would leave a gap, so the forwarder refuses and keeps
  // the file.
  SpoolWriterOptions so;
  so.dir = spool_;
  ASSERT_OK_AND_ASSIGN(std::string id, MintSessionId());
  {
    ASSERT_OK_AND_ASSIGN(auto w, SpoolWriter::Create(so, Meta(id)));
    std::vector<uint64_t> offsets;
    for (const Bytes& c : Chunks(id, 5)) {
      ASSERT_OK_AND_ASSIGN(uint64_t at, w->AppendChunk(c));
      offsets.push_back(at);
    }
    ASSERT_OK(w->Rewrite(3, {offsets[3], offsets[4]}).status());
  }
  StartBroker();
  std::vector<ForwardResult> r = ForwardAll();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].outcome, ForwardResult::kFailed);
  EXPECT_THAT(r[0].error.message(), HasSubstr("but the spool starts at 3"));
  EXPECT_EQ(SpoolFiles().size(), 1u);
}

}  // namespace
}  // namespace jitgate::recorder
