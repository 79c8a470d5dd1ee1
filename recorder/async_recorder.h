// AsyncRecorder: runs a session's recording (chunking, zstd, spool writes,
// broker I/O and acknowledgements) on a worker thread of its own, so that
// jitgate-rec's relay thread only reads the pty and the user's input, queues
// records and writes the bytes on.
//
// The relay thread calls Add, Flush and Tick; each queues an operation and
// returns at once. The worker applies the operations to a RecordSink in the
// order they were queued, and reads what the sink's connection has to say
// (acknowledgements, a termination) while it is idle. Records wake an idle
// worker only in batches (wake_bytes); the relay's Flush, every 200 ms while
// output flows, wakes it at once. The worker runs at nice 10, in the time the
// relay's chain of waits leaves idle.
//
// Memory stays bounded and a slow store still slows the session: Add blocks
// while the queue holds max_queued_bytes of record data (a record is always
// accepted into an empty queue). The worker takes the whole queue at once,
// so at most twice max_queued_bytes are held, plus the sink's own window.
//
// Fail closed: the sink's first error is sticky. The worker stops touching
// the sink and drops what is queued; Add, Flush, Tick and Notified return
// the error from then on, and notify_fd() becomes readable so that a relay
// waiting in poll() learns of it and ends the session, as it would have if
// the sink had failed on its own thread.
//
// A termination the sink has heard of (`jitgate terminate`) is published to
// terminated() and also makes notify_fd() readable.
//
// Finish drains: it waits until everything queued has been applied, stops
// the worker and returns the sticky error (OK if none). Only then may the
// caller use the sink again (RecordingClient::Close).
//
// Thread-safety: the sink is used only by the worker between construction
// and Finish (RecordingClient is not thread-safe). Add, Flush, Tick,
// Notified, terminated and status may be called from one producer thread;
// terminated and status also from others.
#ifndef JITGATE_RECORDER_ASYNC_RECORDER_H_
#define JITGATE_RECORDER_ASYNC_RECORDER_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "core/base/status.h"
#include "core/base/unique_fd.h"
#include "recorder/pty_relay.h"
#include "recorder/recording.h"

namespace jitgate::recorder {

class RecordingClient;

// RecordSink: what the worker drives; RecordingClient's calls of the same
// names (see recording_client.h).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual Status Add(Record record) = 0;
  virtual Status Flush() = 0;
  // Reads what has arrived on fd() without waiting.
  virtual Status Poll() = 0;
  virtual Status Tick() = 0;
  // The descriptor to wait on for Poll, or -1; asked again on every wait.
  virtual int fd() = 0;
  // Who terminated the session, once known, and their comment.
  virtual std::optional<std::string> terminated_by() = 0;
  virtual std::string terminate_comment() = 0;
};

// RecordingClientSink: a RecordSink over a RecordingClient it does not own.
class RecordingClientSink : public RecordSink {
 public:
  explicit RecordingClientSink(RecordingClient* client) : client_(client) {}
  Status Add(Record record) override;
  Status Flush() override;
  Status Poll() override;
  Status Tick() override;
  int fd() override;
  std::optional<std::string> terminated_by() override;
  std::string terminate_comment() override;

 private:
  RecordingClient* client_;
};

struct AsyncRecorderOptions {
  size_t max_queued_bytes = size_t{4} << 20;
  // An idle worker is woken for a record only once this much record data
  // is queued (a Flush, Tick, Finish or a full queue wake it at once), so
  // that a stream of small records does not cost a wake-up each. The sink
  // sends nothing before a chunk fills or a Flush anyway.
  size_t wake_bytes = 512 * 1024;
  // Tests: called on the producer's thread each time Add starts waiting
  // for room in the queue.
  std::function<void()> on_queue_full;
};

struct Termination {
  std::string by;
  std::string comment;
};

class AsyncRecorder {
 public:
  // Starts the worker. sink must outlive the AsyncRecorder. Errors: the
  // OS error if the eventfds or the thread cannot be made.
  static StatusOr<std::unique_ptr<AsyncRecorder>> Start(RecordSink* sink,
                                                        AsyncRecorderOptions options = {});
  // Finishes (drains) if Finish has not been called.
  ~AsyncRecorder();
  AsyncRecorder(const AsyncRecorder&) = delete;
  AsyncRecorder& operator=(const AsyncRecorder&) = delete;

  // Queues a record, waiting while the queue is full; the sticky error if
  // the sink has failed.
  Status Add(Record record);
  // Queue a Flush / Tick of the sink; the sticky error if it has failed.
  Status Flush();
  Status Tick();

  // Readable once an error or a termination has been published; Notified
  // empties it and returns the sticky error. Valid until destruction.
  int notify_fd() const { return notify_.get(); }
  Status Notified();

  std::optional<Termination> terminated() const;
  Status status() const;

  // Applies everything queued, stops the worker, returns the sticky error.
  // Later calls return the same; Add, Flush and Tick then fail.
  Status Finish();

  // Points relay's on_record, on_flush, extra_fd, on_extra_readable,
  // on_tick at this recorder. end_requested is left to the caller (it
  // decides the line to show; see terminated()).
  void Bind(RelayOptions* relay);

  // Whether the worker is waiting for a wake-up (tests only: wake_bytes is
  // about an idle worker, and a worker that is busy takes whatever is queued).
  bool idle_for_testing() const;

 private:
  enum class OpType { kRecord, kFlush, kTick };
  struct Op {
    OpType type;
    Record record;
  };

  AsyncRecorder(RecordSink* sink, AsyncRecorderOptions options)
      : sink_(sink), options_(std::move(options)) {}
  Status Push(Op op, size_t bytes);
  void Run();
  // Waits for a wake-up or for the sink's fd while the queue is empty.
  void Idle();
  // Publishes a termination the sink has heard of.
  void CheckTermination();
  void Fail(Status s);
  static void Signal(int fd);

  RecordSink* const sink_;  // the worker's alone until Finish
  const AsyncRecorderOptions options_;
  UniqueFd wake_;    // eventfd: the producer wakes an idle worker
  UniqueFd notify_;  // eventfd: the worker tells the relay
  bool termination_seen_ = false;  // the worker's

  mutable std::mutex mu_;
  std::condition_variable space_cv_;  // the queue has room, or error_
  std::deque<Op> queue_;              // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;           // GUARDED_BY(mu_)
  bool idle_ = false;                 // GUARDED_BY(mu_): worker waiting in Idle
  bool finishing_ = false;            // GUARDED_BY(mu_)
  bool finished_ = false;             // GUARDED_BY(mu_): the worker is joined
  Status error_;                      // GUARDED_BY(mu_): sticky
  std::optional<Termination> terminated_;  // GUARDED_BY(mu_)

  std::thread worker_;
};

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_ASYNC_RECORDER_H_
