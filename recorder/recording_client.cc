#include "recorder/recording_client.h"

#include "core/base/clock.h"
#include "core/base/status_macros.h"

namespace jitgate::recorder {
namespace {

wire::Deadline In(int64_t ms) { return wire::Deadline::InMillis(RealClock(), ms); }

Status BrokerError(const wire::Error& e) {
  return FailedPreconditionError("jitgate broker refused the recording: " + e.message);
}

}  // namespace

StatusOr<std::unique_ptr<RecordingClient>> RecordingClient::Open(
    const RecordingClientOptions& options, const wire::OpenSession& meta) {
  if (!meta.session.empty()) return InvalidArgumentError("Open starts a new session");
  if (!options.spool_dir.empty()) return OpenSpooled(options, meta);
  ASSIGN_OR_RETURN(wire::Client c, wire::Client::Connect(options.socket_path,
                                                          In(options.connect_timeout_ms),
                                                          options.client_name));
  ASSIGN_OR_RETURN(wire::Message m, c.Call(meta, In(options.connect_timeout_ms)));
  if (auto* e = std::get_if<wire::Error>(&m)) return BrokerError(*e);
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  if (opened == nullptr || opened->next_index != 0) {
    return DataLossError("jitgate broker answered OpenSession with " +
                         wire::MessageTypeName(wire::TypeOf(m)));
  }
  std::unique_ptr<RecordingClient> rc(new RecordingClient(options, meta, opened->session));
  rc->client_.emplace(std::move(c));
  return rc;
}

Status RecordingClient::HandleMessage(const wire::Message& m) {
  if (auto* e = std::get_if<wire::Error>(&m)) return BrokerError(*e);
  if (auto* t = std::get_if<wire::SessionTerminated>(&m)) {
    // Told again after a resume: the first word stands.
    if (!terminated_by_.has_value()) {
      terminated_by_ = t->by;
      terminate_comment_ = t->comment;
    }
    return OkStatus();
  }
  auto* ack = std::get_if<wire::SessionAck>(&m);
  if (ack == nullptr) {
    return DataLossError("jitgate broker sent " + wire::MessageTypeName(wire::TypeOf(m)) +
                         " while recording");
  }
  if (ack->next_index < acked_ || ack->next_index > SentEnd()) {
    return DataLossError("jitgate broker acknowledged chunk " + std::to_string(ack->next_index) +
                         " of " + std::to_string(SentEnd()) + " sent");
  }
  if (ack->next_index > acked_) last_progress_ns_ = NowNs();
  Acknowledge(ack->next_index);
  return OkStatus();
}

void RecordingClient::Acknowledge(uint64_t next_index) {
  while (acked_ < next_index) {
    if (spool_) {
      offsets_.pop_front();
    } else {
      unacked_.pop_front();
    }
    ++acked_;
  }
}

Status RecordingClient::Reconnect(const Status& why) {
  if (reconnected_) return why;
  reconnected_ = true;
  client_.reset();
  Status s = Resume(options_.ack_timeout_ms);
  if (s.code() == StatusCode::kUnavailable) {
    return UnavailableError(why.message() + "; reconnecting: " + s.message());
  }
  return s;
}

Status RecordingClient::Resume(int64_t timeout_ms) {
  ASSIGN_OR_RETURN(wire::Client c,
                   wire::Client::Connect(options_.socket_path, In(timeout_ms), options_.client_name));
  wire::OpenSession resume = meta_;
  resume.session = session_;
  ASSIGN_OR_RETURN(wire::Message m, c.Call(resume, In(timeout_ms)));
  if (auto* e = std::get_if<wire::Error>(&m)) return BrokerError(*e);
  auto* opened = std::get_if<wire::SessionOpened>(&m);
  if (opened == nullptr || opened->session != session_) {
    return DataLossError("jitgate broker did not resume session " + session_);
  }
  // The broker has everything below next_index: those were acknowledged
  // (or their ack was lost with the connection).
  if (opened->next_index < acked_ || opened->next_index > acked_ + unacked_.size()) {
    return DataLossError("jitgate broker resumed session " + session_ + " at chunk " +
                         std::to_string(opened->next_index) + ", not within the " +
                         std::to_string(unacked_.size()) + " unacknowledged after " +
                         std::to_string(acked_));
  }
  while (acked_ < opened->next_index) {
    unacked_.pop_front();
    ++acked_;
  }
  client_.emplace(std::move(c));
  released_ = false;
  down_reason_.clear();
  for (const Bytes& chunk : unacked_) {
    RETURN_IF_ERROR(client_->Send(wire::SessionData{chunk}, In(timeout_ms)));
  }
  return OkStatus();
}

Status RecordingClient::EnsureConnected() {
  if (client_.has_value()) return OkStatus();
  if (!released_) return FailedPreconditionError("recording connection is closed");
  return Reconnect(UnavailableError(down_reason_));
}

void RecordingClient::Release(const Status& why) {
  client_.reset();
  released_ = true;
  down_reason_ = why.message();
  next_retry_ns_ = NowNs() + options_.retry_interval_ms * 1'000'000;
}

Status RecordingClient::Poll() {
  if (spool_) return PollSpooled();
  if (!client_.has_value()) {
    // Let go while idle: nothing to read until the session is resumed.
    if (released_) return OkStatus();
    return FailedPreconditionError("recording connection is closed");
  }
  while (true) {
    StatusOr<std::optional<wire::Message>> m = client_->Poll();
    if (!m.ok()) {
      if (m.status().code() != StatusCode::kUnavailable) return m.status();
      if (options_.resume_when_idle) {
        Release(m.status());
        return OkStatus();
      }
      RETURN_IF_ERROR(Reconnect(m.status()));
      continue;
    }
    if (!m->has_value()) return OkStatus();
    RETURN_IF_ERROR(HandleMessage(**m));
  }
}

Status RecordingClient::WaitForAcks(size_t unacked) {
  while (unacked_.size() > unacked) {
    StatusOr<wire::Message> m = client_->Receive(In(options_.ack_timeout_ms));
    if (!m.ok()) {
      if (m.status().code() != StatusCode::kUnavailable) {
        return Status(m.status().code(), "recording not acknowledged: " + m.status().message());
      }
      RETURN_IF_ERROR(Reconnect(m.status()));
      continue;
    }
    RETURN_IF_ERROR(HandleMessage(*m));
  }
  return OkStatus();
}

Status RecordingClient::SendChunk(Bytes chunk) {
  RETURN_IF_ERROR(EnsureConnected());
  RETURN_IF_ERROR(WaitForAcks(options_.max_unacked - 1));
  unacked_.push_back(std::move(chunk));
  Status s = client_->Send(wire::SessionData{unacked_.back()}, In(options_.ack_timeout_ms));
  if (!s.ok()) {
    if (s.code() != StatusCode::kUnavailable) return s;
    return Reconnect(s);  // resends every unacknowledged chunk, this one too
  }
  return OkStatus();
}

Status RecordingClient::Add(Record record) {
  reconnected_ = false;
  ASSIGN_OR_RETURN(std::vector<Bytes> done, builder_.Add(std::move(record)));
  for (Bytes& chunk : done) RETURN_IF_ERROR(spool_ ? SpoolChunk(chunk) : SendChunk(std::move(chunk)));
  return Poll();
}

Status RecordingClient::Flush() {
  reconnected_ = false;
  ASSIGN_OR_RETURN(std::vector<Bytes> last, builder_.Flush());
  for (Bytes& chunk : last) RETURN_IF_ERROR(spool_ ? SpoolChunk(chunk) : SendChunk(std::move(chunk)));
  return Poll();
}

Status RecordingClient::Tick() {
  if (spool_) return PollSpooled();
  if (options_.resume_when_idle) return TickIdle();
  if (!client_.has_value()) return OkStatus();
  return Poll();
}

Status RecordingClient::TickIdle() {
  if (client_.has_value() || !released_) return Poll();
  if (NowNs() < next_retry_ns_) return OkStatus();
  next_retry_ns_ = NowNs() + options_.retry_interval_ms * 1'000'000;
  Status s = Resume(options_.retry_connect_timeout_ms);
  if (s.ok()) return Poll();
  client_.reset();
  // Still away: the next send says so; anything else (a broker that refuses
  // the session or contradicts it) ends it now.
  if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded) {
    down_reason_ = s.message();
    return OkStatus();
  }
  return s;
}

Status RecordingClient::Close(wire::CloseSession end) {
  if (spool_) return CloseSpooled(std::move(end));
  RETURN_IF_ERROR(Flush());
  reconnected_ = false;
  RETURN_IF_ERROR(EnsureConnected());
  RETURN_IF_ERROR(WaitForAcks(0));
  end.chunks = builder_.chunks();
  ASSIGN_OR_RETURN(wire::Message m, client_->Call(end, In(options_.ack_timeout_ms)));
  // Acks (and a termination that crossed our CloseSession) may still be
  // queued before the answer.
  while (std::holds_alternative<wire::SessionAck>(m) ||
         std::holds_alternative<wire::SessionTerminated>(m)) {
    RETURN_IF_ERROR(HandleMessage(m));
    ASSIGN_OR_RETURN(m, client_->Receive(In(options_.ack_timeout_ms)));
  }
  if (auto* e = std::get_if<wire::Error>(&m)) return BrokerError(*e);
  auto* closed = std::get_if<wire::SessionClosed>(&m);
  if (closed == nullptr) {
    return DataLossError("jitgate broker answered CloseSession with " +
                         wire::MessageTypeName(wire::TypeOf(m)));
  }
  if (closed->chunks != builder_.chunks()) {
    return DataLossError("jitgate broker recorded " + std::to_string(closed->chunks) + " of " +
                         std::to_string(builder_.chunks()) + " chunks");
  }
  client_.reset();
  delivered_ = true;
  return OkStatus();
}

// Spool mode ----------------------------------------------------------------

const std::string& RecordingClient::spool_path() const {
  static const std::string kNone;
  return spool_ ? spool_->path() : kNone;
}

int64_t RecordingClient::NowNs() const {
  return (options_.clock != nullptr ? options_.clock : RealClock())->MonotonicNanos();
}

StatusOr<std::unique_ptr<RecordingClient>> RecordingClient::OpenSpooled(
    const RecordingClientOptions& options, const wire::OpenSession& meta) {
  // Fail closed on a full spool: this session could not be kept if the
  // broker went away (docs/jitgate-rec.md, "Spool").
  ASSIGN_OR_RETURN(uint64_t used, SpoolUsage(options.spool_dir));
  if (used > options.spool_max_bytes && !options.spool_allow_over_limit) {
    return ResourceExhaustedError("the spool " + options.spool_dir + " holds " +
                                  std::to_string(used) + " bytes, over its limit of " +
                                  std::to_string(options.spool_max_bytes));
  }
  SpoolWriterOptions so;
  so.dir = options.spool_dir;
  so.sync_bytes = options.spool_sync_bytes;
  so.sync_interval_ms = options.spool_sync_interval_ms;
  so.file_mode = options.spool_file_mode;
  so.clock = options.clock;
  wire::OpenSession named = meta;
  std::unique_ptr<SpoolWriter> spool;
  // 60 random bits: a second try only if the file name is taken.
  for (int attempt = 0; attempt < 4 && spool == nullptr; ++attempt) {
    ASSIGN_OR_RETURN(named.session, MintSessionId());
    StatusOr<std::unique_ptr<SpoolWriter>> w = SpoolWriter::Create(so, named);
    if (w.ok()) {
      spool = std::move(*w);
    } else if (w.status().code() != StatusCode::kAlreadyExists) {
      return w.status();
    }
  }
  if (spool == nullptr) return InternalError("could not name a spool file in " + options.spool_dir);
  std::unique_ptr<RecordingClient> rc(new RecordingClient(options, meta, named.session));
  rc->spool_ = std::move(spool);
  bool refused = false;
  Status s = rc->ConnectSpooled(options.connect_timeout_ms, &refused);
  if (refused) {
    // The broker said no: this session must not run, and nothing of it is
    // to be delivered later.
    rc->spool_->Remove().IgnoreError();
    return s;
  }
  return rc;  // connected, or spool-only until the broker is back
}

Status RecordingClient::ConnectSpooled(int64_t timeout_ms, bool* refused) {
  *refused = false;
  next_retry_ns_ = NowNs() + options_.retry_interval_ms * 1'000'000;
  StatusOr<wire::Client> c =
      wire::Client::Connect(options_.socket_path, In(timeout_ms), options_.client_name);
  if (!c.ok()) {
    down_reason_ = c.status().message();
    return c.status();
  }
  // The same OpenSession opens the session the first time and resumes it
  // afterwards: the broker knows it by the id we minted.
  wire::OpenSession open = meta_;
  open.session = session_;
  StatusOr<wire::Message> m = c->Call(open, In(timeout_ms));
  if (!m.ok()) {
    down_reason_ = m.status().message();
    return m.status();
  }
  if (auto* e = std::get_if<wire::Error>(&*m)) {
    *refused = true;
    return BrokerError(*e);
  }
  auto* opened = std::get_if<wire::SessionOpened>(&*m);
  const uint64_t total = acked_ + offsets_.size();
  if (opened == nullptr || opened->session != session_) {
    *refused = true;
    return DataLossError("jitgate broker did not open session " + session_);
  }
  if (opened->next_index < acked_ || opened->next_index > total) {
    *refused = true;
    return DataLossError("jitgate broker has chunk " + std::to_string(opened->next_index) +
                         " of session " + session_ + " next, but " + std::to_string(acked_) +
                         " were acknowledged and " + std::to_string(total) + " recorded");
  }
  Acknowledge(opened->next_index);
  sent_ = acked_;
  client_.emplace(std::move(*c));
  down_reason_.clear();
  last_progress_ns_ = NowNs();
  return Pump();
}

Status RecordingClient::Lost(const Status& why) {
  Release(why);
  // A broken or silent connection: the spool keeps the session. Anything
  // else (a broker that answers nonsense) ends it.
  if (why.code() == StatusCode::kUnavailable || why.code() == StatusCode::kDeadlineExceeded ||
      why.code() == StatusCode::kFailedPrecondition) {
    return OkStatus();
  }
  return why;
}

Status RecordingClient::SpoolChunk(const Bytes& chunk) {
  // Spooled before it is sent: a chunk the broker may have is never missing
  // from the spool. A spool that cannot be written ends the session.
  ASSIGN_OR_RETURN(uint64_t offset, spool_->AppendChunk(chunk));
  offsets_.push_back(offset);
  return Pump();
}

Status RecordingClient::Pump() {
  if (!client_.has_value()) {
    if (NowNs() < next_retry_ns_) return OkStatus();
    bool refused = false;
    Status s = ConnectSpooled(options_.retry_connect_timeout_ms, &refused);
    if (refused) return s;
    return OkStatus();  // still spool-only (or connected and pumped)
  }
  const uint64_t total = acked_ + offsets_.size();
  while (sent_ < total && sent_ - acked_ < options_.max_unacked) {
    ASSIGN_OR_RETURN(Bytes chunk,
                     ReadSpoolChunkAt(spool_->fd(), offsets_[sent_ - acked_], spool_->path()));
    if (sent_ == acked_) last_progress_ns_ = NowNs();  // the ack clock starts now
    Status s = client_->Send(wire::SessionData{std::move(chunk)}, In(options_.ack_timeout_ms));
    if (!s.ok()) return Lost(s);
    ++sent_;
  }
  return OkStatus();
}

Status RecordingClient::PollSpooled() {
  while (client_.has_value()) {
    StatusOr<std::optional<wire::Message>> m = client_->Poll();
    if (!m.ok()) {
      RETURN_IF_ERROR(Lost(m.status()));
      break;
    }
    if (!m->has_value()) break;
    RETURN_IF_ERROR(HandleMessage(**m));
  }
  if (client_.has_value() && sent_ > acked_ &&
      NowNs() - last_progress_ns_ > options_.ack_timeout_ms * 1'000'000) {
    RETURN_IF_ERROR(Lost(DeadlineExceededError("jitgate broker acknowledged nothing for " +
                                               std::to_string(options_.ack_timeout_ms) + " ms")));
  }
  RETURN_IF_ERROR(Pump());
  MaybeCompact();
  return spool_->MaybeSync();
}

void RecordingClient::MaybeCompact() {
  if (compaction_failed_ || !client_.has_value() || acked_ == spool_first_ ||
      offsets_.size() > options_.max_unacked) {
    return;
  }
  const uint64_t acked_bytes = offsets_.empty() ? spool_->size() : offsets_.front();
  if (acked_bytes < options_.spool_compact_bytes) return;
  StatusOr<std::vector<uint64_t>> moved =
      spool_->Rewrite(acked_, std::vector<uint64_t>(offsets_.begin(), offsets_.end()));
  if (!moved.ok()) {
    // The old file is intact and still holds everything: only space is lost.
    compaction_failed_ = true;
    return;
  }
  offsets_.assign(moved->begin(), moved->end());
  spool_first_ = acked_;
}

Status RecordingClient::CloseSpooled(wire::CloseSession end) {
  RETURN_IF_ERROR(Flush());
  const uint64_t total = acked_ + offsets_.size();
  end.chunks = total;
  // The end is durable in the spool before anything else: from here on the
  // session is kept whatever happens to the broker or to us.
  RETURN_IF_ERROR(spool_->AppendClose(end));
  if (!client_.has_value()) {
    next_retry_ns_ = 0;  // one more try now
    RETURN_IF_ERROR(Pump());
    if (!client_.has_value()) return OkStatus();  // left for the forwarder
  }
  while (acked_ < total) {
    RETURN_IF_ERROR(Pump());
    if (!client_.has_value()) return OkStatus();
    StatusOr<wire::Message> m = client_->Receive(In(options_.ack_timeout_ms));
    if (!m.ok()) return Lost(m.status());
    RETURN_IF_ERROR(HandleMessage(*m));
  }
  StatusOr<wire::Message> m = client_->Call(end, In(options_.ack_timeout_ms));
  while (m.ok() && (std::holds_alternative<wire::SessionAck>(*m) ||
                    std::holds_alternative<wire::SessionTerminated>(*m))) {
    RETURN_IF_ERROR(HandleMessage(*m));
    m = client_->Receive(In(options_.ack_timeout_ms));
  }
  if (!m.ok()) return Lost(m.status());
  if (auto* e = std::get_if<wire::Error>(&*m)) return BrokerError(*e);
  auto* closed = std::get_if<wire::SessionClosed>(&*m);
  if (closed == nullptr) {
    return DataLossError("jitgate broker answered CloseSession with " +
                         wire::MessageTypeName(wire::TypeOf(*m)));
  }
  if (closed->chunks != total) {
    return DataLossError("jitgate broker recorded " + std::to_string(closed->chunks) + " of " +
                         std::to_string(total) + " chunks");
  }
  client_.reset();
  RETURN_IF_ERROR(spool_->Remove());
  delivered_ = true;
  return OkStatus();
}

}  // namespace jitgate::recorder
