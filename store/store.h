// Store: the single writer of a jitgate store directory (docs/store-format.md).
//
// Thread-safe: any number of threads may append concurrently. Appends are
// acknowledged only once durable (fsync); concurrent appends share fsyncs
// (group commit). Checkpoints are signed and published automatically. One
// Store per directory per machine: Open takes an exclusive lock and fails at
// once if another process holds it.
#ifndef JITGATE_STORE_STORE_H_
#define JITGATE_STORE_STORE_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/base/bytes.h"
#include "core/base/clock.h"
#include "core/base/env.h"
#include "core/base/status.h"
#include "store/merkle/compact_range.h"
#include "store/note/keys.h"
#include "store/store_format.h"

namespace jitgate::store {

struct StoreOptions {
  Env* env = nullptr;      // default: DefaultEnv()
  Clock* clock = nullptr;  // default: RealClock()
  // Signing key file; empty means the path recorded in the STORE file.
  std::string key_path;
  // A segment is sealed and a new one started once it reaches this size.
  uint64_t segment_target_size = kDefaultSegmentTargetSize;
  // Checkpoints are published at most this often while entries arrive, and
  // within this long of the first unpublished entry.
  int64_t checkpoint_interval_nanos = 1'000'000'000;
  // Back-pressure: appends block while this many bytes await writing.
  size_t max_buffered_bytes = 64u << 20;
  // Publish checkpoints from the background timer (tests may turn this off
  // and call PublishCheckpoint to control timing exactly).
  bool timed_checkpoints = true;
  // A group that may read the store (store.group, docs/jitgated.md): Open
  // shares every directory (02750) and file (0640, sealed 0440) with it, and
  // so does each segment started later; others get nothing. Unset: owner
  // only (0700, 0600).
  std::optional<uint32_t> group;
};

// Reads a signing key file (C2SP signer key encoding, one line), refusing a
// file that group or others can read.
StatusOr<note::Signer> LoadSignerKey(Env* env, const std::string& path);

// Creates a new, empty store in dir, whose origin is the key's name: the
// STORE file, the first segment with a checkpoint of the empty tree, and an
// empty tree index. dir must not exist or be empty. key_path is recorded as
// given (pass an absolute path). With group, the new store is shared with
// it at once (ShareStore).
Status CreateStore(Env* env, const std::string& dir, const std::string& key_path,
                   std::optional<uint32_t> group = std::nullopt);

// Lets group gid read the whole store in dir: the directory, seg/, and every
// file in them (Env::ShareWithGroup). Idempotent; a sealed immutable file
// that is not yet shared is an error naming it (chattr -i it once as root).
Status ShareStore(Env* env, const std::string& dir, uint32_t gid);

class Store {
 public:
  // Opens the store for writing, recovering from a crash if needed
  // (docs/store-format.md §6-7). Fails with FailedPrecondition if another
  // process holds the store, DataLoss if the store is damaged.
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& dir, StoreOptions options);

  // Closes the store (see Close).
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends one entry and waits until it is durable. Returns its index.
  StatusOr<uint64_t> Append(uint8_t type, ByteSpan body);
  // Appends one entry and returns its index at once; the entry is not yet
  // acknowledged. Call WaitDurable(index) before relying on it. Entries are
  // durable in index order.
  StatusOr<uint64_t> AppendAsync(uint8_t type, ByteSpan body);
  // Waits until entry index (and all before it) is durable, or the store
  // failed (then returns the failure).
  Status WaitDurable(uint64_t index);

  // Publishes a checkpoint of everything appended so far (if anything was
  // appended since the last one) and waits until it is durable.
  Status PublishCheckpoint();

  // Entries sequenced so far (durable or not).
  uint64_t size() const;
  // Entries durable so far.
  uint64_t durable_size() const;
  // The latest durable signed checkpoint, verbatim.
  std::string LatestCheckpoint() const;
  // How far checkpoints are behind, for health checks. Times are
  // options.clock's MonotonicNanos.
  struct CheckpointState {
    uint64_t size = 0;          // of the latest durable checkpoint
    int64_t durable_mono = 0;   // when it became durable (or the store was opened)
    uint64_t uncovered = 0;     // entries appended that it does not cover
    int64_t uncovered_since_mono = -1;  // when the oldest of them was appended; -1: none
  };
  CheckpointState checkpoint_state() const;
  const std::string& origin() const { return origin_; }
  const std::string& dir() const { return dir_; }

  // Writes everything pending, publishes a final checkpoint, stops the
  // background thread and releases the lock. Idempotent. Appends after Close
  // fail with FailedPrecondition.
  Status Close();

 private:
  struct Segment {
    uint64_t number = 0;
    uint64_t first_entry = 0;
  };
  Store(std::string dir, StoreOptions options, note::Signer signer);

  Status Recover();
  Status RehashTail(uint64_t from, uint64_t to, const std::vector<Segment>& segments);
  Status StartNextSegment(uint64_t prev_valid, uint64_t prev_file, uint64_t first_entry);
  void SyncLoop();
  bool CheckpointDueLocked() const;
  Status AppendCheckpointLocked();
  std::string SegmentPath(uint64_t number) const;

  const std::string dir_;
  StoreOptions options_;
  Env* env_;
  Clock* clock_;
  note::Signer signer_;
  std::string origin_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<WritableFile> segment_file_;  // used by the sync thread only
  std::unique_ptr<WritableFile> nodes_file_;    // used by the sync thread only
  uint64_t segment_number_ = 0;                 // sync thread only (after Open)

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // wakes the sync thread
  std::condition_variable done_cv_;   // durability progress / errors
  std::condition_variable space_cv_;  // back-pressure
  merkle::CompactRange range_;        // GUARDED_BY(mu_): all sequenced entries
  Bytes pending_;                     // GUARDED_BY(mu_): records not yet written
  Bytes pending_nodes_;               // GUARDED_BY(mu_)
  Bytes spare_batch_;                 // GUARDED_BY(mu_): emptied buffers kept for reuse
  Bytes spare_nodes_;                 // GUARDED_BY(mu_)
  uint64_t durable_size_ = 0;         // GUARDED_BY(mu_)
  uint64_t checkpoint_size_ = 0;      // GUARDED_BY(mu_): size of the last sequenced checkpoint
  uint64_t durable_checkpoint_size_ = 0;  // GUARDED_BY(mu_)
  std::string pending_checkpoint_;    // GUARDED_BY(mu_): sequenced, not yet durable
  std::string latest_checkpoint_;     // GUARDED_BY(mu_): durable
  int64_t last_checkpoint_mono_ = 0;  // GUARDED_BY(mu_)
  int64_t first_unpublished_mono_ = -1;  // GUARDED_BY(mu_)
  // The first_unpublished_mono_ of the entries a sequenced, not yet durable
  // checkpoint covers; and when the latest checkpoint became durable.
  int64_t sequenced_first_unpublished_mono_ = -1;  // GUARDED_BY(mu_)
  int64_t durable_checkpoint_mono_ = 0;            // GUARDED_BY(mu_)
  bool checkpoint_requested_ = false; // GUARDED_BY(mu_)
  bool nodes_sync_needed_ = false;    // GUARDED_BY(mu_)
  bool closing_ = false;              // GUARDED_BY(mu_)
  bool closed_ = false;               // GUARDED_BY(mu_)
  Status bg_error_;                   // GUARDED_BY(mu_)
  uint64_t segment_bytes_ = 0;        // GUARDED_BY(mu_): bytes in the active segment incl. pending
  std::thread sync_thread_;
};

}  // namespace jitgate::store

#endif  // JITGATE_STORE_STORE_H_
