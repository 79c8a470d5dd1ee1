// RequestFields: everything an access request says, exactly as the approver
// sees it and as the decision is bound to (PRODUCT.md F1, F2).
//
// Identities are kept apart (STYLE.md §7): `user` is the human asking (for
// sudo the invoking user, PAM_RUSER / the real uid; for sshd the login user),
// `target_user` is the account to be used (sshd's login user, sudo's run-as
// user). The broker adds the kernel-attested caller (SO_PEERCRED) separately;
// it is never a wire field.
#ifndef JITGATE_CORE_WIRE_REQUEST_H_
#define JITGATE_CORE_WIRE_REQUEST_H_

#include <cstdint>
#include <string>

#include "core/crypto/crypto.h"

namespace jitgate::wire {

// Caps on each field, checked by the decoder before allocation.
inline constexpr size_t kMaxNameField = 256;      // service, users, host, tty
inline constexpr size_t kMaxAddressField = 256;   // remote address
inline constexpr size_t kMaxCommandField = 32 * 1024;
inline constexpr size_t kMaxCwdField = 4096;
inline constexpr size_t kMaxReasonField = 1024;
inline constexpr size_t kMaxPublicKeyField = 4096;  // "type base64", RSA up to 16384 bits

struct RequestFields {
  std::string service;      // PAM service name: "sshd", "sudo", "su", "bastion", ...
  std::string user;         // the requesting human
  std::string target_user;  // the account to be used
  std::string host;         // the host the access is for
  std::string remote_addr;  // client address where known (PAM_RHOST), else ""
  std::string tty;          // PAM_TTY, else ""
  std::string command;      // exact command line for sudo ("" for a login shell)
  std::string cwd;          // working directory for sudo, else ""
  std::string reason;       // the requester's reason, else ""
  // Certificate requests (`jitgate request`, PRODUCT.md F4): the key to
  // certify as one canonical OpenSSH line "type base64" (no comment), else "".
  std::string public_key;
  // The lifetime the requester asks for (approval and certificate), capped by
  // policy ttl and ca.max_ttl; 0 = the policy's ttl.
  uint32_t ttl_seconds = 0;

  friend bool operator==(const RequestFields&, const RequestFields&) = default;
};

// RequestDigest: SHA-256 over a canonical, unambiguous encoding of every
// field (a domain-separation label, then each string field u32-length-
// prefixed in the order above; then, only if public_key is not empty or
// ttl_seconds is not 0, public_key length-prefixed and ttl_seconds as u32,
// so that digests of requests without them are unchanged). A decision is bound to this digest: approving request X
// approves exactly these fields and nothing else.
crypto::Sha256Digest RequestDigest(const RequestFields& r);

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_REQUEST_H_
