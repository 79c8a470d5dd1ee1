#include "core/base/bytes.h"

#include <cstring>

namespace jitgate {

bool ByteReader::GetU8(uint8_t* out) {
  if (data_.size() < 1) return false;
  *out = data_[0];
  data_ = data_.subspan(1);
  return true;
}

bool ByteReader::GetU16(uint16_t* out) {
  if (data_.size() < 2) return false;
  *out = uint16_t((uint16_t(data_[0]) << 8) | data_[1]);
  data_ = data_.subspan(2);
  return true;
}

bool ByteReader::GetU32(uint32_t* out) {
  if (data_.size() < 4) return false;
  *out = LoadU32BE(data_.data());
  data_ = data_.subspan(4);
  return true;
}

bool ByteReader::GetU64(uint64_t* out) {
  if (data_.size() < 8) return false;
  *out = LoadU64BE(data_.data());
  data_ = data_.subspan(8);
  return true;
}

bool ByteReader::GetU32LE(uint32_t* out) {
  if (data_.size() < 4) return false;
  *out = uint32_t(data_[0]) | (uint32_t(data_[1]) << 8) | (uint32_t(data_[2]) << 16) |
         (uint32_t(data_[3]) << 24);
  data_ = data_.subspan(4);
  return true;
}

bool ByteReader::GetBytes(size_t n, ByteSpan* out) {
  if (data_.size() < n) return false;
  *out = data_.first(n);
  data_ = data_.subspan(n);
  return true;
}

bool ByteReader::CopyBytes(std::span<uint8_t> out) {
  if (data_.size() < out.size()) return false;
  if (!out.empty()) std::memcpy(out.data(), data_.data(), out.size());
  data_ = data_.subspan(out.size());
  return true;
}

bool ByteReader::Skip(size_t n) {
  if (data_.size() < n) return false;
  data_ = data_.subspan(n);
  return true;
}

bool ByteReader::GetU32Prefixed(ByteSpan* out, size_t max_len) {
  if (data_.size() < 4) return false;
  uint32_t len = LoadU32BE(data_.data());
  // Check the cap and the remaining input before trusting the length.
  if (len > max_len || data_.size() - 4 < len) return false;
  *out = data_.subspan(4, len);
  data_ = data_.subspan(4 + size_t(len));
  return true;
}

bool ByteReader::GetU16Prefixed(ByteSpan* out) {
  if (data_.size() < 2) return false;
  size_t len = (size_t(data_[0]) << 8) | data_[1];
  if (data_.size() - 2 < len) return false;
  *out = data_.subspan(2, len);
  data_ = data_.subspan(2 + len);
  return true;
}

bool ByteReader::GetU8Prefixed(ByteSpan* out) {
  if (data_.size() < 1) return false;
  size_t len = data_[0];
  if (data_.size() - 1 < len) return false;
  *out = data_.subspan(1, len);
  data_ = data_.subspan(1 + len);
  return true;
}

bool ByteReader::GetU32PrefixedString(std::string* out, size_t max_len) {
  ByteReader saved = *this;
  ByteSpan b;
  if (!GetU32Prefixed(&b, max_len)) return false;
  if (std::memchr(b.data(), 0, b.size()) != nullptr) {
    *this = saved;
    return false;
  }
  out->assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

bool ByteReader::GetU32PrefixedReader(ByteReader* sub, size_t max_len) {
  ByteSpan b;
  if (!GetU32Prefixed(&b, max_len)) return false;
  *sub = ByteReader(b);
  return true;
}

void ByteWriter::PutU16(uint16_t v) {
  buf_.push_back(uint8_t(v >> 8));
  buf_.push_back(uint8_t(v));
}

void ByteWriter::PutU32(uint32_t v) {
  uint8_t b[4];
  StoreU32BE(b, v);
  buf_.insert(buf_.end(), b, b + 4);
}

void ByteWriter::PutU64(uint64_t v) {
  uint8_t b[8];
  StoreU64BE(b, v);
  buf_.insert(buf_.end(), b, b + 8);
}

void ByteWriter::PutU32LE(uint32_t v) {
  for (int i = 0; i < 4; ++i) buf_.push_back(uint8_t(v >> (8 * i)));
}

void ByteWriter::PutU32Prefixed(ByteSpan b) {
  PutU32(uint32_t(b.size()));
  PutBytes(b);
}

void ByteWriter::PutU16Prefixed(ByteSpan b) {
  PutU16(uint16_t(b.size()));
  PutBytes(b);
}

void ByteWriter::PutU8Prefixed(ByteSpan b) {
  PutU8(uint8_t(b.size()));
  PutBytes(b);
}

void ByteWriter::PatchU32(size_t offset, uint32_t v) {
  // Written so that a huge offset cannot wrap around the bounds check.
  if (offset <= buf_.size() && buf_.size() - offset >= 4) StoreU32BE(buf_.data() + offset, v);
}

std::string HexEncode(ByteSpan b) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(b.size() * 2);
  for (size_t i = 0; i < b.size(); ++i) {
    out[2 * i] = kDigits[b[i] >> 4];
    out[2 * i + 1] = kDigits[b[i] & 15];
  }
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool HexDecode(std::string_view hex, Bytes* out) {
  if (hex.size() % 2 != 0) return false;
  Bytes b(hex.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    b[i] = uint8_t(hi << 4 | lo);
  }
  *out = std::move(b);
  return true;
}

}  // namespace jitgate
