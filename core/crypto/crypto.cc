#include "core/crypto/crypto.h"

#include <isa-l/crc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <climits>
#include <cstring>

namespace jitgate::crypto {

namespace {

// RAII for the OpenSSL handles used here (house style: no naked frees).
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using UniqueEvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

Sha256Digest DigestParts(std::initializer_list<ByteSpan> parts) {
  // The low-level SHA-256 interface is deprecated in OpenSSL 3 but is the
  // same SHA-NI implementation without EVP's per-call allocation, which
  // costs more than hashing a 65-byte Merkle node or a 4 KiB leaf.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  SHA256_CTX c;
  SHA256_Init(&c);
  for (ByteSpan p : parts) {
    if (!p.empty()) SHA256_Update(&c, p.data(), p.size());
  }
  Sha256Digest out{};
  SHA256_Final(out.data(), &c);
#pragma GCC diagnostic pop
  return out;
}

}  // namespace

Sha256Digest Sha256(ByteSpan data) { return DigestParts({data}); }

Sha256Digest Sha256Prefixed(uint8_t prefix, ByteSpan data) {
  return DigestParts({ByteSpan(&prefix, 1), data});
}

Sha256Digest Sha256Node(uint8_t prefix, ByteSpan a, ByteSpan b) {
  return DigestParts({ByteSpan(&prefix, 1), a, b});
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) != 1) abort();
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }

void Sha256Hasher::Update(ByteSpan data) {
  if (!data.empty() && EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) abort();
}

Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != kSha256Size) abort();
  if (EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr) != 1) abort();
  return out;
}

void Cleanse(void* p, size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

void SecretBytes::Wipe() { Cleanse(data_.data(), data_.size()); }

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status RandomBytes(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    size_t n = std::min<size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, int(n)) != 1) {
      return InternalError("OpenSSL RAND_bytes failed");
    }
    done += n;
  }
  return OkStatus();
}

struct Ed25519PrivateKey::Impl {
  EVP_PKEY* pkey = nullptr;
  ~Impl() { EVP_PKEY_free(pkey); }
};

Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  SecretBytes seed(kEd25519SeedSize);
  Status s = RandomBytes(std::span<uint8_t>(seed.data(), seed.size()));
  if (!s.ok()) return s;
  return FromSeed(seed.span());
}

StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(ByteSpan seed) {
  if (seed.size() != kEd25519SeedSize) {
    return InvalidArgumentError("Ed25519 seed must be 32 bytes");
  }
  Ed25519PrivateKey key;
  key.seed_ = SecretBytes(seed);
  key.impl_ = std::make_unique<Impl>();
  key.impl_->pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (key.impl_->pkey == nullptr) return InternalError("OpenSSL rejected the Ed25519 seed");
  size_t len = kEd25519PublicKeySize;
  if (EVP_PKEY_get_raw_public_key(key.impl_->pkey, key.public_key_.data(), &len) != 1 ||
      len != kEd25519PublicKeySize) {
    return InternalError("OpenSSL could not derive the Ed25519 public key");
  }
  return key;
}

StatusOr<Ed25519Signature> Ed25519PrivateKey::Sign(ByteSpan message) const {
  if (impl_ == nullptr || impl_->pkey == nullptr) {
    return FailedPreconditionError("Ed25519 key is empty (moved from)");
  }
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return ResourceExhaustedError("out of memory");
  Ed25519Signature sig{};
  size_t sig_len = sig.size();
  bool ok = EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey) == 1 &&
            EVP_DigestSign(ctx.get(), sig.data(), &sig_len, message.data(), message.size()) == 1 &&
            sig_len == sig.size();
  if (!ok) return InternalError("Ed25519 signing failed");
  return sig;
}

bool Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != kEd25519PublicKeySize || signature.size() != kEd25519SignatureSize) {
    return false;
  }
  UniqueEvpPkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(),
                                                 public_key.size()));
  if (pkey == nullptr) return false;
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  return ctx != nullptr &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                          message.size()) == 1;
}

std::string Base64Encode(ByteSpan data) {
  std::string out;
  out.resize(4 * ((data.size() + 2) / 3));
  if (data.empty()) return out;
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          int(data.size()));
  out.resize(size_t(n));
  return out;
}

static int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool Base64Decode(std::string_view text, Bytes* out) {
  // Hand-checked rather than EVP_DecodeBlock, which accepts whitespace and
  // non-canonical trailing bits; signed formats need one encoding per value.
  if (text.size() % 4 != 0) return false;
  Bytes b;
  b.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=') {
        if (!last || j < 2) return false;
        v[j] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;  // data after padding
        v[j] = B64Value(c);
        if (v[j] < 0) return false;
      }
    }
    uint32_t triple = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    b.push_back(uint8_t(triple >> 16));
    if (pad < 2) b.push_back(uint8_t(triple >> 8));
    if (pad < 1) b.push_back(uint8_t(triple));
    // Canonical: the bits dropped by padding must be zero.
    if (pad == 1 && (triple & 0xff) != 0) return false;
    if (pad == 2 && (triple & 0xffff) != 0) return false;
  }
  *out = std::move(b);
  return true;
}

uint32_t Crc32cExtend(uint32_t crc, ByteSpan data) {
  // ISA-L's crc32_iscsi takes and returns the raw register; the standard
  // CRC-32C pre- and post-inverts it.
  uint32_t reg = ~crc;
  size_t done = 0;
  while (done < data.size()) {
    size_t n = std::min<size_t>(data.size() - done, INT_MAX);
    reg = crc32_iscsi(const_cast<unsigned char*>(data.data() + done), int(n), reg);
    done += n;
  }
  return ~reg;
}

uint32_t Crc32c(ByteSpan data) { return Crc32cExtend(0, data); }

}  // namespace jitgate::crypto
