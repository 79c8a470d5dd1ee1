// The Env helpers shared by every implementation (they use only the virtual
// primitives, so FaultInjectionEnv exercises them too), and path helpers.
#include "core/base/env.h"

#include <sys/random.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/base/cleanup.h"
#include "core/base/status_macros.h"

namespace jitgate {
namespace {

// A random suffix for temporary names. The name only has to be unlikely to
// collide (the file is also created with O_EXCL), so a failing getrandom()
// falls back to the address of a local mixed with the pid-independent
// counter rather than failing the write.
std::string RandomSuffix() {
  uint64_t r = 0;
  if (getrandom(&r, sizeof(r), GRND_NONBLOCK) !=
      static_cast<ssize_t>(sizeof(r))) {
    static std::atomic<uint64_t> counter{0};
    r = reinterpret_cast<uintptr_t>(&r) ^
        (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(r));
  return buf;
}

}  // namespace

StatusOr<std::string> Env::ReadFileToString(const std::string& path,
                                            uint64_t max_size) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file,
                   NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_size) {
    return ResourceExhaustedError("read " + path + ": file is " +
                                  std::to_string(size) + " bytes, limit " +
                                  std::to_string(max_size));
  }
  std::string out(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(
        size_t n,
        file->Read(done, std::span<uint8_t>(
                             reinterpret_cast<uint8_t*>(out.data()) + done,
                             out.size() - done)));
    if (n == 0) break;  // Shrunk since Size(): return what is there.
    done += n;
  }
  out.resize(done);
  // The file may have grown since Size(); read on so the result is not a
  // silently truncated view, but still honour the cap.
  uint8_t buf[4096];
  for (;;) {
    ASSIGN_OR_RETURN(
        size_t n, file->Read(out.size(), std::span<uint8_t>(buf, sizeof(buf))));
    if (n == 0) break;
    if (out.size() + n > max_size) {
      return ResourceExhaustedError("read " + path + ": file exceeds limit " +
                                    std::to_string(max_size) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(buf), n);
  }
  return out;
}

Status Env::WriteFileAtomically(const std::string& path, ByteSpan data,
                                uint32_t mode) {
  const std::string tmp = path + ".tmp." + RandomSuffix();
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                   NewExclusiveFile(tmp, mode));
  // From here on a failure must not leave the temporary behind. (If the
  // process dies instead, a later run may find a stale "*.tmp.*" file; it
  // never shadows path because path is only replaced by the rename.)
  Cleanup remove_tmp = [&] {
    if (file != nullptr) file->Close().IgnoreError();
    RemoveFile(tmp).IgnoreError();
  };
  RETURN_IF_ERROR(file->Append(data));
  RETURN_IF_ERROR(file->Sync());
  Status closed = file->Close();
  file.reset();
  RETURN_IF_ERROR(closed);
  RETURN_IF_ERROR(Rename(tmp, path));
  // The rename happened: the temporary name no longer exists, and path now
  // holds the new data even if the directory sync below fails (the caller
  // learns that the replacement may not survive a crash).
  remove_tmp.Cancel();
  return SyncDir(DirName(path));
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  if (name.empty()) return std::string(dir);
  std::string out(dir);
  if (out.back() != '/') out += '/';
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  out += name;
  return out;
}

std::string DirName(std::string_view path) {
  // Strip trailing slashes (but keep a lone "/").
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  std::string_view dir = path.substr(0, slash);
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

}  // namespace jitgate
