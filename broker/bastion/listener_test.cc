#include "broker/bastion/listener.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <vector>
#include <thread>

#include "broker/bastion/privileges_internal.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::bastion {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kWait = std::chrono::seconds(20);

// Records the on_session_end callbacks (made on the listener thread).
class Ended {
 public:
  void Add(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    pids_.insert(pid);
    cv_.notify_all();
  }
  bool WaitFor(pid_t pid) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return pids_.count(pid) != 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<pid_t> pids_;
};

class ListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As in jitgated: stop signals blocked for the signalfd, SIGPIPE ignored.
    // Session processes must not inherit either.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &mask, &saved_mask_), 0);
    saved_pipe_ = ::signal(SIGPIPE, SIG_IGN);
    settings_.listen = "127.0.0.1:0";
    settings_.host_key = "/unused";
  }
  void TearDown() override {
    ::pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    ::signal(SIGPIPE, saved_pipe_);
  }

  ListenerOptions Options() {
    ListenerOptions o;
    o.self_exe = JITGATE_LISTENER_TEST_HELPER;
    o.config_path = "/etc/jitgate/test.yaml";
    o.on_session_end = [this](pid_t pid) { ended_.Add(pid); };
    return o;
  }

  std::unique_ptr<Listener> StartListener(ListenerOptions o) {
    StatusOr<std::unique_ptr<Listener>> l =
        Listener::Start(settings_, std::move(o));
    EXPECT_OK(l.status());
    return l.ok() ? std::move(*l) : nullptr;
  }

  // A listener with one session that switched to uid 65534 (nobody), like
  // a session process after DropPrivileges: *conn is the client's end and
  // *pid the session's. The listener thread inherits the capabilities of the
  // thread that starts it: started without CAP_KILL in effect, it is like a
  // non-root jitgated and may not signal that session (EPERM). Needs root.
  std::unique_ptr<Listener> StartWithoutKill(
      std::chrono::milliseconds stop_grace, UniqueFd* conn, pid_t* pid) {
    ListenerOptions o = Options();
    o.stop_grace = stop_grace;
    StatusOr<CapSets> caps = GetCaps();
    if (!caps.ok()) return nullptr;
    CapSets without = *caps;
    without.effective &= ~CapBit(CAP_KILL);
    if (!SetCaps(without).ok()) return nullptr;
    std::unique_ptr<Listener> l = StartListener(std::move(o));
    if (!SetCaps(*caps).ok() || l == nullptr) return nullptr;
    *conn = Connect(l->port());
    *pid = PidOf(ReadLine(conn->get()));
    Send(conn->get(), "become 65534\n");
    if (*pid <= 0 || ReadLine(conn->get()) != "ok") return nullptr;
    return l;
  }

  static UniqueFd Connect(uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) !=
        0) {
      return UniqueFd();
    }
    return fd;
  }

  // One line from fd without its newline; "<eof>" when the peer closed,
  // "<timeout>" when nothing came in time.
  static std::string ReadLine(int fd) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p = {fd, POLLIN, 0};
      if (left.count() <= 0 ||
          ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return "<timeout>";
      }
      char c;
      const ssize_t n = ::read(fd, &c, 1);
      if (n <= 0) return line.empty() ? "<eof>" : line;
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

  static void Send(int fd, const std::string& s) {
    ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

  // The pid from a "ready pid=N ..." line, or 0.
  static pid_t PidOf(const std::string& ready) {
    const size_t at = ready.find("pid=");
    return at == std::string::npos
               ? 0
               : static_cast<pid_t>(std::atoi(ready.c_str() + at + 4));
  }

  broker::BastionSettings settings_;
  Ended ended_;
  sigset_t saved_mask_;
  sighandler_t saved_pipe_ = SIG_DFL;
};

TEST_F(ListenerTest, SpawnsOneSessionProcessPerConnection) {
  std::unique_ptr<Listener> l = StartListener(Options());
  ASSERT_NE(l, nullptr);
  ASSERT_NE(l->port(), 0);
  EXPECT_EQ(l->live_sessions(), 0u);

  UniqueFd c = Connect(l->port());
  ASSERT_TRUE(c.valid());
  const std::string ready = ReadLine(c.get());
  // Its own argv, stdin /dev/null, no descriptor but 0-3, clean signal state.
  EXPECT_THAT(
      ready,
      HasSubstr(" config=/etc/jitgate/test.yaml stdin_null=1 extra_fds=0 "
                "sigmask_empty=1 sigpipe_default=1 nodelay=1"));
  const pid_t pid = PidOf(ready);
  ASSERT_GT(pid, 0) << ready;
  EXPECT_TRUE(l->IsSessionProcess(pid));
  EXPECT_FALSE(l->IsSessionProcess(::getpid()));
  EXPECT_EQ(l->live_sessions(), 1u);

  Send(c.get(), "exit 3\n");
  ASSERT_TRUE(ended_.WaitFor(pid));
  EXPECT_FALSE(l->IsSessionProcess(pid));
  EXPECT_EQ(l->live_sessions(), 0u);
  EXPECT_EQ(ReadLine(c.get()), "<eof>");
}

TEST_F(ListenerTest, MaxSessionsRefusesTheExtraConnection) {
  settings_.max_sessions = 1;
  std::unique_ptr<Listener> l = StartListener(Options());
  ASSERT_NE(l, nullptr);
  UniqueFd first = Connect(l->port());
  const pid_t pid = PidOf(ReadLine(first.get()));
  ASSERT_GT(pid, 0);

  UniqueFd extra = Connect(l->port());
  ASSERT_TRUE(extra.valid());
  EXPECT_EQ(ReadLine(extra.get()), "<eof>");  // closed at once, nothing spawned
  EXPECT_EQ(l->live_sessions(), 1u);

  // Once the first session ends there is room again.
  Send(first.get(), "exit 0\n");
  ASSERT_TRUE(ended_.WaitFor(pid));
  UniqueFd again = Connect(l->port());
  const pid_t pid2 = PidOf(ReadLine(again.get()));
  ASSERT_GT(pid2, 0);
  EXPECT_TRUE(l->IsSessionProcess(pid2));
}

// This process's descriptors that are pidfds, in order.
std::vector<int> Pidfds() {
  std::vector<int> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char target[64] = {};
    const std::string path = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == "anon_inode:[pidfd]") {
      out.push_back(std::atoi(e->d_name));
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A child forked a moment before holds a copy of every descriptor until it
// execs, so closing a reaped session's pidfd does not take it out of the
// epoll set. If the next session's pidfd gets the same number, the stale
// registration must not make the listener reap that live session.
TEST_F(ListenerTest, AStaleCopyOfAReapedPidfdDoesNotEndTheNextSession) {
  std::unique_ptr<Listener> l = StartListener(Options());
  ASSERT_NE(l, nullptr);
  UniqueFd a = Connect(l->port());
  const pid_t pa = PidOf(ReadLine(a.get()));
  ASSERT_GT(pa, 0);
  const std::vector<int> before = Pidfds();
  ASSERT_EQ(before.size(), 1u);
  const int slot = before[0];
  UniqueFd copy(::fcntl(slot, F_DUPFD_CLOEXEC, 1000));  // the forked child's copy
  ASSERT_TRUE(copy.valid());
  UniqueFd b(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(b.valid());
  Send(a.get(), "exit 0\n");
  ASSERT_TRUE(ended_.WaitFor(pa));
  // Leave one free number below `slot` (for the accepted connection) and
  // `slot` itself (for the next pidfd).
  std::vector<UniqueFd> fill;
  for (int fd = 0; fd < slot; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    fill.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(fill.back().get(), fd);
  }
  ASSERT_FALSE(fill.empty()) << "the reaped session's connection freed a number below its pidfd";
  fill.pop_back();
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(l->port());
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(b.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  const pid_t pb = PidOf(ReadLine(b.get()));
  ASSERT_GT(pb, 0);
  const std::vector<int> now = Pidfds();
  ASSERT_EQ(now.size(), 2u);
  ASSERT_EQ(now[0], slot) << "the next session's pidfd did not reuse the number";
  // The stale registration reports at once (level-triggered): give it time.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(l->IsSessionProcess(pb));
  EXPECT_EQ(l->live_sessions(), 1u);
  Send(b.get(), "exit 0\n");
  ASSERT_TRUE(ended_.WaitFor(pb));
  EXPECT_FALSE(l->IsSessionProcess(pb));
}

TEST_F(ListenerTest, StopTerminatesThenKillsLiveSessions) {
  ListenerOptions o = Options();
  o.stop_grace = std::chrono::milliseconds(200);
  std::unique_ptr<Listener> l = StartListener(std::move(o));
  ASSERT_NE(l, nullptr);
  const uint16_t port = l->port();
  UniqueFd polite = Connect(port);
  UniqueFd stubborn = Connect(port);
  const pid_t p1 = PidOf(ReadLine(polite.get()));
  const pid_t p2 = PidOf(ReadLine(stubborn.get()));
  ASSERT_GT(p1, 0);
  ASSERT_GT(p2, 0);
  Send(stubborn.get(), "ignore-term\n");
  ASSERT_EQ(ReadLine(stubborn.get()), "ok");
  EXPECT_EQ(l->live_sessions(), 2u);

  l->Stop();  // returns once both are reaped: SIGTERM for one, SIGKILL for the
              // other
  EXPECT_TRUE(ended_.WaitFor(p1));
  EXPECT_TRUE(ended_.WaitFor(p2));
  EXPECT_EQ(l->live_sessions(), 0u);
  EXPECT_FALSE(l->IsSessionProcess(p1));
  EXPECT_FALSE(l->IsSessionProcess(p2));
  EXPECT_EQ(ReadLine(polite.get()), "<eof>");
  EXPECT_EQ(ReadLine(stubborn.get()), "<eof>");
  EXPECT_FALSE(Connect(port).valid());  // no longer listening
  l->Stop();                            // idempotent
}

TEST_F(ListenerTest, StopShutsDownTheConnectionOfASessionItMayNotSignal) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: the session switches to another uid";
  UniqueFd c;
  pid_t pid = 0;
  std::unique_ptr<Listener> l =
      StartWithoutKill(std::chrono::seconds(30), &c, &pid);
  ASSERT_NE(l, nullptr);

  // SIGTERM fails with EPERM; the shut-down connection ends the session
  // (the helper exits at EOF) long before the grace period.
  const auto start = std::chrono::steady_clock::now();
  l->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(ended_.WaitFor(pid));
  EXPECT_EQ(l->live_sessions(), 0u);
  EXPECT_FALSE(l->IsSessionProcess(pid));
  EXPECT_EQ(ReadLine(c.get()), "<eof>");
}

TEST_F(ListenerTest,
       StopReturnsEvenIfAnUnsignalledSessionIgnoresItsConnection) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: the session switches to another uid";
  UniqueFd c;
  pid_t pid = 0;
  std::unique_ptr<Listener> l =
      StartWithoutKill(std::chrono::milliseconds(200), &c, &pid);
  ASSERT_NE(l, nullptr);
  Send(c.get(), "hang\n");
  ASSERT_EQ(ReadLine(c.get()), "ok");

  // SIGTERM and SIGKILL both fail; after the second grace period the
  // listener leaves the session, which no longer counts as one.
  l->Stop();
  EXPECT_EQ(l->live_sessions(), 0u);
  EXPECT_FALSE(l->IsSessionProcess(pid));
  // Left running: its PR_SET_PDEATHSIG did not reach it either, since the
  // kernel sends that signal with the dying thread's permissions. It is
  // this process's child now; this thread has CAP_KILL.
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST_F(ListenerTest, FailedExecEndsTheSession) {
  ListenerOptions o = Options();
  o.self_exe = "/nonexistent/jitgated";
  std::unique_ptr<Listener> l = StartListener(std::move(o));
  ASSERT_NE(l, nullptr);
  UniqueFd c = Connect(l->port());
  EXPECT_EQ(ReadLine(c.get()), "<eof>");
}

TEST_F(ListenerTest, BindsIpv6InBrackets) {
  settings_.listen = "[::1]:0";
  StatusOr<std::unique_ptr<Listener>> l = Listener::Start(settings_, Options());
  if (!l.ok()) GTEST_SKIP() << "no IPv6 loopback: " << l.status().message();
  EXPECT_NE((*l)->port(), 0);
}

TEST_F(ListenerTest, StartErrors) {
  ListenerOptions o = Options();
  o.config_path = "jitgate.yaml";
  EXPECT_THAT(Listener::Start(settings_, o),
              StatusIs(StatusCode::kInvalidArgument,
                       "bastion: the configuration path must be absolute, got "
                       "'jitgate.yaml'"));
  settings_.listen = "127.0.0.1";
  EXPECT_THAT(Listener::Start(settings_, Options()),
              StatusIs(StatusCode::kInvalidArgument,
                       "bastion.listen: expected host:port, got '127.0.0.1'"));

  // A port in use.
  settings_.listen = "127.0.0.1:0";
  std::unique_ptr<Listener> first = StartListener(Options());
  ASSERT_NE(first, nullptr);
  settings_.listen = "127.0.0.1:" + std::to_string(first->port());
  EXPECT_THAT(Listener::Start(settings_, Options()),
              StatusIs(StatusCode::kUnavailable, HasSubstr("cannot bind")));
}

}  // namespace
}  // namespace jitgate::bastion
