#include "ca/ca_test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace jitgate::ca::testing {

std::string OpensshTestdata(const std::string& rel) {
  // Set by ctest (cmake/JitgateOptions.cmake) to ../shared/testdata beside
  // the checkout; no machine-specific fallback.
  const char* root = std::getenv("JITGATE_TESTDATA");
  if (root == nullptr) {
    std::fprintf(stderr, "JITGATE_TESTDATA is not set (run the test through ctest)\n");
    std::abort();
  }
  return std::string(root) + "/openssh/" + rel;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileOrDie(const std::string& path, const std::string& data, int mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || ::write(fd, data.data(), data.size()) != ssize_t(data.size()) || ::fchmod(fd, mode_t(mode)) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
  ::close(fd);
}

CommandResult Run(const std::vector<std::string>& argv) {
  CommandResult res;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return res;
  const pid_t pid = ::fork();
  if (pid < 0) return res;
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::setenv("TZ", "UTC", 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) res.output.append(buf, size_t(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return res;
}

bool HaveSshKeygen() { return ::access("/usr/bin/ssh-keygen", X_OK) == 0; }

}  // namespace jitgate::ca::testing
