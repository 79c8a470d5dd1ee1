#include "core/wire/framing.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "core/base/unique_fd.h"
#include "core/wire/messages.h"
#include "core/wire/wire_testonly.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::wire {
namespace {

using ::jitgate::testing::StatusIs;

// Every sample message as a frame, concatenated, and the frames expected.
struct Stream {
  Bytes bytes;
  std::vector<Frame> frames;
};

Stream SampleStream() {
  Stream s;
  for (const Message& m : testonly::SampleMessages()) {
    StatusOr<Bytes> f = EncodeMessage(m);
    EXPECT_OK(f);
    s.bytes.insert(s.bytes.end(), f->begin(), f->end());
    s.frames.push_back(Frame{f->at(4), Bytes(f->begin() + 5, f->end())});
  }
  return s;
}

// Feeds `in` in chunks chosen by next_chunk and collects the frames.
template <typename NextChunk>
std::vector<Frame> FeedInChunks(ByteSpan in, NextChunk next_chunk) {
  FrameReader r;
  std::vector<Frame> out;
  while (!in.empty()) {
    ByteSpan chunk = in.first(std::min(in.size(), next_chunk()));
    while (!chunk.empty()) {
      StatusOr<size_t> used = r.Feed(chunk);
      EXPECT_OK(used);
      if (!used.ok()) return out;
      chunk = chunk.subspan(*used);
      in = in.subspan(*used);
      if (r.HasFrame()) out.push_back(r.TakeFrame());
    }
  }
  EXPECT_TRUE(r.AtBoundary());
  return out;
}

TEST(FramingTest, EncodeFrameLayout) {
  ASSERT_OK_AND_ASSIGN(Bytes f, EncodeFrame(0x15, AsBytes("abc")));
  EXPECT_EQ(HexEncode(f), "0000000415616263");
  ASSERT_OK_AND_ASSIGN(Bytes empty, EncodeFrame(0x17, {}));
  EXPECT_EQ(HexEncode(empty), "0000000117");
  Bytes max(kMaxBodySize, 'x');
  ASSERT_OK_AND_ASSIGN(Bytes big, EncodeFrame(0x12, max));
  EXPECT_EQ(LoadU32BE(big.data()), kMaxFrameLength);
  max.push_back('x');
  EXPECT_THAT(EncodeFrame(0x12, max).status(),
              StatusIs(StatusCode::kOutOfRange, "frame body of 65536 bytes exceeds the cap of 65535"));
}

TEST(FramingTest, ByteByByte) {
  Stream s = SampleStream();
  EXPECT_EQ(FeedInChunks(s.bytes, [] { return size_t(1); }), s.frames);
}

TEST(FramingTest, AllAtOnce) {
  Stream s = SampleStream();
  EXPECT_EQ(FeedInChunks(s.bytes, [] { return ~size_t(0); }), s.frames);
}

TEST(FramingTest, RandomChunks) {
  Stream s = SampleStream();
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<size_t> len(1, 64);
    EXPECT_EQ(FeedInChunks(s.bytes, [&] { return len(rng); }), s.frames) << "seed " << seed;
  }
}

TEST(FramingTest, FeedStopsAtTheEndOfAFrame) {
  Stream s = SampleStream();
  FrameReader r;
  ASSERT_OK_AND_ASSIGN(size_t used, r.Feed(s.bytes));
  EXPECT_EQ(used, s.frames[0].body.size() + kFrameHeaderSize);
  ASSERT_TRUE(r.HasFrame());
  // Nothing more is consumed until the frame is taken.
  ASSERT_OK_AND_ASSIGN(size_t again, r.Feed(ByteSpan(s.bytes).subspan(used)));
  EXPECT_EQ(again, 0u);
  EXPECT_EQ(r.TakeFrame(), s.frames[0]);
  EXPECT_TRUE(r.AtBoundary());
}

TEST(FramingTest, ZeroLengthIsRejectedAfterFourBytes) {
  FrameReader r;
  const uint8_t zero[] = {0, 0, 0};
  ASSERT_OK(r.Feed(zero).status());
  const uint8_t last[] = {0};
  EXPECT_THAT(r.Feed(last).status(),
              StatusIs(StatusCode::kInvalidArgument, "frame length 0 is invalid"));
  // Sticky: the stream cannot be resynchronised.
  const uint8_t good[] = {0, 0, 0, 1, 0x17};
  EXPECT_THAT(r.Feed(good).status(),
              StatusIs(StatusCode::kInvalidArgument, "frame length 0 is invalid"));
}

TEST(FramingTest, OverCapLengthIsRejectedBeforeTheBodyArrives) {
  // Only the 4 length bytes are given: the reader must refuse on them alone,
  // without waiting for (or allocating) a body.
  for (uint32_t len : {kMaxFrameLength + 1, 0x7fffffffu, 0xffffffffu}) {
    FrameReader r;
    uint8_t hdr[4];
    StoreU32BE(hdr, len);
    EXPECT_THAT(r.Feed(hdr).status(),
                StatusIs(StatusCode::kInvalidArgument,
                         "frame length " + std::to_string(len) + " exceeds the cap of 65536"));
    EXPECT_FALSE(r.AtBoundary());
  }
  // Exactly the cap is accepted.
  FrameReader r;
  ASSERT_OK_AND_ASSIGN(Bytes f, EncodeFrame(uint8_t(MessageType::kProvideReason), Bytes(kMaxBodySize, 'x')));
  ASSERT_OK_AND_ASSIGN(size_t used, r.Feed(f));
  EXPECT_EQ(used, f.size());
  EXPECT_TRUE(r.HasFrame());
}

TEST(FramingTest, UnknownTypeIsRejectedInTheHeader) {
  FrameReader r;
  const uint8_t hdr[] = {0, 0, 0, 9, 0x7f};
  EXPECT_THAT(r.Feed(hdr).status(),
              StatusIs(StatusCode::kInvalidArgument, "frame type 0x7f is not a message type"));
}

TEST(FramingTest, AtBoundaryTracksPartialFrames) {
  FrameReader r;
  EXPECT_TRUE(r.AtBoundary());
  const uint8_t part[] = {0, 0};
  ASSERT_OK(r.Feed(part).status());
  EXPECT_FALSE(r.AtBoundary());
}

class SocketPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    a_.reset(sv[0]);
    b_.reset(sv[1]);
  }
  UniqueFd a_, b_;
};

TEST_F(SocketPairTest, ReadFromNeverReadsPastTheCurrentFrame) {
  Stream s = SampleStream();
  Deadline d = Deadline::InMillis(RealClock(), 5000);
  ASSERT_OK(WriteFull(a_.get(), ByteSpan(s.bytes).first(200), d));
  FrameReader r;
  std::vector<Frame> got;
  ASSERT_OK_AND_ASSIGN(auto res, r.ReadFrom(b_.get()));
  EXPECT_EQ(res, FrameReader::ReadResult::kProgress);
  while (!r.HasFrame()) ASSERT_OK(r.ReadFrom(b_.get()).status());
  // The rest of the 200 bytes is still in the socket.
  int pending = 0;
  ASSERT_EQ(::ioctl(b_.get(), FIONREAD, &pending), 0);
  EXPECT_EQ(size_t(pending), 200 - (s.frames[0].body.size() + kFrameHeaderSize));
  got.push_back(r.TakeFrame());
  ASSERT_OK(WriteFull(a_.get(), ByteSpan(s.bytes).subspan(200), d));
  a_.reset();
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto rr, r.ReadFrom(b_.get()));
    if (rr == FrameReader::ReadResult::kEof) break;
    ASSERT_NE(rr, FrameReader::ReadResult::kWouldBlock);
    if (r.HasFrame()) got.push_back(r.TakeFrame());
  }
  EXPECT_TRUE(r.AtBoundary());
  EXPECT_EQ(got, s.frames);
}

TEST_F(SocketPairTest, ReadFromReportsWouldBlockAndFramingErrors) {
  FrameReader r;
  ASSERT_OK_AND_ASSIGN(auto res, r.ReadFrom(b_.get()));
  EXPECT_EQ(res, FrameReader::ReadResult::kWouldBlock);
  const uint8_t bad[] = {0, 1, 0, 1, 0x01};
  ASSERT_OK(WriteFull(a_.get(), bad, Deadline::InMillis(RealClock(), 1000)));
  EXPECT_THAT(r.ReadFrom(b_.get()).status(),
              StatusIs(StatusCode::kInvalidArgument, "frame length 65537 exceeds the cap of 65536"));
}

TEST_F(SocketPairTest, WriteFullHonoursTheDeadlineWhenThePeerDoesNotRead) {
  jitgate::testing::SimulatedClock clock;
  Bytes chunk(1 << 20, 'x');
  // Fill the socket buffer; with an expired deadline WriteFull gives up at
  // once instead of blocking.
  Deadline expired(&clock, clock.MonotonicNanos());
  EXPECT_THAT(WriteFull(a_.get(), chunk, expired),
              StatusIs(StatusCode::kDeadlineExceeded, "write timed out"));
  // And a real short deadline passes too.
  EXPECT_THAT(WriteFull(a_.get(), chunk, Deadline::InMillis(RealClock(), 50)),
              StatusIs(StatusCode::kDeadlineExceeded, "write timed out"));
}

TEST_F(SocketPairTest, WriteFullToAClosedPeerIsUnavailableNotSigpipe) {
  b_.reset();
  const uint8_t byte[] = {1};
  EXPECT_THAT(WriteFull(a_.get(), byte, Deadline::InMillis(RealClock(), 1000)),
              StatusIs(StatusCode::kUnavailable, "write: Broken pipe"));
}

}  // namespace
}  // namespace jitgate::wire
