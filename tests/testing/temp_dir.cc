#include "tests/testing/temp_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace jitgate::testing {
namespace {

Status Err(int err, std::string_view op, const std::string& path) {
  std::string context(op);
  context += ' ';
  context += path;
  return ErrnoToStatus(err, context);
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

Status ClearImmutable(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Err(errno, "lstat", path);
  if (S_ISLNK(st.st_mode)) return OkStatus();  // Symlinks carry no such flags.
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return OkStatus();
  UniqueFd fd(
      ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return Err(errno, "open", path);
  int flags = 0;
  if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0) {
    if ((flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) != 0) {
      flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
      if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0)
        return Err(errno, "chattr -i", path);
    }
  } else if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL) {
    return Err(errno, "lsattr", path);
  }
  mode_t want =
      st.st_mode | S_IRUSR | S_IWUSR | (S_ISDIR(st.st_mode) ? S_IXUSR : 0);
  if ((want & 07777) != (st.st_mode & 07777) &&
      ::fchmod(fd.get(), want & 07777) != 0) {
    return Err(errno, "chmod", path);
  }
  return OkStatus();
}

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return OkStatus();
    return Err(errno, "lstat", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    RETURN_IF_ERROR(ClearImmutable(path));
    if (::unlink(path.c_str()) != 0) return Err(errno, "unlink", path);
    return OkStatus();
  }
  // An immutable directory forbids unlinking its entries: clear it first.
  RETURN_IF_ERROR(ClearImmutable(path));
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, DirCloser> d(::opendir(path.c_str()));
    if (d == nullptr) return Err(errno, "opendir", path);
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d.get());
      if (e == nullptr) {
        if (errno != 0) return Err(errno, "readdir", path);
        break;
      }
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
  }
  Status first_error;
  for (const std::string& name : names) {
    Status s = RemoveTree(path + "/" + name);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  RETURN_IF_ERROR(first_error);
  if (::rmdir(path.c_str()) != 0) return Err(errno, "rmdir", path);
  return OkStatus();
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = (base != nullptr && base[0] != '\0') ? base : "/tmp";
  while (templ.size() > 1 && templ.back() == '/') templ.pop_back();
  templ += "/jitgate-test.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror(("mkdtemp " + templ).c_str());
    std::abort();
  }
  path_ = templ;
}

TempDir::~TempDir() {
  Status s = RemoveTree(path_);
  if (!s.ok())
    std::fprintf(stderr, "TempDir: removing %s: %s\n", path_.c_str(),
                 s.ToString().c_str());
}

std::string TempDir::Join(const std::string& name) const {
  return path_ + "/" + name;
}

}  // namespace jitgate::testing
