// TempDir: a unique scratch directory for tests that use the real
// filesystem, removed with everything in it when the TempDir is destroyed.
//
// Removal first undoes what the store's sealing does (tests run as root, and
// Env::MakeReadOnly sets chattr +i, which even root cannot unlink): it clears
// the immutable and append-only attributes and restores owner write
// permission on every entry before removing it.
#ifndef JITGATE_TESTS_TESTING_TEMP_DIR_H_
#define JITGATE_TESTS_TESTING_TEMP_DIR_H_

#include <string>

#include "core/base/status.h"

namespace jitgate::testing {

class TempDir {
 public:
  // Creates "$TMPDIR/jitgate-test.XXXXXX" (or under /tmp) with mkdtemp, mode
  // 0700. Aborts the test binary if that fails: no test can run without it.
  TempDir();
  // Removes the tree; failures are printed to stderr, not fatal.
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Absolute path of the directory (no trailing slash).
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(const std::string& name) const;

 private:
  std::string path_;
};

// Clears FS_IMMUTABLE_FL and FS_APPEND_FL on path and adds owner write
// permission (u+w), so that a test can tamper with a sealed file. Does not
// follow a final symlink. OK if the filesystem has no such attributes.
Status ClearImmutable(const std::string& path);

// Recursively removes path (a file or directory tree), clearing immutable
// flags and restoring write permission first. Does not follow symlinks.
// OK if path does not exist.
Status RemoveTree(const std::string& path);

}  // namespace jitgate::testing

#endif  // JITGATE_TESTS_TESTING_TEMP_DIR_H_
