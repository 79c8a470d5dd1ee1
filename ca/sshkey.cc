#include "ca/sshkey.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ca/sshkey_internal.h"
#include "core/base/cleanup.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace jitgate::ca {
namespace internal {

struct ParamDeleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  // Parameter arrays may carry private key components: wipe each value
  // (OSSL_PARAM_clear_free arrived only in OpenSSL 3.2).
  void operator()(OSSL_PARAM* p) const {
    for (OSSL_PARAM* q = p; q != nullptr && q->key != nullptr; ++q) {
      if (q->data != nullptr) OPENSSL_cleanse(q->data, q->data_size);
    }
    OSSL_PARAM_free(p);
  }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using UniqueParamBld = std::unique_ptr<OSSL_PARAM_BLD, ParamDeleter>;
using UniqueParams = std::unique_ptr<OSSL_PARAM, ParamDeleter>;
using UniqueEcdsaSig = std::unique_ptr<ECDSA_SIG, ParamDeleter>;

Status OpenSslError(std::string_view what) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  std::string msg(what);
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  return InternalError(std::move(msg));
}

bool GetMpint(ByteReader* r, ByteSpan* magnitude, size_t max_bytes) {
  ByteReader copy = *r;
  ByteSpan raw;
  // +1: a positive number with its top bit set carries a zero sign byte.
  if (!copy.GetU32Prefixed(&raw, max_bytes + 1)) return false;
  if (!raw.empty()) {
    if (raw[0] & 0x80) return false;                               // negative
    if (raw[0] == 0 && (raw.size() == 1 || !(raw[1] & 0x80))) return false;  // not minimal
    if (raw[0] == 0) raw = raw.subspan(1);
  }
  if (raw.size() > max_bytes) return false;
  *r = copy;
  *magnitude = raw;
  return true;
}

void PutMpint(ByteWriter* w, ByteSpan magnitude) {
  while (!magnitude.empty() && magnitude[0] == 0) magnitude = magnitude.subspan(1);
  const bool pad = !magnitude.empty() && (magnitude[0] & 0x80);
  w->PutU32(uint32_t(magnitude.size() + (pad ? 1 : 0)));
  if (pad) w->PutU8(0);
  w->PutBytes(magnitude);
}

void PutMpintBn(ByteWriter* w, const BIGNUM* bn) {
  const int n = BN_num_bytes(bn);
  crypto::SecretBytes tmp(size_t(n > 0 ? n : 0));
  if (n > 0) BN_bn2bin(bn, tmp.data());
  PutMpint(w, tmp.span());
}

UniqueBn BnFromBytes(ByteSpan magnitude) {
  return UniqueBn(BN_bin2bn(magnitude.data(), int(magnitude.size()), nullptr));
}

std::string_view CertTypeNameFor(KeyType type) {
  switch (type) {
    case KeyType::kEd25519: return "ssh-ed25519-cert-v01@openssh.com";
    case KeyType::kEcdsaP256: return "ecdsa-sha2-nistp256-cert-v01@openssh.com";
    case KeyType::kRsa: return "ssh-rsa-cert-v01@openssh.com";
    case KeyType::kSkEd25519: return "sk-ssh-ed25519-cert-v01@openssh.com";
    case KeyType::kSkEcdsaP256: return "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com";
  }
  return "";
}

std::optional<KeyType> KeyTypeFromCertName(std::string_view name) {
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa, KeyType::kSkEd25519,
                    KeyType::kSkEcdsaP256}) {
    if (CertTypeNameFor(t) == name) return t;
  }
  return std::nullopt;
}

namespace {

constexpr std::string_view kCurveName = "nistp256";
constexpr size_t kP256PointSize = 65;  // uncompressed: 0x04 || X || Y
constexpr size_t kP256ScalarSize = 32;
constexpr size_t kMaxApplicationSize = 1024;
constexpr size_t kMaxRsaExponentBytes = 64;

StatusOr<UniquePkey> PkeyFromBuilder(const char* alg, OSSL_PARAM_BLD* bld, int selection) {
  UniqueParams params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return OpenSslError("OSSL_PARAM_BLD_to_param");
  UniquePkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, alg, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) <= 0) {
    ERR_clear_error();
    return InvalidArgumentError(std::string("invalid ") + alg + " key");
  }
  return UniquePkey(raw);
}

// Builds a P-256 public key and checks the point (on the curve, not the
// point at infinity, right order).
StatusOr<UniquePkey> EcPublicKey(ByteSpan point) {
  UniqueParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size())) {
    return OpenSslError("OSSL_PARAM_BLD");
  }
  ASSIGN_OR_RETURN(UniquePkey pkey, PkeyFromBuilder("EC", bld.get(), EVP_PKEY_PUBLIC_KEY));
  UniquePkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("ECDSA public key is not a valid P-256 point");
  }
  return pkey;
}

StatusOr<UniquePkey> RsaPublicKey(ByteSpan e, ByteSpan n) {
  UniqueBn bn_n = BnFromBytes(n), bn_e = BnFromBytes(e);
  UniqueParamBld bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return OpenSslError("OSSL_PARAM_BLD");
  }
  return PkeyFromBuilder("RSA", bld.get(), EVP_PKEY_PUBLIC_KEY);
}

}  // namespace
}  // namespace internal

using internal::OpenSslError;
using internal::UniqueBn;
using internal::UniqueMdCtx;
using internal::UniquePkey;

// Gives the internal parsers access to PublicKey's private constructor.
struct PublicKeyAccess {
  static PublicKey Make(KeyType type, ByteSpan body, int bits, std::shared_ptr<EVP_PKEY> pkey) {
    PublicKey k;
    k.type_ = type;
    ByteWriter w(4 + 64 + body.size());
    w.PutU32Prefixed(KeyTypeName(type));
    k.body_offset_ = w.size();
    w.PutBytes(body);
    k.blob_ = w.Release();
    k.bits_ = bits;
    k.pkey_ = std::move(pkey);
    return k;
  }
  static EVP_PKEY* Pkey(const PublicKey& k) { return k.pkey_.get(); }
};

namespace internal {

StatusOr<PublicKey> ParseKeyBody(KeyType type, ByteReader* r) {
  const ByteSpan start = r->Rest();
  auto malformed = [type](std::string_view what) {
    return InvalidArgumentError(std::string(KeyTypeName(type)) + " key: " + std::string(what));
  };
  std::shared_ptr<EVP_PKEY> pkey;
  int bits = 256;
  switch (type) {
    case KeyType::kEd25519:
    case KeyType::kSkEd25519: {
      ByteSpan pk;
      if (!r->GetU32Prefixed(&pk, crypto::kEd25519PublicKeySize) ||
          pk.size() != crypto::kEd25519PublicKeySize) {
        return malformed("public key is not 32 bytes");
      }
      break;
    }
    case KeyType::kEcdsaP256:
    case KeyType::kSkEcdsaP256: {
      ByteSpan curve, point;
      if (!r->GetU32Prefixed(&curve, 64) || AsChars(curve) != kCurveName) {
        return malformed("curve is not nistp256");
      }
      if (!r->GetU32Prefixed(&point, kP256PointSize) || point.size() != kP256PointSize ||
          point[0] != 0x04) {
        return malformed("point is not an uncompressed P-256 point");
      }
      ASSIGN_OR_RETURN(UniquePkey p, EcPublicKey(point));
      pkey = std::shared_ptr<EVP_PKEY>(p.release(), OpenSslDeleter());
      break;
    }
    case KeyType::kRsa: {
      ByteSpan e, n;
      if (!GetMpint(r, &e, kMaxRsaExponentBytes) || e.empty() || !(e.back() & 1)) {
        return malformed("bad public exponent");
      }
      if (!GetMpint(r, &n, kMaxRsaBits / 8) || n.empty()) return malformed("bad modulus");
      // Bits of the modulus: whole bytes minus the leading zero bits.
      bits = int(n.size() * 8);
      for (uint8_t top = n[0]; !(top & 0x80); top <<= 1) --bits;
      if (bits < kMinRsaBits) {
        return malformed("modulus of " + std::to_string(bits) + " bits is below the minimum of " +
                         std::to_string(kMinRsaBits));
      }
      ASSIGN_OR_RETURN(UniquePkey p, RsaPublicKey(e, n));
      pkey = std::shared_ptr<EVP_PKEY>(p.release(), OpenSslDeleter());
      break;
    }
  }
  if (type == KeyType::kSkEd25519 || type == KeyType::kSkEcdsaP256) {
    std::string application;
    if (!r->GetU32PrefixedString(&application, kMaxApplicationSize)) {
      return malformed("bad application string");
    }
  }
  const ByteSpan body = start.first(start.size() - r->remaining());
  return PublicKeyAccess::Make(type, body, bits, std::move(pkey));
}

}  // namespace internal

namespace {

constexpr std::string_view kSigEd25519 = "ssh-ed25519";
constexpr std::string_view kSigEcdsa = "ecdsa-sha2-nistp256";
constexpr std::string_view kSigRsaSha512 = "rsa-sha2-512";
constexpr std::string_view kSigRsaSha256 = "rsa-sha2-256";
constexpr std::string_view kSigRsaSha1 = "ssh-rsa";
constexpr size_t kMaxSignatureSize = kMaxRsaBits / 8 + 64;
constexpr size_t kEd25519SignatureSize = 64;
// ECDSA_size for P-256: SEQUENCE { INTEGER r, INTEGER s }, each of at most
// 33 bytes (a sign byte when the top bit is set).
constexpr size_t kMaxP256DerSignatureSize = 2 + 2 * (2 + 33);

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64 into a caller-sized buffer, so encoded secrets never pass through a
// growing string. out must hold 4 * ceil(in.size() / 3) bytes.
void Base64Into(ByteSpan in, uint8_t* out, bool pad) {
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t t = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    out[o++] = kB64[t >> 18 & 63];
    out[o++] = kB64[t >> 12 & 63];
    out[o++] = kB64[t >> 6 & 63];
    out[o++] = kB64[t & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t t = uint32_t(in[i]) << 16;
    if (rest == 2) t |= uint32_t(in[i + 1]) << 8;
    out[o++] = kB64[t >> 18 & 63];
    out[o++] = kB64[t >> 12 & 63];
    if (rest == 2) {
      out[o++] = kB64[t >> 6 & 63];
    } else if (pad) {
      out[o++] = '=';
    }
    if (pad) out[o++] = '=';
  }
}

// Signs with a fresh context; EVP_PKEY_get_size bounds the signature, so
// no length query is needed.
StatusOr<Bytes> DigestSign(EVP_PKEY* pkey, const char* md, ByteSpan data) {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  const int max = EVP_PKEY_get_size(pkey);
  if (!ctx || max <= 0 || EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pkey, nullptr) <= 0) {
    return OpenSslError("EVP_DigestSignInit_ex");
  }
  Bytes sig(static_cast<size_t>(max));
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) <= 0) {
    return OpenSslError("EVP_DigestSign");
  }
  sig.resize(len);
  return sig;
}

// A context set up by EVP_DigestSignInit_ex that never signs itself: each
// signature is made in a copy. Initialising a context fetches the algorithm
// by name and checks the key (about 2 us, 7% of an Ed25519 signature);
// copying one only duplicates the provider's context and takes references.
// A context cannot simply be reused, because a one-shot EVP_DigestSign
// finalises it (OpenSSL 3.2 refuses a second call, openssl/openssl#23075).
// EVP_MD_CTX_copy_ex reads its source through a const pointer, so Sign may
// copy the template from several threads at once.
StatusOr<UniqueMdCtx> NewSignTemplate(EVP_PKEY* pkey, const char* md) {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pkey, nullptr) <= 0) {
    return OpenSslError("EVP_DigestSignInit_ex");
  }
  return ctx;
}

// Signs data in a copy of tmpl. *len is the capacity of sig on entry (at
// least EVP_PKEY_get_size of the key) and the signature's length on return.
Status SignWithTemplate(const EVP_MD_CTX* tmpl, ByteSpan data, uint8_t* sig, size_t* len) {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_MD_CTX_copy_ex(ctx.get(), tmpl) != 1 ||
      EVP_DigestSign(ctx.get(), sig, len, data.data(), data.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  return OkStatus();
}

bool DigestVerify(EVP_PKEY* pkey, const char* md, ByteSpan data, ByteSpan sig) {
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  const bool ok = ctx &&
                  EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pkey, nullptr) > 0 &&
                  EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

Status BadSignature(std::string_view what) {
  return InvalidArgumentError("malformed signature: " + std::string(what));
}

}  // namespace

// ---- Names ----

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEd25519: return "ssh-ed25519";
    case KeyType::kEcdsaP256: return "ecdsa-sha2-nistp256";
    case KeyType::kRsa: return "ssh-rsa";
    case KeyType::kSkEd25519: return "sk-ssh-ed25519@openssh.com";
    case KeyType::kSkEcdsaP256: return "sk-ecdsa-sha2-nistp256@openssh.com";
  }
  return "";
}

std::optional<KeyType> KeyTypeFromName(std::string_view name) {
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa, KeyType::kSkEd25519,
                    KeyType::kSkEcdsaP256}) {
    if (KeyTypeName(t) == name) return t;
  }
  return std::nullopt;
}

std::string_view KeyTypeLabel(KeyType type) {
  switch (type) {
    case KeyType::kEd25519: return "ED25519";
    case KeyType::kEcdsaP256: return "ECDSA";
    case KeyType::kRsa: return "RSA";
    case KeyType::kSkEd25519: return "ED25519-SK";
    case KeyType::kSkEcdsaP256: return "ECDSA-SK";
  }
  return "";
}

std::string FormatFingerprint(ByteSpan blob) {
  const crypto::Sha256Digest d = crypto::Sha256(blob);
  std::string out = "SHA256:";
  const size_t start = out.size();
  out.resize(start + (d.size() + 2) / 3 * 4);
  Base64Into(d, reinterpret_cast<uint8_t*>(out.data() + start), /*pad=*/false);
  out.resize(start + (d.size() * 4 + 2) / 3);
  return out;
}

// ---- Key lines ----

StatusOr<KeyLine> ParseKeyLine(std::string_view line) {
  if (line.size() > kMaxKeyLineSize) return InvalidArgumentError("key line too long");
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (char c : line) {
    if (c == '\0' || c == '\n' || c == '\r') {
      return InvalidArgumentError("key line contains a NUL or line break");
    }
  }
  while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
  size_t p = 0;
  while (p < line.size() && !is_space(line[p])) ++p;
  KeyLine out;
  out.type = std::string(line.substr(0, p));
  if (out.type.empty()) return InvalidArgumentError("empty key line");
  while (p < line.size() && is_space(line[p])) ++p;
  size_t q = p;
  while (q < line.size() && !is_space(line[q])) ++q;
  const std::string_view b64 = line.substr(p, q - p);
  if (b64.empty()) return InvalidArgumentError("key line has no base64 key after \"" + out.type + "\"");
  while (q < line.size() && is_space(line[q])) ++q;
  out.comment = std::string(line.substr(q));
  if (!crypto::Base64Decode(b64, &out.blob)) {
    return InvalidArgumentError("key line: key is not valid base64");
  }
  ByteReader r(out.blob);
  std::string inner;
  if (!r.GetU32PrefixedString(&inner, 256)) {
    return InvalidArgumentError("key line: blob does not start with a type string");
  }
  if (inner != out.type) {
    return InvalidArgumentError("key line: type \"" + out.type + "\" does not match the blob's \"" +
                                inner + "\"");
  }
  return out;
}

// ---- PublicKey ----

StatusOr<PublicKey> PublicKey::FromBlob(ByteSpan blob) {
  if (blob.size() > kMaxKeyBlobSize) return InvalidArgumentError("public key blob too large");
  ByteReader r(blob);
  std::string name;
  if (!r.GetU32PrefixedString(&name, 256)) return InvalidArgumentError("public key: bad type string");
  const std::optional<KeyType> type = KeyTypeFromName(name);
  if (!type) {
    if (internal::KeyTypeFromCertName(name) || name.find("-cert-") != std::string::npos) {
      return InvalidArgumentError("public key: got a certificate (" + name + "), want a plain key");
    }
    return UnimplementedError("unsupported key type \"" + name + "\"");
  }
  ASSIGN_OR_RETURN(PublicKey key, internal::ParseKeyBody(*type, &r));
  if (!r.Empty()) return InvalidArgumentError("public key: trailing bytes after the key");
  return key;
}

StatusOr<PublicKey> PublicKey::FromLine(std::string_view line, std::string* comment) {
  ASSIGN_OR_RETURN(KeyLine kl, ParseKeyLine(line));
  ASSIGN_OR_RETURN(PublicKey key, FromBlob(kl.blob));
  if (comment != nullptr) *comment = std::move(kl.comment);
  return key;
}

ByteSpan PublicKey::body() const { return ByteSpan(blob_).subspan(body_offset_); }

std::string PublicKey::ToLine(std::string_view comment) const {
  std::string out(type_name());
  out += ' ';
  out += crypto::Base64Encode(blob_);
  if (!comment.empty()) {
    out += ' ';
    out += comment;
  }
  return out;
}

std::string PublicKey::Fingerprint() const { return FormatFingerprint(blob_); }

StatusOr<std::string> SignatureAlgorithm(ByteSpan signature) {
  ByteReader r(signature);
  std::string alg;
  ByteSpan sig;
  if (!r.GetU32PrefixedString(&alg, 64) || !r.GetU32Prefixed(&sig, kMaxSignatureSize) || !r.Empty()) {
    return BadSignature("not string algorithm, string signature");
  }
  return alg;
}

Status PublicKey::Verify(ByteSpan data, ByteSpan signature, bool allow_sha1) const {
  ByteReader r(signature);
  std::string alg;
  ByteSpan sig;
  if (!r.GetU32PrefixedString(&alg, 64) || !r.GetU32Prefixed(&sig, kMaxSignatureSize) || !r.Empty()) {
    return BadSignature("not string algorithm, string signature");
  }
  auto wrong_alg = [&] {
    return InvalidArgumentError("signature algorithm \"" + alg + "\" does not match " +
                                std::string(type_name()) + " key");
  };
  bool ok = false;
  switch (type_) {
    case KeyType::kEd25519: {
      if (alg != kSigEd25519) return wrong_alg();
      if (sig.size() != crypto::kEd25519SignatureSize) return BadSignature("Ed25519 signature is not 64 bytes");
      ByteReader b(body());
      ByteSpan pk;
      if (!b.GetU32Prefixed(&pk)) return InternalError("corrupt key");
      ok = crypto::Ed25519Verify(pk, data, sig);
      break;
    }
    case KeyType::kEcdsaP256: {
      if (alg != kSigEcdsa) return wrong_alg();
      ByteReader inner(sig);
      ByteSpan rr, ss;
      if (!internal::GetMpint(&inner, &rr, internal::kP256ScalarSize) ||
          !internal::GetMpint(&inner, &ss, internal::kP256ScalarSize) || !inner.Empty()) {
        return BadSignature("ECDSA signature is not mpint r, mpint s");
      }
      internal::UniqueEcdsaSig esig(ECDSA_SIG_new());
      UniqueBn bn_r = internal::BnFromBytes(rr), bn_s = internal::BnFromBytes(ss);
      if (!esig || !bn_r || !bn_s || ECDSA_SIG_set0(esig.get(), bn_r.get(), bn_s.get()) != 1) {
        return OpenSslError("ECDSA_SIG_set0");
      }
      (void)bn_r.release();  // now owned by esig
      (void)bn_s.release();
      unsigned char* der = nullptr;
      const int der_len = i2d_ECDSA_SIG(esig.get(), &der);
      if (der_len <= 0) return OpenSslError("i2d_ECDSA_SIG");
      ok = DigestVerify(pkey_.get(), "SHA256", data, ByteSpan(der, size_t(der_len)));
      OPENSSL_free(der);
      break;
    }
    case KeyType::kRsa: {
      const char* md = nullptr;
      if (alg == kSigRsaSha512) {
        md = "SHA512";
      } else if (alg == kSigRsaSha256) {
        md = "SHA256";
      } else if (alg == kSigRsaSha1) {
        if (!allow_sha1) {
          return InvalidArgumentError("signature algorithm ssh-rsa (SHA-1) is not accepted");
        }
        md = "SHA1";
      } else {
        return wrong_alg();
      }
      const size_t modlen = size_t(EVP_PKEY_get_size(pkey_.get()));
      if (sig.size() > modlen) return BadSignature("RSA signature longer than the modulus");
      // Like OpenSSH, accept a signature with its leading zero bytes dropped.
      Bytes padded(modlen - sig.size(), 0);
      padded.insert(padded.end(), sig.begin(), sig.end());
      ok = DigestVerify(pkey_.get(), md, data, padded);
      break;
    }
    case KeyType::kSkEd25519:
    case KeyType::kSkEcdsaP256:
      return UnimplementedError("verifying " + std::string(type_name()) + " signatures is not supported");
  }
  if (!ok) return UnauthenticatedError("signature does not verify");
  return OkStatus();
}

// ---- PrivateKey ----

struct PrivateKey::Impl {
  // Takes pkey and, for Ed25519 and ECDSA, prepares sign_template.
  static StatusOr<std::unique_ptr<Impl>> Create(KeyType type, UniquePkey pkey) {
    auto impl = std::make_unique<Impl>();
    impl->pkey = std::move(pkey);
    if (type == KeyType::kEd25519 || type == KeyType::kEcdsaP256) {
      ASSIGN_OR_RETURN(impl->sign_template,
                       NewSignTemplate(impl->pkey.get(), type == KeyType::kEd25519 ? nullptr : "SHA256"));
    }
    return impl;
  }

  UniquePkey pkey;
  // Ed25519 and ECDSA: see NewSignTemplate. Set at construction and only
  // read afterwards. It holds a reference to pkey, so the key is freed (and
  // wiped by OpenSSL) when both are gone.
  UniqueMdCtx sign_template;
};

PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

namespace {

constexpr std::string_view kPemBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kPemEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kAuthMagic{"openssh-key-v1\0", 15};
constexpr size_t kNoneBlockSize = 8;
constexpr size_t kPemLineWidth = 70;

Status GetBnParams(EVP_PKEY* pkey, std::initializer_list<const char*> names, std::vector<UniqueBn>* out) {
  for (const char* n : names) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, n, &bn) != 1) return OpenSslError(std::string("get ") + n);
    out->emplace_back(bn);
  }
  return OkStatus();
}

// The public blob of a key OpenSSL holds (for generated keys).
StatusOr<PublicKey> PublicFromPkey(KeyType type, EVP_PKEY* pkey) {
  ByteWriter w(1024);
  w.PutU32Prefixed(KeyTypeName(type));
  switch (type) {
    case KeyType::kEd25519: {
      uint8_t pk[32];
      size_t len = sizeof(pk);
      if (EVP_PKEY_get_raw_public_key(pkey, pk, &len) != 1 || len != 32) {
        return OpenSslError("EVP_PKEY_get_raw_public_key");
      }
      w.PutU32Prefixed(ByteSpan(pk, len));
      break;
    }
    case KeyType::kEcdsaP256: {
      uint8_t point[internal::kP256PointSize];
      size_t len = 0;
      if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len) != 1 ||
          len != sizeof(point)) {
        return OpenSslError("get EC public key");
      }
      w.PutU32Prefixed(internal::kCurveName);
      w.PutU32Prefixed(ByteSpan(point, len));
      break;
    }
    case KeyType::kRsa: {
      std::vector<UniqueBn> bns;
      RETURN_IF_ERROR(GetBnParams(pkey, {OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_N}, &bns));
      internal::PutMpintBn(&w, bns[0].get());
      internal::PutMpintBn(&w, bns[1].get());
      break;
    }
    default:
      return InvalidArgumentError("cannot hold a private key of this type");
  }
  return PublicKey::FromBlob(w.span());
}

// Reads the private half of one key (PROTOCOL.key §3, agent encoding) and
// builds the OpenSSL key; pub is the key from the public section.
StatusOr<UniquePkey> ParsePrivateFields(const PublicKey& pub, ByteReader* r) {
  auto bad = [&pub](std::string_view what) {
    return InvalidArgumentError("private key (" + std::string(pub.type_name()) + "): " + std::string(what));
  };
  ByteReader pubr(pub.body());
  switch (pub.type()) {
    case KeyType::kEd25519: {
      ByteSpan pk, sk, want_pk;
      if (!pubr.GetU32Prefixed(&want_pk)) return InternalError("corrupt key");
      if (!r->GetU32Prefixed(&pk, 32) || pk.size() != 32 || !r->GetU32Prefixed(&sk, 64) || sk.size() != 64) {
        return bad("bad Ed25519 fields");
      }
      // sk is seed || public key; all three copies of the public key must agree.
      if (!std::equal(pk.begin(), pk.end(), want_pk.begin()) ||
          !std::equal(sk.begin() + 32, sk.end(), want_pk.begin())) {
        return bad("private and public halves do not match");
      }
      UniquePkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, sk.data(), 32));
      if (!pkey) return OpenSslError("EVP_PKEY_new_raw_private_key");
      uint8_t derived[32];
      size_t len = sizeof(derived);
      if (EVP_PKEY_get_raw_public_key(pkey.get(), derived, &len) != 1 || len != 32 ||
          !std::equal(derived, derived + 32, want_pk.begin())) {
        return bad("private key does not derive the public key");
      }
      return pkey;
    }
    case KeyType::kEcdsaP256: {
      ByteSpan curve, point, d, want_curve, want_point;
      if (!pubr.GetU32Prefixed(&want_curve) || !pubr.GetU32Prefixed(&want_point)) {
        return InternalError("corrupt key");
      }
      if (!r->GetU32Prefixed(&curve, 64) || AsChars(curve) != internal::kCurveName ||
          !r->GetU32Prefixed(&point, internal::kP256PointSize) ||
          !internal::GetMpint(r, &d, internal::kP256ScalarSize) || d.empty()) {
        return bad("bad ECDSA fields");
      }
      if (!std::equal(point.begin(), point.end(), want_point.begin(), want_point.end())) {
        return bad("private and public halves do not match");
      }
      UniqueBn bn_d = internal::BnFromBytes(d);
      internal::UniqueParamBld bld(OSSL_PARAM_BLD_new());
      if (!bn_d || !bld ||
          !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
          !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, bn_d.get())) {
        return OpenSslError("OSSL_PARAM_BLD");
      }
      ASSIGN_OR_RETURN(UniquePkey pkey, internal::PkeyFromBuilder("EC", bld.get(), EVP_PKEY_KEYPAIR));
      internal::UniquePkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
      if (!check || EVP_PKEY_pairwise_check(check.get()) != 1) {
        ERR_clear_error();
        return bad("private key does not derive the public key");
      }
      return pkey;
    }
    case KeyType::kRsa: {
      ByteSpan n, e, d, iqmp, p, q;
      constexpr size_t kMax = kMaxRsaBits / 8;
      if (!internal::GetMpint(r, &n, kMax) || !internal::GetMpint(r, &e, internal::kMaxRsaExponentBytes) ||
          !internal::GetMpint(r, &d, kMax) || !internal::GetMpint(r, &iqmp, kMax) ||
          !internal::GetMpint(r, &p, kMax) || !internal::GetMpint(r, &q, kMax)) {
        return bad("bad RSA fields");
      }
      ByteWriter again;
      again.PutU32Prefixed(pub.type_name());
      internal::PutMpint(&again, e);
      internal::PutMpint(&again, n);
      if (again.data() != pub.blob()) return bad("private and public halves do not match");
      UniqueBn bn_n = internal::BnFromBytes(n), bn_e = internal::BnFromBytes(e),
               bn_d = internal::BnFromBytes(d), bn_iqmp = internal::BnFromBytes(iqmp),
               bn_p = internal::BnFromBytes(p), bn_q = internal::BnFromBytes(q);
      UniqueBn pq(BN_new()), dmp1(BN_new()), dmq1(BN_new()), p1(BN_new()), q1(BN_new()), chk(BN_new());
      internal::UniqueBnCtx bctx(BN_CTX_new());
      if (!bn_n || !bn_e || !bn_d || !bn_iqmp || !bn_p || !bn_q || !pq || !dmp1 || !dmq1 || !p1 || !q1 ||
          !chk || !bctx) {
        return OpenSslError("BN_new");
      }
      BN_set_flags(bn_d.get(), BN_FLG_CONSTTIME);
      BN_set_flags(bn_p.get(), BN_FLG_CONSTTIME);
      BN_set_flags(bn_q.get(), BN_FLG_CONSTTIME);
      // n = p*q and iqmp = q^-1 mod p, checked here because OpenSSL's own
      // pairwise check wants SP 800-56B sizes and refuses 1024-bit keys.
      if (!BN_mul(pq.get(), bn_p.get(), bn_q.get(), bctx.get()) || BN_cmp(pq.get(), bn_n.get()) != 0) {
        return bad("n != p*q");
      }
      if (!BN_mod_mul(chk.get(), bn_iqmp.get(), bn_q.get(), bn_p.get(), bctx.get()) || !BN_is_one(chk.get())) {
        return bad("iqmp is not q^-1 mod p");
      }
      if (!BN_sub(p1.get(), bn_p.get(), BN_value_one()) || !BN_sub(q1.get(), bn_q.get(), BN_value_one()) ||
          !BN_mod(dmp1.get(), bn_d.get(), p1.get(), bctx.get()) ||
          !BN_mod(dmq1.get(), bn_d.get(), q1.get(), bctx.get())) {
        return OpenSslError("BN_mod");
      }
      internal::UniqueParamBld bld(OSSL_PARAM_BLD_new());
      if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, bn_d.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR1, bn_p.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR2, bn_q.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1.get()) ||
          !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, bn_iqmp.get())) {
        return OpenSslError("OSSL_PARAM_BLD");
      }
      ASSIGN_OR_RETURN(UniquePkey pkey, internal::PkeyFromBuilder("RSA", bld.get(), EVP_PKEY_KEYPAIR));
      // d is not covered by the checks above: prove the key works.
      static constexpr uint8_t kProbe[] = "jitgate rsa key self-test";
      ASSIGN_OR_RETURN(Bytes sig, DigestSign(pkey.get(), "SHA256", kProbe));
      if (!DigestVerify(PublicKeyAccess::Pkey(pub), "SHA256", kProbe, sig)) {
        return bad("private exponent does not match the public key");
      }
      return pkey;
    }
    default:
      return UnimplementedError("private keys of type " + std::string(pub.type_name()) +
                                " are not supported");
  }
}

// Writes the private half (agent encoding) of key.
Status PutPrivateFields(const PublicKey& pub, EVP_PKEY* pkey, ByteWriter* w) {
  w->PutU32Prefixed(pub.type_name());
  ByteReader pubr(pub.body());
  switch (pub.type()) {
    case KeyType::kEd25519: {
      ByteSpan pk;
      if (!pubr.GetU32Prefixed(&pk)) return InternalError("corrupt key");
      crypto::SecretBytes sk(64);
      size_t len = 32;
      if (EVP_PKEY_get_raw_private_key(pkey, sk.data(), &len) != 1 || len != 32) {
        return OpenSslError("EVP_PKEY_get_raw_private_key");
      }
      std::memcpy(sk.data() + 32, pk.data(), 32);
      w->PutU32Prefixed(pk);
      w->PutU32Prefixed(sk.span());
      return OkStatus();
    }
    case KeyType::kEcdsaP256: {
      ByteSpan curve, point;
      if (!pubr.GetU32Prefixed(&curve) || !pubr.GetU32Prefixed(&point)) return InternalError("corrupt key");
      std::vector<UniqueBn> bns;
      RETURN_IF_ERROR(GetBnParams(pkey, {OSSL_PKEY_PARAM_PRIV_KEY}, &bns));
      w->PutU32Prefixed(curve);
      w->PutU32Prefixed(point);
      internal::PutMpintBn(w, bns[0].get());
      return OkStatus();
    }
    case KeyType::kRsa: {
      std::vector<UniqueBn> b;
      RETURN_IF_ERROR(GetBnParams(pkey,
                                  {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_D,
                                   OSSL_PKEY_PARAM_RSA_COEFFICIENT1, OSSL_PKEY_PARAM_RSA_FACTOR1,
                                   OSSL_PKEY_PARAM_RSA_FACTOR2},
                                  &b));
      for (const UniqueBn& bn : b) internal::PutMpintBn(w, bn.get());
      return OkStatus();
    }
    default:
      return InternalError("unsupported private key type");
  }
}

}  // namespace

StatusOr<PrivateKey> PrivateKey::Generate(KeyType type, int rsa_bits) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kEd25519:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case KeyType::kEcdsaP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kRsa:
      if (rsa_bits < kMinRsaGenerateBits || rsa_bits > kMaxRsaBits) {
        return InvalidArgumentError("RSA key size must be in [2048, 16384] bits");
      }
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(rsa_bits));
      break;
    default:
      return InvalidArgumentError("cannot generate " + std::string(KeyTypeName(type)) + " keys");
  }
  if (raw == nullptr) return OpenSslError("EVP_PKEY_Q_keygen");
  UniquePkey pkey(raw);
  PrivateKey key;
  ASSIGN_OR_RETURN(key.public_key_, PublicFromPkey(type, raw));
  ASSIGN_OR_RETURN(key.impl_, Impl::Create(type, std::move(pkey)));
  return key;
}

StatusOr<Bytes> PrivateKey::Sign(ByteSpan data, std::string_view rsa_alg) const {
  ByteWriter w(600);
  switch (type()) {
    case KeyType::kEd25519: {
      uint8_t sig[kEd25519SignatureSize];
      size_t len = sizeof(sig);
      RETURN_IF_ERROR(SignWithTemplate(impl_->sign_template.get(), data, sig, &len));
      if (len != sizeof(sig)) return InternalError("Ed25519 signature of unexpected length");
      w.PutU32Prefixed(kSigEd25519);
      w.PutU32Prefixed(ByteSpan(sig, len));
      break;
    }
    case KeyType::kEcdsaP256: {
      uint8_t der[kMaxP256DerSignatureSize];
      size_t len = sizeof(der);
      RETURN_IF_ERROR(SignWithTemplate(impl_->sign_template.get(), data, der, &len));
      const unsigned char* p = der;
      internal::UniqueEcdsaSig esig(d2i_ECDSA_SIG(nullptr, &p, long(len)));
      if (!esig) return OpenSslError("d2i_ECDSA_SIG");
      const BIGNUM *r = nullptr, *s = nullptr;
      ECDSA_SIG_get0(esig.get(), &r, &s);
      ByteWriter inner(80);
      internal::PutMpintBn(&inner, r);
      internal::PutMpintBn(&inner, s);
      w.PutU32Prefixed(kSigEcdsa);
      w.PutU32Prefixed(inner.span());
      break;
    }
    case KeyType::kRsa: {
      const char* md;
      if (rsa_alg == kSigRsaSha512) {
        md = "SHA512";
      } else if (rsa_alg == kSigRsaSha256) {
        md = "SHA256";
      } else {
        return InvalidArgumentError("RSA signature algorithm must be rsa-sha2-512 or rsa-sha2-256");
      }
      ASSIGN_OR_RETURN(Bytes sig, DigestSign(impl_->pkey.get(), md, data));
      w.PutU32Prefixed(rsa_alg);
      w.PutU32Prefixed(sig);
      break;
    }
    default:
      return InternalError("unsupported private key type");
  }
  return w.Release();
}

StatusOr<PrivateKey> PrivateKey::ParseOpenSsh(std::string_view text, std::string* comment) {
  if (text.size() > kMaxPrivateKeyFileSize) return InvalidArgumentError("private key file too large");
  // Collect the base64 between the armour lines.
  std::string b64;
  b64.reserve(text.size());  // no reallocation: no stray copies of the secret
  Bytes raw;
  Cleanup wipe = [&] {
    crypto::Cleanse(b64.data(), b64.size());
    crypto::Cleanse(raw.data(), raw.size());
  };
  {
    size_t pos = 0;
    int state = 0;  // 0 before BEGIN, 1 inside, 2 after END
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (state == 0) {
        if (line.empty()) continue;
        if (line != kPemBegin) {
          if (line.starts_with("-----BEGIN ")) {
            return InvalidArgumentError("not an OpenSSH private key (\"" + std::string(line) +
                                        "\"); convert it with ssh-keygen -p -f FILE");
          }
          return InvalidArgumentError("not an OpenSSH private key file");
        }
        state = 1;
      } else if (state == 1) {
        if (line == kPemEnd) {
          state = 2;
          continue;
        }
        for (char c : line) {
          const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '+' || c == '/' || c == '=';
          if (!ok) return InvalidArgumentError("private key: invalid character in base64");
        }
        b64.append(line);
      } else if (!line.empty()) {
        return InvalidArgumentError("private key: data after the END line");
      }
    }
    if (state != 2) return InvalidArgumentError("private key: missing END line");
  }
  if (!crypto::Base64Decode(b64, &raw)) return InvalidArgumentError("private key: bad base64");

  ByteReader r(raw);
  ByteSpan magic, cipher, kdf, kdfopts, pubblob, priv;
  uint32_t nkeys;
  if (!r.GetBytes(kAuthMagic.size(), &magic) || AsChars(magic) != kAuthMagic) {
    return InvalidArgumentError("private key: bad magic (not openssh-key-v1)");
  }
  if (!r.GetU32Prefixed(&cipher, 64) || !r.GetU32Prefixed(&kdf, 64) || !r.GetU32Prefixed(&kdfopts, 1024)) {
    return InvalidArgumentError("private key: bad header");
  }
  if (AsChars(cipher) != "none") {
    return FailedPreconditionError("private key is encrypted (cipher " + std::string(AsChars(cipher)) +
                                   ", kdf " + std::string(AsChars(kdf)) +
                                   "); only unencrypted keys are supported");
  }
  if (AsChars(kdf) != "none" || !kdfopts.empty()) {
    return InvalidArgumentError("private key: cipher none with a kdf");
  }
  if (!r.GetU32(&nkeys) || nkeys != 1) return InvalidArgumentError("private key: file must hold exactly one key");
  if (!r.GetU32Prefixed(&pubblob, kMaxKeyBlobSize)) return InvalidArgumentError("private key: bad public key");
  ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromBlob(pubblob));
  if (!r.GetU32Prefixed(&priv, kMaxPrivateKeyFileSize) || !r.Empty()) {
    return InvalidArgumentError("private key: bad private section");
  }
  if (priv.size() % kNoneBlockSize != 0) {
    return InvalidArgumentError("private key: private section is not a multiple of the block size");
  }
  ByteReader pr(priv);
  uint32_t check1, check2;
  std::string type;
  if (!pr.GetU32(&check1) || !pr.GetU32(&check2) || check1 != check2) {
    return InvalidArgumentError("private key: check integers differ (corrupt or wrong passphrase)");
  }
  if (!pr.GetU32PrefixedString(&type, 256) || type != pub.type_name()) {
    return InvalidArgumentError("private key: private key type does not match the public key");
  }
  ASSIGN_OR_RETURN(UniquePkey pkey, ParsePrivateFields(pub, &pr));
  std::string cmt;
  if (!pr.GetU32PrefixedString(&cmt, 4096)) return InvalidArgumentError("private key: bad comment");
  // Padding is 1, 2, 3, ... up to the block size.
  const ByteSpan pad = pr.Rest();
  if (pad.size() >= kNoneBlockSize) return InvalidArgumentError("private key: trailing bytes");
  for (size_t i = 0; i < pad.size(); ++i) {
    if (pad[i] != uint8_t(i + 1)) return InvalidArgumentError("private key: bad padding");
  }
  PrivateKey key;
  ASSIGN_OR_RETURN(key.impl_, Impl::Create(pub.type(), std::move(pkey)));
  key.public_key_ = std::move(pub);
  if (comment != nullptr) *comment = std::move(cmt);
  return key;
}

StatusOr<crypto::SecretBytes> PrivateKey::SerializeOpenSsh(std::string_view comment) const {
  if (comment.size() > 4096) return InvalidArgumentError("comment too long");
  // Reserve enough up front so that the buffers never reallocate and leave
  // unwiped copies of the key behind (RSA: six numbers of at most 2 KiB).
  constexpr size_t kReserve = 6 * (kMaxRsaBits / 8 + 5) + 4096 + 512;
  ByteWriter priv(kReserve);
  uint32_t check;
  RETURN_IF_ERROR(crypto::RandomBytes(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&check), 4)));
  priv.PutU32(check);
  priv.PutU32(check);
  RETURN_IF_ERROR(PutPrivateFields(public_key_, impl_->pkey.get(), &priv));
  priv.PutU32Prefixed(comment);
  for (uint8_t i = 1; priv.size() % kNoneBlockSize != 0; ++i) priv.PutU8(i);

  ByteWriter file(kReserve + kMaxKeyBlobSize + 64);
  file.PutBytes(kAuthMagic);
  file.PutU32Prefixed("none");
  file.PutU32Prefixed("none");
  file.PutU32Prefixed("");
  file.PutU32(1);
  file.PutU32Prefixed(public_key_.blob());
  file.PutU32Prefixed(priv.span());
  Bytes privbytes = priv.Release();
  Bytes raw = file.Release();
  Cleanup wipe = [&] {
    crypto::Cleanse(privbytes.data(), privbytes.size());
    crypto::Cleanse(raw.data(), raw.size());
  };

  const size_t b64len = (raw.size() + 2) / 3 * 4;
  const size_t lines = (b64len + kPemLineWidth - 1) / kPemLineWidth;
  const size_t total = kPemBegin.size() + 1 + b64len + lines + kPemEnd.size() + 1;
  crypto::SecretBytes b64(b64len);
  Base64Into(raw, b64.data(), /*pad=*/true);
  crypto::SecretBytes out(total);
  uint8_t* o = out.data();
  auto put = [&o](std::string_view s) {
    std::memcpy(o, s.data(), s.size());
    o += s.size();
  };
  put(kPemBegin);
  *o++ = '\n';
  for (size_t i = 0; i < b64len; i += kPemLineWidth) {
    const size_t n = std::min(kPemLineWidth, b64len - i);
    std::memcpy(o, b64.data() + i, n);
    o += n;
    *o++ = '\n';
  }
  put(kPemEnd);
  *o++ = '\n';
  return out;
}

// ---- Files ----
//
// These use POSIX calls directly rather than Env: the permission check must
// be made on the open descriptor (fstat), and the file must be created with
// its final mode, which Env's interface does not express.

namespace {

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write " + path);
    }
    data = data.subspan(size_t(n));
  }
  return OkStatus();
}

// Reads a whole small file from fd (at most max bytes) into SecretBytes.
StatusOr<crypto::SecretBytes> ReadSmallFile(int fd, size_t size, size_t max, const std::string& path) {
  if (size > max) return InvalidArgumentError(path + ": file too large");
  crypto::SecretBytes buf(size);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, buf.data() + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "read " + path);
    }
    if (n == 0) return DataLossError(path + ": file shrank while reading");
    got += size_t(n);
  }
  return buf;
}

}  // namespace

Status WritePrivateKeyFile(const std::string& path, const PrivateKey& key, std::string_view comment) {
  ASSIGN_OR_RETURN(crypto::SecretBytes text, key.SerializeOpenSsh(comment));
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return ErrnoToStatus(errno, "create " + tmp);
  Cleanup remove_tmp = [&tmp] { ::unlink(tmp.c_str()); };
  // The umask can only narrow 0600, but say it explicitly.
  if (::fchmod(fd.get(), 0600) != 0) return ErrnoToStatus(errno, "chmod " + tmp);
  RETURN_IF_ERROR(WriteAll(fd.get(), text.span(), tmp));
  if (::fsync(fd.get()) != 0) return ErrnoToStatus(errno, "fsync " + tmp);
  if (::close(fd.release()) != 0) return ErrnoToStatus(errno, "close " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoToStatus(errno, "rename " + tmp);
  remove_tmp.Cancel();
  const std::string dir = DirName(path);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) return ErrnoToStatus(errno, "fsync " + dir);
  return OkStatus();
}

StatusOr<PrivateKey> ReadPrivateKeyFile(const std::string& path, std::string* comment) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return ErrnoToStatus(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return PermissionDeniedError(path + ": not a regular file");
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return PermissionDeniedError(path + ": private key file is owned by uid " + std::to_string(st.st_uid) +
                                 ", not by this user");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 07777));
    return PermissionDeniedError(path + ": private key file has mode " + mode +
                                 ", which lets group or others access it; want 0600");
  }
  ASSIGN_OR_RETURN(crypto::SecretBytes text,
                   ReadSmallFile(fd.get(), size_t(st.st_size), kMaxPrivateKeyFileSize, path));
  StatusOr<PrivateKey> key = PrivateKey::ParseOpenSsh(AsChars(text.span()), comment);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

StatusOr<PublicKey> ReadPublicKeyFile(const std::string& path, std::string* comment) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return ErrnoToStatus(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + ": not a regular file");
  ASSIGN_OR_RETURN(crypto::SecretBytes text, ReadSmallFile(fd.get(), size_t(st.st_size), kMaxKeyLineSize, path));
  StatusOr<PublicKey> key = PublicKey::FromLine(AsChars(text.span()), comment);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

}  // namespace jitgate::ca
