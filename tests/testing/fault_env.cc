#include "tests/testing/fault_env.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "core/base/status_macros.h"

namespace jitgate::testing {

struct FaultInjectionEnv::FileNode {
  std::string data;    // What reads see.
  std::string synced;  // What survives a crash.
  uint32_t mode = 0;
  bool immutable = false;
};

struct FaultInjectionEnv::Node {
  std::shared_ptr<FileNode> file;  // Exactly one of file and dir is set.
  std::shared_ptr<DirNode> dir;
};

struct FaultInjectionEnv::DirNode {
  std::map<std::string, Node> entries;  // Current listing.
  std::map<std::string, Node> durable;  // Listing as of the last SyncDir.
  uint32_t mode = 0755;
};

namespace {

Status Err(int err, std::string_view op, const std::string& path) {
  std::string context(op);
  context += ' ';
  context += path;
  return ErrnoToStatus(err, context);
}

// Path components after dropping "", "." and resolving "..".
std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!part.empty() && part != ".") {
      out.push_back(std::move(part));
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

// A WritableFile over one inode. Dead once its env has crashed.
class FaultInjectionEnv::Writable final : public WritableFile {
 public:
  Writable(FaultInjectionEnv* env, std::string path,
           std::shared_ptr<FileNode> node, uint64_t epoch, uint64_t size)
      : env_(env),
        path_(std::move(path)),
        node_(std::move(node)),
        epoch_(epoch),
        size_(size) {}

  Status Append(ByteSpan data) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    RETURN_IF_ERROR(CheckLiveLocked("append"));
    RETURN_IF_ERROR(env_->CountOpLocked("append", path_));
    if (node_->immutable) return Err(EPERM, "append", path_);
    size_t n = data.size();
    Status failure;
    if (env_->write_error_) {
      n = std::min(n, env_->write_error_prefix_);
      failure = Err(EIO, "append", path_);
    }
    if (env_->space_limit_.has_value()) {
      const uint64_t used = env_->TotalBytesLocked();
      const uint64_t room =
          used >= *env_->space_limit_ ? 0 : *env_->space_limit_ - used;
      if (n > room) {
        n = static_cast<size_t>(room);
        failure = Err(ENOSPC, "append", path_);
      }
    }
    node_->data.append(reinterpret_cast<const char*>(data.data()), n);
    size_ += n;
    return failure;
  }

  Status Sync() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    RETURN_IF_ERROR(CheckLiveLocked("sync"));
    RETURN_IF_ERROR(env_->CountOpLocked("sync", path_));
    if (env_->sync_error_) return Err(EIO, "sync", path_);
    node_->synced = node_->data;
    return OkStatus();
  }

  Status Close() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    RETURN_IF_ERROR(CheckLiveLocked("close"));
    closed_ = true;
    return OkStatus();
  }

  uint64_t Size() const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return size_;
  }

 private:
  Status CheckLiveLocked(std::string_view op) const {
    if (epoch_ != env_->epoch_) {
      return AbortedError(std::string(op) + " " + path_ +
                          ": handle from before a simulated crash");
    }
    if (closed_)
      return FailedPreconditionError(std::string(op) + " " + path_ +
                                     ": file is closed");
    return OkStatus();
  }

  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::shared_ptr<FileNode> node_;
  const uint64_t epoch_;
  uint64_t size_;        // Guarded by env_->mu_.
  bool closed_ = false;  // Guarded by env_->mu_.
};

class FaultInjectionEnv::Reader final : public RandomAccessFile {
 public:
  Reader(FaultInjectionEnv* env, std::string path,
         std::shared_ptr<FileNode> node, uint64_t epoch)
      : env_(env),
        path_(std::move(path)),
        node_(std::move(node)),
        epoch_(epoch) {}

  StatusOr<size_t> Read(uint64_t offset,
                        std::span<uint8_t> out) const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    RETURN_IF_ERROR(CheckLiveLocked("read"));
    const std::string& data = node_->data;
    if (offset >= data.size()) return size_t{0};
    size_t n = std::min(out.size(), data.size() - static_cast<size_t>(offset));
    std::copy_n(data.data() + offset, n, out.data());
    return n;
  }

  StatusOr<uint64_t> Size() const override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    RETURN_IF_ERROR(CheckLiveLocked("stat"));
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  Status CheckLiveLocked(std::string_view op) const {
    if (epoch_ != env_->epoch_) {
      return AbortedError(std::string(op) + " " + path_ +
                          ": handle from before a simulated crash");
    }
    return OkStatus();
  }

  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::shared_ptr<FileNode> node_;
  const uint64_t epoch_;
};

class FaultInjectionEnv::Lock final : public FileLock {
 public:
  Lock(FaultInjectionEnv* env, std::string key, uint64_t token)
      : env_(env), key_(std::move(key)), token_(token) {}
  ~Lock() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    // A crash already released this lock, and a later holder may own the
    // path now: release only our own token.
    auto it = env_->locks_.find(key_);
    if (it != env_->locks_.end() && it->second == token_)
      env_->locks_.erase(it);
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string key_;
  const uint64_t token_;
};

FaultInjectionEnv::FaultInjectionEnv()
    : root_(
          std::make_unique<Node>(Node{nullptr, std::make_shared<DirNode>()})) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

std::string FaultInjectionEnv::Normalize(const std::string& path) {
  std::string out;
  for (const std::string& part : Components(path)) out += "/" + part;
  return out.empty() ? "/" : out;
}

FaultInjectionEnv::DirNode* FaultInjectionEnv::FindDirLocked(
    const std::vector<std::string>& parts, size_t count) const {
  DirNode* dir = root_->dir.get();
  for (size_t i = 0; i < count; ++i) {
    auto it = dir->entries.find(parts[i]);
    if (it == dir->entries.end() || it->second.dir == nullptr) return nullptr;
    dir = it->second.dir.get();
  }
  return dir;
}

StatusOr<FaultInjectionEnv::Resolved> FaultInjectionEnv::ResolveParentLocked(
    std::string_view op, const std::string& path) const {
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) return Err(EISDIR, op, path);  // The root itself.
  DirNode* dir = FindDirLocked(parts, parts.size() - 1);
  if (dir == nullptr) return Err(ENOENT, op, path);
  return Resolved{dir, parts.back()};
}

const FaultInjectionEnv::Node* FaultInjectionEnv::LookupLocked(
    const std::string& path) const {
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) return root_.get();
  DirNode* dir = FindDirLocked(parts, parts.size() - 1);
  if (dir == nullptr) return nullptr;
  auto it = dir->entries.find(parts.back());
  return it == dir->entries.end() ? nullptr : &it->second;
}

std::shared_ptr<FaultInjectionEnv::FileNode> FaultInjectionEnv::FileLocked(
    const std::string& path) const {
  const Node* node = LookupLocked(path);
  return node == nullptr ? nullptr : node->file;
}

Status FaultInjectionEnv::CountOpLocked(std::string_view op,
                                        const std::string& path) {
  ++op_count_;
  if (fail_after_ < 0) return OkStatus();
  if (fail_after_ == 0) {
    return AbortedError(std::string(op) + " " + path +
                        ": injected failure after " +
                        std::to_string(ops_before_failure_) + " operations");
  }
  --fail_after_;
  return OkStatus();
}

uint64_t FaultInjectionEnv::TotalBytesLocked() const {
  // Each inode once, even if reachable under two names.
  std::set<const FileNode*> seen;
  uint64_t total = 0;
  std::vector<const DirNode*> stack{root_->dir.get()};
  while (!stack.empty()) {
    const DirNode* dir = stack.back();
    stack.pop_back();
    for (const auto& [name, node] : dir->entries) {
      if (node.dir != nullptr) {
        stack.push_back(node.dir.get());
      } else if (seen.insert(node.file.get()).second) {
        total += node.file->data.size();
      }
    }
  }
  return total;
}

void FaultInjectionEnv::RevertDirLocked(DirNode* dir,
                                        std::set<const void*>* seen) {
  if (!seen->insert(dir).second) return;
  dir->entries = dir->durable;
  for (auto& [name, node] : dir->entries) {
    if (node.dir != nullptr) {
      RevertDirLocked(node.dir.get(), seen);
      continue;
    }
    FileNode* file = node.file.get();
    if (!seen->insert(file).second) continue;
    std::string kept = file->synced;
    if (crash_mode_ == CrashMode::kKeepRandomPrefix &&
        file->data.size() > file->synced.size() &&
        file->data.compare(0, file->synced.size(), file->synced) == 0) {
      // A torn write: some prefix of the unsynced tail reached the disk.
      const size_t unsynced = file->data.size() - file->synced.size();
      const size_t keep = static_cast<size_t>(rng_() % (unsynced + 1));
      kept.append(file->data, file->synced.size(), keep);
      // What reached the disk is now on it; a second crash cannot undo it.
      file->synced = kept;
    }
    file->data = std::move(kept);
  }
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::OpenWritable(
    const std::string& path, uint32_t mode, bool exclusive) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("open", path));
  ASSIGN_OR_RETURN(Resolved r, ResolveParentLocked("open", path));
  auto it = r.dir->entries.find(r.name);
  std::shared_ptr<FileNode> file;
  if (it != r.dir->entries.end()) {
    if (exclusive) return Err(EEXIST, "open", path);
    if (it->second.dir != nullptr) return Err(EISDIR, "open", path);
    file = it->second.file;
    // Root ignores the mode bits, but not the immutable attribute.
    if (file->immutable) return Err(EPERM, "open", path);
  } else {
    file = std::make_shared<FileNode>();
    file->mode = mode & 07777;
    r.dir->entries[r.name] = Node{file, nullptr};
  }
  return std::unique_ptr<WritableFile>(new Writable(
      this, path, file, epoch_, static_cast<uint64_t>(file->data.size())));
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(
    const std::string& path, uint32_t mode) {
  return OpenWritable(path, mode, /*exclusive=*/false);
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewExclusiveFile(
    const std::string& path, uint32_t mode) {
  return OpenWritable(path, mode, /*exclusive=*/true);
}

StatusOr<std::unique_ptr<RandomAccessFile>>
FaultInjectionEnv::NewRandomAccessFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "open", path);
  if (node->file == nullptr) return Err(EISDIR, "open", path);
  return std::unique_ptr<RandomAccessFile>(
      new Reader(this, path, node->file, epoch_));
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return LookupLocked(path) != nullptr;
}

StatusOr<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "stat", path);
  if (node->file == nullptr)
    return uint64_t{4096};  // Like st_size of a directory.
  return static_cast<uint64_t>(node->file->data.size());
}

StatusOr<std::vector<std::string>> FaultInjectionEnv::ListDir(
    const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  const Node* node = LookupLocked(dir);
  if (node == nullptr) return Err(ENOENT, "list", dir);
  if (node->dir == nullptr) return Err(ENOTDIR, "list", dir);
  std::vector<std::string> names;
  for (const auto& [name, child] : node->dir->entries) names.push_back(name);
  return names;  // std::map keeps them sorted.
}

Status FaultInjectionEnv::CreateDir(const std::string& dir, uint32_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("mkdir", dir));
  if (Components(dir).empty()) return OkStatus();  // "/" always exists.
  ASSIGN_OR_RETURN(Resolved r, ResolveParentLocked("mkdir", dir));
  auto it = r.dir->entries.find(r.name);
  if (it != r.dir->entries.end()) {
    if (it->second.dir != nullptr) return OkStatus();
    return Err(EEXIST, "mkdir", dir);
  }
  auto node = std::make_shared<DirNode>();
  node->mode = mode & 07777;
  r.dir->entries[r.name] = Node{nullptr, std::move(node)};
  return OkStatus();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("remove", path));
  ASSIGN_OR_RETURN(Resolved r, ResolveParentLocked("remove", path));
  auto it = r.dir->entries.find(r.name);
  if (it == r.dir->entries.end()) return Err(ENOENT, "remove", path);
  if (it->second.dir != nullptr) return Err(EISDIR, "remove", path);
  if (it->second.file->immutable) return Err(EPERM, "remove", path);
  r.dir->entries.erase(it);
  return OkStatus();
}

Status FaultInjectionEnv::Rename(const std::string& from,
                                 const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = from + " -> " + to;
  RETURN_IF_ERROR(CountOpLocked("rename", what));
  StatusOr<Resolved> src_or = ResolveParentLocked("rename", from);
  if (!src_or.ok()) return Err(ENOENT, "rename", what);
  Resolved src = *src_or;
  auto from_it = src.dir->entries.find(src.name);
  if (from_it == src.dir->entries.end()) return Err(ENOENT, "rename", what);
  StatusOr<Resolved> dst_or = ResolveParentLocked("rename", to);
  if (!dst_or.ok()) return Err(ENOENT, "rename", what);
  Resolved dst = *dst_or;
  const Node moving = from_it->second;
  if (moving.file != nullptr && moving.file->immutable)
    return Err(EPERM, "rename", what);
  auto to_it = dst.dir->entries.find(dst.name);
  if (to_it != dst.dir->entries.end()) {
    if (to_it->second.file == moving.file && to_it->second.dir == moving.dir)
      return OkStatus();
    if (to_it->second.dir != nullptr)
      return Err(moving.dir ? ENOTEMPTY : EISDIR, "rename", what);
    if (moving.dir != nullptr) return Err(ENOTDIR, "rename", what);
    if (to_it->second.file->immutable) return Err(EPERM, "rename", what);
  }
  src.dir->entries.erase(from_it);
  dst.dir->entries[dst.name] = moving;
  return OkStatus();
}

Status FaultInjectionEnv::Truncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("truncate", path));
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "truncate", path);
  if (node->file == nullptr) return Err(EISDIR, "truncate", path);
  if (node->file->immutable) return Err(EPERM, "truncate", path);
  // Growing pads with zeros, as truncate(2) does. Like any data change, the
  // new length is durable only after a Sync of the file.
  node->file->data.resize(static_cast<size_t>(size), '\0');
  return OkStatus();
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("sync dir", dir));
  const Node* node = LookupLocked(dir);
  if (node == nullptr) return Err(ENOENT, "sync dir", dir);
  if (node->dir == nullptr) return Err(ENOTDIR, "sync dir", dir);
  if (sync_error_) return Err(EIO, "sync dir", dir);
  node->dir->durable = node->dir->entries;
  return OkStatus();
}

Status FaultInjectionEnv::MakeReadOnly(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CountOpLocked("seal", path));
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "seal", path);
  if (node->file == nullptr) {
    return FailedPreconditionError("seal " + path + ": not a regular file");
  }
  if (node->file->immutable) return OkStatus();
  node->file->mode &= 0444;
  node->file->immutable = true;
  return OkStatus();
}

Status FaultInjectionEnv::ShareWithGroup(const std::string& path, uint32_t gid) {
  std::lock_guard<std::mutex> lock(mu_);
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "share", path);
  uint32_t* mode = node->file != nullptr ? &node->file->mode : &node->dir->mode;
  const uint32_t want = GroupSharedMode(*mode, node->file == nullptr);
  if (want != *mode && node->file != nullptr && node->file->immutable) {
    return Err(EPERM, "chmod", path);
  }
  *mode = want;
  shared_[Normalize(path)] = gid;
  return OkStatus();
}

StatusOr<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Resolved r, ResolveParentLocked("lock", path));
  auto it = r.dir->entries.find(r.name);
  if (it == r.dir->entries.end()) {
    auto file = std::make_shared<FileNode>();
    file->mode = 0600;
    r.dir->entries[r.name] = Node{std::move(file), nullptr};
  } else if (it->second.dir != nullptr) {
    return Err(EISDIR, "lock", path);
  }
  const std::string key = Normalize(path);
  if (locks_.count(key) != 0)
    return FailedPreconditionError(path + ": held by another process");
  const uint64_t token = next_lock_token_++;
  locks_[key] = token;
  return std::unique_ptr<FileLock>(new Lock(this, key, token));
}

StatusOr<uint32_t> FaultInjectionEnv::FileMode(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  const Node* node = LookupLocked(path);
  if (node == nullptr) return Err(ENOENT, "stat", path);
  return node->file != nullptr ? node->file->mode : node->dir->mode;
}

void FaultInjectionEnv::SimulateCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<const void*> seen;
  RevertDirLocked(root_->dir.get(), &seen);
  ++epoch_;
  locks_.clear();
  fail_after_ = -1;
}

void FaultInjectionEnv::SetCrashMode(CrashMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_mode_ = mode;
  rng_.seed(seed);
}

void FaultInjectionEnv::SetFailAfter(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_after_ = n < 0 ? -1 : n;
  ops_before_failure_ = op_count_ + (n < 0 ? 0 : n);
}

int64_t FaultInjectionEnv::MutatingOpCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return op_count_;
}

void FaultInjectionEnv::SetSyncError(bool enabled) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_error_ = enabled;
}

void FaultInjectionEnv::SetWriteError(bool enabled, size_t prefix_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  write_error_ = enabled;
  write_error_prefix_ = prefix_bytes;
}

void FaultInjectionEnv::SetNoSpace(std::optional<uint64_t> limit_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_limit_ = limit_bytes;
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_after_ = -1;
  sync_error_ = false;
  write_error_ = false;
  write_error_prefix_ = 0;
  space_limit_.reset();
}

std::string FaultInjectionEnv::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<FileNode> file = FileLocked(path);
  return file == nullptr ? std::string() : file->data;
}

std::string FaultInjectionEnv::DurableContents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<FileNode> file = FileLocked(path);
  return file == nullptr ? std::string() : file->synced;
}

Status FaultInjectionEnv::SetContents(const std::string& path,
                                      std::string bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Resolved r, ResolveParentLocked("set contents", path));
  auto it = r.dir->entries.find(r.name);
  if (it != r.dir->entries.end() && it->second.dir != nullptr) {
    return Err(EISDIR, "set contents", path);
  }
  if (it == r.dir->entries.end()) {
    auto file = std::make_shared<FileNode>();
    file->mode = 0644;
    Node node{file, nullptr};
    r.dir->entries[r.name] = node;
    r.dir->durable[r.name] = node;
    it = r.dir->entries.find(r.name);
  }
  FileNode* file = it->second.file.get();
  file->synced = bytes;
  file->data = std::move(bytes);
  return OkStatus();
}

std::optional<uint32_t> FaultInjectionEnv::GroupShared(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shared_.find(Normalize(path));
  if (it == shared_.end()) return std::nullopt;
  return it->second;
}

bool FaultInjectionEnv::IsImmutable(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<FileNode> file = FileLocked(path);
  return file != nullptr && file->immutable;
}

}  // namespace jitgate::testing
