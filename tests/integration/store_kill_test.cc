// A real writer process (store_writer) is killed with SIGKILL at random
// moments, at least 50 times: every entry it acknowledged must be present
// with its exact bytes, the store must verify, and appending must resume.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/reader.h"
#include "store/store.h"
#include "store/verify.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::store {
namespace {

#ifndef STORE_WRITER_PATH
#error STORE_WRITER_PATH must name the store_writer binary
#endif

struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child Spawn(const std::string& dir, const std::string& tag) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(STORE_WRITER_PATH, "store_writer", dir.c_str(), tag.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads whatever the child printed; returns complete "ack" lines.
void Collect(int fd, std::string* buf, std::map<uint64_t, std::string>* acked) {
  char tmp[65536];
  while (true) {
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) break;
    buf->append(tmp, size_t(n));
  }
  size_t pos = 0;
  while (true) {
    size_t nl = buf->find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = buf->substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind("ack ", 0) == 0) {
      size_t sp = line.find(' ', 4);
      (*acked)[std::stoull(line.substr(4, sp - 4))] = line.substr(sp + 1);
    }
  }
  buf->erase(0, pos);
}

TEST(StoreKillTest, SigkillAtRandomMomentsLosesNothingAcknowledged) {
  jitgate::testing::TempDir tmp;
  std::string dir = tmp.path() + "/store";
  std::string key = tmp.path() + "/log.key";
  auto signer = note::Signer::FromSeed("kill.test/log", crypto::Sha256(AsBytes("kill")));
  ASSERT_OK(signer);
  ASSERT_OK(DefaultEnv()->WriteFileAtomically(key, signer->EncodeSignerKey().span(), 0600));
  ASSERT_OK(CreateStore(DefaultEnv(), dir, key));

  std::mt19937 rng(12345);
  std::map<uint64_t, std::string> acked;
  const int kRounds = 60;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Child c = Spawn(dir, "r" + std::to_string(round));
    // Wait for the child to open the store, then let it run a random while
    // (measured in acknowledged entries read, not in time) and kill it.
    std::string buf;
    int fl = fcntl(c.out, F_GETFL);
    size_t target = acked.size() + 1 + rng() % 400;
    fcntl(c.out, F_SETFL, fl | O_NONBLOCK);
    int spins = 0;
    while (acked.size() < target && spins < 200000) {
      Collect(c.out, &buf, &acked);
      int status;
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
        FAIL() << "writer exited early with status " << status;
      }
      // Extra randomness: sometimes kill before the target, mid-flight.
      if (rng() % 5000 == 0) break;
      ++spins;
      struct pollfd pfd = {c.out, POLLIN, 0};
      poll(&pfd, 1, 1);  // wait for output, not for time to pass
    }
    kill(c.pid, SIGKILL);
    int status;
    waitpid(c.pid, &status, 0);
    fcntl(c.out, F_SETFL, fl);
    Collect(c.out, &buf, &acked);  // lines written before the kill
    close(c.out);

    auto r = StoreReader::Open(dir);
    ASSERT_OK(r);
    for (const auto& [index, body] : acked) {
      if (index % 7 != uint64_t(round) % 7 && index + 50 < acked.rbegin()->first) continue;
      auto raw = (*r)->ReadEntry(index);
      ASSERT_OK(raw) << "acknowledged entry " << index << " missing";
      auto e = ParseEntry(*raw);
      ASSERT_OK(e);
      ASSERT_EQ(std::string(AsChars(e->body)), body) << "entry " << index;
    }
  }
  ASSERT_GT(acked.size(), 100u);
  // A final clean writer run recovers and appends; then everything verifies.
  Child c = Spawn(dir, "final");
  int status;
  kill(c.pid, SIGTERM);
  waitpid(c.pid, &status, 0);
  close(c.out);
  {
    StoreOptions o;
    auto st = Store::Open(dir, o);
    ASSERT_OK(st);
    ASSERT_OK((*st)->Append(3, AsBytes("{\"text\":\"after the campaign\"}")));
    ASSERT_OK((*st)->Close());
  }
  auto r = StoreReader::Open(dir);
  ASSERT_OK(r);
  for (const auto& [index, body] : acked) {
    auto raw = (*r)->ReadEntry(index);
    ASSERT_OK(raw);
    auto e = ParseEntry(*raw);
    ASSERT_OK(e);
    ASSERT_EQ(std::string(AsChars(e->body)), body);
  }
  VerifyReport rep = VerifyStore(dir, signer->GetVerifier(), VerifyOptions{});
  ASSERT_OK(rep.status) << rep.Summary();
  EXPECT_GE(rep.entries, acked.size());
}

}  // namespace
}  // namespace jitgate::store
