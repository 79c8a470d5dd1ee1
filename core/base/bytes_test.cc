#include "core/base/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace jitgate {
namespace {

using namespace std::string_literals;

TEST(ByteReaderTest, ReadsBigEndianIntegers) {
  const std::string in =
      "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"s;
  ByteReader r(in);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  ASSERT_TRUE(r.GetU8(&u8));
  ASSERT_TRUE(r.GetU16(&u16));
  ASSERT_TRUE(r.GetU32(&u32));
  ASSERT_TRUE(r.GetU64(&u64));
  EXPECT_EQ(u8, 0x01);
  EXPECT_EQ(u16, 0x0203);
  EXPECT_EQ(u32, 0x04050607u);
  EXPECT_EQ(u64, 0x08090a0b0c0d0e0fULL);
  EXPECT_TRUE(r.Empty());
}

TEST(ByteReaderTest, ReadsLittleEndianU32) {
  const std::string r_in = "\x01\x02\x03\x04"s;
  ByteReader r(r_in);
  uint32_t v;
  ASSERT_TRUE(r.GetU32LE(&v));
  EXPECT_EQ(v, 0x04030201u);
}

// Every getter must fail without consuming anything when the input is short.
TEST(ByteReaderTest, ShortInputFailsAndConsumesNothing) {
  const std::string in = "\x01\x02\x03"s;
  ByteReader r(in);
  uint32_t u32;
  uint64_t u64;
  ByteSpan span;
  uint8_t buf[4];
  EXPECT_FALSE(r.GetU32(&u32));
  EXPECT_FALSE(r.GetU32LE(&u32));
  EXPECT_FALSE(r.GetU64(&u64));
  EXPECT_FALSE(r.GetBytes(4, &span));
  EXPECT_FALSE(r.CopyBytes(buf));
  EXPECT_FALSE(r.Skip(4));
  EXPECT_EQ(r.remaining(), 3u);
  uint16_t u16;
  ASSERT_TRUE(r.GetU16(&u16));
  EXPECT_FALSE(r.GetU16(&u16));
  EXPECT_EQ(r.remaining(), 1u);

  ByteReader empty;
  uint8_t u8;
  EXPECT_FALSE(empty.GetU8(&u8));
  EXPECT_TRUE(empty.Empty());
}

TEST(ByteReaderTest, GetBytesIsAViewAndSkipAdvances) {
  const std::string in = "abcdef";
  ByteReader r(in);
  ByteSpan span;
  ASSERT_TRUE(r.GetBytes(2, &span));
  EXPECT_EQ(AsChars(span), "ab");
  EXPECT_EQ(static_cast<const void*>(span.data()),
            static_cast<const void*>(in.data()));
  ASSERT_TRUE(r.Skip(1));
  uint8_t out[2];
  ASSERT_TRUE(r.CopyBytes(out));
  EXPECT_EQ(out[0], 'd');
  EXPECT_EQ(out[1], 'e');
  EXPECT_EQ(AsChars(r.Rest()), "f");
  ASSERT_TRUE(r.GetBytes(0, &span));
  EXPECT_TRUE(span.empty());
}

TEST(ByteReaderTest, U32PrefixedHappyPath) {
  const std::string r_in =
      "\x00\x00\x00\x03"
      "abc"
      "X"s;
  ByteReader r(r_in);
  ByteSpan s;
  ASSERT_TRUE(r.GetU32Prefixed(&s));
  EXPECT_EQ(AsChars(s), "abc");
  EXPECT_EQ(AsChars(r.Rest()), "X");
}

TEST(ByteReaderTest, U32PrefixedLengthBeyondInputFails) {
  const std::string in =
      "\x00\x00\x00\x04"
      "abc"s;
  ByteReader r(in);
  ByteSpan s;
  EXPECT_FALSE(r.GetU32Prefixed(&s));
  EXPECT_EQ(r.remaining(), in.size());
}

// A hostile length near 2^32 must be rejected by the cap before any
// arithmetic or allocation trusts it.
TEST(ByteReaderTest, U32PrefixedHugeLengthFails) {
  const std::string in =
      "\xff\xff\xff\xff"
      "abc"s;
  ByteReader r(in);
  ByteSpan s;
  EXPECT_FALSE(r.GetU32Prefixed(&s, std::numeric_limits<size_t>::max()));
  std::string str;
  EXPECT_FALSE(r.GetU32PrefixedString(&str));
  EXPECT_EQ(r.remaining(), in.size());
}

TEST(ByteReaderTest, U32PrefixedCapIsInclusive) {
  const std::string in =
      "\x00\x00\x00\x03"
      "abc"s;
  ByteSpan s;
  {
    ByteReader r(in);
    EXPECT_FALSE(r.GetU32Prefixed(&s, 2));
    EXPECT_EQ(r.remaining(), in.size());
  }
  {
    ByteReader r(in);
    ASSERT_TRUE(r.GetU32Prefixed(&s, 3));
    EXPECT_EQ(AsChars(s), "abc");
  }
}

TEST(ByteReaderTest, DefaultCapIs16MiB) {
  EXPECT_EQ(ByteReader::kDefaultMaxLen, size_t{16} << 20);
  // Claims 16 MiB + 1: over the cap even though we cannot supply the bytes;
  // the cap check must not depend on the input being long enough.
  const std::string r_in = "\x01\x00\x00\x01"s;
  ByteReader r(r_in);
  ByteSpan s;
  EXPECT_FALSE(r.GetU32Prefixed(&s));
}

TEST(ByteReaderTest, U16AndU8Prefixed) {
  const std::string r_in =
      "\x00\x02"
      "ab"
      "\x01"
      "c"s;
  ByteReader r(r_in);
  ByteSpan s;
  ASSERT_TRUE(r.GetU16Prefixed(&s));
  EXPECT_EQ(AsChars(s), "ab");
  ASSERT_TRUE(r.GetU8Prefixed(&s));
  EXPECT_EQ(AsChars(s), "c");
  EXPECT_TRUE(r.Empty());

  const std::string short16_in =
      "\x00\x03"
      "ab"s;
  ByteReader short16(short16_in);
  EXPECT_FALSE(short16.GetU16Prefixed(&s));
  EXPECT_EQ(short16.remaining(), 4u);
  const std::string short8_in =
      "\x02"
      "a"s;
  ByteReader short8(short8_in);
  EXPECT_FALSE(short8.GetU8Prefixed(&s));
  EXPECT_EQ(short8.remaining(), 2u);
}

TEST(ByteReaderTest, StringRejectsEmbeddedNul) {
  const std::string in =
      "\x00\x00\x00\x03"
      "a\0b"s;
  ByteReader r(in);
  std::string out = "unchanged";
  EXPECT_FALSE(r.GetU32PrefixedString(&out));
  EXPECT_EQ(out, "unchanged");
  EXPECT_EQ(r.remaining(), in.size());  // Nothing consumed.
}

TEST(ByteReaderTest, StringRejectsTrailingNul) {
  const std::string r_in =
      "\x00\x00\x00\x02"
      "a\0"s;
  ByteReader r(r_in);
  std::string out;
  EXPECT_FALSE(r.GetU32PrefixedString(&out));
}

TEST(ByteReaderTest, StringAcceptsEmptyAndPlain) {
  const std::string r_in =
      "\x00\x00\x00\x00"
      "\x00\x00\x00\x02"
      "hi"s;
  ByteReader r(r_in);
  std::string a, b;
  ASSERT_TRUE(r.GetU32PrefixedString(&a));
  ASSERT_TRUE(r.GetU32PrefixedString(&b));
  EXPECT_EQ(a, "");
  EXPECT_EQ(b, "hi");
  EXPECT_TRUE(r.Empty());
}

TEST(ByteReaderTest, NestedReaderRequiresFullConsumption) {
  const std::string r_in =
      "\x00\x00\x00\x05"
      "\x00\x00\x00\x01"
      "x"
      "tail"s;
  ByteReader r(r_in);
  ByteReader sub;
  ASSERT_TRUE(r.GetU32PrefixedReader(&sub));
  ByteSpan inner;
  ASSERT_TRUE(sub.GetU32Prefixed(&inner));
  EXPECT_EQ(AsChars(inner), "x");
  EXPECT_TRUE(sub.Empty());
  // The outer reader still has trailing bytes: a caller that requires full
  // consumption must reject this message.
  EXPECT_FALSE(r.Empty());
  EXPECT_EQ(AsChars(r.Rest()), "tail");

  const std::string bad_in =
      "\x00\x00\x00\x09"
      "abc"s;
  ByteReader bad(bad_in);
  EXPECT_FALSE(bad.GetU32PrefixedReader(&sub));
}

TEST(ByteWriterTest, RoundTripsThroughReader) {
  ByteWriter w;
  w.PutU8(0xab);
  w.PutU16(0x1234);
  w.PutU32(0xdeadbeef);
  w.PutU64(0x0102030405060708ULL);
  w.PutU32LE(0x11223344);
  w.PutU32Prefixed(std::string_view("hello"));
  w.PutU16Prefixed(AsBytes("xy"));
  w.PutU8Prefixed(AsBytes("z"));
  w.PutBytes(std::string_view("raw"));

  ByteReader r(w.span());
  uint8_t u8;
  uint16_t u16;
  uint32_t u32, le;
  uint64_t u64;
  std::string s;
  ByteSpan b16, b8, raw;
  ASSERT_TRUE(r.GetU8(&u8));
  ASSERT_TRUE(r.GetU16(&u16));
  ASSERT_TRUE(r.GetU32(&u32));
  ASSERT_TRUE(r.GetU64(&u64));
  ASSERT_TRUE(r.GetU32LE(&le));
  ASSERT_TRUE(r.GetU32PrefixedString(&s));
  ASSERT_TRUE(r.GetU16Prefixed(&b16));
  ASSERT_TRUE(r.GetU8Prefixed(&b8));
  ASSERT_TRUE(r.GetBytes(3, &raw));
  EXPECT_TRUE(r.Empty());
  EXPECT_EQ(u8, 0xab);
  EXPECT_EQ(u16, 0x1234);
  EXPECT_EQ(u32, 0xdeadbeefu);
  EXPECT_EQ(u64, 0x0102030405060708ULL);
  EXPECT_EQ(le, 0x11223344u);
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(AsChars(b16), "xy");
  EXPECT_EQ(AsChars(b8), "z");
  EXPECT_EQ(AsChars(raw), "raw");
}

TEST(ByteWriterTest, ExactEncoding) {
  ByteWriter w;
  w.PutU32Prefixed(std::string_view("ab"));
  w.PutU32LE(1);
  EXPECT_EQ(HexEncode(w.span()),
            "000000026162"
            "01000000");
}

TEST(ByteWriterTest, PatchU32InBoundsOnly) {
  ByteWriter w;
  w.PutU32(0);
  w.PutU8(0xff);
  w.PatchU32(0, 0x01020304);
  EXPECT_EQ(HexEncode(w.span()), "01020304ff");
  w.PatchU32(1, 0xaabbccdd);
  EXPECT_EQ(HexEncode(w.span()), "01aabbccdd");
  w.PatchU32(2, 0);  // Would run past the end: ignored.
  EXPECT_EQ(HexEncode(w.span()), "01aabbccdd");
  // Regression: offset + 4 used to wrap around and pass the bounds check.
  w.PatchU32(std::numeric_limits<size_t>::max() - 1, 0);
  EXPECT_EQ(HexEncode(w.span()), "01aabbccdd");
}

TEST(ByteWriterTest, ReleaseMovesBuffer) {
  ByteWriter w(16);
  w.PutBytes(std::string_view("abc"));
  Bytes b = w.Release();
  EXPECT_EQ(b, (Bytes{'a', 'b', 'c'}));
}

TEST(EndianHelpersTest, StoreAndLoad) {
  uint8_t buf[8];
  StoreU32BE(buf, 0x89abcdef);
  EXPECT_EQ(buf[0], 0x89);
  EXPECT_EQ(buf[3], 0xef);
  EXPECT_EQ(LoadU32BE(buf), 0x89abcdefu);
  StoreU64BE(buf, 0xfedcba9876543210ULL);
  EXPECT_EQ(buf[0], 0xfe);
  EXPECT_EQ(buf[7], 0x10);
  EXPECT_EQ(LoadU64BE(buf), 0xfedcba9876543210ULL);
}

TEST(HexTest, EncodeLowerCase) {
  EXPECT_EQ(HexEncode(AsBytes("")), "");
  EXPECT_EQ(HexEncode(AsBytes("\x00\x01\xab\xff"s)), "0001abff");
}

TEST(HexTest, DecodeAcceptsBothCases) {
  Bytes out;
  ASSERT_TRUE(HexDecode("00ABcdEf", &out));
  EXPECT_EQ(out, (Bytes{0x00, 0xab, 0xcd, 0xef}));
  ASSERT_TRUE(HexDecode("", &out));
  EXPECT_TRUE(out.empty());
}

TEST(HexTest, DecodeRejectsBadInputAndLeavesOutput) {
  Bytes out{9};
  EXPECT_FALSE(HexDecode("abc", &out));  // Odd length.
  EXPECT_FALSE(HexDecode("0g", &out));   // Not a hex digit.
  EXPECT_FALSE(HexDecode("0 ", &out));
  EXPECT_FALSE(HexDecode("-1", &out));
  EXPECT_FALSE(
      HexDecode("\x00"
                "0"s,
                &out));
  EXPECT_EQ(out, Bytes{9});
}

TEST(HexTest, RoundTripAllBytes) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  Bytes back;
  ASSERT_TRUE(HexDecode(HexEncode(all), &back));
  EXPECT_EQ(back, all);
}

}  // namespace
}  // namespace jitgate
