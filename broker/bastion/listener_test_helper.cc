// A stand-in for `jitgated --bastion-session --config PATH` in
// listener_test.cc. On start it writes one line to fd 3 describing what it
// inherited:
//
//   ready pid=N config=PATH stdin_null=0|1 extra_fds=N sigmask_empty=0|1
//         sigpipe_default=0|1 nodelay=0|1
//
// then reads commands, one per line, from fd 3: "exit N" exits with status N,
// "ignore-term" ignores SIGTERM (answers "ok"), "become N" switches to uid
// and gid N and asks again for SIGTERM when its parent dies, as a session
// process does (answers "ok" or "failed"), "hang" answers "ok" and then waits
// for a signal, whatever happens to the connection, and EOF exits 0.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kFd = 3;

bool StdinIsDevNull() {
  struct stat in, null;
  return ::fstat(STDIN_FILENO, &in) == 0 && ::stat("/dev/null", &null) == 0 &&
         S_ISCHR(in.st_mode) && in.st_rdev == null.st_rdev;
}

// Descriptors other than 0-3 (and the one reading the directory).
int ExtraFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int extra = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd > kFd && fd != ::dirfd(dir)) ++extra;
  }
  ::closedir(dir);
  return extra;
}

bool SigmaskEmpty() {
  sigset_t set;
  if (::sigprocmask(SIG_SETMASK, nullptr, &set) != 0) return false;
  for (int sig = 1; sig < 32; ++sig) {
    if (::sigismember(&set, sig)) return false;
  }
  return true;
}

bool SigpipeDefault() {
  struct sigaction sa;
  return ::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL;
}

bool NoDelay() {
  int v = 0;
  socklen_t len = sizeof(v);
  return ::getsockopt(kFd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v != 0;
}

void Write(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(kFd, s.data() + off, s.size() - off);
    if (n <= 0) std::exit(70);
    off += static_cast<size_t>(n);
  }
}

// One line from fd 3 without its newline; false at EOF.
bool ReadLine(std::string* line) {
  line->clear();
  for (;;) {
    char c;
    const ssize_t n = ::read(kFd, &c, 1);
    if (n <= 0) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[1], "--bastion-session") != 0 ||
      std::strcmp(argv[2], "--config") != 0) {
    return 64;
  }
  Write("ready pid=" + std::to_string(::getpid()) + " config=" + argv[3] +
        " stdin_null=" + std::to_string(StdinIsDevNull()) +
        " extra_fds=" + std::to_string(ExtraFds()) +
        " sigmask_empty=" + std::to_string(SigmaskEmpty()) +
        " sigpipe_default=" + std::to_string(SigpipeDefault()) +
        " nodelay=" + std::to_string(NoDelay()) + "\n");
  std::string line;
  while (ReadLine(&line)) {
    if (line.rfind("exit ", 0) == 0) return std::atoi(line.c_str() + 5);
    if (line == "ignore-term") {
      ::signal(SIGTERM, SIG_IGN);
      Write("ok\n");
    }
    if (line.rfind("become ", 0) == 0) {
      const int id = std::atoi(line.c_str() + 7);
      const bool ok = ::setresgid(id, id, id) == 0 &&
                      ::setresuid(id, id, id) == 0 &&
                      ::prctl(PR_SET_PDEATHSIG, SIGTERM) == 0;
      Write(ok ? "ok\n" : "failed\n");
    }
    if (line == "hang") {
      Write("ok\n");
      for (;;) ::pause();
    }
  }
  return 0;
}
