// Certificate nonces from a per-thread pool of CSPRNG output. Internal to
// ca/; not a public API.
//
// A certificate nonce is public, but it must be unpredictable before the
// certificate is issued: it is what stops a chosen-prefix hash collision
// against the CA's signature. OpenSSL 3.0's RAND_bytes has a high fixed cost
// per call: about 1.9 us for 32 bytes on the bench machine, 2.4 us for
// 4 KiB, half of it the getpid() system call of its fork check; that is 7%
// of an Ed25519 signature. So each thread keeps a page of RAND_bytes output
// and hands out slices of it.
//
// Invariants of the pool:
//  - Every byte is handed out at most once: a slice is wiped in the pool
//    (OPENSSL_cleanse) as it is copied out, and the rest of the page is
//    wiped when the thread exits.
//  - A child process never hands out bytes its parent filled. The page is
//    mapped with MADV_WIPEONFORK, so the kernel gives every child, however
//    it was created (fork, _Fork, clone), a zeroed page, which reads as
//    empty. Where the kernel refuses the advice (before Linux 4.14), the
//    pool remembers the pid that filled it and checks getpid() on each call
//    instead (as OpenSSL's own DRBG does). This is BoringSSL's scheme
//    (crypto/fork_detect.c).
#ifndef JITGATE_CA_NONCE_H_
#define JITGATE_CA_NONCE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/base/status.h"

namespace jitgate::ca::internal {

// Requests longer than this bypass the pool and go to RAND_bytes directly.
inline constexpr size_t kMaxPooledNonce = 256;

// NoncePool hands out fresh random bytes, refilling a page-sized buffer with
// one RAND_bytes call when it runs dry. Not thread-safe: FillNonce keeps one
// per thread; tests make their own. Not copyable or movable (it owns a
// mapping).
class NoncePool {
 public:
  enum class ForkDetection {
    kWipeOnFork,  // the kernel zeroes the page in every child
    kPid,         // getpid() is compared on every call
    kNone,        // no page could be mapped: every call goes to RAND_bytes
  };

  // Maps the page. want is kWipeOnFork in production; kPid lets a test
  // exercise the fallback. If MADV_WIPEONFORK is refused the pool uses
  // kPid; if mmap fails, kNone.
  explicit NoncePool(ForkDetection want = ForkDetection::kWipeOnFork);
  // Wipes and unmaps the page.
  ~NoncePool();
  NoncePool(const NoncePool&) = delete;
  NoncePool& operator=(const NoncePool&) = delete;

  // Fill writes out.size() fresh random bytes to out. kInternal (and out
  // unspecified) if RAND_bytes fails; the pool is then left empty.
  Status Fill(std::span<uint8_t> out);

  ForkDetection fork_detection() const { return mode_; }

 private:
  struct Page;
  Status Refill();

  Page* page_ = nullptr;
  ForkDetection mode_ = ForkDetection::kNone;
};

// FillNonce fills out with fresh random bytes from the calling thread's
// NoncePool. Thread-safe (each thread has its own pool) and fork-safe.
Status FillNonce(std::span<uint8_t> out);

}  // namespace jitgate::ca::internal

#endif  // JITGATE_CA_NONCE_H_
