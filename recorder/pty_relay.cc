#include "recorder/pty_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <utmp.h>

#include <array>
#include <string>
#include <utility>

#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace jitgate::recorder {
namespace {

// The write end of the current RunRelay's self-pipe; the handler only
// writes the signal number there, so the loop sees signals in poll().
volatile sig_atomic_t g_sig_pipe_w = -1;

void OnSignal(int sig) {
  int saved = errno;
  unsigned char c = static_cast<unsigned char>(sig);
  int fd = g_sig_pipe_w;
  if (fd >= 0) (void)!::write(fd, &c, 1);
  errno = saved;
}

constexpr std::array<int, 4> kCaught = {SIGCHLD, SIGWINCH, SIGHUP, SIGTERM};

// Installs our handlers (and ignores SIGPIPE) for the guard's lifetime.
class SignalGuard {
 public:
  explicit SignalGuard(int pipe_w) {
    g_sig_pipe_w = pipe_w;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < kCaught.size(); ++i)
      sigaction(kCaught[i], &sa, &old_[i]);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe_);
  }
  ~SignalGuard() {
    for (size_t i = 0; i < kCaught.size(); ++i)
      sigaction(kCaught[i], &old_[i], nullptr);
    sigaction(SIGPIPE, &old_pipe_, nullptr);
    g_sig_pipe_w = -1;
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  std::array<struct sigaction, kCaught.size()> old_{};
  struct sigaction old_pipe_ {};
};

// Puts a tty in raw mode and restores its settings on destruction.
class RawMode {
 public:
  RawMode() = default;
  ~RawMode() { Restore(); }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  Status Enter(int fd, const termios& saved) {
    termios raw = saved;
    cfmakeraw(&raw);
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0)
      return ErrnoToStatus(errno, "tcsetattr(raw)");
    fd_ = fd;
    saved_ = saved;
    return OkStatus();
  }
  void Restore() {
    if (fd_ >= 0) (void)tcsetattr(fd_, TCSADRAIN, &saved_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  termios saved_{};
};

Status SetFlags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    return ErrnoToStatus(errno, "fcntl(O_NONBLOCK)");
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return ErrnoToStatus(errno, "fcntl(FD_CLOEXEC)");
  return OkStatus();
}

Status MakePipe(UniqueFd* r, UniqueFd* w) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  r->reset(p[0]);
  w->reset(p[1]);
  return OkStatus();
}

// Writes all of data to a descriptor we do not own (the user's terminal or
// pipe), which may be blocking or not.
Status WriteAll(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        (void)poll(&p, 1, -1);
        continue;
      }
      return ErrnoToStatus(errno, "write");
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

class Relay {
 public:
  explicit Relay(const RelayOptions& o) : o_(o) {}

  StatusOr<RelayResult> Run();

 private:
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now() - start_)
        .count();
  }
  Status Emit(Record r);
  Status Start();
  // Reads once from src, records it as kOutput and writes it to dst.
  // Returns false at EOF / EIO / EAGAIN.
  StatusOr<bool> PumpOutput(UniqueFd* src, int dst, Stream stream = Stream::kOutput);
  Status ReadInput();
  Status WriteInput();
  Status HandleSignals();
  Status Resize();
  void TryReap();
  void HangUp(int sig);
  void KillAndReap();
  Status EndOnRequest(const std::string& line);
  Status Loop();

  const RelayOptions& o_;
  std::chrono::steady_clock::time_point start_;
  RelayResult result_;
  UniqueFd sig_r_, sig_w_;
  UniqueFd master_;                 // use_pty: input dst and output src
  UniqueFd child_in_;               // pipes: input dst
  UniqueFd child_out_, child_err_;  // pipes: output srcs
  bool in_open_ = true;
  Bytes pending_in_;  // read from in_fd, not yet written to the child
  size_t pending_off_ = 0;
  bool reaped_ = false;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_flush_;
  std::chrono::steady_clock::time_point last_tick_;
  bool in_is_tty_ = false;
  bool have_tio_ = false;
  termios saved_tio_{};  // in_fd's settings before raw mode
  // Ending on request: when the child is killed unless it has exited.
  std::optional<std::chrono::steady_clock::time_point> end_kill_at_;
  bool end_killed_ = false;
};

Status Relay::Emit(Record r) {
  if (r.stream == Stream::kInput) result_.bytes_in += r.data.size();
  if (r.stream == Stream::kOutput || r.stream == Stream::kError) {
    result_.bytes_out += r.data.size();
  }
  dirty_ = true;
  if (!o_.on_record) return OkStatus();
  return o_.on_record(std::move(r));
}

Status Relay::Start() {
  std::vector<char*> argv;
  for (const std::string& a : o_.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  UniqueFd slave, in_r, out_w, err_w;
  if (o_.use_pty) {
    termios tio{};
    winsize ws{};
    termios* tiop = nullptr;
    winsize* wsp = nullptr;
    if (have_tio_) {  // as it was before we made it raw
      tio = saved_tio_;
      tiop = &tio;
    }
    if (in_is_tty_ && ioctl(o_.in_fd, TIOCGWINSZ, &ws) == 0) {
      wsp = &ws;
    } else if (o_.cols > 0 && o_.rows > 0) {
      ws.ws_col = o_.cols;
      ws.ws_row = o_.rows;
      wsp = &ws;
    }
    if (wsp != nullptr && (wsp->ws_col == 0 || wsp->ws_row == 0))
      wsp = nullptr;  // unknown
    int m = -1, s = -1;
    if (openpty(&m, &s, nullptr, tiop, wsp) != 0)
      return ErrnoToStatus(errno, "openpty");
    master_.reset(m);
    slave.reset(s);
    RETURN_IF_ERROR(SetFlags(master_.get()));
    if (wsp != nullptr)
      RETURN_IF_ERROR(
          Emit(Record{Stream::kResize, Now(), {}, wsp->ws_col, wsp->ws_row}));
  } else {
    RETURN_IF_ERROR(MakePipe(&in_r, &child_in_));
    RETURN_IF_ERROR(MakePipe(&child_out_, &out_w));
    RETURN_IF_ERROR(MakePipe(&child_err_, &err_w));
    RETURN_IF_ERROR(SetFlags(child_in_.get()));
    RETURN_IF_ERROR(SetFlags(child_out_.get()));
    RETURN_IF_ERROR(SetFlags(child_err_.get()));
  }

  pid_t pid = fork();
  if (pid < 0) return ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig : kCaught) sigaction(sig, &dfl, nullptr);
    sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // jitgate-rec may be setgid to the broker's recorder group: the
    // session never keeps that group (nor can it get it back).
    gid_t gid = getgid();
    if (getegid() != gid && setresgid(gid, gid, gid) != 0) _exit(127);
    if (o_.use_pty) {
      if (login_tty(slave.get()) != 0) _exit(127);
    } else {
      if (dup2(in_r.get(), 0) < 0 || dup2(out_w.get(), 1) < 0 ||
          dup2(err_w.get(), 2) < 0)
        _exit(127);
    }
    execv(o_.path.c_str(), argv.data());
    // strerrordesc_np, not strerror: no locale, no allocation, since jitgate-rec
    // forks with its recording thread running (async-signal-safe calls only).
    int err = errno;
    const char* msg = strerrordesc_np(err);
    if (msg == nullptr) msg = "unknown error";
    (void)!::write(2, "jitgate-rec: ", 13);
    (void)!::write(2, o_.path.data(), o_.path.size());
    (void)!::write(2, ": ", 2);
    (void)!::write(2, msg, strlen(msg));
    (void)!::write(2, "\n", 1);
    _exit(127);
  }
  result_.pid = pid;
  return OkStatus();
}

StatusOr<bool> Relay::PumpOutput(UniqueFd* src, int dst, Stream stream) {
  uint8_t buf[kRelayBufferSize];
  // A pty's read hands over at most its line discipline's buffer (4 KiB):
  // read on while more is there, so that one record, one queue entry and
  // one write carry up to the whole buffer. A later EOF or EIO is read
  // again on the next call.
  size_t n = 0;
  bool closed = false;
  while (n < sizeof(buf)) {
    ssize_t r = ::read(src->get(), buf + n, sizeof(buf) - n);
    if (r > 0) {
      n += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) break;
    closed = true;  // EOF, or EIO: the pty's slave side is closed
    break;
  }
  if (n == 0) {
    if (closed) src->reset();
    return false;
  }
  RETURN_IF_ERROR(Emit(Record{stream, Now(), Bytes(buf, buf + n), 0, 0}));
  Status s = WriteAll(dst, buf, n);
  if (!s.ok()) {
    // The user has gone (EPIPE, EIO): hang up the session, keep recording
    // what it says until it exits.
    HangUp(SIGHUP);
  }
  return true;
}

Status Relay::ReadInput() {
  uint8_t buf[kRelayBufferSize];
  ssize_t n = ::read(o_.in_fd, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return OkStatus();
  if (n <= 0) {
    in_open_ = false;
    if (o_.use_pty) {
      if (in_is_tty_) HangUp(SIGHUP);  // the terminal hung up
    } else if (pending_in_.empty()) {
      child_in_.reset();  // EOF to the child
    }
    return OkStatus();
  }
  RETURN_IF_ERROR(
      Emit(Record{Stream::kInput, Now(), Bytes(buf, buf + n), 0, 0}));
  pending_in_.assign(buf, buf + n);
  pending_off_ = 0;
  return WriteInput();
}

Status Relay::WriteInput() {
  int dst = o_.use_pty ? master_.get() : child_in_.get();
  if (dst < 0) {
    pending_in_.clear();
    return OkStatus();
  }
  while (pending_off_ < pending_in_.size()) {
    ssize_t w = ::write(dst, pending_in_.data() + pending_off_,
                        pending_in_.size() - pending_off_);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return OkStatus();  // poll for POLLOUT
      // The child closed its input (EPIPE): drop what it will never read.
      pending_in_.clear();
      if (!o_.use_pty) child_in_.reset();
      return OkStatus();
    }
    pending_off_ += static_cast<size_t>(w);
  }
  pending_in_.clear();
  pending_off_ = 0;
  if (!in_open_ && !o_.use_pty) child_in_.reset();
  return OkStatus();
}

Status Relay::Resize() {
  if (!o_.use_pty || !in_is_tty_ || !master_) return OkStatus();
  winsize ws{};
  if (ioctl(o_.in_fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0)
    return OkStatus();
  (void)ioctl(master_.get(), TIOCSWINSZ, &ws);
  return Emit(Record{Stream::kResize, Now(), {}, ws.ws_col, ws.ws_row});
}

void Relay::TryReap() {
  if (reaped_ || result_.pid <= 0) return;
  int status = 0;
  pid_t r = waitpid(result_.pid, &status, WNOHANG);
  if (r != result_.pid) return;
  reaped_ = true;
  if (WIFSIGNALED(status)) {
    result_.signaled = true;
    result_.term_signal = WTERMSIG(status);
  } else {
    result_.exit_status = WEXITSTATUS(status);
  }
}

void Relay::HangUp(int sig) {
  if (reaped_ || result_.pid <= 0) return;
  // With a pty the child leads its own session and process group.
  if (o_.use_pty) (void)kill(-result_.pid, sig);
  (void)kill(result_.pid, sig);
}

void Relay::KillAndReap() {
  master_.reset();
  child_in_.reset();
  child_out_.reset();
  child_err_.reset();
  HangUp(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(o_.kill_grace_ms);
  while (!reaped_ && std::chrono::steady_clock::now() < deadline) {
    TryReap();
    if (!reaped_) (void)poll(nullptr, 0, 10);
  }
  if (reaped_) return;
  HangUp(SIGKILL);
  int status = 0;
  while (waitpid(result_.pid, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

Status Relay::EndOnRequest(const std::string& line) {
  result_.ended_on_request = true;
  end_kill_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.end_grace_ms);
  // Nothing more the user types reaches the session.
  in_open_ = false;
  pending_in_.clear();
  pending_off_ = 0;
  if (!o_.use_pty) child_in_.reset();
  // The user's terminal is in raw mode with a pty: CR LF, not LF.
  const std::string text = o_.use_pty ? "\r\n" + line + "\r\n" : line + "\n";
  const int dst = o_.use_pty ? o_.out_fd : o_.err_fd;
  Bytes bytes(text.begin(), text.end());
  RETURN_IF_ERROR(Emit(Record{Stream::kOutput, Now(), bytes, 0, 0}));
  (void)WriteAll(dst, bytes.data(), bytes.size());  // the user may be gone
  HangUp(SIGHUP);
  return OkStatus();
}

Status Relay::HandleSignals() {
  unsigned char sigs[64];
  ssize_t n;
  while ((n = ::read(sig_r_.get(), sigs, sizeof(sigs))) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      switch (sigs[i]) {
        case SIGCHLD:
          TryReap();
          break;
        case SIGWINCH:
          RETURN_IF_ERROR(Resize());
          break;
        case SIGHUP:
        case SIGTERM:
          HangUp(SIGHUP);
          break;
      }
    }
  }
  return OkStatus();
}

Status Relay::Loop() {
  last_flush_ = std::chrono::steady_clock::now();
  last_tick_ = last_flush_;
  while (true) {
    if (reaped_) {
      // Drain what the child left; a background process still holding the
      // pty or pipes is read only as far as is available now.
      if (master_) {
        while (true) {
          ASSIGN_OR_RETURN(bool more, PumpOutput(&master_, o_.out_fd));
          if (!more) break;
        }
      }
      while (child_out_) {
        ASSIGN_OR_RETURN(bool more, PumpOutput(&child_out_, o_.out_fd));
        if (!more) break;
      }
      while (child_err_) {
        ASSIGN_OR_RETURN(bool more, PumpOutput(&child_err_, o_.err_fd, Stream::kError));
        if (!more) break;
      }
      return OkStatus();
    }

    std::vector<pollfd> fds;
    enum Slot { kSig, kIn, kMaster, kOut, kErr, kChildIn, kExtra, kSlots };
    std::array<int, kSlots> at;
    at.fill(-1);
    auto add = [&](Slot s, int fd, short ev) {
      at[s] = static_cast<int>(fds.size());
      fds.push_back(pollfd{fd, ev, 0});
    };
    add(kSig, sig_r_.get(), POLLIN);
    bool pending = !pending_in_.empty();
    if (in_open_ && !pending) add(kIn, o_.in_fd, POLLIN);
    if (master_)
      add(kMaster, master_.get(),
          static_cast<short>(POLLIN | (pending ? POLLOUT : 0)));
    if (child_out_) add(kOut, child_out_.get(), POLLIN);
    if (child_err_) add(kErr, child_err_.get(), POLLIN);
    if (child_in_ && pending) add(kChildIn, child_in_.get(), POLLOUT);
    int efd = o_.extra_fd ? o_.extra_fd() : -1;
    if (efd >= 0) add(kExtra, efd, POLLIN);

    int timeout = -1;
    auto wait_until = [&](std::chrono::steady_clock::time_point due) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          due - std::chrono::steady_clock::now());
      int ms = static_cast<int>(std::max<int64_t>(0, left.count()) + 1);
      if (timeout < 0 || ms < timeout) timeout = ms;
    };
    if (dirty_ && o_.on_flush)
      wait_until(last_flush_ + std::chrono::milliseconds(o_.flush_interval_ms));
    if (end_kill_at_ && !end_killed_) wait_until(*end_kill_at_);
    if (o_.on_tick) wait_until(last_tick_ + std::chrono::milliseconds(o_.tick_interval_ms));
    int r = poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) return ErrnoToStatus(errno, "poll");
    auto ready = [&](Slot s, short ev) {
      return at[s] >= 0 && (fds[at[s]].revents & ev) != 0;
    };
    constexpr short kIn_ = POLLIN | POLLHUP | POLLERR;

    if (r > 0) {
      // Output first, so that what the child said before exiting is read
      // before SIGCHLD is handled below.
      if (ready(kMaster, kIn_))
        RETURN_IF_ERROR(PumpOutput(&master_, o_.out_fd).status());
      if (ready(kOut, kIn_))
        RETURN_IF_ERROR(PumpOutput(&child_out_, o_.out_fd).status());
      if (ready(kErr, kIn_))
        RETURN_IF_ERROR(PumpOutput(&child_err_, o_.err_fd, Stream::kError).status());
      if (ready(kMaster, POLLOUT) ||
          ready(kChildIn, POLLOUT | POLLERR | POLLHUP))
        RETURN_IF_ERROR(WriteInput());
      if (ready(kIn, kIn_ | POLLNVAL)) RETURN_IF_ERROR(ReadInput());
      if (ready(kExtra, kIn_) && o_.on_extra_readable)
        RETURN_IF_ERROR(o_.on_extra_readable());
      if (ready(kSig, POLLIN)) RETURN_IF_ERROR(HandleSignals());
    }
    // Belt and braces: SIGCHLD is the wake-up, waitpid the truth.
    TryReap();
    if (!end_kill_at_ && !reaped_ && o_.end_requested) {
      if (std::optional<std::string> line = o_.end_requested())
        RETURN_IF_ERROR(EndOnRequest(*line));
    }
    if (end_kill_at_ && !end_killed_ && !reaped_ &&
        std::chrono::steady_clock::now() >= *end_kill_at_) {
      HangUp(SIGKILL);
      end_killed_ = true;
    }
    if (dirty_ && o_.on_flush &&
        std::chrono::steady_clock::now() - last_flush_ >=
            std::chrono::milliseconds(o_.flush_interval_ms)) {
      RETURN_IF_ERROR(o_.on_flush());
      dirty_ = false;
      last_flush_ = std::chrono::steady_clock::now();
    }
    if (o_.on_tick && std::chrono::steady_clock::now() - last_tick_ >=
                          std::chrono::milliseconds(o_.tick_interval_ms)) {
      RETURN_IF_ERROR(o_.on_tick());
      last_tick_ = std::chrono::steady_clock::now();
    }
  }
}

StatusOr<RelayResult> Relay::Run() {
  if (o_.path.empty() || o_.argv.empty())
    return InvalidArgumentError("relay: no program to run");
  start_ = o_.start.value_or(std::chrono::steady_clock::now());
  in_is_tty_ = isatty(o_.in_fd) == 1;

  RETURN_IF_ERROR(MakePipe(&sig_r_, &sig_w_));
  RETURN_IF_ERROR(SetFlags(sig_r_.get()));
  RETURN_IF_ERROR(SetFlags(sig_w_.get()));
  SignalGuard signals(sig_w_.get());

  RawMode raw;
  if (o_.use_pty && in_is_tty_ && tcgetattr(o_.in_fd, &saved_tio_) == 0) {
    have_tio_ = true;
    if (o_.raw_input) RETURN_IF_ERROR(raw.Enter(o_.in_fd, saved_tio_));
  }
  Status s = Start();
  if (!s.ok()) {
    if (result_.pid > 0) KillAndReap();
    return s;
  }
  s = Loop();
  if (s.ok() && o_.on_flush && dirty_) s = o_.on_flush();
  if (!s.ok()) {
    KillAndReap();
    return s;
  }
  return result_;
}

}  // namespace

StatusOr<RelayResult> RunRelay(const RelayOptions& options) {
  return Relay(options).Run();
}

std::string SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  if (name != nullptr) return name;
  return std::to_string(sig);
}

}  // namespace jitgate::recorder
