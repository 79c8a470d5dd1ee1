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
// Not thread-safe; one per session.
#ifndef JITGATE_RECORDER_RECORDING_CLIENT_H_
#define JITGATE_RECORDER_RECORDING_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "core/base/status.h"
#include "core/wire/client.h"
#include "core/wire/messages.h"
#include "recorder/recording.h"

namespace jitgate::recorder {

struct RecordingClientOptions {
  std::string socket_path;
  std::string client_name = "jitgate-recorder";
  int64_t connect_timeout_ms = 10'000;
  // How long Add/Flush/Close wait for acknowledgements or a reconnect.
  int64_t ack_timeout_ms = 30'000;
  size_t max_unacked = 64;  // chunks in flight (64 x 60 KiB)
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
  Status Close(wire::CloseSession end);

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

  RecordingClientOptions options_;
  wire::OpenSession meta_;
  std::string session_;
  std::optional<wire::Client> client_;
  ChunkBuilder builder_;
  std::deque<Bytes> unacked_;  // chunks acked_, acked_ + 1, ...
  uint64_t acked_ = 0;
  bool reconnected_ = false;  // at most one reconnect per call
  std::optional<std::string> terminated_by_;
  std::string terminate_comment_;
};

}  // namespace jitgate::recorder

#endif  // JITGATE_RECORDER_RECORDING_CLIENT_H_
