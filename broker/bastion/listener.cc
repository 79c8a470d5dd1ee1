#include "broker/bastion/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <utility>

namespace jitgate::bastion {

namespace {

// The session process's end of the connection (bastion/session.h).
constexpr int kSessionFd = 3;
// Connections accepted per wake-up, so that exits are reaped under a flood.
constexpr int kAcceptBatch = 64;
constexpr int kMaxEvents = 64;

std::string Errno(int err) { return std::strerror(err); }

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(
      ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// "1.2.3.4:22" or "[::1]:22".
std::string FormatPeer(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {  // IPv4 on a dual-stack socket
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
      return std::string(host) + ":" + std::to_string(port);
    }
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

// Splits "host:port" / "[v6]:port" (already checked by the config parser,
// but Start may be given any settings).
bool SplitHostPort(const std::string& listen, std::string* host,
                   std::string* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
    return false;
  *host = listen.substr(0, colon);
  *port = listen.substr(colon + 1);
  if (host->front() == '[') {
    if (host->size() < 3 || host->back() != ']') return false;
    *host = host->substr(1, host->size() - 2);
  }
  for (char c : *port) {
    if (c < '0' || c > '9') return false;
  }
  return port->size() <= 5 && std::stoi(*port) <= 65535;
}

StatusOr<UniqueFd> BindListen(const std::string& listen, uint16_t* bound_port) {
  std::string host, port;
  if (!SplitHostPort(listen, &host, &port)) {
    return InvalidArgumentError("bastion.listen: expected host:port, got '" +
                                listen + "'");
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return InvalidArgumentError("bastion.listen: cannot resolve '" + host +
                                "': " + ::gai_strerror(rc));
  }
  Status last = InternalError("bastion.listen: no address for '" + host + "'");
  UniqueFd fd;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family,
                        ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol));
    if (!s) {
      last = ErrnoToStatus(errno, "bastion.listen: socket");
      continue;
    }
    int one = 1;
    (void)::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      const std::string what = "bastion.listen: cannot bind " + listen;
      last = errno == EADDRINUSE ? UnavailableError(what + ": " + Errno(errno))
                                 : ErrnoToStatus(errno, what);
      continue;
    }
    if (::listen(s.get(), SOMAXCONN) != 0) {
      last = ErrnoToStatus(errno, "bastion.listen: cannot listen on " + listen);
      continue;
    }
    fd = std::move(s);
    break;
  }
  ::freeaddrinfo(res);
  if (!fd) return last;
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoToStatus(errno, "bastion.listen: getsockname");
  }
  *bound_port =
      ss.ss_family == AF_INET6
          ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port)
          : ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  return fd;
}

// Runs in the forked child of a multi-threaded process: only
// async-signal-safe calls until execve, and no allocation.
[[noreturn]] void ExecSession(char* const argv[], int conn, int devnull,
                              pid_t parent, int max_fd,
                              const std::string& failure) {
  // Signal state survives execve where a handler does not: ignored signals
  // (jitgated ignores SIGPIPE) and the mask (jitgated blocks SIGTERM, SIGINT
  // and SIGHUP for its signalfd) would leave the session deaf to them.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) (void)::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Should jitgated die, its sessions get SIGTERM. The "parent" is this
  // listener thread, which outlives every child it reaps. A uid change
  // clears the setting: a session process that drops privileges must set it
  // again to keep it.
  (void)::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(127);

  // Move both descriptors above kSessionFd first, so that neither dup2
  // below can overwrite the other (either may be 0..3 by chance); F_DUPFD
  // and dup2 leave the copies without FD_CLOEXEC.
  const int c = ::fcntl(conn, F_DUPFD, kSessionFd + 1);
  const int n = ::fcntl(devnull, F_DUPFD, kSessionFd + 1);
  if (c < 0 || n < 0 || ::dup2(n, STDIN_FILENO) < 0 ||
      ::dup2(c, kSessionFd) < 0) {
    ::_exit(127);
  }
  // Whatever jitgated opened without O_CLOEXEC (a library's descriptor) must
  // not reach the process that handles network bytes.
  if (::close_range(kSessionFd + 1, UINT_MAX, 0) != 0) {
    for (int fd = kSessionFd + 1; fd < max_fd; ++fd)
      (void)::close(fd);  // before Linux 5.9
  }
  ::execve(argv[0], argv, environ);
  (void)!::write(STDERR_FILENO, failure.data(), failure.size());
  ::_exit(127);
}

}  // namespace

Listener::Listener(size_t max_sessions, ListenerOptions options)
    : max_sessions_(max_sessions), options_(std::move(options)) {
  argv_storage_ = {options_.self_exe, "--bastion-session", "--config",
                   options_.config_path};
  for (std::string& s : argv_storage_) argv_.push_back(s.data());
  argv_.push_back(nullptr);
  exec_failed_message_ =
      "jitgated: bastion: cannot execute " + options_.self_exe + "\n";
  rlimit rl = {};
  max_fd_ = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                ? static_cast<int>(std::min<rlim_t>(rl.rlim_cur, INT_MAX))
                : 65536;
}

StatusOr<std::unique_ptr<Listener>> Listener::Start(
    const broker::BastionSettings& settings, ListenerOptions options) {
  if (options.config_path.empty() || options.config_path[0] != '/') {
    return InvalidArgumentError(
        "bastion: the configuration path must be absolute, got '" +
        options.config_path + "'");
  }
  if (settings.max_sessions < 1) {
    return InvalidArgumentError("bastion.max_sessions must be at least 1");
  }
  std::unique_ptr<Listener> l(new Listener(
      static_cast<size_t>(settings.max_sessions), std::move(options)));
  StatusOr<UniqueFd> bound = BindListen(settings.listen, &l->port_);
  if (!bound.ok()) return bound.status();
  l->listen_fd_ = std::move(*bound);
  l->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!l->wake_fd_) return ErrnoToStatus(errno, "bastion: eventfd");
  l->epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!l->epoll_fd_) return ErrnoToStatus(errno, "bastion: epoll_create1");
  l->devnull_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!l->devnull_) return ErrnoToStatus(errno, "bastion: /dev/null");
  for (int watched : {l->listen_fd_.get(), l->wake_fd_.get()}) {
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = watched;
    if (::epoll_ctl(l->epoll_fd_.get(), EPOLL_CTL_ADD, watched, &ev) != 0) {
      return ErrnoToStatus(errno, "bastion: epoll_ctl");
    }
  }
  l->thread_ = std::thread([p = l.get()] { p->Loop(); });
  return l;
}

Listener::~Listener() { Stop(); }

void Listener::BeginStop() {
  const uint64_t one = 1;
  // An eventfd write of 1 fails only if the counter would overflow, which
  // also leaves it readable: the thread wakes either way (and a second wake
  // of a stopping thread changes nothing).
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void Listener::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (!thread_.joinable()) return;
  BeginStop();
  thread_.join();
}

bool Listener::IsSessionProcess(pid_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.count(pid) != 0;
}

size_t Listener::live_sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void Listener::Loop() {
  using Clock = std::chrono::steady_clock;
  bool stopping = false;
  bool killed = false;
  Clock::time_point deadline;
  epoll_event events[kMaxEvents];
  for (;;) {
    if (stopping && children_.empty()) return;
    int timeout_ms = -1;
    if (stopping) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now())
              .count();
      if (left <= 0 && killed) {
        Abandon();
        return;
      }
      if (left <= 0) {
        std::fprintf(stderr,
                     "jitgated: bastion: %zu session(s) still running after "
                     "%lld ms, killing\n",
                     children_.size(),
                     static_cast<long long>(options_.stop_grace.count()));
        SignalAll(SIGKILL);
        killed = true;
        // A SIGKILL is reaped at once; this second wait is for sessions
        // that could only have their connection shut down.
        deadline = Clock::now() + options_.stop_grace;
        continue;
      }
      timeout_ms = static_cast<int>(std::min<int64_t>(left, INT_MAX));
    }
    const int n = ::epoll_wait(epoll_fd_.get(), events, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Not expected with valid descriptors; stop rather than spin.
      std::fprintf(stderr, "jitgated: bastion: epoll_wait: %s; stopping\n",
                   Errno(errno).c_str());
      SignalAll(SIGKILL);
      // Reap without epoll: each pidfd becomes readable once its child exits.
      while (!children_.empty()) Reap(children_.begin()->first);
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_.get()) {
        uint64_t count;
        (void)!::read(wake_fd_.get(), &count, sizeof(count));
        if (stopping) continue;
        stopping = true;
        // Stop accepting first: queued connections are refused by the close.
        (void)::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(),
                          nullptr);
        listen_fd_.reset();
        deadline = Clock::now() + options_.stop_grace;
        SignalAll(SIGTERM);
      } else if (fd == listen_fd_.get()) {
        if (!stopping) AcceptAll();
      } else {
        Reap(fd);
      }
    }
  }
}

void Listener::AcceptAll() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage ss = {};
    socklen_t len = sizeof(ss);
    UniqueFd conn(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss),
                            &len, SOCK_CLOEXEC));
    if (!conn) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
          err == ECONNABORTED)
        return;
      // EMFILE and friends: the connection stays queued and the socket
      // readable; the next exit frees a descriptor. Log and let the loop
      // come back.
      std::fprintf(stderr, "jitgated: bastion: accept: %s\n",
                   Errno(err).c_str());
      return;
    }
    const std::string peer = FormatPeer(ss);
    size_t live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      live = live_.size();
    }
    if (live >= max_sessions_) {
      std::fprintf(stderr,
                   "jitgated: bastion refused connection from %s: max_sessions "
                   "(%zu) reached\n",
                   peer.c_str(), live);
      continue;  // conn closes here
    }
    int one = 1;
    (void)::setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Spawn(std::move(conn), peer);
  }
}

void Listener::Spawn(UniqueFd conn, const std::string& peer) {
  const pid_t parent = ::getpid();
  pid_t pid;
  {
    // The lock is held across fork and insert: the child may exec, connect
    // to the broker and send before fork returns here, and whoever then asks
    // IsSessionProcess about it waits for the lock and finds it in the set.
    // The child is ours and unreaped, so its pid cannot be reused until we
    // reap it. (The child's copy of the locked mutex is never touched: it
    // only execs.)
    std::lock_guard<std::mutex> lock(mu_);
    pid = ::fork();
    if (pid == 0) {
      ExecSession(argv_.data(), conn.get(), devnull_.get(), parent, max_fd_,
                  exec_failed_message_);
    }
    if (pid > 0) live_.insert(pid);
  }
  if (pid < 0) {
    std::fprintf(stderr,
                 "jitgated: bastion: cannot start a session for %s: fork: %s\n",
                 peer.c_str(), Errno(errno).c_str());
    return;
  }
  Child child;
  child.pid = pid;
  child.conn = std::move(conn);
  child.peer = peer;
  child.pidfd.reset(PidfdOpen(pid));
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = child.pidfd.get();
  if (!child.pidfd || ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD,
                                  child.pidfd.get(), &ev) != 0) {
    // Untrackable: end it now rather than keep a pid we could not reap in
    // order. Same ordering as Reap: out of the set, then waitpid.
    std::fprintf(stderr,
                 "jitgated: bastion: cannot track session pid %d from %s: %s\n",
                 pid, peer.c_str(), Errno(errno).c_str());
    (void)::kill(pid, SIGKILL);
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(pid);
    }
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  const int key = child.pidfd.get();
  children_.emplace(key, std::move(child));
}

void Listener::Reap(int pidfd) {
  auto it = children_.find(pidfd);
  if (it == children_.end()) return;
  Child child = std::move(it->second);
  children_.erase(it);
  // Security ordering (listener.h): the pid leaves the set while it still
  // names our zombie, and only then is released for reuse by waitid.
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(child.pid);
  }
  siginfo_t info = {};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
  } while (rc < 0 && errno == EINTR);
  std::string status;
  if (rc < 0) {
    status = "unknown: " + Errno(errno);
  } else if (info.si_code == CLD_EXITED) {
    status = std::to_string(info.si_status);
  } else {
    status = "signal " + std::to_string(info.si_status) +
             (info.si_code == CLD_DUMPED ? ", core dumped" : "");
  }
  std::fprintf(stderr,
               "jitgated: bastion session pid %d from %s ended (status %s)\n",
               child.pid, child.peer.c_str(), status.c_str());
  // Out of the epoll set explicitly: closing the pidfd does not remove it
  // while another copy of it is open, and a child forked a moment ago holds
  // copies of every descriptor until it execs. The stale registration would
  // go on reporting this exited child under its fd number, which the next
  // session's pidfd may then reuse: Reap would take that live session out
  // of the set and wait for it (seen as a session refused with "not a
  // bastion session" under load). Closing the last copy of the connection
  // closes it for the client.
  (void)::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, pidfd, nullptr);
  child.pidfd.reset();
  child.conn.reset();
  if (options_.on_session_end) options_.on_session_end(child.pid);
}

void Listener::SignalAll(int sig) {
  for (auto& [fd, child] : children_) {
    // A pidfd names exactly our child, even in a race with its exit.
    if (PidfdSendSignal(fd, sig) == 0 || errno == ESRCH) continue;
    if (errno != EPERM) {
      std::fprintf(stderr,
                   "jitgated: bastion: cannot signal session pid %d: %s\n",
                   child.pid, Errno(errno).c_str());
      continue;
    }
    // The session switched to bastion.run_as and jitgated is not root (the
    // packaged unit grants CAP_SETUID and CAP_SETGID, not CAP_KILL). Cut its
    // connection instead: libssh sees the end of the stream and the session
    // ends by itself, and is reaped as usual (a parent may always wait for
    // its child).
    if (!child.unsignalled) {
      std::fprintf(stderr,
                   "jitgated: bastion: session pid %d runs as another user "
                   "and may not be signalled; closing its connection\n",
                   child.pid);
      child.unsignalled = true;
    }
    (void)::shutdown(child.conn.get(), SHUT_RDWR);
  }
}

void Listener::Abandon() {
  std::fprintf(stderr,
               "jitgated: bastion: %zu session(s) still running %lld ms after "
               "SIGKILL, leaving them\n",
               children_.size(),
               static_cast<long long>(options_.stop_grace.count()));
  // Out of the live set: once the listener has stopped, no pid may be
  // trusted as a session's (listener.h). A child left here runs on: its
  // PR_SET_PDEATHSIG is sent with this thread's permissions, which it lacks
  // too. Its connection is shut down and its broker is going away; under
  // jitgated.service, KillMode=mixed ends what is left with SIGKILL.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [fd, child] : children_) live_.erase(child.pid);
  }
  children_.clear();
}

}  // namespace jitgate::bastion
