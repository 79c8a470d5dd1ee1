#include "ca/krl.h"

#include <openssl/evp.h>

#include "ca/sshkey_internal.h"
#include "core/base/status_macros.h"

namespace jitgate::ca {
namespace {

constexpr size_t kSha1Size = 20;

Status Malformed(std::string_view what) { return InvalidArgumentError("KRL: " + std::string(what)); }

Bytes Sha1(ByteSpan data) {
  Bytes out(kSha1Size);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha1(), nullptr) != 1 || len != kSha1Size) {
    out.clear();  // cannot match any listed hash
  }
  return out;
}

Bytes Sha256Bytes(ByteSpan data) {
  const crypto::Sha256Digest d = crypto::Sha256(data);
  return Bytes(d.begin(), d.end());
}

bool InRanges(const std::map<uint64_t, uint64_t>& ranges, uint64_t serial) {
  auto it = ranges.upper_bound(serial);
  if (it == ranges.begin()) return false;
  --it;
  return serial >= it->first && serial <= it->second;
}

// Reads a non-critical extension (string name, bool critical, string data);
// a critical one cannot be understood and fails the whole KRL.
Status SkipExtension(ByteSpan body, std::string_view where) {
  ByteReader r(body);
  std::string name;
  uint8_t critical;
  ByteSpan contents;
  if (!r.GetU32PrefixedString(&name, 1024) || !r.GetU8(&critical) || critical > 1 ||
      !r.GetU32Prefixed(&contents, kMaxKrlSize) || !r.Empty()) {
    return Malformed("bad " + std::string(where) + " extension");
  }
  if (critical) return UnimplementedError("KRL: unsupported critical extension \"" + name + "\"");
  return OkStatus();
}

// Reads a list of strings that must be non-empty, each of size want_size
// (0: any) and, if sorted, in strictly increasing order.
Status ReadBlobList(ByteSpan body, size_t want_size, bool sorted, std::string_view what, std::set<Bytes>* out) {
  ByteReader r(body);
  if (r.Empty()) return Malformed(std::string(what) + " section is empty");
  const Bytes* prev = nullptr;
  Bytes last;
  while (!r.Empty()) {
    ByteSpan b;
    if (!r.GetU32Prefixed(&b, kMaxKeyBlobSize)) return Malformed("bad " + std::string(what));
    if (want_size != 0 && b.size() != want_size) return Malformed(std::string(what) + " of the wrong size");
    Bytes v(b.begin(), b.end());
    if (sorted && prev != nullptr && !(*prev < v)) return Malformed(std::string(what) + " list out of order");
    last = v;
    prev = &last;
    out->insert(std::move(v));
  }
  return OkStatus();
}

}  // namespace

void Krl::AddRange(std::map<uint64_t, uint64_t>* set, uint64_t lo, uint64_t hi) {
  // Precondition: 1 <= lo <= hi. Merge with any overlapping or adjacent range.
  auto it = set->upper_bound(lo);
  if (it != set->begin()) {
    auto prev = std::prev(it);
    if (prev->second >= lo - 1) {
      lo = prev->first;
      hi = std::max(hi, prev->second);
      set->erase(prev);
    }
  }
  while (it != set->end() && (hi == UINT64_MAX || it->first <= hi + 1)) {
    hi = std::max(hi, it->second);
    it = set->erase(it);
  }
  (*set)[lo] = hi;
}

KrlCertSection& Krl::SectionFor(const std::optional<PublicKey>& ca) {
  const Bytes key = ca ? ca->blob() : Bytes();
  auto [it, inserted] = certs_.try_emplace(key);
  if (inserted) it->second.ca = ca;
  return it->second;
}

Status Krl::RevokeSerial(const std::optional<PublicKey>& ca, uint64_t serial) {
  return RevokeSerialRange(ca, serial, serial);
}

Status Krl::RevokeSerialRange(const std::optional<PublicKey>& ca, uint64_t lo, uint64_t hi) {
  if (lo == 0) return InvalidArgumentError("KRL: serial 0 cannot be revoked");
  if (lo > hi) return InvalidArgumentError("KRL: serial range is empty (lo > hi)");
  AddRange(&SectionFor(ca).serials, lo, hi);
  return OkStatus();
}

Status Krl::RevokeKeyId(const std::optional<PublicKey>& ca, std::string_view key_id) {
  if (key_id.find('\0') != std::string_view::npos) return InvalidArgumentError("KRL: key id has a NUL");
  SectionFor(ca).key_ids.insert(std::string(key_id));
  return OkStatus();
}

void Krl::RevokeKey(const PublicKey& key) { sha256_.insert(Sha256Bytes(key.blob())); }

bool Krl::IsKeyRevoked(const PublicKey& key) const {
  return explicit_keys_.count(key.blob()) != 0 || (!sha256_.empty() && sha256_.count(Sha256Bytes(key.blob())) != 0) ||
         (!sha1_.empty() && sha1_.count(Sha1(key.blob())) != 0);
}

bool Krl::IsRevoked(const Certificate& cert) const {
  if (IsKeyRevoked(cert.key()) || IsKeyRevoked(cert.signature_key())) return true;
  for (const Bytes& ca : {cert.signature_key().blob(), Bytes()}) {
    auto it = certs_.find(ca);
    if (it == certs_.end()) continue;
    if (InRanges(it->second.serials, cert.fields().serial)) return true;
    if (it->second.key_ids.count(cert.fields().key_id) != 0) return true;
  }
  return false;
}

Bytes Krl::Encode() const {
  ByteWriter w;
  w.PutU64(kKrlMagic);
  w.PutU32(kKrlFormatVersion);
  w.PutU64(version);
  w.PutU64(generated_date);
  w.PutU64(0);  // flags
  w.PutU32Prefixed("");  // reserved
  w.PutU32Prefixed(comment);
  for (const auto& [ca_blob, sec] : certs_) {
    ByteWriter body;
    body.PutU32Prefixed(ca_blob);
    body.PutU32Prefixed("");  // reserved
    ByteWriter singles;
    for (const auto& [lo, hi] : sec.serials) {
      if (lo == hi) singles.PutU64(lo);
    }
    if (singles.size() != 0) {
      body.PutU8(kKrlCertSerialList);
      body.PutU32Prefixed(singles.span());
    }
    for (const auto& [lo, hi] : sec.serials) {
      if (lo == hi) continue;
      ByteWriter range;
      range.PutU64(lo);
      range.PutU64(hi);
      body.PutU8(kKrlCertSerialRange);
      body.PutU32Prefixed(range.span());
    }
    if (!sec.key_ids.empty()) {
      ByteWriter ids;
      for (const std::string& id : sec.key_ids) ids.PutU32Prefixed(id);
      body.PutU8(kKrlCertKeyId);
      body.PutU32Prefixed(ids.span());
    }
    w.PutU8(kKrlSectionCertificates);
    w.PutU32Prefixed(body.span());
  }
  auto put_list = [&w](uint8_t type, const std::set<Bytes>& items) {
    if (items.empty()) return;
    ByteWriter body;
    for (const Bytes& b : items) body.PutU32Prefixed(b);
    w.PutU8(type);
    w.PutU32Prefixed(body.span());
  };
  put_list(kKrlSectionExplicitKey, explicit_keys_);
  put_list(kKrlSectionFingerprintSha1, sha1_);
  put_list(kKrlSectionFingerprintSha256, sha256_);
  return w.Release();
}

StatusOr<Krl> Krl::Parse(ByteSpan data) {
  if (data.size() > kMaxKrlSize) return Malformed("larger than 16 MiB");
  ByteReader r(data);
  uint64_t magic, flags;
  uint32_t format;
  ByteSpan reserved;
  Krl krl;
  if (!r.GetU64(&magic) || magic != kKrlMagic) return Malformed("bad magic");
  if (!r.GetU32(&format) || format != kKrlFormatVersion) return Malformed("unsupported format version");
  if (!r.GetU64(&krl.version) || !r.GetU64(&krl.generated_date) || !r.GetU64(&flags) ||
      !r.GetU32Prefixed(&reserved, kMaxKrlSize) || !r.GetU32PrefixedString(&krl.comment, kMaxKrlSize)) {
    return Malformed("truncated header");
  }
  while (!r.Empty()) {
    uint8_t type;
    ByteSpan body;
    if (!r.GetU8(&type)) return Malformed("truncated section");
    if (type == kKrlSectionSignature) return UnimplementedError("KRL: signed KRLs are not supported");
    if (!r.GetU32Prefixed(&body, kMaxKrlSize)) return Malformed("truncated section");
    switch (type) {
      case kKrlSectionCertificates: {
        ByteReader s(body);
        ByteSpan ca_blob, sec_reserved;
        if (!s.GetU32Prefixed(&ca_blob, kMaxKeyBlobSize) || !s.GetU32Prefixed(&sec_reserved, kMaxKrlSize)) {
          return Malformed("bad certificate section header");
        }
        std::optional<PublicKey> ca;
        if (!ca_blob.empty()) {
          StatusOr<PublicKey> k = PublicKey::FromBlob(ca_blob);
          if (!k.ok()) return k.status().WithContext("KRL CA key");
          ca = *std::move(k);
        }
        KrlCertSection& sec = krl.SectionFor(ca);
        while (!s.Empty()) {
          uint8_t sub_type;
          ByteSpan sub;
          if (!s.GetU8(&sub_type) || !s.GetU32Prefixed(&sub, kMaxKrlSize)) return Malformed("truncated subsection");
          ByteReader ss(sub);
          switch (sub_type) {
            case kKrlCertSerialList:
              while (!ss.Empty()) {
                uint64_t serial;
                if (!ss.GetU64(&serial)) return Malformed("bad serial list");
                if (serial == 0) return Malformed("serial 0 in serial list");
                AddRange(&sec.serials, serial, serial);
              }
              break;
            case kKrlCertSerialRange: {
              uint64_t lo, hi;
              if (!ss.GetU64(&lo) || !ss.GetU64(&hi) || !ss.Empty()) return Malformed("bad serial range");
              if (lo == 0 || lo > hi) return Malformed("invalid serial range");
              AddRange(&sec.serials, lo, hi);
              break;
            }
            case kKrlCertSerialBitmap: {
              uint64_t offset;
              ByteSpan bits;
              if (!ss.GetU64(&offset) || !internal::GetMpint(&ss, &bits, kMaxKrlSize) || !ss.Empty()) {
                return Malformed("bad serial bitmap");
              }
              // Bit N (counting from the least significant bit of the last
              // byte) revokes serial offset + N. Runs become ranges.
              const uint64_t nbits = uint64_t(bits.size()) * 8;
              if (nbits != 0 && offset > UINT64_MAX - (nbits - 1)) return Malformed("serial bitmap overflows");
              uint64_t run_start = 0;
              bool in_run = false;
              for (uint64_t n = 0; n <= nbits; ++n) {
                const bool set = n < nbits && (bits[bits.size() - 1 - n / 8] >> (n % 8)) & 1;
                if (set && !in_run) {
                  run_start = n;
                  in_run = true;
                } else if (!set && in_run) {
                  if (offset + run_start == 0) return Malformed("serial 0 in serial bitmap");
                  AddRange(&sec.serials, offset + run_start, offset + n - 1);
                  in_run = false;
                }
              }
              break;
            }
            case kKrlCertKeyId:
              if (ss.Empty()) return Malformed("empty key id section");
              while (!ss.Empty()) {
                std::string id;
                if (!ss.GetU32PrefixedString(&id, kMaxKrlSize)) return Malformed("bad key id");
                sec.key_ids.insert(std::move(id));
              }
              break;
            case kKrlCertExtension:
              RETURN_IF_ERROR(SkipExtension(sub, "certificate"));
              break;
            default:
              return Malformed("unknown certificate subsection type " + std::to_string(sub_type));
          }
        }
        break;
      }
      case kKrlSectionExplicitKey: {
        std::set<Bytes> blobs;
        RETURN_IF_ERROR(ReadBlobList(body, 0, false, "explicit key", &blobs));
        for (const Bytes& b : blobs) {
          StatusOr<PublicKey> k = PublicKey::FromBlob(b);
          if (!k.ok()) return k.status().WithContext("KRL explicit key");
        }
        krl.explicit_keys_.merge(blobs);
        break;
      }
      case kKrlSectionFingerprintSha1:
        RETURN_IF_ERROR(ReadBlobList(body, kSha1Size, true, "SHA-1 hash", &krl.sha1_));
        break;
      case kKrlSectionFingerprintSha256:
        RETURN_IF_ERROR(ReadBlobList(body, crypto::kSha256Size, true, "SHA-256 hash", &krl.sha256_));
        break;
      case kKrlSectionExtension:
        RETURN_IF_ERROR(SkipExtension(body, "KRL"));
        break;
      default:
        return Malformed("unknown section type " + std::to_string(type));
    }
  }
  return krl;
}

}  // namespace jitgate::ca
