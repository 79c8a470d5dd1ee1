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
  if (ack->next_index < acked_ || ack->next_index > acked_ + unacked_.size()) {
    return DataLossError("jitgate broker acknowledged chunk " + std::to_string(ack->next_index) +
                         " of " + std::to_string(acked_ + unacked_.size()) + " sent");
  }
  while (acked_ < ack->next_index) {
    unacked_.pop_front();
    ++acked_;
  }
  return OkStatus();
}

Status RecordingClient::Reconnect(const Status& why) {
  if (reconnected_) return why;
  reconnected_ = true;
  client_.reset();
  StatusOr<wire::Client> c = wire::Client::Connect(options_.socket_path,
                                                   In(options_.ack_timeout_ms), options_.client_name);
  if (!c.ok()) return UnavailableError(why.message() + "; reconnecting: " + c.status().message());
  wire::OpenSession resume = meta_;
  resume.session = session_;
  ASSIGN_OR_RETURN(wire::Message m, c->Call(resume, In(options_.ack_timeout_ms)));
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
  client_.emplace(std::move(*c));
  for (const Bytes& chunk : unacked_) {
    RETURN_IF_ERROR(client_->Send(wire::SessionData{chunk}, In(options_.ack_timeout_ms)));
  }
  return OkStatus();
}

Status RecordingClient::Poll() {
  if (!client_.has_value()) return FailedPreconditionError("recording connection is closed");
  while (true) {
    StatusOr<std::optional<wire::Message>> m = client_->Poll();
    if (!m.ok()) {
      if (m.status().code() != StatusCode::kUnavailable) return m.status();
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
  if (!client_.has_value()) return FailedPreconditionError("recording connection is closed");
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
  for (Bytes& chunk : done) RETURN_IF_ERROR(SendChunk(std::move(chunk)));
  return Poll();
}

Status RecordingClient::Flush() {
  reconnected_ = false;
  ASSIGN_OR_RETURN(std::vector<Bytes> last, builder_.Flush());
  for (Bytes& chunk : last) RETURN_IF_ERROR(SendChunk(std::move(chunk)));
  return Poll();
}

Status RecordingClient::Close(wire::CloseSession end) {
  RETURN_IF_ERROR(Flush());
  reconnected_ = false;
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
  return OkStatus();
}

}  // namespace jitgate::recorder
