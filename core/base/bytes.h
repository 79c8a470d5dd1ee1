// ByteReader and ByteWriter: the one way jitgate reads and writes binary
// formats (store records, wire messages, OpenSSH structures).
//
// ByteReader is a non-owning cursor over untrusted bytes, in the spirit of
// BoringSSL's CBS and OpenSSH's sshbuf: every getter checks bounds first and
// returns false (consuming nothing) when the input is too short, lengths are
// capped before anything is allocated, and callers finish with Empty() to
// require full consumption. All integers are big-endian unless the name says
// otherwise. ByteReader never allocates except in GetString/GetBytesCopy.
#ifndef JITGATE_CORE_BASE_BYTES_H_
#define JITGATE_CORE_BASE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace jitgate {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

class ByteReader {
 public:
  ByteReader() = default;
  explicit ByteReader(ByteSpan data) : data_(data) {}
  explicit ByteReader(std::string_view data) : data_(AsBytes(data)) {}
  // A reader over a temporary string would dangle at the end of the statement.
  explicit ByteReader(std::string&&) = delete;

  size_t remaining() const { return data_.size(); }
  bool Empty() const { return data_.empty(); }
  // The unread bytes. Valid while the underlying buffer lives.
  ByteSpan Rest() const { return data_; }

  [[nodiscard]] bool GetU8(uint8_t* out);
  [[nodiscard]] bool GetU16(uint16_t* out);
  [[nodiscard]] bool GetU32(uint32_t* out);
  [[nodiscard]] bool GetU64(uint64_t* out);
  [[nodiscard]] bool GetU32LE(uint32_t* out);
  // Takes exactly n bytes as a view into the input.
  [[nodiscard]] bool GetBytes(size_t n, ByteSpan* out);
  // Copies exactly out.size() bytes.
  [[nodiscard]] bool CopyBytes(std::span<uint8_t> out);
  [[nodiscard]] bool Skip(size_t n);
  // u32 length, then that many bytes (SSH "string"). Fails if the length
  // exceeds max_len or the remaining input.
  [[nodiscard]] bool GetU32Prefixed(ByteSpan* out, size_t max_len = kDefaultMaxLen);
  [[nodiscard]] bool GetU16Prefixed(ByteSpan* out);
  [[nodiscard]] bool GetU8Prefixed(ByteSpan* out);
  // Like GetU32Prefixed but also rejects embedded NUL bytes (sshbuf_get_cstring).
  [[nodiscard]] bool GetU32PrefixedString(std::string* out, size_t max_len = kDefaultMaxLen);
  // Reads the nested u32-prefixed structure into *sub.
  [[nodiscard]] bool GetU32PrefixedReader(ByteReader* sub, size_t max_len = kDefaultMaxLen);

  // Caps any single length-prefixed field at 16 MiB by default.
  static constexpr size_t kDefaultMaxLen = 16u << 20;

 private:
  ByteSpan data_;
};

// ByteWriter appends big-endian fields to an owned buffer.
class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(size_t reserve) { buf_.reserve(reserve); }

  void PutU8(uint8_t v) { buf_.push_back(v); }
  void PutU16(uint16_t v);
  void PutU32(uint32_t v);
  void PutU64(uint64_t v);
  void PutU32LE(uint32_t v);
  void PutBytes(ByteSpan b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void PutBytes(std::string_view s) { PutBytes(AsBytes(s)); }
  void PutU32Prefixed(ByteSpan b);
  void PutU32Prefixed(std::string_view s) { PutU32Prefixed(AsBytes(s)); }
  // Precondition: b.size() <= 0xffff.
  void PutU16Prefixed(ByteSpan b);
  // Precondition: b.size() <= 0xff.
  void PutU8Prefixed(ByteSpan b);
  // Overwrites 4 bytes at offset (for lengths known only later).
  void PatchU32(size_t offset, uint32_t v);

  size_t size() const { return buf_.size(); }
  const Bytes& data() const { return buf_; }
  Bytes Release() { return std::move(buf_); }
  ByteSpan span() const { return ByteSpan(buf_); }

 private:
  Bytes buf_;
};

// Big-endian helpers for fixed buffers.
inline void StoreU32BE(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
}
inline uint32_t LoadU32BE(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline void StoreU64BE(uint8_t* p, uint64_t v) {
  StoreU32BE(p, uint32_t(v >> 32)); StoreU32BE(p + 4, uint32_t(v));
}
inline uint64_t LoadU64BE(const uint8_t* p) {
  return (uint64_t(LoadU32BE(p)) << 32) | LoadU32BE(p + 4);
}

// Lower-case hex of the bytes.
std::string HexEncode(ByteSpan b);
// Strict hex decode (even length, [0-9a-fA-F]); false on bad input.
[[nodiscard]] bool HexDecode(std::string_view hex, Bytes* out);

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_BYTES_H_
