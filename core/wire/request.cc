#include "core/wire/request.h"

#include "core/base/bytes.h"

namespace jitgate::wire {

crypto::Sha256Digest RequestDigest(const RequestFields& r) {
  ByteWriter w;
  w.PutU32Prefixed(std::string_view("jitgate request digest v1"));
  for (const std::string* f : {&r.service, &r.user, &r.target_user, &r.host, &r.remote_addr,
                               &r.tty, &r.command, &r.cwd, &r.reason}) {
    w.PutU32Prefixed(*f);
  }
  if (!r.public_key.empty() || r.ttl_seconds != 0) {
    w.PutU32Prefixed(r.public_key);
    w.PutU32(r.ttl_seconds);
  }
  return crypto::Sha256(w.span());
}

}  // namespace jitgate::wire
