// UniqueFd: sole ownership of a POSIX file descriptor.
//
// The descriptor is closed when the UniqueFd is destroyed or reset. close()
// errors are ignored and close is never retried on EINTR: on Linux the
// descriptor is released even when close() reports EINTR, and retrying could
// close a descriptor another thread has just been given. Code that must know
// whether data reached the disk calls fsync/fdatasync before closing.
// Move-only; not thread-safe (one owner at a time).
#ifndef JITGATE_CORE_BASE_UNIQUE_FD_H_
#define JITGATE_CORE_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace jitgate {

class UniqueFd {
 public:
  // An empty UniqueFd (get() == -1).
  UniqueFd() = default;
  // Takes ownership of fd (which may be -1).
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, or -1. Ownership is kept.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing; returns the descriptor (or -1).
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the owned descriptor (if any) and takes ownership of fd.
  void reset(int fd = -1) {
    int old = std::exchange(fd_, fd);
    if (old >= 0 && old != fd) (void)::close(old);
  }

 private:
  int fd_ = -1;
};

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_UNIQUE_FD_H_
