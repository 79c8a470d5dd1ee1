#include "store/note/keys.h"

#include <cstdio>
#include <utility>

#include "core/base/status_macros.h"
#include "store/note/note_internal.h"

namespace jitgate::note {
namespace {

constexpr std::string_view kSkeyPrefix = "PRIVATE+KEY+";
// base64 of a type byte plus a 32-byte key: 33 bytes, 44 characters, no '='.
constexpr size_t kTypedKeySize = 1 + 32;
constexpr size_t kTypedKeyB64Size = 44;

constexpr char kB64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Base64 of exactly 33 bytes into a caller-owned 44-byte buffer, and back.
// These exist so that an skey's seed never passes through a growing
// std::string or vector that could leave unwiped copies behind; 33 is a
// multiple of 3, so there is no padding and every encoding is canonical.
void EncodeTypedKey(const uint8_t in[kTypedKeySize], char out[kTypedKeyB64Size]) {
  for (size_t i = 0, o = 0; i < kTypedKeySize; i += 3, o += 4) {
    const uint32_t t = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    out[o] = kB64Alphabet[(t >> 18) & 63];
    out[o + 1] = kB64Alphabet[(t >> 12) & 63];
    out[o + 2] = kB64Alphabet[(t >> 6) & 63];
    out[o + 3] = kB64Alphabet[t & 63];
  }
}

[[nodiscard]] bool DecodeTypedKey(std::string_view in, uint8_t out[kTypedKeySize]) {
  if (in.size() != kTypedKeyB64Size) return false;
  for (size_t i = 0, o = 0; i < kTypedKeyB64Size; i += 4, o += 3) {
    uint32_t t = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int v = B64Value(in[i + k]);
      if (v < 0) return false;
      t = t << 6 | uint32_t(v);
    }
    out[o] = uint8_t(t >> 16);
    out[o + 1] = uint8_t(t >> 8);
    out[o + 2] = uint8_t(t);
  }
  return true;
}

std::string Hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return std::string(buf, 8);
}

// ParseHex8 accepts exactly 8 lower-case hex digits (the spec's canonical form).
bool ParseHex8(std::string_view s, uint32_t* out) {
  if (s.size() != 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = uint32_t(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = uint32_t(c - 'a' + 10);
    } else {
      return false;
    }
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

// Splits s at the first '+': *head gets the part before it, s the rest.
bool ChopPlus(std::string_view* s, std::string_view* head) {
  const size_t p = s->find('+');
  if (p == std::string_view::npos) return false;
  *head = s->substr(0, p);
  s->remove_prefix(p + 1);
  return true;
}

std::string AlgName(uint8_t alg) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", alg);
  return buf;
}

}  // namespace

bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  size_t pos = 0;
  while (pos < name.size()) {
    std::optional<char32_t> c = internal::DecodeUtf8(name, &pos);
    if (!c) return false;
    if (*c == '+' || *c < 0x20 || (*c >= 0x7f && *c <= 0x9f) || internal::IsUnicodeSpace(*c)) {
      return false;
    }
  }
  return true;
}

uint32_t KeyId(std::string_view name, uint8_t alg, ByteSpan public_key) {
  crypto::Sha256Hasher h;
  h.Update(AsBytes(name));
  const uint8_t sep[2] = {'\n', alg};
  h.Update(ByteSpan(sep, 2));
  h.Update(public_key);
  const crypto::Sha256Digest d = h.Finish();
  return LoadU32BE(d.data());
}

// ---- Signer ----

Signer::Signer(std::string name, crypto::Ed25519PrivateKey key)
    : name_(std::move(name)), key_(std::move(key)) {
  key_id_ = KeyId(name_, kAlgEd25519, key_.public_key());
}

StatusOr<Signer> Signer::Generate(std::string_view name) {
  if (!IsValidKeyName(name)) return InvalidArgumentError("invalid key name");
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key, crypto::Ed25519PrivateKey::Generate());
  return Signer(std::string(name), std::move(key));
}

StatusOr<Signer> Signer::FromSeed(std::string_view name, ByteSpan seed32) {
  if (!IsValidKeyName(name)) return InvalidArgumentError("invalid key name");
  if (seed32.size() != crypto::kEd25519SeedSize) {
    return InvalidArgumentError("Ed25519 seed is " + std::to_string(seed32.size()) +
                                " bytes, want 32");
  }
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key, crypto::Ed25519PrivateKey::FromSeed(seed32));
  return Signer(std::string(name), std::move(key));
}

StatusOr<crypto::Ed25519Signature> Signer::Sign(ByteSpan msg) const { return key_.Sign(msg); }

std::string Signer::VerifierKey() const { return GetVerifier().Encode(); }

Verifier Signer::GetVerifier() const {
  // Cannot fail: the name was validated and the key is 32 bytes.
  StatusOr<Verifier> v = Verifier::FromPublicKey(name_, kAlgEd25519, key_.public_key());
  assert(v.ok());
  return *std::move(v);
}

crypto::SecretBytes Signer::EncodeSignerKey() const {
  const std::string hex = Hex8(key_id_);
  const size_t total = kSkeyPrefix.size() + name_.size() + 1 + hex.size() + 1 + kTypedKeyB64Size;
  crypto::SecretBytes out(total);
  uint8_t* p = out.data();
  auto put = [&p](std::string_view s) {
    for (char c : s) *p++ = static_cast<uint8_t>(c);
  };
  put(kSkeyPrefix);
  put(name_);
  put("+");
  put(hex);
  put("+");
  uint8_t raw[kTypedKeySize];
  raw[0] = kAlgEd25519;
  const crypto::SecretBytes& seed = key_.seed();
  for (size_t i = 0; i < crypto::kEd25519SeedSize; ++i) raw[1 + i] = seed.data()[i];
  EncodeTypedKey(raw, reinterpret_cast<char*>(p));
  crypto::Cleanse(raw, sizeof(raw));
  return out;
}

StatusOr<Signer> ParseSignerKey(std::string_view skey) {
  if (skey.substr(0, kSkeyPrefix.size()) != kSkeyPrefix) {
    return InvalidArgumentError("signer key does not start with \"PRIVATE+KEY+\"");
  }
  std::string_view rest = skey.substr(kSkeyPrefix.size());
  std::string_view name, hex;
  if (!ChopPlus(&rest, &name) || !ChopPlus(&rest, &hex)) {
    return InvalidArgumentError("signer key does not have five '+'-separated fields");
  }
  if (!IsValidKeyName(name)) return InvalidArgumentError("signer key: invalid key name");
  uint32_t want_id;
  if (!ParseHex8(hex, &want_id)) {
    return InvalidArgumentError("signer key: key ID is not 8 lower-case hex digits");
  }
  uint8_t raw[kTypedKeySize];
  if (!DecodeTypedKey(rest, raw)) {
    crypto::Cleanse(raw, sizeof(raw));
    return InvalidArgumentError(
        "signer key: key is not canonical base64 of a type byte and a 32-byte seed");
  }
  if (raw[0] != kAlgEd25519) {
    const uint8_t alg = raw[0];
    crypto::Cleanse(raw, sizeof(raw));
    return InvalidArgumentError("signer key: unsupported key type " + AlgName(alg));
  }
  StatusOr<crypto::Ed25519PrivateKey> key =
      crypto::Ed25519PrivateKey::FromSeed(ByteSpan(raw + 1, crypto::kEd25519SeedSize));
  crypto::Cleanse(raw, sizeof(raw));
  if (!key.ok()) return key.status();
  // The skey's ID is the hash of the *public* key, so it can only be checked
  // after deriving it.
  Signer s(std::string(name), *std::move(key));
  if (s.key_id() != want_id) {
    return InvalidArgumentError("signer key: key ID " + std::string(hex) +
                                " does not match the key (want " + Hex8(s.key_id()) + ")");
  }
  return s;
}

// ---- Verifier ----

StatusOr<Verifier> Verifier::FromPublicKey(std::string_view name, uint8_t alg,
                                           ByteSpan public_key) {
  if (!IsValidKeyName(name)) return InvalidArgumentError("invalid key name");
  if (alg != kAlgEd25519 && alg != kAlgCosignatureV1) {
    return InvalidArgumentError("unsupported key type " + AlgName(alg));
  }
  if (public_key.size() != crypto::kEd25519PublicKeySize) {
    return InvalidArgumentError("Ed25519 public key is " + std::to_string(public_key.size()) +
                                " bytes, want 32");
  }
  Verifier v;
  v.name_ = std::string(name);
  v.alg_ = alg;
  for (size_t i = 0; i < public_key.size(); ++i) v.public_key_[i] = public_key[i];
  v.key_id_ = KeyId(v.name_, alg, public_key);
  return v;
}

StatusOr<Verifier> Verifier::Parse(std::string_view vkey) {
  std::string_view rest = vkey;
  std::string_view name, hex;
  if (!ChopPlus(&rest, &name) || !ChopPlus(&rest, &hex)) {
    return InvalidArgumentError("verifier key does not have three '+'-separated fields");
  }
  if (!IsValidKeyName(name)) return InvalidArgumentError("verifier key: invalid key name");
  uint32_t want_id;
  if (!ParseHex8(hex, &want_id)) {
    return InvalidArgumentError("verifier key: key ID is not 8 lower-case hex digits");
  }
  Bytes key;
  if (!crypto::Base64Decode(rest, &key)) {
    return InvalidArgumentError("verifier key: key is not canonical base64");
  }
  if (key.empty()) return InvalidArgumentError("verifier key: key is empty");
  const uint8_t alg = key[0];
  if (alg != kAlgEd25519 && alg != kAlgCosignatureV1) {
    return InvalidArgumentError("verifier key: unsupported key type " + AlgName(alg));
  }
  if (key.size() != kTypedKeySize) {
    return InvalidArgumentError("verifier key: Ed25519 public key is " +
                                std::to_string(key.size() - 1) + " bytes, want 32");
  }
  ASSIGN_OR_RETURN(Verifier v, FromPublicKey(name, alg, ByteSpan(key).subspan(1)));
  if (v.key_id_ != want_id) {
    return InvalidArgumentError("verifier key: key ID " + std::string(hex) +
                                " does not match the key (want " + Hex8(v.key_id_) + ")");
  }
  return v;
}

std::string Verifier::Encode() const {
  Bytes typed;
  typed.reserve(kTypedKeySize);
  typed.push_back(alg_);
  typed.insert(typed.end(), public_key_.begin(), public_key_.end());
  return name_ + "+" + Hex8(key_id_) + "+" + crypto::Base64Encode(typed);
}

bool Verifier::Verify(std::string_view text, ByteSpan sig) const {
  switch (alg_) {
    case kAlgEd25519:
      return crypto::Ed25519Verify(public_key_, AsBytes(text), sig);
    case kAlgCosignatureV1: {
      if (sig.size() != kCosignatureV1Size) return false;
      const uint64_t ts = LoadU64BE(sig.data());
      if (ts >> 63 != 0) return false;
      const std::string msg = CosignatureV1Message(ts, text);
      return crypto::Ed25519Verify(public_key_, AsBytes(msg), sig.subspan(8));
    }
    default:
      return false;
  }
}

std::string CosignatureV1Message(uint64_t timestamp, std::string_view checkpoint_text) {
  std::string msg = "cosignature/v1\ntime " + std::to_string(timestamp) + "\n";
  msg.append(checkpoint_text);
  return msg;
}

StatusOr<uint64_t> CosignatureV1Timestamp(ByteSpan sig) {
  if (sig.size() != kCosignatureV1Size) {
    return InvalidArgumentError("cosignature is " + std::to_string(sig.size()) +
                                " bytes, want 72");
  }
  const uint64_t ts = LoadU64BE(sig.data());
  if (ts >> 63 != 0) return InvalidArgumentError("cosignature timestamp is not below 2^63");
  return ts;
}

}  // namespace jitgate::note
