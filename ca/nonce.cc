#include "ca/nonce.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"

namespace jitgate::ca::internal {

// The pool's state lives in the page with the bytes, so that
// MADV_WIPEONFORK resets both: a zeroed page has filled == 0 and reads as
// empty, never as 4 KiB of zero nonces.
struct NoncePool::Page {
  uint32_t filled;  // 1 once bytes holds RAND_bytes output
  uint32_t used;    // bytes[0, used) are handed out and wiped
  pid_t pid;        // the process that filled the page (kPid)
  uint8_t bytes[4096 - 12];
};

NoncePool::NoncePool(ForkDetection want) {
  static_assert(sizeof(Page) == 4096, "one page on every Linux platform");
  void* m = ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return;  // kNone: still correct, only slower
  page_ = new (m) Page();
  mode_ = ForkDetection::kPid;
  if (want == ForkDetection::kWipeOnFork && ::madvise(m, sizeof(Page), MADV_WIPEONFORK) == 0) {
    mode_ = ForkDetection::kWipeOnFork;
  }
}

NoncePool::~NoncePool() {
  if (page_ == nullptr) return;
  OPENSSL_cleanse(page_, sizeof(Page));
  ::munmap(page_, sizeof(Page));
}

Status NoncePool::Refill() {
  Page* p = page_;
  p->filled = 0;  // stays empty if RAND_bytes fails
  Status s = crypto::RandomBytes(p->bytes);
  if (!s.ok()) {
    OPENSSL_cleanse(p->bytes, sizeof(p->bytes));
    return s;
  }
  p->used = 0;
  p->pid = mode_ == ForkDetection::kPid ? ::getpid() : 0;
  p->filled = 1;
  return OkStatus();
}

Status NoncePool::Fill(std::span<uint8_t> out) {
  if (page_ == nullptr || out.size() > kMaxPooledNonce) return crypto::RandomBytes(out);
  Page* p = page_;
  const bool ours = p->filled != 0 && (mode_ != ForkDetection::kPid || p->pid == ::getpid());
  if (!ours || sizeof(p->bytes) - p->used < out.size()) RETURN_IF_ERROR(Refill());
  uint8_t* slice = p->bytes + p->used;
  std::memcpy(out.data(), slice, out.size());
  OPENSSL_cleanse(slice, out.size());
  p->used += uint32_t(out.size());
  return OkStatus();
}

Status FillNonce(std::span<uint8_t> out) {
  thread_local NoncePool pool;
  return pool.Fill(out);
}

}  // namespace jitgate::ca::internal
