// DefaultEnv(): the POSIX implementation of Env.
//
// Every descriptor is opened with O_CLOEXEC (the broker forks helpers) and
// owned by a UniqueFd. Every error carries "<operation> <path>" and errno
// through ErrnoToStatus.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/unique_fd.h"

namespace jitgate {
namespace {

Status PosixError(std::string_view op, const std::string& path, int err) {
  std::string context(op);
  context += ' ';
  context += path;
  return ErrnoToStatus(err, context);
}

// open() retried on EINTR (possible for FIFOs and some network filesystems).
int OpenRetry(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

  Status Append(ByteSpan data) override {
    if (!fd_.valid())
      return FailedPreconditionError("append " + path_ + ": file is closed");
    const uint8_t* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_.get(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError("append", path_, errno);
      }
      // Count partial progress: Size() must match what the file now holds.
      size_ += static_cast<uint64_t>(n);
      p += n;
      left -= static_cast<size_t>(n);
    }
    return OkStatus();
  }

  Status Sync() override {
    if (!fd_.valid())
      return FailedPreconditionError("sync " + path_ + ": file is closed");
    // fdatasync also flushes the size change of an append, which is all the
    // store needs; mtime is not part of the durability contract. A failed
    // fdatasync is not retried: after an EIO the kernel may have dropped the
    // dirty pages, so a retry could "succeed" without the data (fsyncgate).
    if (::fdatasync(fd_.get()) != 0) return PosixError("sync", path_, errno);
    return OkStatus();
  }

  Status Close() override {
    if (!fd_.valid())
      return FailedPreconditionError("close " + path_ + ": file is closed");
    int fd = fd_.release();
    // No retry on EINTR: the descriptor is gone either way on Linux.
    if (::close(fd) != 0 && errno != EINTR)
      return PosixError("close", path_, errno);
    return OkStatus();
  }

  uint64_t Size() const override { return size_; }

 private:
  const std::string path_;
  UniqueFd fd_;
  uint64_t size_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}

  StatusOr<size_t> Read(uint64_t offset,
                        std::span<uint8_t> out) const override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                          static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError("read", path_, errno);
      }
      if (n == 0) break;  // End of file.
      done += static_cast<size_t>(n);
    }
    return done;
  }

  StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return PosixError("stat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const std::string path_;
  UniqueFd fd_;
};

// Holds the flock until destroyed; closing the descriptor releases it.
class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  UniqueFd fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

class PosixEnv final : public Env {
 public:
  StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path, uint32_t mode) override {
    return OpenWritable(path, O_WRONLY | O_CREAT | O_APPEND, mode);
  }

  StatusOr<std::unique_ptr<WritableFile>> NewExclusiveFile(
      const std::string& path, uint32_t mode) override {
    return OpenWritable(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, mode);
  }

  StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    UniqueFd fd(OpenRetry(path, O_RDONLY));
    if (!fd.valid()) return PosixError("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(
        new PosixRandomAccessFile(path, std::move(fd)));
  }

  bool FileExists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    UniqueFd fd(OpenRetry(dir, O_RDONLY | O_DIRECTORY));
    if (!fd.valid()) return PosixError("list", dir, errno);
    std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd.get()));
    if (d == nullptr) return PosixError("list", dir, errno);
    (void)fd.release();  // Now owned by d.
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      struct dirent* e = ::readdir(d.get());
      if (e == nullptr) {
        if (errno != 0) return PosixError("list", dir, errno);
        break;
      }
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDir(const std::string& dir, uint32_t mode) override {
    if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) == 0) return OkStatus();
    int err = errno;
    if (err == EEXIST) {
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        return OkStatus();
    }
    return PosixError("mkdir", dir, err);
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("remove", path, errno);
    return OkStatus();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename", from + " -> " + to, errno);
    }
    return OkStatus();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    int rc;
    do {
      rc = ::truncate(path.c_str(), static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return PosixError("truncate", path, errno);
    return OkStatus();
  }

  Status SyncDir(const std::string& dir) override {
    UniqueFd fd(OpenRetry(dir, O_RDONLY | O_DIRECTORY));
    if (!fd.valid()) return PosixError("open dir", dir, errno);
    if (::fsync(fd.get()) != 0) return PosixError("sync dir", dir, errno);
    return OkStatus();
  }

  Status MakeReadOnly(const std::string& path) override {
    // O_NONBLOCK: never hang on a FIFO planted at path.
    UniqueFd fd(OpenRetry(path, O_RDONLY | O_NONBLOCK));
    if (!fd.valid()) return PosixError("seal", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return PosixError("seal", path, errno);
    if (!S_ISREG(st.st_mode)) {
      return FailedPreconditionError("seal " + path + ": not a regular file");
    }
    // The kernel's flags argument is an int despite the ioctl's declared
    // long (as e2fsprogs' chattr does).
    int flags = 0;
    const bool have_flags = ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0;
    if (have_flags && (flags & FS_IMMUTABLE_FL) != 0) {
      // Already sealed (e.g. a retry after a crash): nobody can write it, and
      // chmod would fail with EPERM on an immutable inode.
      return OkStatus();
    }
    if (::fchmod(fd.get(), st.st_mode & 0444) != 0)
      return PosixError("chmod", path, errno);
    if (have_flags) {
      flags |= FS_IMMUTABLE_FL;
      if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
        // Without CAP_LINUX_IMMUTABLE, or on filesystems without the
        // attribute, the mode bits are the whole seal (documented in env.h).
        int err = errno;
        if (err != EPERM && err != ENOTTY && err != EOPNOTSUPP &&
            err != EINVAL && err != EACCES) {
          return PosixError("chattr +i", path, err);
        }
      }
    }
    return OkStatus();
  }

  Status ShareWithGroup(const std::string& path, uint32_t gid) override {
    UniqueFd fd(OpenRetry(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return PosixError("share", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return PosixError("share", path, errno);
    mode_t mode = st.st_mode & 07777;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
      return FailedPreconditionError("share " + path + ": not a file or directory");
    const mode_t want = GroupSharedMode(mode, S_ISDIR(st.st_mode));
    if (st.st_gid != gid && ::fchown(fd.get(), static_cast<uid_t>(-1), gid) != 0)
      return PosixError("chgrp " + std::to_string(gid), path, errno);
    // chown cleared the setgid bit of a directory on some filesystems; set
    // the mode after it.
    if ((st.st_gid != gid || mode != want) && ::fchmod(fd.get(), want) != 0)
      return PosixError("chmod", path, errno);
    return OkStatus();
  }

  StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override {
    UniqueFd fd(OpenRetry(path, O_RDWR | O_CREAT, 0600));
    if (!fd.valid()) return PosixError("lock", path, errno);
    int rc;
    do {
      rc = ::flock(fd.get(), LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      int err = errno;
      if (err == EWOULDBLOCK) {
        return FailedPreconditionError(path + ": held by another process" +
                                       HolderPid(fd.get()));
      }
      return PosixError("lock", path, err);
    }
    // Record the holder for the diagnostic above. Best effort: the lock is
    // what matters, and the pid is advisory text.
    if (::ftruncate(fd.get(), 0) == 0) {
      std::string pid = std::to_string(::getpid()) + "\n";
      (void)!::pwrite(fd.get(), pid.data(), pid.size(), 0);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(std::move(fd)));
  }

  StatusOr<uint32_t> FileMode(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return static_cast<uint32_t>(st.st_mode & 07777);
  }

 private:
  StatusOr<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                       int flags,
                                                       uint32_t mode) {
    UniqueFd fd(OpenRetry(path, flags, static_cast<mode_t>(mode)));
    if (!fd.valid()) return PosixError("open", path, errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return PosixError("stat", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(
        path, std::move(fd), static_cast<uint64_t>(st.st_size)));
  }

  // " (pid N)" from the lock file's contents, or "" if unreadable (the
  // holder may not have written it yet).
  static std::string HolderPid(int fd) {
    char buf[24];
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return "";
    std::string_view text(buf, static_cast<size_t>(n));
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
      ++digits;
    if (digits == 0 || digits > 10) return "";
    return " (pid " + std::string(text.substr(0, digits)) + ")";
  }
};

}  // namespace

Env* DefaultEnv() {
  // Leaked on purpose: stateless and usable during static destruction.
  static Env* const env = new PosixEnv();
  return env;
}

}  // namespace jitgate
