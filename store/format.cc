#include "store/format.h"

#include <cstdio>
#include <cstring>

#include "core/crypto/crypto.h"

namespace jitgate::store {

void AppendRecord(RecordType type, ByteSpan payload, Bytes* out) {
  size_t start = out->size();
  out->resize(start + kRecordHeaderSize + payload.size());
  uint8_t* p = out->data() + start;
  StoreU32BE(p + 4, uint32_t(payload.size()));
  p[8] = uint8_t(type);
  if (!payload.empty()) std::memcpy(p + kRecordHeaderSize, payload.data(), payload.size());
  StoreU32BE(p, crypto::Crc32c(ByteSpan(p + 4, 5 + payload.size())));
}

RecordParse DecodeRecord(ByteSpan data, RawRecord* out, std::string* why, uint64_t* claimed_end) {
  if (claimed_end) *claimed_end = UINT64_MAX;
  if (data.size() < kRecordHeaderSize) return RecordParse::kNeedMore;
  uint32_t crc = LoadU32BE(data.data());
  uint32_t len = LoadU32BE(data.data() + 4);
  uint8_t type = data[8];
  if (claimed_end) *claimed_end = uint64_t(kRecordHeaderSize) + len;
  if (len > kMaxRecordPayload) {
    *why = "record length " + std::to_string(len) + " exceeds the cap";
    return RecordParse::kCorrupt;
  }
  if (data.size() - kRecordHeaderSize < len) return RecordParse::kNeedMore;
  uint32_t actual = crypto::Crc32c(data.subspan(4, 5 + size_t(len)));
  if (actual != crc) {
    *why = "checksum mismatch";
    return RecordParse::kCorrupt;
  }
  if (type < uint8_t(RecordType::kHeader) || type > uint8_t(RecordType::kCheckpoint)) {
    *why = "unknown record type " + std::to_string(type);
    return RecordParse::kCorrupt;
  }
  out->type = RecordType(type);
  out->payload = data.subspan(kRecordHeaderSize, len);
  out->total_size = kRecordHeaderSize + len;
  return RecordParse::kOk;
}

static bool ValidEntryType(uint8_t type) {
  return type != 0 && (type < kFirstReservedEntryType || type >= kFirstPrivateEntryType);
}

StatusOr<Bytes> EncodeEntry(uint8_t type, int64_t time_unix_nanos, ByteSpan body) {
  if (!ValidEntryType(type)) {
    return InvalidArgumentError("entry type " + std::to_string(type) + " is not allowed");
  }
  if (body.size() > kMaxEntryBody) {
    return InvalidArgumentError("entry body of " + std::to_string(body.size()) +
                                " bytes exceeds the limit of " + std::to_string(kMaxEntryBody) +
                                " (split large data into chunks)");
  }
  ByteWriter w(kEntryHeaderSize + body.size());
  w.PutU8(kEntryVersion);
  w.PutU8(type);
  w.PutU64(uint64_t(time_unix_nanos));
  w.PutBytes(body);
  return w.Release();
}

StatusOr<Bytes> EncodeEntryRecord(uint8_t type, int64_t time_unix_nanos, ByteSpan body,
                                  ByteSpan* leaf_data) {
  if (!ValidEntryType(type)) {
    return InvalidArgumentError("entry type " + std::to_string(type) + " is not allowed");
  }
  if (body.size() > kMaxEntryBody) {
    return InvalidArgumentError("entry body of " + std::to_string(body.size()) +
                                " bytes exceeds the limit of " + std::to_string(kMaxEntryBody) +
                                " (split large data into chunks)");
  }
  const size_t entry_size = kEntryHeaderSize + body.size();
  Bytes rec(kRecordHeaderSize + entry_size);
  uint8_t* p = rec.data();
  StoreU32BE(p + 4, uint32_t(entry_size));
  p[8] = uint8_t(RecordType::kEntry);
  uint8_t* e = p + kRecordHeaderSize;
  e[0] = kEntryVersion;
  e[1] = type;
  StoreU64BE(e + 2, uint64_t(time_unix_nanos));
  if (!body.empty()) std::memcpy(e + kEntryHeaderSize, body.data(), body.size());
  StoreU32BE(p, crypto::Crc32c(ByteSpan(p + 4, 5 + entry_size)));
  *leaf_data = ByteSpan(e, entry_size);
  return rec;
}

StatusOr<Entry> ParseEntry(ByteSpan data) {
  if (data.size() > kMaxEntrySize) {
    return InvalidArgumentError("entry of " + std::to_string(data.size()) +
                                " bytes exceeds 65535");
  }
  ByteReader r(data);
  uint8_t version, type;
  uint64_t time;
  if (!r.GetU8(&version) || !r.GetU8(&type) || !r.GetU64(&time)) {
    return InvalidArgumentError("entry shorter than its 10-byte header");
  }
  if (version != kEntryVersion) {
    return InvalidArgumentError("entry version " + std::to_string(version) + " is not 1");
  }
  if (!ValidEntryType(type)) {
    return InvalidArgumentError("entry type " + std::to_string(type) + " is not valid");
  }
  Entry e;
  e.type = type;
  e.time_unix_nanos = int64_t(time);
  e.body = r.Rest();
  return e;
}

std::string EntryTypeName(uint8_t type) {
  switch (type) {
    case uint8_t(EntryType::kAuditEvent): return "audit";
    case uint8_t(EntryType::kTranscriptChunk): return "transcript";
    case uint8_t(EntryType::kAnnotation): return "annotation";
  }
  if (type >= kFirstPrivateEntryType) return "private-" + std::to_string(type);
  return "reserved-" + std::to_string(type);
}

Bytes EncodeSegmentHeader(const SegmentHeader& h) {
  ByteWriter w;
  w.PutBytes(ByteSpan(kSegmentMagic, sizeof(kSegmentMagic)));
  w.PutU32(kFormatVersion);
  w.PutU64(h.segment);
  w.PutU64(h.first_entry);
  w.PutU64(h.prev_valid_length);
  w.PutU64(h.prev_file_length);
  w.PutU16Prefixed(AsBytes(h.origin));
  return w.Release();
}

StatusOr<SegmentHeader> ParseSegmentHeader(ByteSpan payload) {
  ByteReader r(payload);
  ByteSpan magic, origin;
  uint32_t version;
  SegmentHeader h;
  if (!r.GetBytes(sizeof(kSegmentMagic), &magic) ||
      std::memcmp(magic.data(), kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return InvalidArgumentError("segment header has a bad magic");
  }
  if (!r.GetU32(&version) || version != kFormatVersion) {
    return InvalidArgumentError("segment header version is not 1");
  }
  if (!r.GetU64(&h.segment) || !r.GetU64(&h.first_entry) || !r.GetU64(&h.prev_valid_length) ||
      !r.GetU64(&h.prev_file_length) || !r.GetU16Prefixed(&origin) || !r.Empty()) {
    return InvalidArgumentError("segment header is malformed");
  }
  if (origin.empty() || origin.size() > kMaxOriginLength) {
    return InvalidArgumentError("segment header origin has a bad length");
  }
  if (h.prev_valid_length > h.prev_file_length) {
    return InvalidArgumentError("segment header previous lengths are inconsistent");
  }
  h.origin.assign(AsChars(origin));
  return h;
}

std::string FormatIdentity(const StoreIdentity& id) {
  std::string s = kIdentityMagic;
  s += "\norigin " + id.origin + "\nvkey " + id.vkey + "\nkey " + id.key_path + "\n";
  return s;
}

StatusOr<StoreIdentity> ParseIdentity(std::string_view text) {
  const char* names[] = {nullptr, "origin", "vkey", "key"};
  std::string values[4];
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      return InvalidArgumentError("STORE file line " + std::to_string(i + 1) + " is missing");
    }
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (i == 0) {
      if (line != kIdentityMagic) {
        return InvalidArgumentError("STORE file does not start with '" +
                                    std::string(kIdentityMagic) + "'");
      }
      continue;
    }
    std::string prefix = std::string(names[i]) + " ";
    if (line.substr(0, prefix.size()) != prefix || line.size() == prefix.size()) {
      return InvalidArgumentError("STORE file line " + std::to_string(i + 1) + ": expected '" +
                                  names[i] + " <value>'");
    }
    for (char c : line) {
      if (static_cast<unsigned char>(c) < 0x20) {
        return InvalidArgumentError("STORE file line " + std::to_string(i + 1) +
                                    " has a control character");
      }
    }
    values[i].assign(line.substr(prefix.size()));
  }
  if (pos != text.size()) return InvalidArgumentError("STORE file has trailing data");
  return StoreIdentity{values[1], values[2], values[3]};
}

std::string SegmentFileName(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llu%s", kSegmentNameDigits,
                static_cast<unsigned long long>(number), kSegmentSuffix);
  return buf;
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name) {
  size_t suffix = sizeof(kSegmentSuffix) - 1;
  if (name.size() != size_t(kSegmentNameDigits) + suffix) return std::nullopt;
  if (name.substr(kSegmentNameDigits) != kSegmentSuffix) return std::nullopt;
  uint64_t n = 0;
  for (int i = 0; i < kSegmentNameDigits; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint64_t(c - '0');
  }
  if (n == 0) return std::nullopt;
  return n;
}

}  // namespace jitgate::store
