// RecordingClient: the recorder's end of docs/protocol.md §4.4, shared by the
// bastion's session process and jitgate-rec.
//
//   Open (connect, Hello, OpenSession) -> Add(record)* / Flush -> Close
//
// Records are cut into chunks (ChunkBuilder) and sent as they fill; the
// broker acknowledges chunks once they are durable in the store. At most
// max_unacked chunks are in flight: Add blocks (bounded by ack_timeout)
// when the window is full, so a slow disk slows the session rather than
// growing memory without bound. Unacknowledged chunks are kept; if the
// connection breaks, the client reconnects once per call with a fresh
// connection, resumes the session (OpenSession with its id) and resends what
// the broker does not have. Every failure is a one-line Status; the caller
// ends the session (fail closed: a session that cannot be recorded does not
// go on).
//
// The broker may push SessionTerminated (`jitgate terminate`): the client
// remembers who ended the session and why (terminated_by(),
// terminate_comment()) and carries on recording; the caller polls
// terminated_by() and ends the session, then calls Close.
//
// Spool and forward (options.spool_dir set; docs/jitgate-rec.md "Spool"):
// the client mints the session id itself, and writes every chunk to the
// session's spool file (SpoolWriter) before it sends it. The broker being
// unreachable is then no failure: Open succeeds in spool-only mode if the
// spool's size policy allows, a lost connection is retried every
// retry_interval_ms (from Add, Flush, Poll and Tick; never blocking longer
// than retry_connect_timeout_ms), and on reconnecting the client resumes
// the session and sends what the broker lacks, read back from the spool.
// Add never waits for the window in this mode (the spool holds the rest),
// and an acknowledgement overdue by ack_timeout_ms drops the connection
// rather than the session. Close spools the end first; the spool file is
// removed once the broker has acknowledged everything and the end
// (delivered()), and otherwise stays for ForwardSpool. What fails the
// session here: the broker refusing it, the spool not being writable, or
// the broker's view contradicting what was acknowledged.
//
// Resume when idle (options.resume_when_idle, no spool; the sudo plugin,
// which watches fd() in sudo's event loop): a connection the broker closed
// is let go when a read finds it closed, instead of being reconnected at
// once (a broker that restarts is not back yet when its old connection
// closes); Tick then tries every retry_interval_ms, each try bounded by
// retry_connect_timeout_ms, to resume the session, so that it is resumed
// soon after the broker is back even if the session stays quiet. The next
// send (a chunk filled by Add, Flush, Close) reconnects once, as always, and
// fails the session if the broker is still away: nothing is held back
// longer than a flush.
//
// Not thread-safe; one per session.
#ifndef JITGATE_RECORDER_RECORDING_CLIENT_H_
#define JITGATE_RECORDER_RECORDING_CLIENT_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "core/base/status.h"
#include "core/wire/client.h"
#include "core/wire/messages.h"
#include "recorder/recording.h"
#include "recorder/spool.h"

namespace jitgate::recorder {

struct RecordingClientOptions {
  std::string socket_path;
  std::string client_name = "jitgate-recorder";
  int64_t connect_timeout_ms = 10'000;
  // How long Add/Flush/Close wait for acknowledgements or a reconnect.
  int64_t ack_timeout_ms = 30'000;
  size_t max_unacked = 64;  // chunks in flight (64 x 60 KiB)

  // Spool and forward; empty: no spool (an unreachable broker fails Open,
  // and a lost connection fails the call after one reconnect).
  std::string spool_dir;
  // At Open: a spool already holding more than this refuses the new session
  // (ResourceExhausted), unless spool_allow_over_limit.
  uint64_t spool_max_bytes = uint64_t{256} << 20;
  bool spool_allow_over_limit = false;
  // Group commit of the spool file (SpoolWriterOptions).
  uint64_t spool_sync_bytes = 1 << 20;
  int64_t spool_sync_interval_ms = 1000;
  mode_t spool_file_mode = 0640;
  // Once the spool file holds this many acknowledged bytes and few chunks
  // are unacknowledged, it is rewritten without them.
  uint64_t spool_compact_bytes = uint64_t{8} << 20;
  // Spool mode: how often a lost broker is tried again, and how long one
  // try may take.
  int64_t retry_interval_ms = 2000;
  int64_t retry_connect_timeout_ms = 1000;
  // No spool: Tick lets a closed connection go and resumes it later (see
  // the file comment) instead of reconnecting at once.
  bool resume_when_idle = false;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

class RecordingClient {
 public:
  // Connects and opens a new session described by meta (meta.session must
  // be empty).
  static StatusOr<std::unique_ptr<RecordingClient>> Open(const RecordingClientOptions& options,
                                                         const wire::OpenSession& meta);

  const std::string& session_id() const { return session_; }

  // Adds a record; sends the chunks it completes.
  Status Add(Record record);
  // Sends the records gathered so far as a chunk (call it on a timer so
  // that a live session reaches the store, and `jitgate watch`, promptly).
  Status Flush();
  // Reads acknowledgements (and a termination) that have arrived, without
  // waiting.
  Status Poll();
  // Flushes, waits until every chunk is acknowledged, sends CloseSession and
  // waits for SessionClosed. end.chunks is filled in.
  // Spool mode: the end is spooled (and synced) first; OK then means the
  // session is kept, delivered() says whether the broker has it already.
  Status Close(wire::CloseSession end);
  // Housekeeping to call on a timer (about every second) while the session
  // is idle, or when fd() is readable: reads acknowledgements and, in spool
  // mode or with resume_when_idle, retries a lost broker (spool mode also
  // sends what it lacks and syncs the spool when due).
  Status Tick();

  // Whether the spool is on, whether the broker is connected now, why it is
  // not ("" if it is: spool mode or resume_when_idle), and the session's
  // spool file.
  bool spooling() const { return spool_ != nullptr; }
  bool connected() const { return client_.has_value(); }
  const std::string& disconnect_reason() const { return down_reason_; }
  const std::string& spool_path() const;
  // After Close: true if the broker acknowledged the whole session and its
  // end (always so without a spool).
  bool delivered() const { return delivered_; }

  uint64_t chunks_sent() const { return builder_.chunks(); }
  uint64_t chunks_acked() const { return acked_; }
  // The connection's fd (to poll for acknowledgements), or -1.
  int fd() const { return client_.has_value() ? client_->fd() : -1; }
  // Who terminated the session (SessionTerminated.by), once the broker has
  // said so; nullopt while nobody has. Set by whichever call read the push.
  const std::optional<std::string>& terminated_by() const { return terminated_by_; }
  // The terminator's comment ("" if none or not terminated).
  const std::string& terminate_comment() const { return terminate_comment_; }

 private:
  RecordingClient(RecordingClientOptions options, wire::OpenSession meta, std::string session)
      : options_(std::move(options)), meta_(std::move(meta)), session_(session), builder_(session) {}
  Status SendChunk(Bytes chunk);
  Status HandleMessage(const wire::Message& m);
  // Waits for acknowledgements until at most `unacked` chunks are in flight.
  Status WaitForAcks(size_t unacked);
  // Reconnects, resumes the session and resends what the broker lacks.
  Status Reconnect(const Status& why);
  // Connects within timeout_ms, resumes the session and resends what the
  // broker lacks; Unavailable or DeadlineExceeded if the broker cannot be
  // reached.
  Status Resume(int64_t timeout_ms);
  // resume_when_idle: Tick's part.
  Status TickIdle();
  // Before a send: connects again if the connection was let go (once per
  // call); FailedPrecondition if it is closed for good.
  Status EnsureConnected();
  // Lets a closed connection go until the next try, retry_interval_ms from
  // now (spool mode, and resume_when_idle: see the file comment).
  void Release(const Status& why);
  // Drops acknowledged chunks up to next_index.
  void Acknowledge(uint64_t next_index);
  // The end of the chunks sent on this connection.
  uint64_t SentEnd() const { return spool_ ? sent_ : acked_ + unacked_.size(); }

  // Spool mode (see the file comment).
  static StatusOr<std::unique_ptr<RecordingClient>> OpenSpooled(const RecordingClientOptions& options,
                                                                const wire::OpenSession& meta);
  int64_t NowNs() const;
  // Connects and resumes (or opens) the session; transient failures leave
  // it disconnected and are returned, *refused tells a broker's refusal.
  Status ConnectSpooled(int64_t timeout_ms, bool* refused);
  // Spools a completed chunk and sends what the window allows.
  Status SpoolChunk(const Bytes& chunk);
  // Sends spooled chunks the broker lacks, within the window.
  Status Pump();
  // Goes on spool-only after a connection problem (OK), or returns a
  // failure that ends the session.
  Status Lost(const Status& why);
  Status PollSpooled();
  Status CloseSpooled(wire::CloseSession end);
  void MaybeCompact();

  RecordingClientOptions options_;
  wire::OpenSession meta_;
  std::string session_;
  std::optional<wire::Client> client_;
  ChunkBuilder builder_;
  std::deque<Bytes> unacked_;  // chunks acked_, acked_ + 1, ...
  uint64_t acked_ = 0;
  bool reconnected_ = false;  // at most one reconnect per call
  bool released_ = false;     // resume_when_idle: the connection was let go
  std::optional<std::string> terminated_by_;
  std::string terminate_comment_;
  bool delivered_ = false;

  // Spool mode.
  std::unique_ptr<SpoolWriter> spool_;
  std::deque<uint64_t> offsets_;  // spool offsets of chunks acked_, acked_ + 1, ...
  uint64_t sent_ = 0;             // chunks below were sent on this connection
  uint64_t spool_first_ = 0;      // the spool file's first chunk
  int64_t next_retry_ns_ = 0;
  int64_t last_progress_ns_ = 0;  // the last acknowledgement (or first send)
  std::string down_reason_;
  bool compaction_failed_ = false;
};

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_RECORDING_CLIENT_H_
