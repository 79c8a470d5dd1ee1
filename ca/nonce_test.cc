#include "ca/nonce.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "core/base/bytes.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::ca::internal {
namespace {

using Nonce = std::array<uint8_t, 32>;
using ForkDetection = NoncePool::ForkDetection;

// Enough 32-byte nonces to drain and refill a 4 KiB pool many times.
constexpr int kMany = 5000;

TEST(NonceTest, ManyNoncesAreDistinctAcrossRefills) {
  NoncePool pool;
  std::set<Nonce> seen;
  for (int i = 0; i < kMany; ++i) {
    Nonce n{};
    ASSERT_OK(pool.Fill(n));
    EXPECT_TRUE(seen.insert(n).second) << "nonce " << i << " repeats";
  }
}

// Odd lengths leave odd remainders; lengths above kMaxPooledNonce bypass the
// pool. No byte string may come back twice.
TEST(NonceTest, MixedLengthsAreDistinct) {
  NoncePool pool;
  std::set<Bytes> seen;
  for (int i = 0; i < 2000; ++i) {
    const size_t len = i % 50 == 0 ? kMaxPooledNonce + 1 + size_t(i) : 16 + size_t(i) % 41;
    Bytes b(len);
    ASSERT_OK(pool.Fill(b));
    EXPECT_TRUE(seen.insert(b).second) << "request " << i << " repeats";
  }
}

TEST(NonceTest, ThreadsGetDistinctNonces) {
  constexpr int kThreads = 4, kEach = 1000;
  std::vector<std::vector<Nonce>> got(kThreads, std::vector<Nonce>(kEach));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&got, t] {
      for (Nonce& n : got[size_t(t)]) {
        if (!FillNonce(n).ok()) n.fill(0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<Nonce> seen;
  for (const std::vector<Nonce>& v : got) {
    for (const Nonce& n : v) EXPECT_TRUE(seen.insert(n).second);
  }
  EXPECT_EQ(seen.size(), size_t(kThreads * kEach));
}

// Draws one nonce in a forked child (through fill) and returns it over a
// pipe. The child exits at once, without running the parent's destructors.
Nonce ChildNonce(const std::function<Status(std::span<uint8_t>)>& fill) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    Nonce n{};
    const bool ok = fill(n).ok();
    const bool written = ok && ::write(fds[1], n.data(), n.size()) == ssize_t(n.size());
    ::_exit(written ? 0 : 1);
  }
  ::close(fds[1]);
  Nonce n{};
  EXPECT_EQ(::read(fds[0], n.data(), n.size()), ssize_t(n.size()));
  ::close(fds[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return n;
}

// The parent fills its pool, forks, and draws the next nonce; the child
// draws one too. Without fork detection both would take the same slice of
// the inherited page. Checked several times, since two nonces could also
// differ by luck of where each process was in the page.
void ExpectForkGetsFreshBytes(const std::function<Status(std::span<uint8_t>)>& fill) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Nonce before{};
    ASSERT_OK(fill(before));  // the pool is now filled in the parent
    const Nonce child = ChildNonce(fill);
    Nonce parent_next{};
    ASSERT_OK(fill(parent_next));
    EXPECT_NE(child, parent_next) << "the child reused the parent's pool";
    EXPECT_NE(child, before);
    EXPECT_NE(child, Nonce{}) << "the child handed out a wiped (zero) page";
  }
}

TEST(NonceTest, ForkedChildDoesNotReuseParentBytesWipeOnFork) {
  NoncePool pool(ForkDetection::kWipeOnFork);
  if (pool.fork_detection() != ForkDetection::kWipeOnFork) {
    GTEST_SKIP() << "the kernel refuses MADV_WIPEONFORK";
  }
  ExpectForkGetsFreshBytes([&pool](std::span<uint8_t> out) { return pool.Fill(out); });
}

TEST(NonceTest, ForkedChildDoesNotReuseParentBytesPid) {
  NoncePool pool(ForkDetection::kPid);
  ASSERT_EQ(pool.fork_detection(), ForkDetection::kPid);
  ExpectForkGetsFreshBytes([&pool](std::span<uint8_t> out) { return pool.Fill(out); });
}

// The per-thread pool that IssueCertificate uses.
TEST(NonceTest, ForkedChildDoesNotReuseParentBytesFillNonce) {
  ExpectForkGetsFreshBytes(FillNonce);
}

}  // namespace
}  // namespace jitgate::ca::internal
