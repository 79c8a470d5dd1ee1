// The recorder's local spool (PRODUCT.md F5 "spool and forward";
// docs/jitgate-rec.md "Spool"): one append-only file per session in a
// directory only root and the recorder group can enter, holding the
// session's metadata, its transcript chunks in order and, at the end, how it
// ended (recorder/spool_format.h). RecordingClient writes every chunk here
// before it sends it; the file is removed once the broker has acknowledged
// the whole session and its end. A session whose recorder could not deliver
// it (broker down, recorder killed) stays in the spool until ForwardSpool
// delivers it: in order, and exactly once, because the broker skips chunks it
// already has and refuses gaps.
//
// Locking: the writer holds flock(LOCK_EX) on its file for its lifetime, and
// a forwarder takes the lock without waiting before it reads a file, so a
// live session's file is never forwarded, and two forwarders never send the
// same file. A killed recorder's lock goes with it.
//
// Thread-compatible; one SpoolWriter per session.
#ifndef JITGATE_RECORDER_SPOOL_H_
#define JITGATE_RECORDER_SPOOL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/base/unique_fd.h"
#include "core/wire/messages.h"
#include "recorder/spool_format.h"

namespace jitgate {
class Clock;
}

namespace jitgate::recorder {

// MintSessionId returns a new random session id in the broker's format
// (kMintedSessionIdLength characters of kSessionIdAlphabet, 60 bits from the
// CSPRNG), for a session the recorder opens itself (docs/protocol.md §4.4).
StatusOr<std::string> MintSessionId();

struct SpoolWriterOptions {
  std::string dir;
  // Group commit: the file is fsync'd once this many bytes are unsynced, or
  // once the oldest unsynced byte is this old (checked on every append and
  // MaybeSync), and always by Sync and AppendClose. Never per keystroke.
  uint64_t sync_bytes = 1 << 20;
  int64_t sync_interval_ms = 1000;
  // The file's mode: group-readable for a forwarder in the recorder group.
  mode_t file_mode = 0640;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

// SpoolWriter appends one session to "<dir>/<session>.spool".
class SpoolWriter {
 public:
  // Creates the file (it must not exist), locks it, writes the magic and the
  // header (meta.session must be a valid session id) and syncs the file and
  // the directory. kAlreadyExists if the file exists; the OS error naming the
  // path if the directory is missing or not writable.
  static StatusOr<std::unique_ptr<SpoolWriter>> Create(
      const SpoolWriterOptions& options, const wire::OpenSession& meta);
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;
  ~SpoolWriter();  // unlocks and closes; the file stays

  // Appends one encoded chunk (the next index: the caller numbers them) and
  // returns its frame's offset. Syncs if the group is due.
  StatusOr<uint64_t> AppendChunk(ByteSpan chunk);
  // Appends the session's end and syncs. Nothing may be appended after it.
  Status AppendClose(const wire::CloseSession& end);
  // Syncs if the group commit is due (see SpoolWriterOptions).
  Status MaybeSync();
  Status Sync();
  // Replaces the file, atomically (temp file, fsync, rename, fsync dir), by
  // one whose header says first_index and which holds only the frames at
  // keep (offsets of this file's chunk frames, in order: chunks first_index,
  // first_index + 1, ...). Returns their offsets in the new file. For
  // dropping what the broker has acknowledged while a session goes on.
  StatusOr<std::vector<uint64_t>> Rewrite(uint64_t first_index,
                                          const std::vector<uint64_t>& keep);
  // Removes the file (the broker has the whole session) and syncs the
  // directory. The writer is unusable afterwards.
  Status Remove();

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  uint64_t size() const { return size_; }

 private:
  SpoolWriter(SpoolWriterOptions options, std::string path, UniqueFd fd)
      : options_(std::move(options)),
        path_(std::move(path)),
        fd_(std::move(fd)) {}
  Status Append(SpoolFrameType type, ByteSpan payload, uint64_t* offset);

  SpoolWriterOptions options_;
  std::string path_;
  std::string session_;
  wire::OpenSession meta_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  uint64_t unsynced_ = 0;
  int64_t unsynced_since_ns_ =
      0;  // monotonic time of the oldest unsynced append
  bool closed_ = false;
};

// SpoolFrameBytes encodes one frame (for the writer and for tests).
Bytes SpoolFrameBytes(SpoolFrameType type, ByteSpan payload);
// SpoolHeaderPayload encodes a HEADER payload; fails like wire::EncodeBody.
StatusOr<Bytes> SpoolHeaderPayload(uint64_t first_index,
                                   const wire::OpenSession& meta);

// What SpoolReader::Next returns: a chunk (with its index) or the end.
struct SpoolEntry {
  SpoolFrameType type = SpoolFrameType::kChunk;
  uint64_t offset = 0;       // of the frame in the file
  uint64_t index = 0;        // kChunk
  Bytes chunk;               // kChunk
  wire::CloseSession close;  // kClose
};

// SpoolReader reads a spool file strictly, frame by frame, from an fd (read
// with pread; the fd's offset is not used). Every frame's length is checked
// against kMaxSpoolPayload and the file's size before anything is
// allocated; chunks must belong to the header's session and be numbered in
// order without gaps. Not thread-safe.
class SpoolReader {
 public:
  // Reads the magic and the header. kDataLoss naming label and the offset if
  // they are damaged; kNotFound-free: an empty or torn header is kDataLoss
  // too (a spool file is created with its header synced).
  static StatusOr<std::unique_ptr<SpoolReader>> Open(int fd, std::string label);

  const wire::OpenSession& meta() const {
    return meta_;
  }  // meta.session: the id
  const std::string& session() const { return meta_.session; }
  uint64_t first_index() const { return first_index_; }

  // The next chunk or the close; nullopt at the end of the file (clean, or a
  // torn tail: torn_bytes()). kDataLoss "LABEL: offset N: ..." on corruption;
  // after an error or the end, Next keeps returning the same.
  StatusOr<std::optional<SpoolEntry>> Next();
  // Chunks read so far end at next_index() (first_index + chunks).
  uint64_t next_index() const { return next_index_; }
  bool closed() const { return closed_; }
  // Bytes after the last whole frame (a torn tail), once Next returned nullopt.
  uint64_t torn_bytes() const { return torn_; }
  // End of the last whole frame.
  uint64_t offset() const { return offset_; }

 private:
  SpoolReader(int fd, std::string label, uint64_t size)
      : fd_(fd), label_(std::move(label)), size_(size) {}
  // Reads the frame at offset_: payload and type, or nullopt at a torn tail.
  StatusOr<std::optional<std::pair<SpoolFrameType, Bytes>>> ReadFrame();
  Status Corrupt(uint64_t at, const std::string& what);

  int fd_;
  std::string label_;
  uint64_t size_;
  uint64_t offset_ = 0;
  uint64_t torn_ = 0;
  wire::OpenSession meta_;
  uint64_t first_index_ = 0;
  uint64_t next_index_ = 0;
  bool closed_ = false;
  bool done_ = false;
  Status error_;
};

// ReadSpoolChunkAt reads back the chunk frame at offset of a spool file
// (checking its CRC, type and cap): what RecordingClient sends after a
// reconnect. kDataLoss if it is not a whole, valid chunk frame.
StatusOr<Bytes> ReadSpoolChunkAt(int fd, uint64_t offset,
                                 const std::string& label);

// What a spool directory holds: session files (*.spool) waiting to be
// delivered, and the bytes of all spool files (*.spool, *.tmp).
struct SpoolSize {
  uint64_t sessions = 0;
  uint64_t bytes = 0;
};
// MeasureSpool: what dir holds; zeros if dir does not exist.
StatusOr<SpoolSize> MeasureSpool(const std::string& dir);
// SpoolUsage: MeasureSpool(dir).bytes.
StatusOr<uint64_t> SpoolUsage(const std::string& dir);

// ReportSpool tells the broker at socket_path what the spool at dir holds
// now, as host's (SpoolReport, docs/protocol.md §4.5), within timeout_ms.
// The broker's metrics and `jitgate status` show it. Fails like
// wire::Client, or kPermissionDenied if the broker refuses the report.
Status ReportSpool(const std::string& socket_path, const std::string& client_name,
                   const std::string& host, const std::string& dir, int64_t timeout_ms);

struct ForwardOptions {
  std::string dir;
  std::string socket_path;
  std::string client_name = "jitgate-rec";
  int64_t timeout_ms = 30'000;  // connect and each wait for the broker
  size_t max_unacked = 64;      // chunks in flight
  // Forward only sessions of this user (a setgid recorder forwarding its own
  // user's leftovers; the broker refuses others anyway); nullopt: all.
  std::optional<std::string> only_user;
};

struct ForwardResult {
  std::string path;
  std::string session;
  // kDelivered: the broker has the whole session and its end; the file is
  // gone. kAlreadyDelivered: the broker had ended the session earlier (a
  // forwarder or recorder died after its SessionClosed); the file is gone.
  // kBusy: locked (a live session, or another forwarder). kSkipped: another
  // user's (only_user). kFailed: error says why; the file stays.
  enum Outcome {
    kDelivered,
    kAlreadyDelivered,
    kBusy,
    kSkipped,
    kFailed
  } outcome = kFailed;
  uint64_t chunks = 0;      // chunks in the session
  uint64_t sent = 0;        // chunks sent by this forwarder
  uint64_t torn_bytes = 0;  // a torn tail that was left out
  bool had_end =
      false;  // the file held the session's end (else "recorder lost")
  Status error;
};

// ForwardSpoolFile delivers one spool file (see the file comment); the
// result says what happened. A session without its end (the recorder was
// killed) is closed with end_reason "recorder lost", the chunk count the
// file holds and the file's modification time.
ForwardResult ForwardSpoolFile(const std::string& path,
                               const ForwardOptions& options);
// ForwardSpool delivers every *.spool file in options.dir, oldest session
// first (by start time in its header), calling report after each. Also
// removes a compaction's leftover *.tmp whose session file is not locked.
// Fails only if the directory cannot be read.
Status ForwardSpool(const ForwardOptions& options,
                    const std::function<void(const ForwardResult&)>& report);

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_SPOOL_H_
