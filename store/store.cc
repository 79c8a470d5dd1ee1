#include "store/store.h"

#include <algorithm>
#include <chrono>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/merkle/merkle.h"
#include "store/merkle/proof.h"
#include "store/node_file.h"
#include "store/note/checkpoint.h"
#include "store/segments.h"

namespace jitgate::store {

namespace {

constexpr uint32_t kSegmentMode = 0600;
constexpr uint32_t kDirMode = 0700;

std::string NodesPath(const std::string& dir) { return JoinPath(dir, kNodesFile); }

}  // namespace

StatusOr<note::Signer> LoadSignerKey(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(uint32_t mode, env->FileMode(path));
  if ((mode & 077) != 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04o", mode & 07777);
    return PermissionDeniedError("log key " + path + " is accessible by group or others (mode " +
                                 buf + "); run: chmod 600 " + path);
  }
  ASSIGN_OR_RETURN(std::string text, env->ReadFileToString(path, 4096));
  crypto::SecretBytes wipe(AsBytes(text));
  crypto::Cleanse(text.data(), text.size());
  std::string_view line = AsChars(wipe.span());
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  StatusOr<note::Signer> signer = note::ParseSignerKey(line);
  if (!signer.ok()) return signer.status().WithContext("log key " + path);
  return signer;
}

Status ShareStore(Env* env, const std::string& dir, uint32_t gid) {
  for (const std::string& d : {dir, SegmentDir(dir)}) {
    RETURN_IF_ERROR(env->ShareWithGroup(d, gid));
    ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(d));
    for (const std::string& name : names) {
      std::string path = JoinPath(d, name);
      if (name == kSegmentDir && d == dir) continue;  // shared as a directory above
      Status s = env->ShareWithGroup(path, gid);
      if (s.code() == StatusCode::kPermissionDenied) {
        // A segment sealed immutable (by a broker run as root) before the
        // store had a group: only root can lift that, once.
        return s.WithContext("sharing the store with group " + std::to_string(gid) +
                             " (if it is sealed immutable, run as root: chattr -i " + path + ")");
      }
      if (!s.ok()) return s.WithContext("sharing the store with group " + std::to_string(gid));
    }
  }
  return OkStatus();
}

Status CreateStore(Env* env, const std::string& dir, const std::string& key_path,
                   std::optional<uint32_t> group) {
  ASSIGN_OR_RETURN(note::Signer signer, LoadSignerKey(env, key_path));
  if (signer.name().size() > kMaxOriginLength) {
    return InvalidArgumentError("key name is longer than 255 bytes");
  }
  if (env->FileExists(dir)) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
    if (!names.empty()) {
      return AlreadyExistsError(dir + " is not empty; a store is created in a new directory");
    }
  }
  RETURN_IF_ERROR(env->CreateDir(dir, kDirMode));
  RETURN_IF_ERROR(env->CreateDir(SegmentDir(dir), kDirMode));

  // The first segment: header and a checkpoint of the empty tree, so that a
  // fresh store already has a verifiable signed state.
  SegmentHeader h;
  h.segment = 1;
  h.origin = signer.name();
  Bytes data;
  AppendRecord(RecordType::kHeader, EncodeSegmentHeader(h), &data);
  note::Checkpoint cp;
  cp.origin = signer.name();
  cp.size = 0;
  cp.root = merkle::EmptyRoot();
  ASSIGN_OR_RETURN(std::string signed_cp, note::SignCheckpoint(cp, signer));
  AppendRecord(RecordType::kCheckpoint, AsBytes(signed_cp), &data);
  std::string seg_path = JoinPath(SegmentDir(dir), SegmentFileName(1));
  ASSIGN_OR_RETURN(auto seg, env->NewExclusiveFile(seg_path, kSegmentMode));
  RETURN_IF_ERROR(seg->Append(data));
  RETURN_IF_ERROR(seg->Sync());
  RETURN_IF_ERROR(seg->Close());
  RETURN_IF_ERROR(env->SyncDir(SegmentDir(dir)));

  ASSIGN_OR_RETURN(auto nodes, env->NewExclusiveFile(NodesPath(dir), kSegmentMode));
  RETURN_IF_ERROR(nodes->Sync());
  RETURN_IF_ERROR(nodes->Close());

  // STORE last: a directory without it is not a store, so a crash during
  // creation leaves nothing that could be mistaken for one.
  StoreIdentity id{signer.name(), signer.VerifierKey(), key_path};
  RETURN_IF_ERROR(env->WriteFileAtomically(JoinPath(dir, kIdentityFile),
                                           AsBytes(FormatIdentity(id)), 0444));
  if (group.has_value()) RETURN_IF_ERROR(ShareStore(env, dir, *group));
  RETURN_IF_ERROR(env->SyncDir(dir));
  return env->SyncDir(DirName(dir));
}

Store::Store(std::string dir, StoreOptions options, note::Signer signer)
    : dir_(std::move(dir)),
      options_(options),
      env_(options.env),
      clock_(options.clock),
      signer_(std::move(signer)),
      origin_(signer_.name()) {}

Store::~Store() { Close().IgnoreError(); }

std::string Store::SegmentPath(uint64_t number) const {
  return JoinPath(SegmentDir(dir_), SegmentFileName(number));
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, StoreOptions options) {
  if (options.env == nullptr) options.env = DefaultEnv();
  if (options.clock == nullptr) options.clock = RealClock();
  Env* env = options.env;
  StatusOr<std::string> id_text = env->ReadFileToString(JoinPath(dir, kIdentityFile), 64 * 1024);
  if (!id_text.ok()) {
    return id_text.status().WithContext(dir + " is not a jitgate store (run jitgate log init)");
  }
  ASSIGN_OR_RETURN(StoreIdentity id, ParseIdentity(*id_text));
  std::string key_path = options.key_path.empty() ? id.key_path : options.key_path;
  ASSIGN_OR_RETURN(note::Signer signer, LoadSignerKey(env, key_path));
  if (signer.VerifierKey() != id.vkey || signer.name() != id.origin) {
    return FailedPreconditionError("log key " + key_path + " is not this store's key (store " +
                                   id.vkey + ", key " + signer.VerifierKey() + ")");
  }
  std::unique_ptr<Store> store(new Store(dir, options, std::move(signer)));
  StatusOr<std::unique_ptr<FileLock>> lock = env->LockFile(JoinPath(dir, kLockFile));
  if (!lock.ok()) {
    return FailedPreconditionError("store " + dir + " is in use by another process (" +
                                   lock.status().message() + ")");
  }
  store->lock_ = std::move(lock).value();
  RETURN_IF_ERROR(store->Recover());
  if (options.group.has_value()) RETURN_IF_ERROR(ShareStore(env, dir, *options.group));
  store->sync_thread_ = std::thread([s = store.get()] { s->SyncLoop(); });
  return store;
}

Status Store::Recover() {
  ASSIGN_OR_RETURN(std::vector<SegmentInfo> segments, ListSegments(env_, dir_));
  if (segments.empty()) {
    return DataLossError(dir_ + " has no segments (was it created with jitgate log init?)");
  }
  for (const SegmentInfo& s : segments) {
    if (s.header.origin != origin_) {
      return DataLossError(Where(s.number, 0) + ": segment belongs to origin '" +
                           s.header.origin + "', not '" + origin_ + "'");
    }
  }
  const SegmentInfo& active = segments.back();
  ASSIGN_OR_RETURN(SegmentSummary summary, SummariseSegment(env_, active));
  if (summary.end == SegmentEnd::kCorrupt) {
    return DataLossError(Where(active.number, summary.valid_length) + ": " + summary.reason +
                         "; the store is damaged (run jitgate verify)");
  }
  const uint64_t n = active.header.first_entry + summary.entries;
  ASSIGN_OR_RETURN(std::optional<FoundCheckpoint> found,
                   FindLatestCheckpoint(env_, segments, summary));
  std::optional<note::Checkpoint> cp;
  if (found) {
    StatusOr<note::Checkpoint> opened =
        note::OpenCheckpoint(found->text, signer_.GetVerifier(), origin_);
    if (!opened.ok()) {
      return DataLossError("latest checkpoint in segment " + std::to_string(found->segment) +
                           " does not verify: " + opened.status().message());
    }
    if (opened->size != found->entries_before || opened->size > n) {
      return DataLossError("latest checkpoint claims size " + std::to_string(opened->size) +
                           " but " + std::to_string(found->entries_before) +
                           " entries precede it");
    }
    cp = *opened;
  }

  // Bring the derived tree index in line with the entries.
  std::string nodes_path = NodesPath(dir_);
  if (!env_->FileExists(nodes_path)) {
    ASSIGN_OR_RETURN(auto f, env_->NewAppendableFile(nodes_path, kSegmentMode));
    RETURN_IF_ERROR(f->Close());
    RETURN_IF_ERROR(env_->SyncDir(dir_));
  }
  ASSIGN_OR_RETURN(uint64_t nodes_bytes, env_->FileSize(nodes_path));
  uint64_t count = nodes_bytes / 32;
  uint64_t leaves = merkle::PostorderLeafCount(count);
  if (leaves > n) leaves = n;
  uint64_t keep = merkle::PostorderNodeCount(leaves) * 32;
  if (keep != nodes_bytes) RETURN_IF_ERROR(env_->Truncate(nodes_path, keep));
  // One read handle serves the compact range now and the checkpoint check
  // below (it sees the nodes RehashTail appends: same file, same inode).
  ASSIGN_OR_RETURN(auto nodes_ro, env_->NewRandomAccessFile(nodes_path));
  {
    FileNodeSource src(nodes_ro.get(), leaves);
    ASSIGN_OR_RETURN(range_, CompactRangeFromNodes(src, leaves));
  }
  ASSIGN_OR_RETURN(nodes_file_, env_->NewAppendableFile(nodes_path, kSegmentMode));
  if (leaves < n) {
    std::vector<Segment> segs;
    for (const SegmentInfo& s : segments) segs.push_back({s.number, s.header.first_entry});
    RETURN_IF_ERROR(RehashTail(leaves, n, segs));
  }
  if (cp) {
    merkle::Hash root;
    if (cp->size == n) {
      root = range_.Root();
    } else {
      FileNodeSource src(nodes_ro.get(), n);
      ASSIGN_OR_RETURN(root, merkle::RootAt(src, cp->size));
    }
    if (root != cp->root) {
      return DataLossError("tree index disagrees with the signed checkpoint at size " +
                           std::to_string(cp->size) +
                           "; refusing to sign from a damaged tree (run jitgate verify)");
    }
    checkpoint_size_ = durable_checkpoint_size_ = cp->size;
    latest_checkpoint_ = found->text;
  }
  durable_size_ = n;

  // Continue in the active segment, or, after a torn tail, leave its bytes as
  // they are and start the next segment, whose header accounts for them.
  segment_number_ = active.number;
  ASSIGN_OR_RETURN(uint64_t active_size, env_->FileSize(active.path));
  if (summary.end == SegmentEnd::kTorn) {
    RETURN_IF_ERROR(StartNextSegment(summary.valid_length, active_size, n));
  } else {
    ASSIGN_OR_RETURN(segment_file_, env_->NewAppendableFile(active.path, kSegmentMode));
    segment_bytes_ = active_size;
  }
  last_checkpoint_mono_ = clock_->MonotonicNanos();
  durable_checkpoint_mono_ = last_checkpoint_mono_;
  if (n > checkpoint_size_) {
    // Entries survived the crash without a checkpoint: publish one first.
    std::lock_guard<std::mutex> l(mu_);
    checkpoint_requested_ = true;
    first_unpublished_mono_ = last_checkpoint_mono_;
  }
  return OkStatus();
}

Status Store::RehashTail(uint64_t from, uint64_t to, const std::vector<Segment>& segments) {
  // Start in the last segment whose first entry is <= from.
  size_t i = 0;
  while (i + 1 < segments.size() && segments[i + 1].first_entry <= from) ++i;
  uint64_t index = segments[i].first_entry;
  Bytes nodes;
  for (; i < segments.size() && index < to; ++i) {
    ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(SegmentPath(segments[i].number)));
    ASSIGN_OR_RETURN(uint64_t size, file->Size());
    SegmentScanner scanner(file.get(), size);
    ScannedRecord rec;
    while (index < to) {
      ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
      if (!got) break;
      if (rec.type != RecordType::kEntry) continue;
      if (index >= from) {
        range_.Append(merkle::HashLeaf(rec.payload),
                      [&nodes](int, uint64_t, const merkle::Hash& h) {
                        nodes.insert(nodes.end(), h.begin(), h.end());
                      });
      }
      ++index;
    }
  }
  if (range_.size() != to) {
    return DataLossError("could not re-read entries " + std::to_string(from) + ".." +
                         std::to_string(to) + " to rebuild the tree index");
  }
  RETURN_IF_ERROR(nodes_file_->Append(nodes));
  return nodes_file_->Sync();
}

Status Store::StartNextSegment(uint64_t prev_valid, uint64_t prev_file, uint64_t first_entry) {
  SegmentHeader h;
  h.segment = segment_number_ + 1;
  h.first_entry = first_entry;
  h.prev_valid_length = prev_valid;
  h.prev_file_length = prev_file;
  h.origin = origin_;
  Bytes data;
  AppendRecord(RecordType::kHeader, EncodeSegmentHeader(h), &data);
  std::string path = SegmentPath(h.segment);
  ASSIGN_OR_RETURN(auto file, env_->NewExclusiveFile(path, kSegmentMode));
  // Shared before its first byte: a reader may see the segment at once.
  if (options_.group.has_value()) RETURN_IF_ERROR(env_->ShareWithGroup(path, *options_.group));
  RETURN_IF_ERROR(file->Append(data));
  RETURN_IF_ERROR(file->Sync());
  RETURN_IF_ERROR(env_->SyncDir(SegmentDir(dir_)));
  // Only now, with the successor durable, seal the old segment.
  if (segment_file_) RETURN_IF_ERROR(segment_file_->Close());
  RETURN_IF_ERROR(env_->MakeReadOnly(SegmentPath(segment_number_)));
  segment_file_ = std::move(file);
  segment_number_ = h.segment;
  std::lock_guard<std::mutex> l(mu_);
  segment_bytes_ = data.size() + pending_.size();
  return OkStatus();
}

StatusOr<uint64_t> Store::Append(uint8_t type, ByteSpan body) {
  ASSIGN_OR_RETURN(uint64_t index, AppendAsync(type, body));
  RETURN_IF_ERROR(WaitDurable(index));
  return index;
}

StatusOr<uint64_t> Store::AppendAsync(uint8_t type, ByteSpan body) {
  // Encoding, leaf hashing and framing happen in the caller's thread, so
  // concurrent appenders hash in parallel; the critical section below only
  // sequences the entry and extends the compact range.
  ByteSpan entry;
  ASSIGN_OR_RETURN(Bytes record, EncodeEntryRecord(type, clock_->NowUnixNanos(), body, &entry));
  merkle::Hash leaf = merkle::HashLeaf(entry);

  std::unique_lock<std::mutex> l(mu_);
  space_cv_.wait(l, [&] {
    return pending_.size() < options_.max_buffered_bytes || !bg_error_.ok() || closing_;
  });
  if (!bg_error_.ok()) return bg_error_;
  if (closing_ || closed_) return FailedPreconditionError("store is closed");
  uint64_t index = range_.size();
  range_.Append(leaf, [this](int, uint64_t, const merkle::Hash& h) {
    pending_nodes_.insert(pending_nodes_.end(), h.begin(), h.end());
  });
  bool was_empty = pending_.empty();
  pending_.insert(pending_.end(), record.begin(), record.end());
  segment_bytes_ += record.size();
  if (first_unpublished_mono_ < 0) first_unpublished_mono_ = clock_->MonotonicNanos();
  if (was_empty) work_cv_.notify_one();
  return index;
}

Status Store::WaitDurable(uint64_t index) {
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return durable_size_ > index || !bg_error_.ok() || closed_; });
  if (durable_size_ > index) return OkStatus();
  if (!bg_error_.ok()) return bg_error_;
  return FailedPreconditionError("store closed before entry " + std::to_string(index) +
                                 " was written");
}

Status Store::PublishCheckpoint() {
  std::unique_lock<std::mutex> l(mu_);
  if (!bg_error_.ok()) return bg_error_;
  if (closed_) return FailedPreconditionError("store is closed");
  uint64_t want = range_.size();
  if (want == durable_checkpoint_size_) return OkStatus();
  checkpoint_requested_ = true;
  work_cv_.notify_one();
  done_cv_.wait(l, [&] { return durable_checkpoint_size_ >= want || !bg_error_.ok() || closed_; });
  if (durable_checkpoint_size_ >= want) return OkStatus();
  if (!bg_error_.ok()) return bg_error_;
  return FailedPreconditionError("store closed before the checkpoint was written");
}

uint64_t Store::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return range_.size();
}

uint64_t Store::durable_size() const {
  std::lock_guard<std::mutex> l(mu_);
  return durable_size_;
}

std::string Store::LatestCheckpoint() const {
  std::lock_guard<std::mutex> l(mu_);
  return latest_checkpoint_;
}

Store::CheckpointState Store::checkpoint_state() const {
  std::lock_guard<std::mutex> l(mu_);
  CheckpointState st;
  st.size = durable_checkpoint_size_;
  st.durable_mono = durable_checkpoint_mono_;
  st.uncovered = range_.size() - durable_checkpoint_size_;
  // Entries under a checkpoint still being written are older than those
  // after it.
  st.uncovered_since_mono = sequenced_first_unpublished_mono_ >= 0 ? sequenced_first_unpublished_mono_
                                                                  : first_unpublished_mono_;
  if (st.uncovered == 0) st.uncovered_since_mono = -1;
  return st;
}

bool Store::CheckpointDueLocked() const {
  if (range_.size() <= checkpoint_size_) return false;
  if (checkpoint_requested_ || closing_) return true;
  if (segment_bytes_ >= options_.segment_target_size) return true;
  if (!options_.timed_checkpoints) return false;
  int64_t now = clock_->MonotonicNanos();
  // At most once per interval, and within one interval of the first
  // unpublished entry.
  return first_unpublished_mono_ >= 0 &&
         now - last_checkpoint_mono_ >= options_.checkpoint_interval_nanos;
}

Status Store::AppendCheckpointLocked() {
  note::Checkpoint cp;
  cp.origin = origin_;
  cp.size = range_.size();
  cp.root = range_.Root();
  ASSIGN_OR_RETURN(std::string text, note::SignCheckpoint(cp, signer_));
  if (text.size() > kMaxCheckpointSize) return InternalError("checkpoint note too large");
  size_t before = pending_.size();
  AppendRecord(RecordType::kCheckpoint, AsBytes(text), &pending_);
  segment_bytes_ += pending_.size() - before;
  checkpoint_size_ = cp.size;
  pending_checkpoint_ = std::move(text);
  nodes_sync_needed_ = true;
  checkpoint_requested_ = false;
  last_checkpoint_mono_ = clock_->MonotonicNanos();
  sequenced_first_unpublished_mono_ = first_unpublished_mono_;
  first_unpublished_mono_ = -1;
  return OkStatus();
}

void Store::SyncLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    // Wait for entries to write, a checkpoint to publish, or close.
    while (bg_error_.ok() && pending_.empty() && !closing_ && !CheckpointDueLocked()) {
      if (options_.timed_checkpoints && range_.size() > checkpoint_size_) {
        int64_t now = clock_->MonotonicNanos();
        int64_t wait = options_.checkpoint_interval_nanos - (now - last_checkpoint_mono_);
        wait = std::clamp<int64_t>(wait, 1'000'000, options_.checkpoint_interval_nanos);
        work_cv_.wait_for(l, std::chrono::nanoseconds(wait));
      } else {
        work_cv_.wait(l);
      }
    }
    if (!bg_error_.ok()) break;
    bool rotate = segment_bytes_ >= options_.segment_target_size;
    if (CheckpointDueLocked()) {
      Status s = AppendCheckpointLocked();
      if (!s.ok()) {
        bg_error_ = s;
        break;
      }
    }
    if (pending_.empty() && closing_) break;
    // Swap in the spare buffers, which keep their capacity from earlier
    // batches: no regrowth copies or fresh page faults per batch.
    Bytes batch = std::move(spare_batch_);
    Bytes nodes = std::move(spare_nodes_);
    batch.clear();
    nodes.clear();
    batch.swap(pending_);
    nodes.swap(pending_nodes_);
    uint64_t batch_end = range_.size();
    bool sync_nodes = nodes_sync_needed_ || closing_;
    nodes_sync_needed_ = false;
    std::string checkpoint = std::move(pending_checkpoint_);
    pending_checkpoint_.clear();
    uint64_t checkpoint_size = checkpoint_size_;
    space_cv_.notify_all();
    l.unlock();

    // The tree index is synced before the segment that holds a checkpoint,
    // so that a durable checkpoint normally has its nodes durable too
    // (recovery rebuilds them if writeback reordered the two).
    Status s = segment_file_->Append(batch);
    if (s.ok() && !nodes.empty()) s = nodes_file_->Append(nodes);
    if (s.ok() && sync_nodes) s = nodes_file_->Sync();
    if (s.ok()) s = segment_file_->Sync();
    if (s.ok() && rotate) {
      uint64_t size = segment_file_->Size();
      s = StartNextSegment(size, size, batch_end);
    }

    l.lock();
    spare_batch_ = std::move(batch);
    spare_nodes_ = std::move(nodes);
    if (!s.ok()) {
      bg_error_ = s.WithContext("store write failed; no further appends are accepted");
      break;
    }
    durable_size_ = batch_end;
    if (!checkpoint.empty()) {
      latest_checkpoint_ = std::move(checkpoint);
      durable_checkpoint_size_ = checkpoint_size;
      durable_checkpoint_mono_ = clock_->MonotonicNanos();
      sequenced_first_unpublished_mono_ = -1;
    }
    done_cv_.notify_all();
    if (closing_ && pending_.empty() && range_.size() == checkpoint_size_) break;
  }
  done_cv_.notify_all();
  space_cv_.notify_all();
}

Status Store::Close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return bg_error_;
    closing_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  std::lock_guard<std::mutex> l(mu_);
  closed_ = true;
  done_cv_.notify_all();
  Status s = bg_error_;
  if (segment_file_) {
    Status c = segment_file_->Close();
    if (s.ok()) s = c;
    segment_file_.reset();
  }
  if (nodes_file_) {
    Status c = nodes_file_->Close();
    if (s.ok()) s = c;
    nodes_file_.reset();
  }
  lock_.reset();
  return s;
}

}  // namespace jitgate::store
