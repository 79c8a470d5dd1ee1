#include "recorder/recording.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>
#include <zstd.h>

#include "core/base/env.h"
#include "core/crypto/crypto.h"
#include "store/note/keys.h"
#include "store/reader.h"
#include "store/store.h"
#include "store/store_format.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::recorder {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

Record Out(int64_t t, std::string_view s) {
  Record r;
  r.stream = Stream::kOutput;
  r.time_ns = t;
  r.data = B(s);
  return r;
}
Record In(int64_t t, std::string_view s) {
  Record r = Out(t, s);
  r.stream = Stream::kInput;
  return r;
}
Record Resize(int64_t t, uint16_t cols, uint16_t rows) {
  Record r;
  r.stream = Stream::kResize;
  r.time_ns = t;
  r.cols = cols;
  r.rows = rows;
  return r;
}

Bytes Cat(Bytes a, std::initializer_list<uint8_t> tail) {
  a.insert(a.end(), tail.begin(), tail.end());
  return a;
}
Bytes Cat(Bytes a, const Bytes& tail) {
  a.insert(a.end(), tail.begin(), tail.end());
  return a;
}

// A chunk header written by hand: "JGT1" | u8 len | id | u64 index | u64 base.
Bytes Header(std::string_view id = "ab", uint64_t index = 0, uint64_t base = 0) {
  ByteWriter w;
  w.PutBytes(std::string_view("JGT1"));
  w.PutU8(uint8_t(id.size()));
  w.PutBytes(id);
  w.PutU64(index);
  w.PutU64(base);
  return w.Release();
}

// ValidateChunk accepts exactly the bodies DecodeChunk accepts, with the
// same header, and rejects the others with the same status.
void ExpectValidateAgrees(ByteSpan body) {
  StatusOr<Chunk> decoded = DecodeChunk(body);
  StatusOr<ChunkHeader> checked = ValidateChunk(body);
  EXPECT_EQ(checked.status(), decoded.status());
  if (!decoded.ok() || !checked.ok()) return;
  ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(body));
  EXPECT_EQ(*checked, h);
  EXPECT_EQ(checked->session, decoded->session);
  EXPECT_EQ(checked->index, decoded->index);
  EXPECT_EQ(checked->base_ns, decoded->records.front().time_ns);
}

Chunk Sample() {
  Chunk c;
  c.session = "s1abc";
  c.index = 7;
  c.records = {
      Resize(1000, 80, 24),
      Out(1000, "hello"),
      In(2500, "ls\r"),
      Out(2500, std::string_view("\x00\xff\xfe\x1b[2J\xe2\x80\xae", 10)),  // NUL, bad UTF-8
      Resize(1'000'000'000'000, 65535, 0),
      Out(int64_t(1) << 62, "late"),
  };
  return c;
}

// ---------------------------------------------------------------------------
// Chunk encoding

TEST(ChunkTest, RoundTrip) {
  const Chunk c = Sample();
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  ASSERT_OK_AND_ASSIGN(Chunk back, DecodeChunk(body));
  EXPECT_EQ(back, c);
  ASSERT_OK_AND_ASSIGN(Bytes again, EncodeChunk(back));
  EXPECT_EQ(again, body);
  ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(body));
  EXPECT_EQ(h, (ChunkHeader{"s1abc", 7, 1000}));
}

// Stderr (no terminal) and suspend/resume records encode like data records.
TEST(ChunkTest, ErrorAndSuspendRecordsRoundTrip) {
  Chunk c;
  c.session = "ab";
  c.records = {Out(5, "out"), Record{Stream::kError, 6, Bytes{'e', 'r', 'r'}, 0, 0},
               Record{Stream::kSuspend, 7, Bytes{'T', 'S', 'T', 'P'}, 0, 0},
               Record{Stream::kSuspend, 9, Bytes{'C', 'O', 'N', 'T'}, 0, 0}};
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  // After the 23-byte header: output "out"; stderr (4), delta 1, "err";
  // suspend (5), delta 1, "TSTP"; suspend, delta 2, "CONT".
  EXPECT_EQ(HexEncode(ByteSpan(body).subspan(23)),
            "0200036f7574" "040103657272" "05010454535450" "050204434f4e54");
  ASSERT_OK_AND_ASSIGN(Chunk back, DecodeChunk(body));
  EXPECT_EQ(back, c);
  // Like data records, they must carry data.
  Chunk empty = c;
  empty.records[2].data.clear();
  EXPECT_THAT(EncodeChunk(empty).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty data")));
}

// The format pinned to exact bytes (docs/recording-format.md, example).
TEST(ChunkTest, ExactBytes) {
  Chunk c;
  c.session = "ab";
  c.index = 1;
  c.records = {Out(5, "hi"), Resize(300, 80, 24), In(300, "q")};
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  // clang-format off
  EXPECT_EQ(HexEncode(body),
            "4a475431"                 // "JGT1"
            "02" "6162"                // session "ab"
            "0000000000000001"         // index 1
            "0000000000000005"         // base_ns 5
            "02" "00" "02" "6869"      // output, delta 0, 2 bytes "hi"
            "03" "a702" "0050" "0018"  // resize, delta 295 (LEB128 a7 02), 80x24
            "01" "00" "01" "71");      // input, delta 0, 1 byte "q"
  // clang-format on
}

TEST(ChunkTest, MaximalFields) {
  Chunk c;
  c.session = std::string(kMaxSessionIdLength, 'z');
  c.index = std::numeric_limits<uint64_t>::max();
  c.records = {Out(std::numeric_limits<int64_t>::max(), std::string(kMaxRecordData, 'x'))};
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  ASSERT_OK_AND_ASSIGN(Chunk back, DecodeChunk(body));
  EXPECT_EQ(back, c);
}

// Every proper prefix fails with "truncated in <field>", except a prefix that
// ends right after a record, which is a valid chunk of the records so far.
TEST(ChunkTest, TruncationAtEveryByte) {
  const Chunk c = Sample();
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  std::vector<size_t> ends;  // offsets right after each record
  for (size_t k = 1; k <= c.records.size(); ++k) {
    Chunk prefix = c;
    prefix.records.resize(k);
    ASSERT_OK_AND_ASSIGN(Bytes b, EncodeChunk(prefix));
    ends.push_back(b.size());
  }
  const size_t header = Header("s1abc").size();
  for (size_t n = 0; n < body.size(); ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    StatusOr<Chunk> got = DecodeChunk(ByteSpan(body.data(), n));
    ExpectValidateAgrees(ByteSpan(body.data(), n));
    auto end = std::find(ends.begin(), ends.end(), n);
    if (end != ends.end()) {
      ASSERT_OK(got);
      EXPECT_EQ(got->records.size(), size_t(end - ends.begin()) + 1);
    } else if (n == header) {
      EXPECT_THAT(got, StatusIs(StatusCode::kInvalidArgument,
                                HasSubstr("offset 26: a chunk needs at least one record")));
    } else {
      EXPECT_THAT(got, StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated in ")));
    }
  }
  // The field named at a few points.
  auto at = [&](size_t n) { return DecodeChunk(ByteSpan(body.data(), n)).status().message(); };
  EXPECT_EQ(at(0), "chunk offset 0: truncated in magic");
  EXPECT_EQ(at(3), "chunk offset 0: truncated in magic");
  EXPECT_EQ(at(4), "chunk offset 4: truncated in session id length");
  EXPECT_EQ(at(9), "chunk offset 5: truncated in session id");
  EXPECT_EQ(at(17), "chunk offset 10: truncated in index");
  EXPECT_EQ(at(25), "chunk offset 18: truncated in base_ns");
  EXPECT_EQ(at(27), "chunk offset 27: truncated in delta_ns");
  EXPECT_EQ(at(29), "chunk offset 28: truncated in resize");
  EXPECT_EQ(at(ends[0] + 2),
            "chunk offset " + std::to_string(ends[0] + 2) + ": truncated in data length");
  EXPECT_EQ(at(ends[0] + 4), "chunk offset " + std::to_string(ends[0] + 3) + ": truncated in data");
}

// Table of malformed bodies; each reports the file:line of its row.
TEST(ChunkTest, MalformedRejectedPrecisely) {
  const Bytes h = Header();  // 23 bytes
  const Bytes one = Cat(h, {0x02, 0x00, 0x01, 'x'});
  Bytes long_len = Cat(h, {0x02, 0x00});
  long_len = Cat(long_len, {0x81, 0x80, 0x02});  // 32769 = kMaxRecordData + 1
  Bytes big_base = Header("ab", 0, uint64_t(1) << 63);
  big_base = Cat(big_base, {0x02, 0x00, 0x01, 'x'});
  const Bytes max_base = Header("ab", 0, uint64_t(std::numeric_limits<int64_t>::max()));
  struct Case {
    int line;
    Bytes body;
    std::string want;
  } cases[] = {
      {__LINE__, Cat(B("JGT2"), Bytes(h.begin() + 4, h.end())), "offset 0: bad magic"},
      {__LINE__, Cat(B("JGT1"), {0x00}), "offset 4: session id length 0 is not 1..32"},
      {__LINE__, Cat(B("JGT1"), {33}), "offset 4: session id length 33 is not 1..32"},
      {__LINE__, Cat(Header("aB"), {0x02, 0x00, 0x01, 'x'}),
       "offset 5: session id is not [0-9a-z]"},
      {__LINE__, Cat(Header("a-"), {0x02, 0x00, 0x01, 'x'}),
       "offset 5: session id is not [0-9a-z]"},
      {__LINE__, big_base, "offset 15: base_ns 9223372036854775808 exceeds 2^63-1"},
      {__LINE__, h, "offset 23: a chunk needs at least one record"},
      // Trailing bytes after a complete record: there is no padding.
      {__LINE__, Cat(one, {0x00}), "offset 27: unknown stream 0"},
      {__LINE__, Cat(one, {0x06}), "offset 27: unknown stream 6"},
      {__LINE__, Cat(one, {0xff, 0x00}), "offset 27: unknown stream 255"},
      {__LINE__, Cat(one, {0x02}), "offset 28: truncated in delta_ns"},
      {__LINE__, Cat(one, {0x03, 0x00, 0x00}), "offset 29: truncated in resize"},
      {__LINE__, Cat(h, {0x02, 0x00, 0x00}), "offset 25: empty data record"},
      {__LINE__, Cat(h, {0x01, 0x00, 0x00, 'x'}), "offset 25: empty data record"},
      {__LINE__, Cat(h, {0x02, 0x01, 0x01, 'x'}), "offset 24: first record's delta_ns is 1, not 0"},
      {__LINE__, Cat(h, {0x02, 0x80, 0x00, 0x01, 'x'}),
       "offset 24: non-minimal varint in delta_ns"},
      {__LINE__, Cat(one, {0x02, 0x81, 0x00, 0x01, 'x'}),
       "offset 28: non-minimal varint in delta_ns"},
      {__LINE__, Cat(h, {0x02, 0x00, 0x81, 0x00, 'x'}),
       "offset 25: non-minimal varint in data length"},
      {__LINE__, Cat(one, {0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}),
       "offset 28: varint longer than 64 bits in delta_ns"},
      {__LINE__, Cat(one, {0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}),
       "offset 28: varint longer than 64 bits in delta_ns"},
      {__LINE__, Cat(Cat(max_base, {0x02, 0x00, 0x01, 'x'}), {0x02, 0x01, 0x01, 'y'}),
       "offset 28: time overflows 2^63-1"},
      // The cap is checked before the remaining input (and before allocating).
      {__LINE__, long_len, "offset 25: data length 32769 exceeds kMaxRecordData (32768)"},
      {__LINE__, Cat(h, {0x02, 0x00, 0x02, 'x'}), "offset 26: truncated in data"},
      {__LINE__, Cat(h, Bytes(kMaxChunkBody - h.size() + 1, 0)),
       "chunk of 61441 bytes exceeds kMaxChunkBody (61440)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(__FILE__) + ":" + std::to_string(c.line));
    EXPECT_THAT(DecodeChunk(c.body), StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)));
    ExpectValidateAgrees(c.body);
  }
  // The largest varint that fits is accepted: delta 2^63-1 from base 0.
  Bytes max_delta =
      Cat(one, {0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 'y'});
  ASSERT_OK_AND_ASSIGN(Chunk c, DecodeChunk(max_delta));
  EXPECT_EQ(c.records[1].time_ns, std::numeric_limits<int64_t>::max());
}

TEST(ChunkTest, HeaderOnlyDecodeIgnoresRecords) {
  const Bytes bad_records = Cat(Header("abcd", 9, 77), {0x09});
  ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(bad_records));
  EXPECT_EQ(h, (ChunkHeader{"abcd", 9, 77}));
  EXPECT_THAT(DecodeChunk(bad_records),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown stream 9")));
  EXPECT_THAT(DecodeChunkHeader(B("JGT1")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated in session id length")));
}

TEST(ChunkTest, EncodeRejectsWhatCannotRoundTrip) {
  auto with = [](std::vector<Record> records, std::string session = "ab") {
    Chunk c;
    c.session = std::move(session);
    c.records = std::move(records);
    return EncodeChunk(c);
  };
  Record resize_with_data = Resize(0, 80, 24);
  resize_with_data.data = B("x");
  Record data_with_size = Out(0, "x");
  data_with_size.cols = 80;
  Record unknown = Out(0, "x");
  unknown.stream = Stream(9);
  struct Case {
    int line;
    StatusOr<Bytes> got;
    std::string want;
  } cases[] = {
      {__LINE__, with({Out(0, "x")}, ""), "session id \"\" is not 1..32 of [0-9a-z]"},
      {__LINE__, with({Out(0, "x")}, "AB"), "session id \"AB\" is not"},
      {__LINE__, with({Out(0, "x")}, std::string(33, 'a')), "is not 1..32"},
      {__LINE__, with({Out(0, "x")}, "a\x1b[2J"), "session id \"a\\x1b[2J\""},
      {__LINE__, with({}), "a chunk needs at least one record"},
      {__LINE__, with({Out(5, "x"), Out(4, "y")}),
       "record 1: time 4 is before the previous record's 5"},
      {__LINE__, with({Out(-1, "x")}), "record 0: negative time -1"},
      {__LINE__, with({Out(0, "x"), Out(0, "")}), "record 1: empty data"},
      {__LINE__, with({Out(0, std::string(kMaxRecordData + 1, 'x'))}),
       "record 0: data of 32769 bytes exceeds kMaxRecordData"},
      {__LINE__, with({resize_with_data}), "record 0: a resize record carries no data"},
      {__LINE__, with({data_with_size}), "record 0: a data record carries no cols/rows"},
      {__LINE__, with({unknown}), "record 0: unknown stream 9"},
      {__LINE__,
       with({Out(0, std::string(kMaxRecordData, 'x')), Out(0, std::string(kMaxRecordData, 'y'))}),
       "chunk body exceeds kMaxChunkBody (61440) at record 1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(__FILE__) + ":" + std::to_string(c.line));
    EXPECT_THAT(c.got, StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)));
  }
}

// A chunk of exactly kMaxChunkBody bytes is valid; one more byte is not.
TEST(ChunkTest, SizeLimitIsInclusive) {
  Chunk c;
  c.session = "ab";
  const size_t header = Header("ab").size();
  // Two records: 1 + 1 + 3 + a, and 1 + 1 + 3 + b bytes.
  const size_t data = kMaxChunkBody - header - 2 * 5;
  c.records = {Out(0, std::string(kMaxRecordData, 'a')),
               Out(0, std::string(data - kMaxRecordData, 'b'))};
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c));
  EXPECT_EQ(body.size(), kMaxChunkBody);
  EXPECT_OK(DecodeChunk(body));
  c.records[1].data.push_back('b');
  EXPECT_THAT(EncodeChunk(c), StatusIs(StatusCode::kInvalidArgument, HasSubstr("kMaxChunkBody")));
}


// ---------------------------------------------------------------------------
// Compressed chunks ("JGTZ")

// Text that compresses well, as terminals print it.
std::string Text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  static const char* const kWords[] = {"total ", "drwxr-xr-x ", "root ", "4096 ", "Nov ",
                                       "26 ", "\x1b[01;34m", "etc", "\x1b[0m", "\r\n"};
  std::string out;
  while (out.size() < n) out += kWords[rng() % 10];
  out.resize(n);
  return out;
}

// A JGTZ body written by hand: header, raw_length, then `frame`.
Bytes ZHeader(uint32_t raw_length, const Bytes& frame, std::string_view id = "ab") {
  Bytes h = Header(id, 3, 10);
  std::memcpy(h.data(), "JGTZ", 4);
  ByteWriter w;
  w.PutBytes(ByteSpan(h));
  w.PutU32(raw_length);
  w.PutBytes(ByteSpan(frame));
  return w.Release();
}
Bytes Zstd(const Bytes& raw, bool content_size = true) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  Bytes out(ZSTD_compressBound(raw.size()));
  size_t n;
  if (content_size) {
    n = ZSTD_compress2(c, out.data(), out.size(), raw.data(), raw.size());
  } else {
    // Streaming with an unknown size leaves the content size out.
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    ZSTD_inBuffer i{raw.data(), raw.size(), 0};
    n = ZSTD_compressStream2(c, &o, &i, ZSTD_e_end);
    EXPECT_EQ(n, 0u);
    n = o.pos;
  }
  ZSTD_freeCCtx(c);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TEST(CompressedChunkTest, RoundTrip) {
  Chunk c;
  c.session = "z9";
  c.index = 12;
  c.records = {Resize(100, 80, 24), Out(100, Text(200'000, 1)), In(2'000, "q"),
               Out(2'500, std::string(1, '\0'))};
  // Records over kMaxRecordData are split the way ChunkBuilder does.
  std::vector<Record> split;
  for (const Record& r : c.records) {
    if (r.data.size() <= kMaxRecordData) {
      split.push_back(r);
      continue;
    }
    for (size_t at = 0; at < r.data.size(); at += kMaxRecordData) {
      Record piece = r;
      piece.data.assign(r.data.begin() + at,
                        r.data.begin() + std::min(r.data.size(), at + kMaxRecordData));
      split.push_back(piece);
    }
  }
  c.records = split;
  EXPECT_THAT(EncodeChunk(c), StatusIs(StatusCode::kInvalidArgument, HasSubstr("kMaxChunkBody")));
  ASSERT_OK_AND_ASSIGN(Bytes body, EncodeChunk(c, ChunkEncoding::kZstd));
  EXPECT_LE(body.size(), kMaxChunkBody);
  EXPECT_LT(body.size(), 200'000u / 4);
  EXPECT_EQ(std::string(body.begin(), body.begin() + 4), "JGTZ");
  ASSERT_OK_AND_ASSIGN(Chunk back, DecodeChunk(body));
  EXPECT_EQ(back, c);
  ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(body));
  EXPECT_EQ(h, (ChunkHeader{"z9", 12, 100, ChunkEncoding::kZstd}));

  // Incompressible records that do not fit compressed: refused, not cut.
  std::mt19937 rng(3);
  Chunk random{"z9", 0, {}};
  for (int i = 0; i < 4; ++i) {
    Record r = Out(0, "");
    r.data.resize(kMaxRecordData);
    for (uint8_t& b : r.data) b = uint8_t(rng());
    random.records.push_back(r);
  }
  EXPECT_THAT(EncodeChunk(random, ChunkEncoding::kZstd),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("compressed chunk body exceeds")));
  // Nor may the records exceed kMaxChunkRecords, however well they compress.
  Chunk huge{"z9", 0, {}};
  for (size_t n = 0; n <= kMaxChunkRecords; n += kMaxRecordData) {
    huge.records.push_back(Out(0, std::string(kMaxRecordData, 'x')));
  }
  EXPECT_THAT(EncodeChunk(huge, ChunkEncoding::kZstd),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("exceed kMaxChunkRecords")));
}

// Decompression reuses one buffer per thread: a smaller chunk after a larger
// one, and a frame that decompresses to less than raw_length, never read
// what an earlier chunk left there.
TEST(CompressedChunkTest, ReusedBufferHoldsOnlyThisChunk) {
  Chunk big{"z9", 0, {}};
  for (int i = 0; i < 6; ++i) big.records.push_back(Out(10 * i, Text(kMaxRecordData, i)));
  Chunk small{"z9", 1, {Out(100, "hello"), In(200, "x")}};
  ASSERT_OK_AND_ASSIGN(Bytes big_body, EncodeChunk(big, ChunkEncoding::kZstd));
  ASSERT_OK_AND_ASSIGN(Bytes small_body, EncodeChunk(small, ChunkEncoding::kZstd));
  for (int round = 0; round < 2; ++round) {
    ASSERT_OK_AND_ASSIGN(ChunkHeader hb, ValidateChunk(big_body));
    EXPECT_EQ(hb.index, 0u);
    ASSERT_OK_AND_ASSIGN(Chunk back_small, DecodeChunk(small_body));
    EXPECT_EQ(back_small, small);
    ASSERT_OK_AND_ASSIGN(ChunkHeader hs, ValidateChunk(small_body));
    EXPECT_EQ(hs, (ChunkHeader{"z9", 1, 100, ChunkEncoding::kZstd}));
    ASSERT_OK_AND_ASSIGN(Chunk back_big, DecodeChunk(big_body));
    EXPECT_EQ(back_big, big);
  }
  // A frame holding fewer bytes than raw_length, once the buffer holds a
  // big chunk's records: refused, as by DecodeChunk.
  ASSERT_OK(ValidateChunk(big_body));
  const Bytes lying = ZHeader(1000, Zstd({0x02, 0x00, 0x01, 'h'}));
  EXPECT_THAT(ValidateChunk(lying), StatusIs(StatusCode::kInvalidArgument, HasSubstr("raw_length")));
  ExpectValidateAgrees(lying);
}

TEST(CompressedChunkTest, DecoderRejects) {
  // Records: output "hi" at +0.
  const Bytes raw = {0x02, 0x00, 0x02, 'h', 'i'};
  const Bytes frame = Zstd(raw);
  ASSERT_OK_AND_ASSIGN(Chunk ok, DecodeChunk(ZHeader(5, frame)));
  EXPECT_THAT(ok.records, ElementsAre(Out(10, "hi")));
  const size_t at = Header("ab").size();  // where raw_length starts
  // A reserved block type in the frame's first block header (after the
  // 4-byte magic, the descriptor and the 1-byte content size).
  Bytes corrupt = frame;
  corrupt[6] |= 0x06;
  const Bytes whole = ZHeader(5, frame);
  const Bytes short_length(whole.begin(), whole.begin() + at + 2);
  struct Case {
    int line;
    Bytes body;
    std::string want;
  } cases[] = {
      {__LINE__, ZHeader(0, frame), "chunk offset " + std::to_string(at) + ": raw_length 0 is not 1..1048576"},
      {__LINE__, ZHeader(kMaxChunkRecords + 1, frame), "raw_length 1048577 is not 1..1048576"},
      {__LINE__, short_length, "truncated in raw_length"},
      {__LINE__, ZHeader(5, {}), "truncated in zstd frame"},
      {__LINE__, ZHeader(5, raw), "not a zstd frame"},
      {__LINE__, ZHeader(5, Cat(frame, {0})), "1 trailing bytes after the zstd frame"},
      {__LINE__, ZHeader(5, Bytes(frame.begin(), frame.end() - 1)), "bad zstd frame"},
      {__LINE__, ZHeader(6, frame), "zstd frame holds 5 bytes, raw_length says 6"},
      {__LINE__, ZHeader(5, Zstd(raw, /*content_size=*/false)),
       "zstd frame does not declare its content size"},
      {__LINE__, ZHeader(5, corrupt), "zstd frame"},
      // The records inside follow the same rules as a plain chunk's.
      {__LINE__, ZHeader(5, Zstd({0x02, 0x01, 0x02, 'h', 'i'})),
       "decompressed records offset 1: first record's delta_ns is 1, not 0"},
      {__LINE__, ZHeader(6, Zstd({0x02, 0x00, 0x02, 'h', 'i', 0x07})),
       "decompressed records offset 5: unknown stream 7"},
      {__LINE__, ZHeader(4, Zstd({0x02, 0x00, 0x02, 'h'})),
       "decompressed records offset 3: truncated in data"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(__FILE__) + ":" + std::to_string(c.line));
    EXPECT_THAT(DecodeChunk(c.body), StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)));
    ExpectValidateAgrees(c.body);
  }
  // The header alone still decodes (the records are not looked at).
  ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(ZHeader(0, frame)));
  EXPECT_EQ(h.encoding, ChunkEncoding::kZstd);
}

// ---------------------------------------------------------------------------
// ChunkBuilder

struct Built {
  std::vector<Chunk> chunks;
  std::vector<size_t> sizes;
};

// Decodes every chunk, checking session, numbering and the size cap.
void Collect(const std::vector<Bytes>& bodies, Built* out, const std::string& session = "rec1") {
  for (const Bytes& b : bodies) {
    EXPECT_LE(b.size(), kMaxChunkBody);
    StatusOr<Chunk> c = DecodeChunk(b);
    ASSERT_OK(c);
    ExpectValidateAgrees(b);
    EXPECT_EQ(c->session, session);
    EXPECT_EQ(c->index, out->chunks.size());
    out->sizes.push_back(b.size());
    out->chunks.push_back(std::move(*c));
  }
}

std::vector<Record> AllRecords(const Built& b) {
  std::vector<Record> out;
  for (const Chunk& c : b.chunks) out.insert(out.end(), c.records.begin(), c.records.end());
  return out;
}

// The one chunk a Flush is expected to produce.
Bytes FlushOne(ChunkBuilder& builder) {
  StatusOr<std::vector<Bytes>> f = builder.Flush();
  EXPECT_OK(f.status());
  if (!f.ok()) return Bytes();
  EXPECT_EQ(f->size(), 1u);
  return f->size() == 1 ? (*f)[0] : Bytes();
}

TEST(ChunkBuilderTest, SmallRecordsMakeOneChunk) {
  ChunkBuilder builder("rec1");
  const std::vector<Record> in = {Resize(0, 80, 24), Out(10, "$ "), In(900, "l"), In(1000, "s"),
                                  Out(1000, "ls\r\n")};
  for (const Record& r : in) {
    ASSERT_OK_AND_ASSIGN(std::vector<Bytes> done, builder.Add(r));
    EXPECT_THAT(done, IsEmpty());
  }
  EXPECT_EQ(builder.chunks(), 0u);
  // A few bytes do not compress: the chunk is plain.
  Bytes last = FlushOne(builder);
  EXPECT_EQ(builder.chunks(), 1u);
  Chunk want{"rec1", 0, in};
  EXPECT_EQ(last, *EncodeChunk(want));
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> none, builder.Flush());
  EXPECT_THAT(none, IsEmpty());
  EXPECT_EQ(builder.chunks(), 1u);
}

TEST(ChunkBuilderTest, SplitsLargeDataAcrossChunks) {
  std::mt19937 rng(42);
  Bytes big(1 << 20);
  for (uint8_t& b : big) b = uint8_t(rng());
  ChunkBuilder builder("rec1", /*compress=*/false);
  Built built;
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> done, builder.Add(Out(5, "prompt$ ")));
  Collect(done, &built);
  Record r;
  r.stream = Stream::kOutput;
  r.time_ns = 77;
  r.data = big;
  ASSERT_OK_AND_ASSIGN(done, builder.Add(std::move(r)));
  Collect(done, &built);
  ASSERT_OK_AND_ASSIGN(done, builder.Add(In(90, "q")));
  Collect(done, &built);
  Collect({FlushOne(builder)}, &built);
  EXPECT_EQ(builder.chunks(), built.chunks.size());
  ASSERT_GE(built.chunks.size(), (1u << 20) / kMaxChunkBody + 1);

  // Chunks are cut only when full: all but the last within a few bytes.
  for (size_t i = 0; i + 1 < built.sizes.size(); ++i) {
    EXPECT_GE(built.sizes[i], kMaxChunkBody - 8) << "chunk " << i;
  }
  Bytes output;
  for (const Record& rec : AllRecords(built)) {
    EXPECT_LE(rec.data.size(), kMaxRecordData);
    if (rec.stream != Stream::kOutput) continue;
    if (output.empty()) {
      EXPECT_EQ(rec.time_ns, 5);
    } else {
      EXPECT_EQ(rec.time_ns, 77);  // every piece keeps the record's time
    }
    output.insert(output.end(), rec.data.begin(), rec.data.end());
  }
  EXPECT_EQ(output, Cat(B("prompt$ "), big));
  const std::vector<Record> all = AllRecords(built);
  EXPECT_EQ(all.back(), In(90, "q"));
}

// Random streams of records of random sizes: the bytes of each stream, the
// resizes and all times come out as they went in.
class ChunkBuilderBothTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Compress, ChunkBuilderBothTest, ::testing::Bool());

TEST_P(ChunkBuilderBothTest, RandomStreamsPreserved) {
  std::mt19937 rng(7);
  ChunkBuilder builder("rec1", /*compress=*/GetParam());
  Built built;
  Bytes want_in, want_out;
  std::vector<Record> want_resizes;
  int64_t t = 0;
  for (int i = 0; i < 3000; ++i) {
    t += (rng() % 4 == 0) ? 0 : int64_t(rng() % 5'000'000'000ull);
    Record r;
    const int kind = rng() % 10;
    if (kind == 0) {
      r = Resize(t, uint16_t(rng()), uint16_t(rng()));
      want_resizes.push_back(r);
    } else {
      const size_t n = (rng() % 20 == 0) ? 1 + rng() % 100'000 : 1 + rng() % 300;
      r.stream = kind < 4 ? Stream::kInput : Stream::kOutput;
      r.time_ns = t;
      r.data.resize(n);
      // Random bytes (incompressible) or text (compressible), in runs.
      if ((i / 100) % 2 == 0) {
        for (uint8_t& b : r.data) b = uint8_t(rng());
      } else {
        for (uint8_t& b : r.data) b = uint8_t("abc def\r\n"[rng() % 9]);
      }
      Bytes& w = r.stream == Stream::kInput ? want_in : want_out;
      w.insert(w.end(), r.data.begin(), r.data.end());
    }
    ASSERT_OK_AND_ASSIGN(std::vector<Bytes> done, builder.Add(std::move(r)));
    Collect(done, &built);
    if (rng() % 200 == 0) {
      ASSERT_OK_AND_ASSIGN(std::vector<Bytes> f, builder.Flush());
      Collect(f, &built);
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> f, builder.Flush());
  Collect(f, &built);
  EXPECT_EQ(builder.chunks(), built.chunks.size());
  Bytes got_in, got_out;
  std::vector<Record> got_resizes;
  int64_t prev = 0;
  for (const Record& r : AllRecords(built)) {
    EXPECT_GE(r.time_ns, prev);
    prev = r.time_ns;
    if (r.stream == Stream::kResize) {
      got_resizes.push_back(r);
    } else {
      EXPECT_LE(r.data.size(), kMaxRecordData);
      Bytes& g = r.stream == Stream::kInput ? got_in : got_out;
      g.insert(g.end(), r.data.begin(), r.data.end());
    }
  }
  EXPECT_EQ(got_in, want_in);
  EXPECT_EQ(got_out, want_out);
  EXPECT_EQ(got_resizes, want_resizes);
  EXPECT_EQ(prev, t);
}

TEST(ChunkBuilderTest, ResizeThatDoesNotFitStartsAChunk) {
  ChunkBuilder builder("rec1", /*compress=*/false);
  // Fill to 2 bytes short of the cap: a resize needs 6.
  const size_t header = Header("rec1").size();
  const size_t fill = kMaxChunkBody - header - 2 - 2 * 5;
  ASSERT_OK_AND_ASSIGN(auto done, builder.Add(Out(0, std::string(kMaxRecordData, 'a'))));
  ASSERT_OK_AND_ASSIGN(done, builder.Add(Out(0, std::string(fill - kMaxRecordData, 'b'))));
  EXPECT_THAT(done, IsEmpty());
  ASSERT_OK_AND_ASSIGN(done, builder.Add(Resize(1, 100, 30)));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].size(), kMaxChunkBody - 2);
  ASSERT_OK_AND_ASSIGN(Chunk c, DecodeChunk(FlushOne(builder)));
  EXPECT_EQ(c.index, 1u);
  EXPECT_THAT(c.records, ElementsAre(Resize(1, 100, 30)));
}

// Text compresses: far fewer, smaller chunks than plain, each at most
// kMaxChunkBody and holding at most kMaxChunkRecords; the bytes come back.
TEST(ChunkBuilderTest, CompressesText) {
  const std::string text = Text(8 << 20, 5);
  ChunkBuilder builder("rec1");
  Built built;
  size_t stored = 0;
  auto collect = [&](const std::vector<Bytes>& done) {
    for (const Bytes& b : done) stored += b.size();
    Collect(done, &built);
  };
  for (size_t at = 0; at < text.size(); at += 4096) {
    ASSERT_OK_AND_ASSIGN(auto done,
                         builder.Add(Out(int64_t(at), std::string_view(text).substr(at, 4096))));
    collect(done);
  }
  ASSERT_OK_AND_ASSIGN(auto last, builder.Flush());
  collect(last);
  std::string got;
  for (const Record& r : AllRecords(built)) got.append(r.data.begin(), r.data.end());
  EXPECT_EQ(got, text);
  EXPECT_LT(stored, text.size() / 4);
  EXPECT_LT(built.chunks.size(), text.size() / kMaxChunkBody / 3);
  // What an encoder may use of a compressed chunk: the records' plain size.
  for (const Chunk& c : built.chunks) {
    size_t n = 0;
    for (const Record& r : c.records) n += 8 + r.data.size();
    EXPECT_LE(n, kMaxChunkRecords + 8 * c.records.size());
  }
}

// Random bytes do not compress: plain chunks, filled as without compression,
// after at most one attempt; text after them compresses again.
TEST(ChunkBuilderTest, IncompressibleDataFallsBackToPlain) {
  std::mt19937 rng(11);
  ChunkBuilder builder("rec1");
  Built built;
  std::vector<Bytes> bodies;
  auto collect = [&](const std::vector<Bytes>& done) {
    bodies.insert(bodies.end(), done.begin(), done.end());
    Collect(done, &built);
  };
  // First text (the builder aims big), then 2 MiB of random bytes, then text.
  std::string want = Text(2 << 20, 9);
  for (size_t at = 0; at < want.size(); at += 8192) {
    ASSERT_OK_AND_ASSIGN(auto d, builder.Add(Out(1, std::string_view(want).substr(at, 8192))));
    collect(d);
  }
  std::string random(2 << 20, '\0');
  for (char& c : random) c = char(rng());
  for (size_t at = 0; at < random.size(); at += 16384) {
    ASSERT_OK_AND_ASSIGN(auto d, builder.Add(Out(2, std::string_view(random).substr(at, 16384))));
    collect(d);
  }
  const std::string tail = Text(1 << 20, 10);
  for (size_t at = 0; at < tail.size(); at += 8192) {
    ASSERT_OK_AND_ASSIGN(auto d, builder.Add(Out(3, std::string_view(tail).substr(at, 8192))));
    collect(d);
  }
  ASSERT_OK_AND_ASSIGN(auto last, builder.Flush());
  collect(last);
  want += random + tail;
  std::string got;
  for (const Record& r : AllRecords(built)) got.append(r.data.begin(), r.data.end());
  EXPECT_EQ(got, want);
  int plain = 0, full_plain = 0, compressed = 0;
  for (const Bytes& b : bodies) {
    ASSERT_OK_AND_ASSIGN(ChunkHeader h, DecodeChunkHeader(b));
    if (h.encoding == ChunkEncoding::kPlain) {
      ++plain;
      if (b.size() >= kMaxChunkBody - 8) ++full_plain;
    } else {
      ++compressed;
    }
  }
  // 2 MiB of random bytes is at least 35 plain chunks, nearly all full.
  EXPECT_GE(plain, int((2 << 20) / kMaxChunkBody));
  EXPECT_GE(full_plain, plain - 3);
  EXPECT_GE(compressed, 2);
}

TEST(ChunkBuilderTest, RejectsBadRecordsAndStaysUnchanged) {
  ChunkBuilder builder("rec1");
  ASSERT_OK(builder.Add(Out(100, "a")).status());
  ASSERT_OK(builder.Flush().status());
  ASSERT_OK(builder.Add(Out(200, "b")).status());
  // Time may not go back, across chunks too.
  EXPECT_THAT(builder.Add(Out(150, "c")),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("time 150 is before the previous record's 200")));
  EXPECT_THAT(builder.Add(Out(300, "")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty data")));
  Record bad = Resize(300, 1, 1);
  bad.data = B("x");
  EXPECT_THAT(builder.Add(bad),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("a resize record carries no data")));
  ASSERT_OK_AND_ASSIGN(Chunk c, DecodeChunk(FlushOne(builder)));
  EXPECT_EQ(c.index, 1u);
  EXPECT_THAT(c.records, ElementsAre(Out(200, "b")));

  ChunkBuilder bad_id("Not-An-Id");
  EXPECT_THAT(bad_id.Add(Out(0, "x")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("session id \"Not-An-Id\"")));
}

// ---------------------------------------------------------------------------
// Session events

SessionInfo FullSession() {
  SessionInfo s;
  s.id = "0123456789abcdefghijklmnopqrstuv";
  s.recorder = "bastion";
  s.request_id = "r42";
  s.user = "alice";
  s.remote_addr = "192.0.2.7:51000";
  s.host = "bastion1";
  s.target = "db1";
  s.login = "root";
  s.approvers = {"bob", "carol"};
  s.cert_serial = std::numeric_limits<uint64_t>::max();
  s.command = "";
  s.term = "xterm-256color";
  s.cols = 200;
  s.rows = 50;
  s.start_unix_nanos = 1'700'000'000'123'456'789;
  return s;
}

SessionInfo Ended(SessionInfo s) {
  s.ended = true;
  s.end_unix_nanos = 1'700'000'100'000'000'001;
  s.exit_status = 130;
  s.exit_signal = "INT";
  s.end_reason = "closed";
  s.chunks = 12;
  s.bytes_in = 345;
  s.bytes_out = std::numeric_limits<uint64_t>::max();
  return s;
}

TEST(SessionEventTest, ExactJson) {
  SessionInfo s = Ended(FullSession());
  EXPECT_EQ(SessionStartJson(s),
            R"({"approvers":["bob","carol"],"cert_serial":18446744073709551615,"cols":200,)"
            R"("command":"","host":"bastion1","login":"root","recorder":"bastion",)"
            R"("remote_addr":"192.0.2.7:51000","request":"r42","rows":50,)"
            R"("session":"0123456789abcdefghijklmnopqrstuv","target":"db1",)"
            R"("term":"xterm-256color","time":"2023-11-14T22:13:20.123456789Z",)"
            R"("time_unix_nanos":1700000000123456789,"type":"session_start","user":"alice"})");
  EXPECT_EQ(SessionEndJson(s),
            R"({"bytes_in":345,"bytes_out":18446744073709551615,"chunks":12,)"
            R"("end_reason":"closed","exit_signal":"INT","exit_status":130,)"
            R"("session":"0123456789abcdefghijklmnopqrstuv",)"
            R"("time":"2023-11-14T22:15:00.000000001Z","time_unix_nanos":1700000100000000001,)"
            R"("type":"session_end"})");
}

TEST(SessionEventTest, RoundTrip) {
  const SessionInfo full = Ended(FullSession());
  SessionInfo s;
  ASSERT_OK(ApplySessionEvent(SessionStartJson(full), &s));
  EXPECT_EQ(s, FullSession());
  ASSERT_OK(ApplySessionEvent(SessionEndJson(full), &s));
  EXPECT_EQ(s, full);
  // The end event alone fills the id and the end fields only.
  SessionInfo end_only;
  ASSERT_OK(ApplySessionEvent(SessionEndJson(full), &end_only));
  EXPECT_EQ(end_only.id, full.id);
  EXPECT_TRUE(end_only.ended);
  EXPECT_EQ(end_only.chunks, 12u);
  EXPECT_EQ(end_only.user, "");
  // Defaults and negative numbers survive too.
  SessionInfo minimal;
  minimal.id = "x";
  minimal.start_unix_nanos = -5;
  minimal.ended = true;
  SessionInfo back;
  ASSERT_OK(ApplySessionEvent(SessionStartJson(minimal), &back));
  ASSERT_OK(ApplySessionEvent(SessionEndJson(minimal), &back));
  EXPECT_EQ(back, minimal);
  EXPECT_EQ(back.exit_status, -1);
}

TEST(SessionEventTest, HostileStrings) {
  SessionInfo s = FullSession();
  s.user = std::string("\"},\"type\":\"session_end\"\n\x1b]0;pwned\x07", 34);
  s.command = std::string("rm -rf /\0tail\r\n\t\\", 17);
  s.term = "\xe2\x80\xae\xef\xbb\xbf";  // U+202E, BOM: valid UTF-8, kept
  s.approvers = {"", std::string(70, '"'), "\x7f"};
  s.remote_addr = std::string(10000, 'a');
  const std::string json = SessionStartJson(s);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_EQ(json.find('\x1b'), std::string::npos);
  SessionInfo back;
  ASSERT_OK(ApplySessionEvent(json, &back));
  EXPECT_EQ(back, s);
  EXPECT_FALSE(back.ended);

  // Bytes that are not UTF-8 become U+FFFD; everything else stays.
  SessionInfo bad = FullSession();
  bad.user = "al\xffice\xc3";
  bad.login = "\xed\xa0\x80";  // an encoded surrogate
  const std::string bad_json = SessionStartJson(bad);
  ASSERT_TRUE(nlohmann::json::accept(bad_json));
  back = {};
  ASSERT_OK(ApplySessionEvent(bad_json, &back));
  EXPECT_EQ(back.user, "al\xef\xbf\xbdice\xef\xbf\xbd");
  EXPECT_EQ(back.login.find("\xef\xbf\xbd"), 0u);
  EXPECT_EQ(back.command, bad.command);

  SessionInfo e = Ended(FullSession());
  e.end_reason = std::string("\xff\0", 2);
  SessionInfo eback;
  ASSERT_OK(ApplySessionEvent(SessionEndJson(e), &eback));
  EXPECT_EQ(eback.end_reason, std::string("\xef\xbf\xbd\0", 4));
}

TEST(SessionEventTest, RejectsMalformedEvents) {
  const std::string start = SessionStartJson(FullSession());
  auto edit = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(start);
    if (value.is_discarded()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return j.dump();
  };
  const nlohmann::json kErase = nlohmann::json(nlohmann::json::value_t::discarded);
  struct Case {
    int line;
    std::string json;
    std::string want;
  } cases[] = {
      {__LINE__, "", "not a session event: not a JSON object"},
      {__LINE__, "[1,2]", "not a session event: not a JSON object"},
      {__LINE__, start + "x", "not a JSON object"},
      {__LINE__, "{}", "not a session event: no \"type\""},
      {__LINE__, R"({"type":7})", "no \"type\""},
      {__LINE__, R"({"type":"created","request":"r1"})", "not a session event: type \"created\""},
      {__LINE__, R"({"type":"session_start"})", "session event has no \"session\""},
      {__LINE__, edit("user", kErase), "session event has no \"user\""},
      {__LINE__, edit("user", 5), "\"user\" is not a string"},
      {__LINE__, edit("session", "ABC"), "session id \"ABC\" is not 1..32 of [0-9a-z]"},
      {__LINE__, edit("session", ""), "session id \"\" is not"},
      {__LINE__, edit("cols", "80"), "\"cols\" is not an integer in 0..65535"},
      {__LINE__, edit("cols", 65536), "\"cols\" is not an integer in 0..65535"},
      {__LINE__, edit("rows", -1), "\"rows\" is not an integer in 0..65535"},
      {__LINE__, edit("cert_serial", 1.5), "\"cert_serial\" is not an integer"},
      {__LINE__, edit("time_unix_nanos", 1e300), "\"time_unix_nanos\" is not an integer"},
      {__LINE__, edit("time_unix_nanos", uint64_t(1) << 63),
       "\"time_unix_nanos\" is not an integer"},
      {__LINE__, edit("approvers", "bob"), "\"approvers\" is not an array of strings"},
      {__LINE__, edit("approvers", nlohmann::json::array({"bob", 1})),
       "is not an array of strings"},
      {__LINE__, edit("time", nullptr), "\"time\" is not a string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(__FILE__) + ":" + std::to_string(c.line));
    SessionInfo s;
    s.user = "unchanged";
    EXPECT_THAT(ApplySessionEvent(c.json, &s),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.want)));
    EXPECT_EQ(s.user, "unchanged");
  }
  // End events check their own fields.
  nlohmann::json end = nlohmann::json::parse(SessionEndJson(Ended(FullSession())));
  end["exit_status"] = -2;
  SessionInfo s;
  EXPECT_THAT(ApplySessionEvent(end.dump(), &s),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("\"exit_status\" is not an integer in -1..")));
  end["exit_status"] = 0;
  end["chunks"] = -1;
  EXPECT_THAT(ApplySessionEvent(end.dump(), &s),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("\"chunks\" is not an integer")));
  // Unknown keys are ignored.
  end["chunks"] = 3;
  end["future_field"] = {{"x", 1}};
  ASSERT_OK(ApplySessionEvent(end.dump(), &s));
  EXPECT_EQ(s.chunks, 3u);
  // An event for another session is refused, and *s stays as it was.
  SessionInfo other;
  other.id = "other";
  EXPECT_THAT(
      ApplySessionEvent(start, &other),
      StatusIs(StatusCode::kInvalidArgument,
               HasSubstr("is for session \"0123456789abcdefghijklmnopqrstuv\", not \"other\"")));
  EXPECT_EQ(other.user, "");
}

// ---------------------------------------------------------------------------
// SessionIndex over a real store

constexpr uint8_t kAudit = uint8_t(store::EntryType::kAuditEvent);
constexpr uint8_t kChunk = uint8_t(store::EntryType::kTranscriptChunk);

class SessionIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = note::Signer::FromSeed("recorder.test.jitgate/log",
                                         crypto::Sha256(AsBytes("recorder test")));
    ASSERT_OK(signer.status());
    ASSERT_OK(DefaultEnv()->WriteFileAtomically(dir_.Join("log.key"),
                                                signer->EncodeSignerKey().span(), 0600));
    ASSERT_OK(store::CreateStore(DefaultEnv(), StoreDir(), dir_.Join("log.key")));
    OpenStore();
  }
  void TearDown() override {
    if (store_) {
      EXPECT_OK(store_->Close());
    }
  }

  void OpenStore(uint64_t segment_target_size = store::kDefaultSegmentTargetSize) {
    if (store_) {
      ASSERT_OK(store_->Close());
    }
    store::StoreOptions o;
    o.key_path = dir_.Join("log.key");
    o.timed_checkpoints = false;
    o.segment_target_size = segment_target_size;
    ASSERT_OK_AND_ASSIGN(store_, store::Store::Open(StoreDir(), o));
  }

  std::string StoreDir() const { return dir_.Join("store"); }

  // Appends without waiting, then waits for the last: the recorders' pattern.
  uint64_t Append(uint8_t type, ByteSpan body) {
    StatusOr<uint64_t> i = store_->AppendAsync(type, body);
    EXPECT_OK(i.status());
    if (!i.ok()) return 0;
    EXPECT_OK(store_->WaitDurable(*i));
    return *i;
  }
  uint64_t Audit(const std::string& json) { return Append(kAudit, AsBytes(json)); }
  uint64_t AppendChunk(const Bytes& body) { return Append(kChunk, body); }

  static SessionInfo Info(const std::string& id, const std::string& user) {
    SessionInfo s;
    s.id = id;
    s.recorder = "jitgate-rec";
    s.user = user;
    s.host = "db1";
    s.target = "db1";
    s.login = user;
    s.term = "xterm";
    s.cols = 80;
    s.rows = 24;
    s.start_unix_nanos = 1'700'000'000'000'000'000;
    return s;
  }

  // A chunk of one output record.
  static Bytes OneChunk(const std::string& session, uint64_t index, int64_t t,
                        const std::string& text) {
    recorder::Chunk c{session, index, {Out(t, text)}};
    return *EncodeChunk(c);
  }

  StatusOr<std::vector<Record>> Records(const SessionIndex& idx, const std::string& id) {
    std::vector<Record> out;
    Status st = idx.ForEachRecord(id, [&](const Record& r) {
      out.push_back(r);
      return OkStatus();
    });
    if (!st.ok()) return st;
    return out;
  }

  static std::string Text(const std::vector<Record>& records, Stream stream) {
    std::string s;
    for (const Record& r : records) {
      if (r.stream == stream) s.append(r.data.begin(), r.data.end());
    }
    return s;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

// Two sessions recorded at once, one ended and one still running, with a
// chunk resent after a (simulated) broker crash and unrelated audit events
// and annotations in between.
TEST_F(SessionIndexTest, InterleavedSessions) {
  SessionInfo a = Info("aaaa1111", "alice");
  SessionInfo b = Info("bbbb2222", "bob");
  b.start_unix_nanos += 5;
  // Plain chunks, so that the large output spans several.
  ChunkBuilder ba(a.id, false), bb(b.id, false);
  std::vector<Bytes> a_chunks, b_chunks;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(ba.Add(Out(i * 1000, "a" + std::to_string(i))).status());
    a_chunks.push_back(FlushOne(ba));
    ASSERT_OK(bb.Add(In(i * 10, "b" + std::to_string(i))).status());
    b_chunks.push_back(FlushOne(bb));
  }
  // A large output that spans several chunks.
  ASSERT_OK_AND_ASSIGN(auto spill, ba.Add(Out(5000, std::string(200'000, 'x'))));
  for (Bytes& c : spill) a_chunks.push_back(std::move(c));
  a_chunks.push_back(FlushOne(ba));
  a = Ended(a);
  a.chunks = ba.chunks();
  ASSERT_EQ(a.chunks, a_chunks.size());

  Audit(R"({"type":"created","request":"r1","comment":"session_start"})");
  Audit(SessionStartJson(a));
  Audit(SessionStartJson(b));
  AppendChunk(a_chunks[0]);
  AppendChunk(b_chunks[0]);
  Append(uint8_t(store::EntryType::kAnnotation), AsBytes(R"({"author":"x","text":"y"})"));
  AppendChunk(a_chunks[1]);
  AppendChunk(b_chunks[1]);
  AppendChunk(a_chunks[1]);    // resent: identical bytes
  Audit(SessionStartJson(b));  // resent: identical
  for (size_t i = 2; i < a_chunks.size(); ++i) AppendChunk(a_chunks[i]);
  Audit(SessionEndJson(a));
  AppendChunk(b_chunks[2]);

  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_EQ(idx->size(), store_->size());
  EXPECT_THAT(idx->problems(), IsEmpty());
  ASSERT_EQ(idx->sessions().size(), 2u);
  EXPECT_EQ(idx->sessions()[0], a);
  EXPECT_EQ(idx->sessions()[1], b);
  EXPECT_FALSE(idx->sessions()[1].ended);

  ASSERT_OK_AND_ASSIGN(std::vector<Record> ra, Records(*idx, a.id));
  EXPECT_EQ(Text(ra, Stream::kOutput), "a0a1a2" + std::string(200'000, 'x'));
  EXPECT_EQ(Text(ra, Stream::kInput), "");
  ASSERT_OK_AND_ASSIGN(std::vector<Record> rb, Records(*idx, b.id));
  EXPECT_THAT(rb, ElementsAre(In(0, "b0"), In(10, "b1"), In(20, "b2")));

  ASSERT_OK_AND_ASSIGN(SessionInfo found, idx->Find("bbbb"));
  EXPECT_EQ(found.id, b.id);
  ASSERT_OK_AND_ASSIGN(found, idx->Find(a.id));
  EXPECT_EQ(found.id, a.id);
  EXPECT_THAT(idx->Find("bbb"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("at least 4")));
  EXPECT_THAT(idx->Find("cccc"), StatusIs(StatusCode::kNotFound, HasSubstr("no session \"cccc\"")));
  EXPECT_THAT(idx->ForEachRecord("cccc", [](const Record&) { return OkStatus(); }),
              StatusIs(StatusCode::kNotFound, HasSubstr("no session")));

  // The callback's error stops the walk and comes back unchanged.
  int calls = 0;
  EXPECT_THAT(idx->ForEachRecord(a.id,
                                 [&](const Record&) {
                                   ++calls;
                                   return CancelledError("enough");
                                 }),
              StatusIs(StatusCode::kCancelled, "enough"));
  EXPECT_EQ(calls, 1);
}

TEST_F(SessionIndexTest, AmbiguousPrefix) {
  Audit(SessionStartJson(Info("abcd1", "u")));
  Audit(SessionStartJson(Info("abcd2", "u")));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_THAT(idx->Find("abcd"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("matches 2 sessions")));
  ASSERT_OK(idx->Find("abcd2").status());
}

TEST_F(SessionIndexTest, MissingChunkIsDataLoss) {
  Audit(SessionStartJson(Info("gap1", "u")));
  AppendChunk(OneChunk("gap1", 0, 0, "zero"));
  const uint64_t two = AppendChunk(OneChunk("gap1", 2, 5, "two"));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  int calls = 0;
  EXPECT_THAT(idx->ForEachRecord("gap1",
                                 [&](const Record&) {
                                   ++calls;
                                   return OkStatus();
                                 }),
              StatusIs(StatusCode::kDataLoss,
                       "session gap1: chunk 1 is missing (the next stored is chunk 2 at entry " +
                           std::to_string(two) + ")"));
  EXPECT_EQ(calls, 0);  // found before any record is delivered
}

TEST_F(SessionIndexTest, ChunkCountMustMatchSessionEnd) {
  SessionInfo s = Info("cnt1", "u");
  Audit(SessionStartJson(s));
  AppendChunk(OneChunk("cnt1", 0, 0, "zero"));
  AppendChunk(OneChunk("cnt1", 1, 1, "one"));
  s = Ended(s);
  s.chunks = 3;
  const uint64_t end = Audit(SessionEndJson(s));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_THAT(
      Records(*idx, "cnt1"),
      StatusIs(StatusCode::kDataLoss, "session cnt1: chunk 2 is missing (session_end at entry " +
                                          std::to_string(end) + " counts 3 chunks)"));

  SessionInfo t = Ended(Info("cnt2", "u"));
  t.chunks = 1;
  Audit(SessionStartJson(t));
  AppendChunk(OneChunk("cnt2", 0, 0, "zero"));
  const uint64_t t_end = Audit(SessionEndJson(t));
  const uint64_t extra = AppendChunk(OneChunk("cnt2", 1, 1, "one"));
  ASSERT_OK(idx->Refresh().status());
  EXPECT_THAT(
      Records(*idx, "cnt2"),
      StatusIs(StatusCode::kDataLoss, "session cnt2: chunk 1 at entry " + std::to_string(extra) +
                                          " is beyond session_end's count of 1 (entry " +
                                          std::to_string(t_end) + ")"));
}

TEST_F(SessionIndexTest, ConflictingDuplicateIsDataLoss) {
  Audit(SessionStartJson(Info("dup1", "u")));
  AppendChunk(OneChunk("dup1", 0, 0, "zero"));
  const uint64_t first = AppendChunk(OneChunk("dup1", 1, 1, "one"));
  AppendChunk(OneChunk("dup1", 1, 1, "one"));  // a faithful resend
  const uint64_t forged = AppendChunk(OneChunk("dup1", 1, 1, "0ne"));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_THAT(Records(*idx, "dup1"),
              StatusIs(StatusCode::kDataLoss,
                       "session dup1: chunk 1 at entry " + std::to_string(forged) +
                           " differs from chunk 1 at entry " + std::to_string(first)));
}

TEST_F(SessionIndexTest, UndecodableChunkIsDataLoss) {
  Audit(SessionStartJson(Info("bad1", "u")));
  AppendChunk(OneChunk("bad1", 0, 0, "zero"));
  const uint64_t bad = AppendChunk(Cat(Header("bad1", 1, 7), {0x02, 0x00, 0x00}));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  std::vector<Record> seen;
  EXPECT_THAT(
      idx->ForEachRecord("bad1",
                         [&](const Record& r) {
                           seen.push_back(r);
                           return OkStatus();
                         }),
      StatusIs(StatusCode::kDataLoss, "session bad1: chunk 1 at entry " + std::to_string(bad) +
                                          ": chunk offset 27: empty data record"));
  EXPECT_THAT(seen, ElementsAre(Out(0, "zero")));  // the records before it
}

TEST_F(SessionIndexTest, TimeGoingBackAcrossChunksIsDataLoss) {
  Audit(SessionStartJson(Info("time1", "u")));
  AppendChunk(OneChunk("time1", 0, 100, "zero"));
  const uint64_t back = AppendChunk(OneChunk("time1", 1, 50, "one"));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_THAT(Records(*idx, "time1"),
              StatusIs(StatusCode::kDataLoss,
                       "session time1: chunk 1 at entry " + std::to_string(back) +
                           " starts at 50 ns, before the previous chunk's last record at 100 ns"));
}

TEST_F(SessionIndexTest, InconsistentSessionEvents) {
  SessionInfo s = Info("ev1", "alice");
  const uint64_t first = Audit(SessionStartJson(s));
  s.user = "mallory";
  const uint64_t second = Audit(SessionStartJson(s));
  SessionInfo e = Ended(Info("ev2", "u"));
  e.chunks = 0;
  const uint64_t end_only = Audit(SessionEndJson(e));
  SessionInfo twice = Ended(Info("ev3", "u"));
  twice.chunks = 0;
  Audit(SessionStartJson(twice));
  const uint64_t end1 = Audit(SessionEndJson(twice));
  twice.exit_status = 0;
  const uint64_t end2 = Audit(SessionEndJson(twice));
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  ASSERT_EQ(idx->sessions().size(), 3u);
  EXPECT_EQ(idx->sessions()[0].user, "alice");  // the first one is kept
  EXPECT_THAT(Records(*idx, "ev1"),
              StatusIs(StatusCode::kDataLoss,
                       "session ev1: session_start at entry " + std::to_string(second) +
                           " differs from the one at entry " + std::to_string(first)));
  EXPECT_TRUE(idx->sessions()[1].ended);
  EXPECT_THAT(
      Records(*idx, "ev2"),
      StatusIs(StatusCode::kDataLoss, "session ev2: session_end at entry " +
                                          std::to_string(end_only) + " but no session_start"));
  EXPECT_THAT(Records(*idx, "ev3"),
              StatusIs(StatusCode::kDataLoss,
                       "session ev3: session_end at entry " + std::to_string(end2) +
                           " differs from the one at entry " + std::to_string(end1)));
}

TEST_F(SessionIndexTest, ProblemsNameTheEntry) {
  const uint64_t bad_event = Audit(R"({"type":"session_start","session":"x1"})");
  const uint64_t bad_header = AppendChunk(B("JGT1"));
  const uint64_t orphan = AppendChunk(OneChunk("orphan", 0, 0, "who?"));
  Audit(R"({"type":"vote","comment":"session_end"})");  // not a session event
  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  EXPECT_THAT(idx->sessions(), IsEmpty());
  EXPECT_THAT(idx->problems(),
              ElementsAre("entry " + std::to_string(bad_event) +
                              ": malformed session event: session event has no \"time\"",
                          "entry " + std::to_string(bad_header) +
                              ": transcript chunk: chunk offset 4: truncated in session id length",
                          "session orphan: 1 chunk entries (first entry " + std::to_string(orphan) +
                              ") but no session_start"));
  // Chunks without a session_start can still be read.
  ASSERT_OK_AND_ASSIGN(std::vector<Record> r, Records(*idx, "orphan"));
  EXPECT_THAT(r, ElementsAre(Out(0, "who?")));
}

// Refresh reads only what was appended, across segment rotations, while the
// writer keeps the store open.
TEST_F(SessionIndexTest, RefreshSeesAppendedEntries) {
  OpenStore(/*segment_target_size=*/100'000);
  SessionInfo s = Info("live1", "alice");
  // Reported once however often the index is refreshed: entries are read once.
  const uint64_t junk = AppendChunk(B("JGT1"));
  const std::string junk_problem =
      "entry " + std::to_string(junk) +
      ": transcript chunk: chunk offset 4: truncated in session id length";
  Audit(SessionStartJson(s));
  ChunkBuilder builder(s.id, /*compress=*/false);  // plain: the data fills segments
  ASSERT_OK(builder.Add(Out(0, "first")).status());
  AppendChunk(FlushOne(builder));

  ASSERT_OK_AND_ASSIGN(auto idx, SessionIndex::Open(StoreDir()));
  ASSERT_EQ(idx->sessions().size(), 1u);
  EXPECT_FALSE(idx->sessions()[0].ended);
  ASSERT_OK_AND_ASSIGN(std::vector<Record> r, Records(*idx, s.id));
  EXPECT_EQ(Text(r, Stream::kOutput), "first");
  ASSERT_OK_AND_ASSIGN(uint64_t n, idx->Refresh());
  EXPECT_EQ(n, 0u);

  // About 600 KB more: several segments of 100 KB.
  std::string more;
  uint64_t appended = 0;
  for (int i = 0; i < 40; ++i) {
    std::string piece(15'000, char('a' + i % 26));
    more += piece;
    ASSERT_OK_AND_ASSIGN(auto done, builder.Add(Out(1000 + i, piece)));
    for (const Bytes& c : done) {
      AppendChunk(c);
      ++appended;
    }
    if (i % 7 == 0) {
      Audit(R"({"type":"vote","request":"r1"})");
      ++appended;
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Bytes> tail, builder.Flush());
  for (const Bytes& last : tail) {
    AppendChunk(last);
    ++appended;
  }
  ASSERT_OK(store_->PublishCheckpoint());
  ASSERT_OK_AND_ASSIGN(n, idx->Refresh());
  EXPECT_EQ(n, appended);
  EXPECT_EQ(idx->size(), store_->size());
  ASSERT_OK_AND_ASSIGN(r, Records(*idx, s.id));
  EXPECT_EQ(Text(r, Stream::kOutput), "first" + more);

  s = Ended(s);
  s.chunks = builder.chunks();
  Audit(SessionEndJson(s));
  ASSERT_OK_AND_ASSIGN(n, idx->Refresh());
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(idx->sessions()[0], s);
  ASSERT_OK(Records(*idx, s.id).status());
  EXPECT_THAT(idx->problems(), ElementsAre(junk_problem));

  // A fresh index agrees with the refreshed one.
  ASSERT_OK_AND_ASSIGN(auto fresh, SessionIndex::Open(StoreDir()));
  EXPECT_EQ(fresh->sessions(), idx->sessions());
  ASSERT_OK_AND_ASSIGN(auto r2, Records(*fresh, s.id));
  EXPECT_EQ(r2, *Records(*idx, s.id));
  ASSERT_OK_AND_ASSIGN(auto segs, DefaultEnv()->ListDir(JoinPath(StoreDir(), "seg")));
  EXPECT_GE(segs.size(), 4u);
}

// A damaged sealed segment: a chunk already indexed no longer reads back,
// and a fresh index reports the segment, renumbers entries from the next
// segment's header as the writer does, and sees the lost chunks as missing.
TEST_F(SessionIndexTest, DamagedSealedSegment) {
  OpenStore(/*segment_target_size=*/100'000);
  Audit(SessionStartJson(Info("seal1", "u")));
  ChunkBuilder builder("seal1", /*compress=*/false);  // plain: the data fills segments
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK(builder.Add(Out(i, std::string(50'000, char('a' + i)))).status());
    AppendChunk(FlushOne(builder));
  }
  Audit(R"({"type":"vote","request":"r1"})");  // so the last segment has a checkpoint
  ASSERT_OK_AND_ASSIGN(auto before, SessionIndex::Open(StoreDir()));
  ASSERT_OK(store_->Close());
  store_.reset();

  const std::string seg = JoinPath(StoreDir(), "seg/0000000002.seg");
  ASSERT_OK(::jitgate::testing::ClearImmutable(seg));
  ASSERT_OK_AND_ASSIGN(std::string bytes, DefaultEnv()->ReadFileToString(seg));
  ASSERT_GT(bytes.size(), 60'000u);
  bytes[bytes.size() / 2] ^= 0x20;
  {
    FILE* f = fopen(seg.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    ASSERT_EQ(fclose(f), 0);
  }

  EXPECT_THAT(
      Records(*before, "seal1"),
      StatusIs(StatusCode::kDataLoss, HasSubstr("no longer reads back: checksum mismatch")));

  ASSERT_OK_AND_ASSIGN(auto after, SessionIndex::Open(StoreDir()));
  const std::vector<std::string> problems = after->problems();
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_THAT(problems[0], ::testing::StartsWith("segment 0000000002 offset "));
  EXPECT_THAT(problems[0], HasSubstr(": checksum mismatch; the rest of the segment is unreadable"));
  EXPECT_THAT(problems[1], ::testing::StartsWith("segment 0000000003 offset 0: header says the "
                                                 "segment starts at entry "));
  EXPECT_EQ(after->size(), before->size());
  EXPECT_THAT(Records(*after, "seal1"), StatusIs(StatusCode::kDataLoss, HasSubstr("is missing")));
}

TEST(SessionIndexOpenTest, NotAStore) {
  TempDir dir;
  EXPECT_THAT(SessionIndex::Open(dir.path()),
              StatusIs(StatusCode::kNotFound, HasSubstr("is not a jitgate store")));
}

}  // namespace
}  // namespace jitgate::recorder
