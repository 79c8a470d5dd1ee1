#include "ca/cert.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "ca/nonce.h"
#include "ca/sshkey_internal.h"
#include "core/base/status_macros.h"

namespace jitgate::ca {
namespace {

constexpr size_t kIssuedNonceSize = 32;
// Room left for the signature when checking the to-be-signed size.
constexpr size_t kSignatureRoom = kMaxRsaBits / 8 + 64;

Status Malformed(std::string_view what) {
  return InvalidArgumentError("certificate: " + std::string(what));
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Reads a sequence of (string name, string data) pairs that must be sorted
// strictly by name (which also excludes repeats).
Status ParseOptions(ByteSpan buf, std::string_view what, std::vector<CertOption>* out) {
  ByteReader r(buf);
  while (!r.Empty()) {
    CertOption o;
    ByteSpan data;
    if (!r.GetU32PrefixedString(&o.name, kMaxCertBlobSize) || o.name.empty()) {
      return Malformed("bad " + std::string(what) + " name");
    }
    if (!r.GetU32Prefixed(&data, kMaxCertBlobSize)) {
      return Malformed("bad data for " + std::string(what) + " \"" + o.name + "\"");
    }
    if (!out->empty() && !(out->back().name < o.name)) {
      return Malformed(std::string(what) + "s are not sorted by name or repeat \"" + o.name + "\"");
    }
    o.data.assign(data.begin(), data.end());
    out->push_back(std::move(o));
  }
  return OkStatus();
}

// A string field written in place: BeginString writes a length placeholder
// and EndString patches it, so nested sequences need no scratch buffer.
size_t BeginString(ByteWriter* w) {
  w->PutU32(0);
  return w->size();
}
void EndString(ByteWriter* w, size_t start) { w->PatchU32(start - 4, uint32_t(w->size() - start)); }

void PutOptions(ByteWriter* w, const std::vector<CertOption>& opts) {
  const size_t start = BeginString(w);
  for (const CertOption& o : opts) {
    w->PutU32Prefixed(o.name);
    w->PutU32Prefixed(o.data);
  }
  EndString(w, start);
}

// Sorts options by name and refuses repeats, empty names and NULs.
Status CanonicalizeOptions(std::vector<CertOption>* opts, std::string_view what) {
  std::sort(opts->begin(), opts->end(),
            [](const CertOption& a, const CertOption& b) { return a.name < b.name; });
  for (size_t i = 0; i < opts->size(); ++i) {
    const std::string& name = (*opts)[i].name;
    if (name.empty() || HasNul(name)) return InvalidArgumentError(std::string(what) + " name is empty or has a NUL");
    if (i > 0 && (*opts)[i - 1].name == name) {
      return InvalidArgumentError(std::string(what) + " \"" + name + "\" given twice");
    }
  }
  return OkStatus();
}

// The algorithms a CA of each type may sign with.
bool SignatureMatchesKey(KeyType type, std::string_view alg) {
  switch (type) {
    case KeyType::kEd25519: return alg == "ssh-ed25519";
    case KeyType::kEcdsaP256: return alg == "ecdsa-sha2-nistp256";
    case KeyType::kRsa: return alg == "rsa-sha2-512" || alg == "rsa-sha2-256";
    default: return false;
  }
}

void EncodeFields(ByteWriter* w, const PublicKey& key, const CertificateFields& f, const PublicKey& ca) {
  w->PutU32Prefixed(internal::CertTypeNameFor(key.type()));
  w->PutU32Prefixed(f.nonce);
  w->PutBytes(key.body());
  w->PutU64(f.serial);
  w->PutU32(uint32_t(f.type));
  w->PutU32Prefixed(f.key_id);
  const size_t principals = BeginString(w);
  for (const std::string& p : f.principals) w->PutU32Prefixed(p);
  EndString(w, principals);
  w->PutU64(f.valid_after);
  w->PutU64(f.valid_before);
  PutOptions(w, f.critical_options);
  PutOptions(w, f.extensions);
  w->PutU32Prefixed(f.reserved);
  w->PutU32Prefixed(ca.blob());
}

// Replaces bytes that could drive a terminal with \xNN; ssh-keygen prints
// them raw, which `jitgate cert show` must not do with untrusted input.
std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

std::string FormatTime(uint64_t t, bool utc) {
  // time_t is 64-bit here; years beyond 9999 are clamped like ssh-keygen
  // clamps to its time_t maximum (both print a far-future date).
  constexpr uint64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z
  const time_t tt = time_t(std::min(t, kMaxTime));
  struct tm tm;
  if ((utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm)) == nullptr) return std::to_string(t);
  char buf[64];
  if (std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) return std::to_string(t);
  return buf;
}

void FormatOptions(std::string* out, std::string_view title, const std::vector<CertOption>& opts,
                   bool critical) {
  *out += "        ";
  *out += title;
  *out += ": ";
  if (opts.empty()) {
    *out += "(none)\n";
    return;
  }
  *out += "\n";
  for (const CertOption& o : opts) {
    *out += "                " + Printable(o.name);
    const bool flag_ext = !critical && (o.name == kExtPermitX11Forwarding || o.name == kExtPermitAgentForwarding ||
                                        o.name == kExtPermitPortForwarding || o.name == kExtPermitPty ||
                                        o.name == kExtPermitUserRc || o.name == kExtNoTouchRequired);
    const bool value_opt = critical && (o.name == kOptForceCommand || o.name == kOptSourceAddress);
    if (flag_ext || (critical && o.name == kOptVerifyRequired)) {
      *out += "\n";
    } else if (value_opt) {
      StatusOr<std::string> v = o.Value();
      *out += " " + (v.ok() ? Printable(*v) : std::string("(malformed)")) + "\n";
    } else if (!o.data.empty()) {
      *out += " UNKNOWN OPTION: " + HexEncode(o.data) + " (len " + std::to_string(o.data.size()) + ")\n";
    } else {
      *out += " UNKNOWN FLAG OPTION\n";
    }
  }
}

}  // namespace

// ---- CertOption ----

CertOption CertOption::Flag(std::string_view name) { return CertOption{std::string(name), {}}; }

CertOption CertOption::WithValue(std::string_view name, std::string_view value) {
  ByteWriter w(4 + value.size());
  w.PutU32Prefixed(value);
  return CertOption{std::string(name), w.Release()};
}

StatusOr<std::string> CertOption::Value() const {
  ByteReader r(data);
  std::string v;
  if (!r.GetU32PrefixedString(&v, kMaxCertBlobSize) || !r.Empty()) {
    return InvalidArgumentError("option \"" + name + "\": data is not exactly one string");
  }
  return v;
}

// ---- Certificate ----

StatusOr<Certificate> Certificate::FromBlob(ByteSpan blob) {
  if (blob.size() > kMaxCertBlobSize) return Malformed("blob larger than 64 KiB");
  ByteReader r(blob);
  std::string type_name;
  if (!r.GetU32PrefixedString(&type_name, 256)) return Malformed("bad type string");
  const std::optional<KeyType> key_type = internal::KeyTypeFromCertName(type_name);
  if (!key_type) {
    if (type_name.ends_with("-cert-v01@openssh.com")) {
      return UnimplementedError("unsupported certificate type \"" + type_name + "\"");
    }
    return Malformed("\"" + type_name + "\" is not a certificate type");
  }
  CertificateFields f;
  ByteSpan nonce;
  if (!r.GetU32Prefixed(&nonce, kMaxNonceSize)) return Malformed("bad nonce");
  f.nonce.assign(nonce.begin(), nonce.end());
  StatusOr<PublicKey> key = internal::ParseKeyBody(*key_type, &r);
  if (!key.ok()) return key.status().WithContext("certificate");

  uint32_t type;
  ByteSpan principals, critical, extensions, reserved, ca_blob, signature;
  if (!r.GetU64(&f.serial)) return Malformed("truncated at serial");
  if (!r.GetU32(&type)) return Malformed("truncated at type");
  if (type != uint32_t(CertType::kUser) && type != uint32_t(CertType::kHost)) {
    return Malformed("unknown certificate type " + std::to_string(type));
  }
  f.type = CertType(type);
  if (!r.GetU32PrefixedString(&f.key_id, kMaxCertBlobSize)) return Malformed("bad key id");
  if (!r.GetU32Prefixed(&principals, kMaxCertBlobSize)) return Malformed("bad principals");
  {
    ByteReader pr(principals);
    while (!pr.Empty()) {
      if (f.principals.size() == kMaxPrincipals) return Malformed("more than 256 principals");
      std::string p;
      if (!pr.GetU32PrefixedString(&p, kMaxCertBlobSize)) return Malformed("bad principal");
      f.principals.push_back(std::move(p));
    }
  }
  if (!r.GetU64(&f.valid_after) || !r.GetU64(&f.valid_before)) return Malformed("truncated at validity");
  if (!r.GetU32Prefixed(&critical, kMaxCertBlobSize)) return Malformed("bad critical options");
  RETURN_IF_ERROR(ParseOptions(critical, "critical option", &f.critical_options));
  if (!r.GetU32Prefixed(&extensions, kMaxCertBlobSize)) return Malformed("bad extensions");
  RETURN_IF_ERROR(ParseOptions(extensions, "extension", &f.extensions));
  if (!r.GetU32Prefixed(&reserved, kMaxCertBlobSize)) return Malformed("bad reserved field");
  f.reserved.assign(reserved.begin(), reserved.end());
  if (!r.GetU32Prefixed(&ca_blob, kMaxKeyBlobSize)) return Malformed("bad signature key");
  const size_t signed_size = blob.size() - r.remaining();
  StatusOr<PublicKey> ca = PublicKey::FromBlob(ca_blob);
  if (!ca.ok()) return ca.status().WithContext("certificate signature key");
  if (!r.GetU32Prefixed(&signature, kMaxCertBlobSize)) return Malformed("bad signature");
  if (!r.Empty()) return Malformed("trailing bytes after the signature");
  StatusOr<std::string> alg = SignatureAlgorithm(signature);
  if (!alg.ok()) return alg.status().WithContext("certificate");

  Certificate c(*std::move(key), *std::move(ca));
  c.fields_ = std::move(f);
  c.signature_.assign(signature.begin(), signature.end());
  c.signature_algorithm_ = *std::move(alg);
  c.blob_.assign(blob.begin(), blob.end());
  c.signed_size_ = signed_size;
  return c;
}

StatusOr<Certificate> Certificate::FromLine(std::string_view line, std::string* comment) {
  ASSIGN_OR_RETURN(KeyLine kl, ParseKeyLine(line));
  ASSIGN_OR_RETURN(Certificate c, FromBlob(kl.blob));
  if (comment != nullptr) *comment = std::move(kl.comment);
  return c;
}

std::string_view Certificate::type_name() const { return internal::CertTypeNameFor(key_.type()); }

Bytes Certificate::Encode() const {
  ByteWriter w(blob_.size());
  EncodeFields(&w, key_, fields_, signature_key_);
  w.PutU32Prefixed(signature_);
  return w.Release();
}

std::string Certificate::ToLine(std::string_view comment) const {
  std::string out(type_name());
  out += ' ';
  out += crypto::Base64Encode(blob_);
  if (!comment.empty()) {
    out += ' ';
    out += comment;
  }
  return out;
}

Status Certificate::VerifySignature(bool allow_sha1) const {
  return signature_key_.Verify(signed_data(), signature_, allow_sha1)
      .WithContext("certificate signature");
}

Status Certificate::CheckValidAt(uint64_t now) const {
  if (now < fields_.valid_after) return FailedPreconditionError("certificate is not yet valid");
  if (now >= fields_.valid_before) return FailedPreconditionError("certificate has expired");
  return OkStatus();
}

Status Certificate::CheckCriticalOptions() const {
  for (const CertOption& o : fields_.critical_options) {
    if (o.name == kOptForceCommand || o.name == kOptSourceAddress) {
      RETURN_IF_ERROR(o.Value().status());
    } else if (o.name == kOptVerifyRequired) {
      if (!o.data.empty()) return InvalidArgumentError("critical option verify-required has data");
    } else {
      return FailedPreconditionError("unknown critical option \"" + Printable(o.name) + "\"");
    }
  }
  return OkStatus();
}

// ---- Issuing ----

namespace {

// EncodeToBeSigned, appending to w.
Status EncodeToBeSignedInto(const PublicKey& key, const CertificateFields& f, const PublicKey& ca_key,
                            ByteWriter* w) {
  if (!ca_key.CanVerify()) {
    return InvalidArgumentError("a " + std::string(ca_key.type_name()) + " key cannot be a CA here");
  }
  if (f.principals.size() > kMaxPrincipals) return InvalidArgumentError("more than 256 principals");
  if (f.nonce.size() > kMaxNonceSize) return InvalidArgumentError("nonce too long");
  EncodeFields(w, key, f, ca_key);
  if (w->size() + kSignatureRoom > kMaxCertBlobSize) return InvalidArgumentError("certificate too large");
  return OkStatus();
}

// What to reserve for a certificate, so that the buffer is not reallocated
// as it grows: a typical size for the fields, the two keys, and the
// signature's string (for Ed25519 and ECDSA at most 4 + 101 bytes).
size_t ReserveFor(const PublicKey& key, const PublicKey& ca_key) {
  const size_t signature = ca_key.type() == KeyType::kRsa ? 4 + 20 + size_t(ca_key.bits() + 7) / 8 : 4 + 128;
  return 512 + key.body().size() + ca_key.blob().size() + signature;
}

}  // namespace

StatusOr<Bytes> EncodeToBeSigned(const PublicKey& key, const CertificateFields& f, const PublicKey& ca_key) {
  ByteWriter w(ReserveFor(key, ca_key));
  RETURN_IF_ERROR(EncodeToBeSignedInto(key, f, ca_key, &w));
  return w.Release();
}

StatusOr<Certificate> IssueCertificate(const PublicKey& key, CertificateFields f, const Signer& signer) {
  if (f.type != CertType::kUser && f.type != CertType::kHost) return InvalidArgumentError("bad certificate type");
  if (f.principals.empty()) return InvalidArgumentError("a certificate needs at least one principal");
  for (const std::string& p : f.principals) {
    if (p.empty() || HasNul(p)) return InvalidArgumentError("principal is empty or has a NUL");
  }
  if (HasNul(f.key_id)) return InvalidArgumentError("key id has a NUL");
  if (f.valid_after >= f.valid_before) return InvalidArgumentError("valid_after must be before valid_before");
  RETURN_IF_ERROR(CanonicalizeOptions(&f.critical_options, "critical option"));
  RETURN_IF_ERROR(CanonicalizeOptions(&f.extensions, "extension"));
  if (f.nonce.empty()) {
    f.nonce.resize(kIssuedNonceSize);
    RETURN_IF_ERROR(internal::FillNonce(f.nonce));
  }
  const PublicKey& ca = signer.public_key();
  // The signature is appended to the to-be-signed bytes in place.
  ByteWriter w(ReserveFor(key, ca));
  RETURN_IF_ERROR(EncodeToBeSignedInto(key, f, ca, &w));
  const size_t signed_size = w.size();
  ASSIGN_OR_RETURN(Bytes sig, signer.Sign(w.span()));
  ASSIGN_OR_RETURN(std::string alg, SignatureAlgorithm(sig));
  if (!SignatureMatchesKey(ca.type(), alg)) {
    return InternalError("signer returned a " + alg + " signature for a " + std::string(ca.type_name()) +
                         " CA key");
  }
  w.PutU32Prefixed(sig);
  Certificate c(key, ca);
  c.fields_ = std::move(f);
  c.signed_size_ = signed_size;
  c.blob_ = w.Release();
  c.signature_ = std::move(sig);
  c.signature_algorithm_ = std::move(alg);
  return c;
}

// ---- Formatting ----

std::string FormatValidity(uint64_t valid_after, uint64_t valid_before, bool utc) {
  if (valid_after == 0 && valid_before == kValidForever) return "forever";
  if (valid_after == 0) return "before " + FormatTime(valid_before, utc);
  if (valid_before == kValidForever) return "after " + FormatTime(valid_after, utc);
  return "from " + FormatTime(valid_after, utc) + " to " + FormatTime(valid_before, utc);
}

std::string FormatCertificate(const Certificate& cert, std::string_view name, bool utc) {
  const CertificateFields& f = cert.fields();
  std::string out;
  out += Printable(name) + ":\n";
  out += "        Type: " + std::string(cert.type_name()) +
         (f.type == CertType::kUser ? " user" : " host") + " certificate\n";
  out += "        Public key: " + std::string(KeyTypeLabel(cert.key().type())) + "-CERT " +
         cert.key().Fingerprint() + "\n";
  out += "        Signing CA: " + std::string(KeyTypeLabel(cert.signature_key().type())) + " " +
         cert.signature_key().Fingerprint() + " (using " + Printable(cert.signature_algorithm()) + ")\n";
  out += "        Key ID: \"" + Printable(f.key_id) + "\"\n";
  out += "        Serial: " + std::to_string(f.serial) + "\n";
  out += "        Valid: " + FormatValidity(f.valid_after, f.valid_before, utc) + "\n";
  out += "        Principals: ";
  if (f.principals.empty()) {
    out += "(none)\n";
  } else {
    out += "\n";
    for (const std::string& p : f.principals) out += "                " + Printable(p) + "\n";
  }
  FormatOptions(&out, "Critical Options", f.critical_options, /*critical=*/true);
  FormatOptions(&out, "Extensions", f.extensions, /*critical=*/false);
  return out;
}

}  // namespace jitgate::ca
