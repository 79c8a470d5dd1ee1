// Listener: the bastion's TCP listener inside jitgated (docs/bastion.md,
// "Process model and privileges").
//
// jitgated holds the CA and log keys, so it never parses a byte of SSH. A
// thread accepts connections on bastion.listen and starts, for each one, a
// fresh process
//
//   <self_exe> --bastion-session --config <config_path>
//
// with the connection as fd 3, /dev/null as stdin, jitgated's stdout and
// stderr, default signal dispositions, an empty signal mask and no other
// descriptor. A fresh exec (not a bare fork) means the session process starts
// with none of jitgated's memory: no key bytes to leak, and its own address
// space layout.
//
// The broker trusts a Unix-socket peer whose SO_PEERCRED pid is a live session
// process (IsSessionProcess) to file service "bastion" requests for other
// users. That is safe only while such a pid cannot belong to anybody else: a
// child's pid stays allocated until its parent reaps it, and the listener
// removes the pid from its set *before* reaping it. So a pid is in the set only
// while it names our unreaped child. It enters the set under the same lock
// as the fork, so a session process is in the set before anybody can ask
// about anything it sent.
#ifndef JITGATE_BROKER_BASTION_LISTENER_H_
#define JITGATE_BROKER_BASTION_LISTENER_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/config.h"
#include "core/base/status.h"
#include "core/base/unique_fd.h"

namespace jitgate::bastion {

struct ListenerOptions {
  // The program started per connection; jitgated passes its own binary.
  std::string self_exe = "/proc/self/exe";
  // Passed as --config; must be absolute (the child may run elsewhere).
  std::string config_path;
  // Stop() sends SIGTERM, then SIGKILL to sessions still alive after this.
  std::chrono::milliseconds stop_grace = std::chrono::seconds(5);
  // Called on the listener thread after a session process was removed from
  // the live set and reaped, with its pid (for tests). May be empty.
  std::function<void(pid_t)> on_session_end;
};

// Listener accepts bastion connections and runs one session process per
// connection. Unless stated otherwise, methods are for the owning thread.
class Listener {
 public:
  // Binds settings.listen ("host:port", "[v6]:port"; the host may be a name,
  // the first address that binds is used; port 0 picks a free port), and
  // starts the thread that accepts connections. At most settings.max_sessions
  // session processes run at once; a connection beyond that is closed at once.
  // Fails with INVALID_ARGUMENT for a bad address or relative config_path, and
  // with the errno-derived code when the address cannot be bound.
  static StatusOr<std::unique_ptr<Listener>> Start(
      const broker::BastionSettings& settings, ListenerOptions options);

  // Stop()s.
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Closes the listening socket, sends SIGTERM to every live session process,
  // waits up to options.stop_grace for them to exit, sends SIGKILL to the
  // rest, reaps them all and joins the thread. A session that switched to
  // another uid cannot be signalled by a non-root jitgated without CAP_KILL
  // (EPERM): its connection is shut down instead, which ends it. Sessions
  // still alive options.stop_grace after the SIGKILL are left running and
  // unreaped (and leave the live set), so that Stop() always returns.
  // Idempotent and thread-safe.
  void Stop();
  // What Stop() does, without waiting: the listener's thread goes on to
  // stop its sessions while the caller keeps serving them (jitgated's loop
  // records their ends; live_sessions() says when they are gone). Stop()
  // then joins. Idempotent and thread-safe.
  void BeginStop();

  // True while pid is a session process started by this listener that has
  // not yet been reaped (it may have exited). Thread-safe.
  bool IsSessionProcess(pid_t pid) const;

  // The number of session processes not yet reaped. Thread-safe.
  size_t live_sessions() const;

  // A configuration reload: the new bastion.max_sessions applies to the next
  // connection (sessions already running are never ended for it). Thread-safe.
  void SetMaxSessions(size_t n) { max_sessions_.store(n); }

  // The bound port (useful with "127.0.0.1:0"). Thread-safe.
  uint16_t port() const { return port_; }

 private:
  struct Child {
    pid_t pid = 0;
    UniqueFd pidfd;
    // The listener's copy of the connection: shutting it down ends a session
    // that may not be signalled (it is never read or written here). The
    // client sees the connection close once the session has exited and this
    // copy is closed too.
    UniqueFd conn;
    std::string peer;          // "addr:port" of the client, for the log
    bool unsignalled = false;  // a signal failed with EPERM
  };

  Listener(size_t max_sessions, ListenerOptions options);

  void Loop();
  void AcceptAll();
  void Spawn(UniqueFd conn, const std::string& peer);
  void Reap(int pidfd);
  void SignalAll(int sig);
  void Abandon();

  std::atomic<size_t> max_sessions_;
  const ListenerOptions options_;
  // argv for the child, built before any fork (only async-signal-safe calls
  // may run between fork and exec): argv_ points into argv_storage_.
  std::vector<std::string> argv_storage_;
  std::vector<char*> argv_;
  std::string exec_failed_message_;
  int max_fd_ =
      0;  // RLIMIT_NOFILE, for closing descriptors without close_range

  UniqueFd listen_fd_;
  UniqueFd wake_fd_;   // eventfd: Stop() wakes the thread
  UniqueFd epoll_fd_;  // listen_fd_, wake_fd_ and every child's pidfd
  UniqueFd devnull_;   // the children's stdin
  uint16_t port_ = 0;

  std::unordered_map<int, Child> children_;  // by pidfd; listener thread only

  mutable std::mutex mu_;
  std::unordered_set<pid_t> live_;  // GUARDED_BY(mu_)

  std::mutex stop_mu_;  // serializes Stop()
  std::thread thread_;  // GUARDED_BY(stop_mu_) once started
};

}  // namespace jitgate::bastion

#endif  // JITGATE_BROKER_BASTION_LISTENER_H_
