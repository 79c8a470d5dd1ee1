// Fuzz target for the store's record reader: the segment scanner over an
// arbitrary file, and the parsers of what records carry (entries, segment
// headers) and of the STORE identity file. Properties: no crash; a scanner
// never reports more valid bytes than it was given; every record it returns
// re-encodes byte-identically; parsed headers, entries and identities
// re-encode to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/base/env.h"
#include "store/format.h"
#include "store/scanner.h"

namespace {

// A RandomAccessFile over the fuzz input.
class MemFile : public jitgate::RandomAccessFile {
 public:
  MemFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  jitgate::StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset >= size_) return size_t(0);
    size_t n = std::min<uint64_t>(out.size(), size_ - offset);
    std::memcpy(out.data(), data_ + offset, n);
    return n;
  }
  jitgate::StatusOr<uint64_t> Size() const override { return uint64_t(size_); }

 private:
  const uint8_t* data_;
  size_t size_;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jitgate;
  using namespace jitgate::store;
  MemFile file(data, size);
  // A small buffer exercises refills and records spanning buffer boundaries.
  SegmentScanner scanner(&file, size, 4096);
  ScannedRecord rec;
  uint64_t expect_offset = 0;
  while (true) {
    auto got = scanner.Next(&rec);
    Check(got.ok());
    if (!*got) break;
    Check(rec.offset == expect_offset);
    expect_offset += rec.size;
    Check(expect_offset <= size);
    Bytes again;
    AppendRecord(rec.type, rec.payload, &again);
    Check(again.size() == rec.size && std::memcmp(again.data(), data + rec.offset, rec.size) == 0);
    if (rec.type == RecordType::kEntry) {
      auto e = ParseEntry(rec.payload);
      if (e.ok()) {
        auto enc = EncodeEntry(e->type, e->time_unix_nanos, e->body);
        Check(enc.ok() && *enc == Bytes(rec.payload.begin(), rec.payload.end()));
      }
    } else if (rec.type == RecordType::kHeader) {
      auto h = ParseSegmentHeader(rec.payload);
      if (h.ok()) Check(EncodeSegmentHeader(*h) == Bytes(rec.payload.begin(), rec.payload.end()));
    }
  }
  Check(scanner.valid_length() == expect_offset);
  Check(scanner.end() != SegmentEnd::kClean || scanner.valid_length() == size);

  // The whole input as an entry, a header payload and a STORE file.
  ByteSpan all(data, size);
  if (auto e = ParseEntry(all); e.ok()) {
    auto enc = EncodeEntry(e->type, e->time_unix_nanos, e->body);
    Check(enc.ok() && *enc == Bytes(all.begin(), all.end()));
  }
  if (auto h = ParseSegmentHeader(all); h.ok()) {
    Check(EncodeSegmentHeader(*h) == Bytes(all.begin(), all.end()));
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto id = ParseIdentity(text); id.ok()) Check(FormatIdentity(*id) == text);
  if (auto n = ParseSegmentFileName(text); n) Check(SegmentFileName(*n) == text);
  return 0;
}
