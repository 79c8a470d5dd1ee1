// FaultInjectionEnv: an in-memory Env that models env.h's durability
// contract exactly and injects the failures a real disk and a real crash
// produce (after LevelDB's memenv, SpecialEnv and fault_injection_test.cc).
//
// Model. Every file (inode) has its current bytes and its durable bytes;
// WritableFile::Sync() copies current to durable. Every directory has its
// current listing (name -> inode or subdirectory) and its durable listing;
// SyncDir() copies current to durable. Creating a file or directory, a
// rename and a removal change only the current listing. "/" always exists
// and is durable. Paths are normalised ("//" and "." dropped, ".." resolved;
// a relative path is taken from "/").
//
// SimulateCrash() turns the durable state into the current state: every
// directory reverts to its last synced listing (un-synced creates vanish,
// renames and removals come back; a rename synced in only one of two
// directories leaves the file under both names, as the contract allows), and
// every reachable file loses its unsynced bytes (or, in
// CrashMode::kKeepRandomPrefix, keeps a random prefix of them: a torn
// write). Handles opened before the crash belong to the dead "process": all
// their methods fail with kAborted. Locks are released.
//
// Mutating operations are NewAppendableFile, NewExclusiveFile, CreateDir,
// WritableFile::Append, WritableFile::Sync, SyncDir, Rename, RemoveFile,
// Truncate and MakeReadOnly: each attempt counts once in MutatingOpCount()
// whether or not it succeeds. (Reads, Close, LockFile and the test helpers
// below are not mutating operations.) To crash at every write and fsync
// point of a workload:
//
//   FaultInjectionEnv probe;  RunWorkload(&probe);
//   const int64_t n = probe.MutatingOpCount();
//   for (int64_t k = 0; k <= n; ++k) {
//     FaultInjectionEnv env;
//     env.SetFailAfter(k);   // ops 0..k-1 succeed, op k and later fail
//     RunWorkload(&env);     // sees kAborted "injected" errors
//     env.SimulateCrash();   // also clears SetFailAfter
//     CheckRecovered(&env);  // every acknowledged write must be there
//   }
//
// Disk conditions (SetSyncError, SetWriteError, SetNoSpace) persist across
// SimulateCrash until changed or ClearFaults().
//
// Thread-safety: all methods, and all methods of the handles it returns, are
// thread-safe (one internal mutex). The env must outlive every handle and
// lock it returns.
#ifndef JITGATE_TESTS_TESTING_FAULT_ENV_H_
#define JITGATE_TESTS_TESTING_FAULT_ENV_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"

namespace jitgate::testing {

class FaultInjectionEnv : public Env {
 public:
  // What a crash does to bytes appended but not synced.
  enum class CrashMode {
    kDropUnsynced,      // All unsynced bytes are lost (the default).
    kKeepRandomPrefix,  // A random prefix (possibly empty or all) survives.
  };

  FaultInjectionEnv();
  ~FaultInjectionEnv() override;
  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  // Env. Error codes mirror POSIX through ErrnoToStatus: missing file or
  // parent -> kNotFound, existing -> kAlreadyExists, writing/renaming/
  // removing a sealed file -> kPermissionDenied.
  StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path, uint32_t mode) override;
  StatusOr<std::unique_ptr<WritableFile>> NewExclusiveFile(
      const std::string& path, uint32_t mode) override;
  StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  bool FileExists(const std::string& path) override;
  StatusOr<uint64_t> FileSize(const std::string& path) override;
  StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  // Like mkdir(2): the parent must exist.
  Status CreateDir(const std::string& dir, uint32_t mode) override;
  Status RemoveFile(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  // Clears the write bits and marks the file immutable (as root would get);
  // takes effect at once and is never lost by a crash. Afterwards appends
  // through existing handles, NewAppendableFile, Truncate, Rename and
  // RemoveFile of it fail with kPermissionDenied.
  Status MakeReadOnly(const std::string& path) override;
  // Changes the mode bits as the real one does (group ids are not modelled:
  // GroupShared() tells which paths were shared); not a mutating operation.
  Status ShareWithGroup(const std::string& path, uint32_t gid) override;
  // In-process lock: a second LockFile of the same path while the first
  // FileLock lives fails with kFailedPrecondition "<path>: held by another
  // process". Creates an empty file at path if absent (not durable until
  // SyncDir, like any create).
  StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override;
  StatusOr<uint32_t> FileMode(const std::string& path) override;

  // --- Crash simulation.

  // Reverts to the durable state as described above, kills every handle
  // opened so far, releases all locks and clears SetFailAfter.
  void SimulateCrash();
  // Chooses what SimulateCrash does with unsynced bytes; seed drives the
  // random prefix lengths of kKeepRandomPrefix (deterministic per seed).
  void SetCrashMode(CrashMode mode, uint64_t seed = 0);

  // --- Fault points.

  // After n more mutating operations succeed, every mutating operation fails
  // with kAborted "... injected failure after N operations" and changes
  // nothing (the process is considered dead at that point). A negative n
  // disables the fault.
  void SetFailAfter(int64_t n);
  // Number of mutating operations attempted since construction.
  int64_t MutatingOpCount() const;
  // While enabled, Sync and SyncDir fail with kDataLoss ("Input/output
  // error") and make nothing durable.
  void SetSyncError(bool enabled);
  // While enabled, Append writes the first min(prefix_bytes, size) bytes of
  // its data (a torn write, kept until a crash) and then fails with kDataLoss
  // ("Input/output error").
  void SetWriteError(bool enabled, size_t prefix_bytes = 0);
  // Caps the total current bytes of all files in the tree. An Append that
  // would exceed the cap writes the prefix that still fits (as write(2) does
  // before ENOSPC) and fails with kResourceExhausted "No space left on
  // device". std::nullopt removes the cap.
  void SetNoSpace(std::optional<uint64_t> limit_bytes);
  // Disables every fault set above (crash mode is kept).
  void ClearFaults();

  // --- Inspection and tampering for tests. These bypass permissions, the
  // immutable flag, fault points and the op count.

  // Current bytes of path, or "" if it is not a file.
  std::string Contents(const std::string& path) const;
  // The bytes of path that would survive a crash now (its synced bytes),
  // or "" if it is not a file. Ignores whether its directory entry is durable.
  std::string DurableContents(const std::string& path) const;
  // Replaces path's bytes, both current and durable (an attacker editing the
  // disk). Creates the file, durably, if absent; its parent must exist.
  // Fails with kNotFound if the parent is missing, and with an EISDIR
  // error if path is a directory.
  Status SetContents(const std::string& path, std::string bytes);
  // True if MakeReadOnly sealed path.
  bool IsImmutable(const std::string& path) const;
  // The gid of the last ShareWithGroup of path, if any.
  std::optional<uint32_t> GroupShared(const std::string& path) const;

 private:
  struct FileNode;
  struct DirNode;
  struct Node;
  class Writable;
  class Reader;
  class Lock;

  // The existing parent directory and final component of a path.
  struct Resolved {
    DirNode* dir = nullptr;
    std::string name;
  };

  // "/a/b" for "a//b/./", the key of locks_.
  static std::string Normalize(const std::string& path);
  // The directory named by the first count components, or null.
  DirNode* FindDirLocked(const std::vector<std::string>& parts,
                         size_t count) const;
  // kNotFound if the parent is missing; an EISDIR error for "/".
  StatusOr<Resolved> ResolveParentLocked(std::string_view op,
                                         const std::string& path) const;
  // The current entry for path (root included), or null.
  const Node* LookupLocked(const std::string& path) const;
  std::shared_ptr<FileNode> FileLocked(const std::string& path) const;
  // Counts one mutating op and returns the injected failure, if any.
  Status CountOpLocked(std::string_view op, const std::string& path);
  // Current bytes of every inode reachable from "/", each counted once.
  uint64_t TotalBytesLocked() const;
  // Crash recovery of one directory tree; seen holds visited nodes.
  void RevertDirLocked(DirNode* dir, std::set<const void*>* seen);
  StatusOr<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                       uint32_t mode,
                                                       bool exclusive);

  // All state below is guarded by mu_ (std::mutex carries no clang
  // capability annotations in libstdc++, so this is by convention).
  mutable std::mutex mu_;
  std::unique_ptr<Node> root_;  // Always a directory.
  uint64_t epoch_ = 0;          // Bumped by each crash; kills older handles.
  std::map<std::string, uint32_t> shared_;  // Normalize(path) -> gid
  int64_t op_count_ = 0;        // Mutating ops attempted.
  int64_t fail_after_ = -1;     // Ops left before failing; -1: disabled.
  int64_t ops_before_failure_ = 0;  // For the error message.
  bool sync_error_ = false;
  bool write_error_ = false;
  size_t write_error_prefix_ = 0;
  std::optional<uint64_t> space_limit_;
  CrashMode crash_mode_ = CrashMode::kDropUnsynced;
  std::mt19937_64 rng_;
  std::map<std::string, uint64_t> locks_;  // Normalised path -> holder's token.
  uint64_t next_lock_token_ = 1;
};

}  // namespace jitgate::testing

#endif  // JITGATE_TESTS_TESTING_FAULT_ENV_H_
