// `jitgate sessions|replay|watch|export`: the auditor's view of recorded
// sessions (docs/auditor.md).
#include "cli/session_commands.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/bundle.h"
#include "cli/cert_format.h"
#include "cli/command_line.h"
#include "cli/search.h"
#include "core/base/cleanup.h"
#include "core/base/env.h"
#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "store/note/keys.h"

namespace jitgate::cli {

namespace po = boost::program_options;

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// Export writes the file in pieces of about this size.
constexpr size_t kExportFlushBytes = 64 * 1024;

int Fail(const SessionIo& io, const std::string& message) { return ErrorLine(*io.err, message, 1); }

int UsageError(const SessionIo& io, const std::string& message) {
  return ErrorLine(*io.err, message, 2);
}

// Parses args; prints help and returns false on --help. Throws po::error.
bool Parse(const std::vector<std::string>& args, po::options_description& desc,
           const po::positional_options_description& pos, po::variables_map* vm,
           const SessionIo& io, const char* usage) {
  desc.add_options()("store", po::value<std::string>()->default_value(kDefaultStoreDir),
                     "store directory (read only)");
  return ParseCommandLine(args, desc, pos, vm, *io.out, usage);
}

Status WriteOut(const SessionIo& io, std::string_view data, bool flush) {
  io.out->write(data.data(), std::streamsize(data.size()));
  if (flush) io.out->flush();
  if (!*io.out) return UnavailableError("cannot write to standard output");
  return OkStatus();
}

// Opens the store's session index and finds SESSION (id or prefix).
struct Opened {
  std::unique_ptr<recorder::SessionIndex> index;
  recorder::SessionInfo info;
};

StatusOr<Opened> OpenSession(const po::variables_map& vm) {
  const std::string& dir = vm["store"].as<std::string>();
  StatusOr<std::unique_ptr<recorder::SessionIndex>> index = recorder::SessionIndex::Open(dir);
  if (!index.ok()) return index.status().WithContext("store " + EscapeForTerminal(dir));
  Opened o;
  o.index = std::move(*index);
  ASSIGN_OR_RETURN(o.info, o.index->Find(vm["session"].as<std::string>()));
  return o;
}

// Session ids are [0-9a-z]; anything else typed is a usage error, so that a
// hostile argument is never echoed raw and never reaches the index.
bool SessionArgument(const po::variables_map& vm, const SessionIo& io, int* code) {
  if (!vm.count("session")) {
    *code = UsageError(io, "missing SESSION (an id or a unique prefix of at least 4 characters)");
    return false;
  }
  const std::string& typed = vm["session"].as<std::string>();
  bool ok = !typed.empty() && typed.size() <= recorder::kMaxSessionIdLength;
  for (char c : typed) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
  if (!ok) {
    *code = UsageError(io, "'" + EscapeForTerminal(typed) +
                               "' is not a session id (1 to 32 characters of 0-9 and a-z)");
  }
  return ok;
}

std::string FormatRfc3339(int64_t unix_nanos) {
  int64_t secs = unix_nanos / kNanosPerSecond;
  int64_t nanos = unix_nanos % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --secs;
  }
  time_t t = time_t(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(nanos));
  return buf;
}

std::string FormatStartColumn(int64_t unix_nanos) {
  int64_t secs = unix_nanos / kNanosPerSecond;
  if (unix_nanos < 0 && unix_nanos % kNanosPerSecond != 0) --secs;
  time_t t = time_t(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic
// Gregorian date.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// A small cursor for the fixed layout of RFC 3339.
class TimeText {
 public:
  explicit TimeText(std::string_view s) : s_(s) {}
  bool Digits(size_t n, int64_t* v) {
    if (s_.size() < n) return false;
    int64_t r = 0;
    for (size_t i = 0; i < n; ++i) {
      if (s_[i] < '0' || s_[i] > '9') return false;
      r = r * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    *v = r;
    return true;
  }
  bool Char(std::string_view any_of, char* c = nullptr) {
    if (s_.empty() || any_of.find(s_[0]) == std::string_view::npos) return false;
    if (c != nullptr) *c = s_[0];
    s_.remove_prefix(1);
    return true;
  }
  bool Done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

std::optional<int64_t> ParseRfc3339(std::string_view text) {
  TimeText t(text);
  int64_t y, mo, d, h = 0, mi = 0, s = 0, nanos = 0, offset_seconds = 0;
  if (!t.Digits(4, &y) || !t.Char("-") || !t.Digits(2, &mo) || !t.Char("-") || !t.Digits(2, &d)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, unsigned(mo))) return std::nullopt;
  if (!t.Done()) {
    if (!t.Char("Tt ") || !t.Digits(2, &h) || !t.Char(":") || !t.Digits(2, &mi) || !t.Char(":") ||
        !t.Digits(2, &s)) {
      return std::nullopt;
    }
    if (h > 23 || mi > 59 || s > 60) return std::nullopt;  // 60: a leap second
    if (t.Char(".")) {
      int digits = 0;
      int64_t digit;
      while (t.Digits(1, &digit)) {
        if (++digits <= 9) nanos = nanos * 10 + digit;
      }
      if (digits == 0) return std::nullopt;
      for (int k = std::min(digits, 9); k < 9; ++k) nanos *= 10;
    }
    char sign;
    if (t.Char("Zz")) {
      offset_seconds = 0;
    } else if (t.Char("+-", &sign)) {
      int64_t oh, om;
      if (!t.Digits(2, &oh) || !t.Char(":") || !t.Digits(2, &om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_seconds = (oh * 60 + om) * 60 * (sign == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
    if (!t.Done()) return std::nullopt;
  }
  int64_t seconds =
      DaysFromCivil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + s - offset_seconds;
  return seconds * kNanosPerSecond + nanos;
}

// Code points, as an approximation of the width of escaped (printable) text.
size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : EscapeForTerminal(s); }

std::string ExitColumn(const recorder::SessionInfo& s) {
  if (!s.ended) return "-";
  if (!s.exit_signal.empty()) return "SIG" + EscapeForTerminal(s.exit_signal);
  if (s.exit_status >= 0) return std::to_string(s.exit_status);
  return "?";
}

// Replaces C1 controls (U+0080..U+009F, which JSON leaves raw) with \u escapes
// in serialized JSON, where they can only occur inside strings, so that the
// file is safe to print on a terminal too.
std::string EscapeC1InJson(std::string json) {
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    unsigned char c = json[i];
    if (c == 0xc2 && i + 1 < json.size() && (unsigned char)json[i + 1] >= 0x80 &&
        (unsigned char)json[i + 1] <= 0x9f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", unsigned((unsigned char)json[i + 1]));
      out.append(buf);
      ++i;
      continue;
    }
    out.push_back(char(c));
  }
  return out;
}

// --- the real terminal control ----------------------------------------------

// State shared with the signal handlers, which only use async-signal-safe
// calls (tcsetattr, write, sigaction, sigprocmask, raise, clock_gettime). At
// most one TtyControl exists at a time.
struct TtyState {
  int pipe_write = -1;
  int tty_fd = -1;  // the terminal whose mode was changed, or -1
  struct termios saved;
  struct termios active;
};
TtyState g_tty;

// Self-pipe messages: a kind byte and 8 bytes of payload, written in one
// write() (atomic, < PIPE_BUF).
constexpr uint8_t kMsgSignal = 'S';
constexpr uint8_t kMsgSuspended = 'Z';
constexpr size_t kMsgSize = 9;

void SendMessage(uint8_t kind, int64_t value) {
  uint8_t msg[kMsgSize];
  msg[0] = kind;
  for (int i = 0; i < 8; ++i) msg[1 + i] = uint8_t(uint64_t(value) >> (56 - 8 * i));
  if (g_tty.pipe_write >= 0) {
    ssize_t n = write(g_tty.pipe_write, msg, sizeof(msg));
    (void)n;  // a full pipe already holds a quit message
  }
}

void OnQuitSignal(int sig) {
  int saved_errno = errno;
  // Restore the terminal here too, so that it is sane even if the main loop
  // never gets to run again.
  if (g_tty.tty_fd >= 0) tcsetattr(g_tty.tty_fd, TCSANOW, &g_tty.saved);
  SendMessage(kMsgSignal, sig);
  errno = saved_errno;
}

int64_t MonotonicNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

// Ctrl-Z: give the shell its terminal mode back, stop, and on SIGCONT take
// cbreak mode again and report how long playback was frozen.
void OnStopSignal(int) {
  int saved_errno = errno;
  int64_t stopped_at = MonotonicNow();
  if (g_tty.tty_fd >= 0) tcsetattr(g_tty.tty_fd, TCSANOW, &g_tty.saved);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGTSTP, &dfl, nullptr);
  sigset_t tstp;
  sigemptyset(&tstp);
  sigaddset(&tstp, SIGTSTP);
  sigprocmask(SIG_UNBLOCK, &tstp, nullptr);
  raise(SIGTSTP);  // stops here until SIGCONT
  sigprocmask(SIG_BLOCK, &tstp, nullptr);
  struct sigaction again = {};
  again.sa_handler = OnStopSignal;
  sigemptyset(&again.sa_mask);
  sigaction(SIGTSTP, &again, nullptr);
  if (g_tty.tty_fd >= 0) tcsetattr(g_tty.tty_fd, TCSANOW, &g_tty.active);
  SendMessage(kMsgSuspended, MonotonicNow() - stopped_at);
  errno = saved_errno;
}

constexpr int kQuitSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

class TtyControl : public PlaybackControl {
 public:
  static StatusOr<std::unique_ptr<PlaybackControl>> Create(Clock* clock) {
    std::unique_ptr<TtyControl> c(new TtyControl(clock));
    RETURN_IF_ERROR(c->Start());
    return std::unique_ptr<PlaybackControl>(std::move(c));
  }

  ~TtyControl() override {
    if (g_tty.tty_fd >= 0) tcsetattr(g_tty.tty_fd, TCSANOW, &g_tty.saved);
    for (size_t i = 0; i < std::size(kQuitSignals); ++i) {
      if (installed_) sigaction(kQuitSignals[i], &old_quit_[i], nullptr);
    }
    if (installed_) sigaction(SIGTSTP, &old_tstp_, nullptr);
    g_tty.tty_fd = -1;
    g_tty.pipe_write = -1;
    if (pipe_[0] >= 0) close(pipe_[0]);
    if (pipe_[1] >= 0) close(pipe_[1]);
  }

  WaitResult Wait(int64_t deadline) override {
    for (;;) {
      while (!keys_.empty()) {
        char k = keys_.front();
        keys_.pop_front();
        if (k == ' ') return {WaitResult::kPause};
        if (k == 'q' || k == 'Q') return {WaitResult::kQuit};
      }
      struct pollfd fds[2] = {{pipe_[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
      nfds_t nfds = read_keys_ ? 2 : 1;
      int timeout = -1;
      if (deadline != kForever) {
        int64_t left = deadline - clock_->MonotonicNanos();
        timeout = left <= 0 ? 0 : int(std::min<int64_t>((left + 999'999) / 1'000'000, INT_MAX));
      }
      int n = poll(fds, nfds, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;  // the handler's message is in the pipe
        return {WaitResult::kQuit};
      }
      if (fds[0].revents & POLLIN) {
        uint8_t msg[kMsgSize];
        if (read(pipe_[0], msg, sizeof(msg)) == ssize_t(kMsgSize)) {
          int64_t value = 0;
          for (int i = 0; i < 8; ++i) value = (value << 8) | msg[1 + i];
          if (msg[0] == kMsgSignal) return {WaitResult::kQuit, int(value)};
          if (msg[0] == kMsgSuspended) return {WaitResult::kSuspended, 0, value};
        }
        continue;
      }
      if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[64];
        ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
        if (got > 0) {
          keys_.insert(keys_.end(), buf, buf + got);
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          read_keys_ = false;  // end of input: no more keys
        }
        continue;
      }
      if (deadline != kForever && clock_->MonotonicNanos() >= deadline) {
        return {WaitResult::kDeadline};
      }
    }
  }

 private:
  explicit TtyControl(Clock* clock) : clock_(clock) {}

  Status Start() {
    if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoToStatus(errno, "pipe");
    g_tty.pipe_write = pipe_[1];
    // Keys are read only from a terminal in the foreground: a background
    // job changing the mode would be stopped by SIGTTOU.
    if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp() &&
        tcgetattr(STDIN_FILENO, &g_tty.saved) == 0) {
      // cbreak, not raw: keys arrive one at a time without echo, while output
      // processing (\n -> \r\n for our messages) and Ctrl-C stay as they were.
      g_tty.active = g_tty.saved;
      g_tty.active.c_lflag &= ~tcflag_t(ICANON | ECHO);
      g_tty.active.c_cc[VMIN] = 1;
      g_tty.active.c_cc[VTIME] = 0;
      read_keys_ = true;
    }
    struct sigaction sa = {};
    sa.sa_handler = OnQuitSignal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kQuitSignals); ++i) {
      sigaction(kQuitSignals[i], &sa, &old_quit_[i]);
    }
    struct sigaction stop = {};
    stop.sa_handler = OnStopSignal;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTSTP, &stop, &old_tstp_);
    installed_ = true;
    // The mode changes only once the handlers that restore it are in place.
    if (read_keys_) {
      if (tcsetattr(STDIN_FILENO, TCSANOW, &g_tty.active) == 0) {
        g_tty.tty_fd = STDIN_FILENO;
      } else {
        read_keys_ = false;
      }
    }
    return OkStatus();
  }

  Clock* clock_;
  int pipe_[2] = {-1, -1};
  bool read_keys_ = false;
  bool installed_ = false;
  struct sigaction old_quit_[std::size(kQuitSignals)] = {};
  struct sigaction old_tstp_ = {};
  std::deque<char> keys_;
};

StatusOr<std::unique_ptr<PlaybackControl>> MakeControl(const SessionIo& io) {
  if (io.make_control) return io.make_control();
  return TtyControl::Create(io.clock);
}

int QuitCode(int signal) { return signal != 0 ? 128 + signal : 0; }

// The largest terminal a session used: its start size and every resize.
Status MaxSessionSize(const recorder::SessionIndex& index, const recorder::SessionInfo& s,
                      uint16_t* cols, uint16_t* rows) {
  *cols = s.cols;
  *rows = s.rows;
  return index.ForEachRecord(s.id, [&](const recorder::Record& r) {
    if (r.stream == recorder::Stream::kResize) {
      *cols = std::max(*cols, r.cols);
      *rows = std::max(*rows, r.rows);
    }
    return OkStatus();
  });
}

void WarnAboutTerminal(const SessionIo& io, uint16_t cols, uint16_t rows, bool safe) {
  if (!io.out_is_terminal) return;
  if (std::optional<std::string> w =
          TerminalSizeWarning(cols, rows, io.terminal_cols, io.terminal_rows)) {
    *io.err << "jitgate: warning: " << *w << "\n";
  }
  if (!safe) {
    *io.err << "jitgate: warning: --no-safe: the recording's escape sequences reach your "
               "terminal unfiltered\n";
  }
}

void ReportDropped(const SessionIo& io, uint64_t dropped) {
  if (dropped == 0) return;
  *io.err << "jitgate: safe mode removed " << dropped
          << " escape sequence(s) or control character(s) (docs/auditor.md; --no-safe shows "
             "them)\n";
}

// `export SESSION --bundle FILE`: the bundle goes to a temporary file beside
// FILE, is verified there with the store's key (so that a bundle that would
// not verify is never presented), then synced and renamed over FILE.
int ExportBundle(const po::variables_map& vm, const std::string& path, const SessionIo& io) {
  StatusOr<Opened> opened = OpenSession(vm);
  if (!opened.ok()) return Fail(io, opened.status().message());
  const recorder::SessionInfo& info = opened->info;
  if (!info.ended) {
    return Fail(io, "session " + EscapeForTerminal(info.id) +
                        " has not ended; a bundle proves a complete session");
  }
  Env* env = DefaultEnv();
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  StatusOr<std::unique_ptr<WritableFile>> file = env->NewExclusiveFile(tmp, 0600);
  if (!file.ok()) return Fail(io, file.status().message());
  bool keep = false;
  Cleanup remove_tmp = [&] {
    if (!keep) env->RemoveFile(tmp).IgnoreError();
  };
  StatusOr<BundleExport> written =
      WriteSessionBundle(env, vm["store"].as<std::string>(), info.id,
                         [&](ByteSpan data) { return (*file)->Append(data); });
  if (!written.ok()) return Fail(io, written.status().message());
  Status s = (*file)->Sync();
  if (s.ok()) s = (*file)->Close();
  if (!s.ok()) return Fail(io, s.message());
  StatusOr<note::Verifier> key = note::Verifier::Parse(written->vkey);
  if (!key.ok()) return Fail(io, key.status().message());
  StatusOr<BundleSummary> check = VerifyBundleFile(env, tmp, *key);
  if (!check.ok()) {
    return Fail(io, "the bundle written does not verify (" + check.status().message() +
                        "); run jitgate verify --store");
  }
  s = env->Rename(tmp, path);
  if (!s.ok()) return Fail(io, s.message());
  keep = true;
  s = env->SyncDir(DirName(path[0] == '/' ? path : "./" + path));
  if (!s.ok()) return Fail(io, s.message());
  *io.out << "exported session " << EscapeForTerminal(info.id) << " to "
          << EscapeForTerminal(path) << " (evidence bundle: " << written->items << " entries, "
          << written->chunks << (written->chunks == 1 ? " chunk" : " chunks")
          << ", proven against checkpoint size " << written->checkpoint_size << ")\n";
  return 0;
}

}  // namespace

// --- pure parts --------------------------------------------------------------

StatusOr<int64_t> ParseSinceTime(std::string_view text, int64_t now_unix_nanos) {
  if (std::optional<int64_t> t = ParseRfc3339(text)) return *t;
  constexpr int64_t kMaxAgo = int64_t(100) * 366 * 86400;
  bool looks_like_duration = !text.empty() && text[0] >= '0' && text[0] <= '9' &&
                             text.find('-') == std::string_view::npos &&
                             text.find(':') == std::string_view::npos;
  if (looks_like_duration) {
    StatusOr<int64_t> seconds = ParseDurationSeconds(text, kMaxAgo);
    if (seconds.ok()) return now_unix_nanos - *seconds * kNanosPerSecond;
  }
  return InvalidArgumentError("bad --since '" + EscapeForTerminal(text) +
                              "': expected an RFC 3339 time (2026-01-02T15:04:05Z), a date "
                              "(2026-01-02) or a duration (2h, 7d)");
}

bool SessionActiveSince(const recorder::SessionInfo& s, int64_t since_unix_nanos) {
  return !s.ended || s.end_unix_nanos >= since_unix_nanos || s.start_unix_nanos >= since_unix_nanos;
}

std::string FormatSessionTable(const std::vector<recorder::SessionInfo>& sessions) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"SESSION", "USER", "LOGIN@TARGET", "FROM", "START (UTC)", "DURATION", "EXIT", "REQUEST"});
  for (const recorder::SessionInfo& s : sessions) {
    std::string duration =
        s.ended ? FormatSeconds((s.end_unix_nanos - s.start_unix_nanos) / kNanosPerSecond) : "live";
    rows.push_back({EscapeForTerminal(s.id), OrDash(s.user),
                    EscapeForTerminal(s.login) + "@" + EscapeForTerminal(s.target),
                    OrDash(s.remote_addr), FormatStartColumn(s.start_unix_nanos), duration,
                    ExitColumn(s), OrDash(s.request_id)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], DisplayWidth(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(width[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

nlohmann::ordered_json SessionToJson(const recorder::SessionInfo& s) {
  nlohmann::ordered_json j;
  j["id"] = s.id;
  j["recorder"] = s.recorder;
  j["request_id"] = s.request_id;
  j["user"] = s.user;
  j["remote_addr"] = s.remote_addr;
  j["host"] = s.host;
  j["target"] = s.target;
  j["login"] = s.login;
  j["approvers"] = s.approvers;
  j["cert_serial"] = s.cert_serial;
  j["command"] = s.command;
  j["term"] = s.term;
  j["cols"] = s.cols;
  j["rows"] = s.rows;
  j["start_unix_nanos"] = s.start_unix_nanos;
  j["start_time"] = FormatRfc3339(s.start_unix_nanos);
  j["ended"] = s.ended;
  j["end_unix_nanos"] = s.end_unix_nanos;
  j["end_time"] = s.ended ? nlohmann::ordered_json(FormatRfc3339(s.end_unix_nanos))
                          : nlohmann::ordered_json(nullptr);
  j["exit_status"] = s.exit_status;
  j["exit_signal"] = s.exit_signal;
  j["end_reason"] = s.end_reason;
  j["chunks"] = s.chunks;
  j["bytes_in"] = s.bytes_in;
  j["bytes_out"] = s.bytes_out;
  return j;
}

std::string DescribeSessionEnd(const recorder::SessionInfo& s) {
  std::string out;
  if (!s.exit_signal.empty()) {
    out = "signal " + EscapeForTerminal(s.exit_signal);
  } else if (s.exit_status >= 0) {
    out = "exit " + std::to_string(s.exit_status);
  } else {
    out = "exit status unknown";
  }
  if (!s.end_reason.empty() && s.end_reason != "closed") {
    out += " (" + EscapeForTerminal(s.end_reason) + ")";
  }
  return out;
}

// --- commands ----------------------------------------------------------------

SessionIo DefaultSessionIo() {
  SessionIo io;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.clock = RealClock();
  io.out_is_terminal = isatty(STDOUT_FILENO) == 1;
  struct winsize ws = {};
  if (io.out_is_terminal && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
    io.terminal_cols = ws.ws_col;
    io.terminal_rows = ws.ws_row;
  }
  return io;
}

namespace {

// --user, --target and --since, shared by sessions and search.
struct SessionFilter {
  std::string user, target, since_text;
  std::optional<int64_t> since;

  void AddOptions(po::options_description* desc) {
    desc->add_options()("user", po::value(&user), "only sessions of this person")(
        "target", po::value(&target), "only sessions on this target host (or LOGIN@HOST)")(
        "since", po::value(&since_text),
        "only sessions running at or after TIME: RFC 3339, YYYY-MM-DD (UTC) or a duration "
        "ago (2h, 7d)");
  }
  // After parsing: reads --since. A usage error's message otherwise.
  Status Resolve(const po::variables_map& vm, const SessionIo& io) {
    if (!vm.count("since")) return OkStatus();
    ASSIGN_OR_RETURN(since, ParseSinceTime(since_text, io.clock->NowUnixNanos()));
    return OkStatus();
  }
  bool Matches(const po::variables_map& vm, const recorder::SessionInfo& s) const {
    if (vm.count("user") && s.user != user) return false;
    if (vm.count("target")) {
      bool with_login = target.find('@') != std::string::npos;
      if ((with_login ? s.login + "@" + s.target : s.target) != target) return false;
    }
    return !since || SessionActiveSince(s, *since);
  }
};

// Opens the session index of --store; a one-line error naming the store.
StatusOr<std::unique_ptr<recorder::SessionIndex>> OpenIndex(const po::variables_map& vm) {
  const std::string& dir = vm["store"].as<std::string>();
  StatusOr<std::unique_ptr<recorder::SessionIndex>> index = recorder::SessionIndex::Open(dir);
  if (!index.ok()) return index.status().WithContext("store " + EscapeForTerminal(dir));
  return index;
}

}  // namespace

int RunSessions(const std::vector<std::string>& args, const SessionIo& io) {
  po::options_description desc("jitgate sessions");
  SessionFilter filter;
  desc.add_options()("json", "one JSON document: {\"sessions\":[...]}");
  filter.AddOptions(&desc);
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate sessions [--store DIR] [--json] [--user U] [--target T] [--since TIME]")) {
    return 0;
  }
  if (Status f = filter.Resolve(vm, io); !f.ok()) return UsageError(io, f.message());
  StatusOr<std::unique_ptr<recorder::SessionIndex>> index = OpenIndex(vm);
  if (!index.ok()) return Fail(io, index.status().message());
  // Damage that belongs to no listed session is worth knowing about, but the
  // list is still useful: note it and go on (`jitgate verify` has the detail).
  std::vector<std::string> problems = (*index)->problems();
  constexpr size_t kMaxNotes = 5;
  for (size_t i = 0; i < problems.size() && i < kMaxNotes; ++i) {
    *io.err << "jitgate: note: " << EscapeForTerminal(problems[i]) << "\n";
  }
  if (problems.size() > kMaxNotes) {
    *io.err << "jitgate: note: ... and " << problems.size() - kMaxNotes
            << " more problems in the store (run jitgate verify)\n";
  }
  std::vector<recorder::SessionInfo> shown;
  for (const recorder::SessionInfo& s : (*index)->sessions()) {
    if (!filter.Matches(vm, s)) continue;
    shown.push_back(s);
  }
  if (vm.count("json")) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const recorder::SessionInfo& s : shown) list.push_back(SessionToJson(s));
    nlohmann::ordered_json j;
    j["sessions"] = std::move(list);
    *io.out << EscapeC1InJson(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
            << "\n";
    return 0;
  }
  if (shown.empty()) {
    *io.out << "no sessions\n";
    return 0;
  }
  *io.out << FormatSessionTable(shown);
  return 0;
}

int RunReplay(const std::vector<std::string>& args, const SessionIo& io) {
  po::options_description desc("jitgate replay");
  double speed = 1.0;
  std::string idle_text, from_text;
  desc.add_options()("session", po::value<std::string>(), "session id or unique prefix")(
      "speed", po::value(&speed), "playback speed factor (default 1; 2 = twice as fast)")(
      "idle-limit", po::value(&idle_text),
      "cap every pause at this long (seconds, 1.5, 2s, 500ms)")(
      "from", po::value(&from_text),
      "start at this offset (90, 1m30s, 1:30); earlier output is shown at once")(
      "no-safe", "do not filter escape sequences (dangerous on a terminal)")(
      "raw", "write the output at once, without timing or keys (for pipes)");
  po::positional_options_description pos;
  pos.add("session", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate replay SESSION [--store DIR] [--speed X] [--idle-limit T] [--from T] "
             "[--no-safe] [--raw]")) {
    return 0;
  }
  int code = 0;
  if (!SessionArgument(vm, io, &code)) return code;
  bool raw = vm.count("raw") > 0;
  bool safe = vm.count("no-safe") == 0;
  if (raw && (vm.count("speed") || vm.count("idle-limit") || vm.count("from"))) {
    return UsageError(io,
                      "--raw writes everything at once; --speed, --idle-limit and --from "
                      "do not apply");
  }
  PlayerOptions popts;
  popts.timed = !raw;
  popts.safe = safe;
  if (!std::isfinite(speed) || speed <= 0 || speed > 1000) {
    return UsageError(io, "--speed must be more than 0 and at most 1000");
  }
  popts.timing.speed = speed;
  if (vm.count("idle-limit")) {
    StatusOr<int64_t> t = ParsePlaybackOffset(idle_text);
    if (!t.ok()) return UsageError(io, "--idle-limit: " + t.status().message());
    if (*t == 0) return UsageError(io, "--idle-limit must be more than 0");
    popts.timing.idle_limit_ns = *t;
  }
  if (vm.count("from")) {
    StatusOr<int64_t> t = ParsePlaybackOffset(from_text);
    if (!t.ok()) return UsageError(io, "--from: " + t.status().message());
    popts.timing.from_ns = *t;
  }

  StatusOr<Opened> opened = OpenSession(vm);
  if (!opened.ok()) return Fail(io, opened.status().message());
  const recorder::SessionIndex& index = *opened->index;
  const recorder::SessionInfo& info = opened->info;
  if (!info.ended) {
    *io.err << "jitgate: session " << EscapeForTerminal(info.id)
            << " has not ended; replaying what is recorded so far ('jitgate watch' follows it)\n";
  }
  if (!raw && io.out_is_terminal) {
    uint16_t cols = 0, rows = 0;
    Status s = MaxSessionSize(index, info, &cols, &rows);
    if (!s.ok()) return Fail(io, s.message());
    WarnAboutTerminal(io, cols, rows, safe);
  } else if (!safe && io.out_is_terminal) {
    WarnAboutTerminal(io, 0, 0, safe);
  }

  std::unique_ptr<PlaybackControl> control;
  if (!raw) {
    StatusOr<std::unique_ptr<PlaybackControl>> c = MakeControl(io);
    if (!c.ok()) return Fail(io, c.status().message());
    control = std::move(*c);
  }
  Player player(popts, io.clock, control.get(),
                [&](std::string_view data) { return WriteOut(io, data, !raw); });
  bool quit = false;
  Status s = index.ForEachRecord(info.id, [&](const recorder::Record& r) -> Status {
    ASSIGN_OR_RETURN(bool more, player.Play(r));
    if (!more) {
      quit = true;
      return CancelledError("quit");
    }
    return OkStatus();
  });
  Status fin = player.Finish();
  if (fin.ok() && safe && io.out_is_terminal) fin = WriteOut(io, player.Epilogue(), false);
  io.out->flush();
  control.reset();  // the terminal mode is restored before anything more is said
  if (!quit && !s.ok()) return Fail(io, s.message());
  if (!fin.ok()) return Fail(io, fin.message());
  if (safe) ReportDropped(io, player.dropped());
  return quit ? QuitCode(player.quit_signal()) : 0;
}

int RunWatch(const std::vector<std::string>& args, const SessionIo& io) {
  po::options_description desc("jitgate watch");
  desc.add_options()("session", po::value<std::string>(), "session id or unique prefix");
  po::positional_options_description pos;
  pos.add("session", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io, "jitgate watch SESSION [--store DIR]")) return 0;
  int code = 0;
  if (!SessionArgument(vm, io, &code)) return code;

  StatusOr<Opened> opened = OpenSession(vm);
  if (!opened.ok()) return Fail(io, opened.status().message());
  recorder::SessionIndex& index = *opened->index;
  const std::string id = opened->info.id;
  WarnAboutTerminal(io, opened->info.cols, opened->info.rows, true);

  StatusOr<std::unique_ptr<PlaybackControl>> control = MakeControl(io);
  if (!control.ok()) return Fail(io, control.status().message());
  PlayerOptions popts;
  popts.timed = false;
  Player player(popts, io.clock, nullptr,
                [&](std::string_view data) { return WriteOut(io, data, false); });

  // Each round prints the session's records past the first `done`
  // (ForEachRecord always starts at the first chunk, so a round costs the
  // whole session: rounds run only when the store has grown), then waits for
  // the next poll.
  uint64_t done = 0;
  bool paused = false;
  bool grown = true;
  int quit_signal = -1;  // >= 0 once the auditor stopped watching
  std::optional<recorder::SessionInfo> ended;
  Status failed;
  while (quit_signal < 0 && !ended && failed.ok()) {
    if (!paused && grown) {
      grown = false;
      uint64_t seen = 0;
      failed = index.ForEachRecord(id, [&](const recorder::Record& r) -> Status {
        if (seen++ < done) return OkStatus();
        ++done;
        return player.Play(r).status();
      });
      if (failed.ok()) failed = WriteOut(io, "", true);
      if (!failed.ok()) break;
      StatusOr<recorder::SessionInfo> now = index.Find(id);
      if (!now.ok()) {
        failed = now.status();
        break;
      }
      if (now->ended) {
        ended = *now;
        break;
      }
    }
    int64_t deadline = io.clock->MonotonicNanos() + io.watch_poll_nanos;
    for (bool waiting = true; waiting;) {
      WaitResult w = (*control)->Wait(paused ? PlaybackControl::kForever : deadline);
      switch (w.kind) {
        case WaitResult::kDeadline:
          waiting = false;
          break;
        case WaitResult::kPause:
          paused = !paused;
          waiting = paused;
          break;
        case WaitResult::kSuspended:
          break;
        case WaitResult::kQuit:
          quit_signal = w.signal;
          waiting = false;
          break;
      }
    }
    if (quit_signal < 0) {
      StatusOr<uint64_t> added = index.Refresh();
      if (!added.ok()) failed = added.status();
      if (added.ok() && *added > 0) grown = true;
    }
  }
  Status fin = player.Finish();
  if (fin.ok()) fin = WriteOut(io, io.out_is_terminal ? player.Epilogue() : "", true);
  control->reset();
  if (!failed.ok()) return Fail(io, failed.message());
  if (!fin.ok()) return Fail(io, fin.message());
  if (ended) {
    *io.err << (io.out_is_terminal ? "\n" : "")
            << "jitgate: session ended: " << DescribeSessionEnd(*ended) << "\n";
  }
  ReportDropped(io, player.dropped());
  return ended ? 0 : QuitCode(quit_signal);
}

int RunExport(const std::vector<std::string>& args, const SessionIo& io) {
  po::options_description desc("jitgate export");
  std::string format, out_path, bundle_path;
  desc.add_options()("session", po::value<std::string>(), "session id or unique prefix")(
      "format", po::value(&format), "output format: asciicast (v2)")(
      "out", po::value(&out_path),
      "write to FILE (mode 0600, replaced atomically) "
      "instead of standard output")(
      "bundle", po::value(&bundle_path),
      "write an evidence bundle to FILE (mode 0600, replaced atomically): the session's "
      "entries with inclusion proofs and the signed checkpoint, for jitgate verify --bundle");
  po::positional_options_description pos;
  pos.add("session", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate export SESSION (--format asciicast [--out FILE] | --bundle FILE) "
             "[--store DIR]")) {
    return 0;
  }
  int code = 0;
  if (!SessionArgument(vm, io, &code)) return code;
  if (vm.count("format") == vm.count("bundle")) {
    return UsageError(io, "give exactly one of --format asciicast and --bundle FILE");
  }
  if (vm.count("bundle")) {
    if (vm.count("out")) return UsageError(io, "--out goes with --format; --bundle names its file");
    if (bundle_path.empty()) return UsageError(io, "--bundle needs a file name");
    return ExportBundle(vm, bundle_path, io);
  }
  if (format != "asciicast") {
    return UsageError(
        io, "unknown --format '" + EscapeForTerminal(format) + "' (supported: asciicast)");
  }
  StatusOr<Opened> opened = OpenSession(vm);
  if (!opened.ok()) return Fail(io, opened.status().message());
  const recorder::SessionInfo& info = opened->info;
  if (!info.ended) {
    *io.err << "jitgate: session " << EscapeForTerminal(info.id)
            << " has not ended; exporting what is recorded so far\n";
  }

  Env* env = DefaultEnv();
  std::unique_ptr<WritableFile> file;
  std::string tmp;
  if (!out_path.empty()) {
    tmp = out_path + ".tmp." + std::to_string(getpid());
    StatusOr<std::unique_ptr<WritableFile>> f = env->NewExclusiveFile(tmp, 0600);
    if (!f.ok()) return Fail(io, f.status().message());
    file = std::move(*f);
  }
  Cleanup remove_tmp = [&] {
    if (!tmp.empty()) env->RemoveFile(tmp).IgnoreError();
  };
  auto flush = [&](std::string* buf) -> Status {
    std::string clean = EscapeC1InJson(std::move(*buf));
    buf->clear();
    if (file) return file->Append(AsBytes(clean));
    return WriteOut(io, clean, false);
  };

  AsciicastWriter writer;
  std::string buf = AsciicastWriter::Header(info);
  uint64_t events = 0;
  Status s = opened->index->ForEachRecord(info.id, [&](const recorder::Record& r) -> Status {
    size_t before = buf.size();
    writer.Add(r, &buf);
    events += uint64_t(std::count(buf.begin() + ptrdiff_t(before), buf.end(), '\n'));
    if (buf.size() >= kExportFlushBytes) return flush(&buf);
    return OkStatus();
  });
  if (s.ok()) {
    size_t before = buf.size();
    writer.Finish(&buf);
    events += uint64_t(std::count(buf.begin() + ptrdiff_t(before), buf.end(), '\n'));
    s = flush(&buf);
  }
  if (s.ok() && file) {
    s = file->Sync();
    if (s.ok()) s = file->Close();
    if (s.ok()) s = env->Rename(tmp, out_path);
    if (s.ok()) {
      tmp.clear();
      std::string abs = out_path[0] == '/' ? out_path : "./" + out_path;
      s = env->SyncDir(DirName(abs));
    }
  }
  if (!file) io.out->flush();
  if (!s.ok()) return Fail(io, s.message());
  if (file) {
    *io.out << "exported session " << EscapeForTerminal(info.id) << " to "
            << EscapeForTerminal(out_path) << " (asciicast v2, " << events << " events)\n";
  }
  return 0;
}

int RunSearch(const std::vector<std::string>& args, const SessionIo& io) {
  po::options_description desc("jitgate search");
  std::string text;
  size_t max_hits = 100;
  SessionFilter filter;
  desc.add_options()("text", po::value(&text), "the bytes to find (typed input or output)")(
      "json", "one JSON document: {\"matches\":[...],...}")(
      "ignore-case,i", "fold ASCII letters")(
      "max", po::value(&max_hits)->default_value(100), "at most N matches shown per session");
  filter.AddOptions(&desc);
  po::positional_options_description pos;
  pos.add("text", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate search TEXT [--store DIR] [--json] [-i] [--user U] [--target T] "
             "[--since TIME] [--max N]")) {
    return 0;
  }
  if (text.empty()) return UsageError(io, "missing TEXT to search for");
  if (Status f = filter.Resolve(vm, io); !f.ok()) return UsageError(io, f.message());
  StatusOr<std::unique_ptr<recorder::SessionIndex>> index = OpenIndex(vm);
  if (!index.ok()) return Fail(io, index.status().message());
  const bool json = vm.count("json") > 0;
  nlohmann::ordered_json matches = nlohmann::ordered_json::array();
  uint64_t total = 0, searched = 0;
  bool damaged = false;
  for (const recorder::SessionInfo& s : (*index)->sessions()) {
    if (!filter.Matches(vm, s)) continue;
    ++searched;
    TranscriptSearch search(text, vm.count("ignore-case") > 0, max_hits);
    Status walked = (*index)->ForEachRecord(s.id, [&](const recorder::Record& r) {
      search.Add(r);
      return OkStatus();
    });
    if (!walked.ok()) {
      // Say so, and still show what the readable part holds.
      damaged = true;
      *io.err << "jitgate: session " << EscapeForTerminal(s.id)
              << " was searched only up to the damage: " << EscapeForTerminal(walked.message())
              << "\n";
    }
    total += search.count();
    for (const SearchHit& h : search.hits()) {
      const char* stream = h.stream == recorder::Stream::kInput   ? "input"
                           : h.stream == recorder::Stream::kError ? "stderr"
                                                                  : "output";
      if (json) {
        nlohmann::ordered_json m;
        m["session"] = s.id;
        m["user"] = s.user;
        m["login"] = s.login;
        m["target"] = s.target;
        m["stream"] = stream;
        m["offset_ns"] = h.time_ns;
        m["time"] = FormatRfc3339(s.start_unix_nanos + h.time_ns);
        m["before"] = h.before;
        m["match"] = h.match;
        m["after"] = h.after;
        matches.push_back(std::move(m));
        continue;
      }
      char offset[48];
      std::snprintf(offset, sizeof(offset), "+%lld.%03llds",
                    static_cast<long long>(h.time_ns / kNanosPerSecond),
                    static_cast<long long>(h.time_ns % kNanosPerSecond / 1'000'000));
      *io.out << EscapeForTerminal(s.id) << "  " << offset << "  " << stream << "  "
              << EscapeForTerminal(s.user) << "  " << EscapeForTerminal(s.login) << "@"
              << EscapeForTerminal(s.target) << "  " << EscapeForTerminal(h.before) << "[["
              << EscapeForTerminal(h.match) << "]]" << EscapeForTerminal(h.after) << "\n";
    }
    if (search.count() > search.hits().size() && !json) {
      *io.out << EscapeForTerminal(s.id) << "  ... and "
              << search.count() - search.hits().size() << " more matches (--max)\n";
    }
  }
  if (json) {
    nlohmann::ordered_json j;
    j["matches"] = std::move(matches);
    j["total"] = total;
    j["sessions_searched"] = searched;
    *io.out << EscapeC1InJson(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
            << "\n";
  } else if (total == 0) {
    *io.out << "no matches in " << searched << " sessions\n";
  }
  return damaged ? 1 : 0;
}

}  // namespace jitgate::cli
