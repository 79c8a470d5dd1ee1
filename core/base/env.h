// Env: every filesystem operation jitgate's store performs goes through this
// interface, so that tests can substitute a fault-injecting implementation
// (tests/testing/fault_env.h) that fails writes or fsyncs, runs out of space,
// or simulates a crash by dropping everything that was not made durable.
//
// Durability model (the contract every implementation honours and the store
// relies on):
//  - Data appended to a file is durable only after that file's Sync().
//  - A newly created file's directory entry, a rename and a removal are
//    durable only after SyncDir() of the containing directory.
// All methods are thread-safe; a WritableFile must be used by one thread at a
// time. Errors are Status values with the path in the message.
#ifndef JITGATE_CORE_BASE_ENV_H_
#define JITGATE_CORE_BASE_ENV_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"

namespace jitgate {

// An append-only file (the store never writes at an offset).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of data or returns an error (a short write is an error; the
  // file may then hold a partial tail, which readers treat as torn).
  virtual Status Append(ByteSpan data) = 0;
  // Makes everything appended so far durable (fdatasync/fsync).
  virtual Status Sync() = 0;
  // Closes the file. Further calls fail. Does not sync.
  virtual Status Close() = 0;
  // Size of the file as this handle sees it (including unsynced appends).
  virtual uint64_t Size() const = 0;
};

// A file read with positional reads; safe for concurrent use.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to out.size() bytes at offset. Returns the number of bytes read,
  // fewer only at end of file.
  virtual StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out) const = 0;
  // Current size of the file.
  virtual StatusOr<uint64_t> Size() const = 0;
};

// An exclusive advisory lock held until destroyed (flock on POSIX).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// The mode Env::ShareWithGroup gives a file or directory of mode `mode`.
constexpr uint32_t GroupSharedMode(uint32_t mode, bool is_dir) {
  return is_dir ? (mode & 0700) | 02050                  // setgid, group r-x
                : (mode & 0700) | ((mode & 0400) >> 3);  // group reads where the owner does
}

class Env {
 public:
  virtual ~Env() = default;

  // Opens path for appending (O_APPEND), creating it with mode if absent.
  virtual StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                                    uint32_t mode) = 0;
  // Creates path exclusively (O_EXCL); fails with AlreadyExists if present.
  virtual StatusOr<std::unique_ptr<WritableFile>> NewExclusiveFile(const std::string& path,
                                                                   uint32_t mode) = 0;
  virtual StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries in dir, excluding "." and "..", sorted.
  virtual StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates dir with mode; OK if it already exists as a directory.
  virtual Status CreateDir(const std::string& dir, uint32_t mode) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Shrinks path to size. Used only for derived, rebuildable files (never for
  // acknowledged records).
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Makes the directory's entries durable (fsync of the directory).
  virtual Status SyncDir(const std::string& dir) = 0;
  // Seals a finished file: removes write permission (mode 0444) and, where
  // the filesystem and privileges allow, sets the immutable attribute
  // (chattr +i). Refusal of the immutable attribute is not an error.
  virtual Status MakeReadOnly(const std::string& path) = 0;
  // Takes the exclusive lock on path (created if absent) without blocking;
  // FailedPrecondition if another process holds it.
  virtual StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // Permission bits of path (st_mode & 07777).
  virtual StatusOr<uint32_t> FileMode(const std::string& path) = 0;
  // Lets group gid read path (a file or directory; symbolic links are
  // refused): its group becomes gid; a file's group may read it where its
  // owner may (0600 -> 0640, 0400 -> 0440); a directory gets group r-x and
  // setgid (0700 -> 02750: what is created in it later gets gid too). Others
  // lose every bit and the group never gains write. Already so: OK without a change, which is
  // what lets a sealed (immutable) file pass; otherwise an immutable file is
  // an error (chown and chmod fail with EPERM).
  virtual Status ShareWithGroup(const std::string& path, uint32_t gid) = 0;

  // Helpers built on the primitives above.
  // Reads a whole file (refusing files larger than max_size).
  StatusOr<std::string> ReadFileToString(const std::string& path,
                                         uint64_t max_size = 64u << 20);
  // Writes data to path atomically and durably: a temporary file in the same
  // directory, Sync, Rename over path, SyncDir.
  Status WriteFileAtomically(const std::string& path, ByteSpan data, uint32_t mode);
};

// The real POSIX filesystem. Never null; thread-safe.
Env* DefaultEnv();

// Path helpers.
std::string JoinPath(std::string_view dir, std::string_view name);
std::string DirName(std::string_view path);

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_ENV_H_
