#include "tests/testing/fake_broker.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/base/clock.h"
#include "core/base/status_macros.h"
#include "core/wire/deadline.h"

namespace jitgate::testing {

using wire::Deadline;
using wire::Message;

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "FakeBroker: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

template <typename T>
StatusOr<T> Expect(StatusOr<Message> m, const char* name) {
  if (!m.ok()) return m.status();
  if (auto* v = std::get_if<T>(&*m)) return std::move(*v);
  return FailedPreconditionError(std::string("fake broker expected ") + name +
                                 ", got " +
                                 wire::MessageTypeName(wire::TypeOf(*m)));
}

}  // namespace

// ---------------------------------------------------------------------------
// FakeBrokerConnection

StatusOr<Message> FakeBrokerConnection::Read(int64_t timeout_ms) {
  if (!fd_) return FailedPreconditionError("fake broker: connection closed");
  Deadline deadline = Deadline::InMillis(RealClock(), timeout_ms);
  while (!reader_.HasFrame()) {
    ASSIGN_OR_RETURN(wire::FrameReader::ReadResult r,
                     reader_.ReadFrom(fd_.get()));
    if (r == wire::FrameReader::ReadResult::kEof)
      return UnavailableError("client closed");
    if (r == wire::FrameReader::ReadResult::kProgress) continue;
    while (true) {
      if (broker_->stopping()) return CancelledError("fake broker stopping");
      int timeout = deadline.PollTimeoutMs();
      if (timeout == 0)
        return DeadlineExceededError("fake broker: client sent nothing");
      pollfd p[2] = {{fd_.get(), POLLIN, 0}, {broker_->stop_fd(), POLLIN, 0}};
      int n = ::poll(p, 2, timeout);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, "fake broker poll");
      if (p[0].revents != 0) break;
    }
  }
  wire::Frame f = reader_.TakeFrame();
  StatusOr<Message> m = wire::DecodeMessage(f.type, f.body);
  if (!m.ok())
    return DataLossError("fake broker: bad message: " + m.status().message());
  broker_->Record(*m);
  return m;
}

Status FakeBrokerConnection::Send(const Message& m) {
  if (!fd_) return FailedPreconditionError("fake broker: connection closed");
  ASSIGN_OR_RETURN(Bytes frame, wire::EncodeMessage(m));
  return SendRaw(frame);
}

Status FakeBrokerConnection::SendRaw(ByteSpan bytes) {
  if (!fd_) return FailedPreconditionError("fake broker: connection closed");
  return wire::WriteFull(fd_.get(), bytes,
                         Deadline::InMillis(RealClock(), 5000));
}

StatusOr<wire::Hello> FakeBrokerConnection::Handshake() {
  ASSIGN_OR_RETURN(wire::Hello hello, Expect<wire::Hello>(Read(), "Hello"));
  RETURN_IF_ERROR(Send(wire::HelloAck{wire::kProtocolVersion, "fake-broker"}));
  return hello;
}

StatusOr<wire::SubmitRequest> FakeBrokerConnection::HandshakeAndSubmit() {
  RETURN_IF_ERROR(Handshake().status());
  return Expect<wire::SubmitRequest>(Read(), "SubmitRequest");
}

bool FakeBrokerConnection::WaitForClientClose(int64_t timeout_ms) {
  Deadline deadline = Deadline::InMillis(RealClock(), timeout_ms);
  while (true) {
    StatusOr<Message> m = Read(deadline.RemainingNanos() / 1'000'000 + 1);
    if (!m.ok()) return m.status().code() == StatusCode::kUnavailable;
  }
}

// ---------------------------------------------------------------------------
// FakeBroker

FakeBroker::FakeBroker(Script script)
    : socket_path_(dir_.Join("jitgated.sock")), script_(std::move(script)) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) Die("pipe2");
  wake_read_.reset(pipefd[0]);
  wake_write_.reset(pipefd[1]);

  listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_) Die("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    Die(socket_path_.c_str());
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0)
    Die("bind");
  if (::listen(listener_.get(), 64) != 0) Die("listen");
  thread_ = std::thread([this] { Serve(); });
}

FakeBroker::~FakeBroker() {
  stop_.store(true);
  wake_write_.reset();  // every poll on wake_read_ now sees POLLHUP
  if (thread_.joinable()) thread_.join();
}

void FakeBroker::StopListening() {
  if (listening_.exchange(false)) (void)::unlink(socket_path_.c_str());
}

void FakeBroker::Serve() {
  while (!stopping()) {
    if (!listening_.load()) {
      listener_.reset();
      // Nothing more to accept; wait for the destructor.
      pollfd p{stop_fd(), POLLIN, 0};
      (void)::poll(&p, 1, -1);
      continue;
    }
    // The timeout lets StopListening (from another thread) take effect.
    pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_fd(), POLLIN, 0}};
    int n = ::poll(p, 2, 50);
    if (n <= 0 || p[0].revents == 0) continue;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr,
                          SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) continue;
    if (!listening_.load())
      continue;  // accepted from the backlog after the stop
    int index = accepted_.fetch_add(1);
    FakeBrokerConnection conn(this, std::move(fd), index);
    Status s = script_(conn);
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() && !stopping()) {
      script_errors_.push_back(
          s.WithContext("connection " + std::to_string(index)));
    }
    ++finished_;
    finished_cv_.notify_all();
  }
}

void FakeBroker::Record(const Message& m) {
  std::lock_guard<std::mutex> lock(mu_);
  received_.push_back(m);
}

std::vector<Message> FakeBroker::Received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

std::vector<wire::SubmitRequest> FakeBroker::Submitted() const {
  std::vector<wire::SubmitRequest> out;
  for (const Message& m : Received()) {
    if (auto* s = std::get_if<wire::SubmitRequest>(&m)) out.push_back(*s);
  }
  return out;
}

int FakeBroker::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

bool FakeBroker::WaitUntilFinished(int n, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return finished_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                               [&] { return finished_ >= n; });
}

std::vector<Status> FakeBroker::ScriptErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return script_errors_;
}

std::string FakeBroker::NextId() {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", unsigned(next_id_.fetch_add(1)));
  return buf;
}

wire::ResumeToken FakeBroker::TokenFor(const std::string& id) {
  wire::ResumeToken t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = uint8_t(id[i % id.size()] + i);
  return t;
}

wire::RequestAccepted FakeBroker::AcceptedFor(const std::string& id,
                                              const wire::RequestFields& fields,
                                              std::string approvers,
                                              uint32_t wait_seconds) {
  return wire::RequestAccepted{id, TokenFor(id), wire::RequestDigest(fields),
                               std::move(approvers), wait_seconds};
}

wire::Decision FakeBroker::DecisionFor(const std::string& id,
                                       const wire::RequestFields& fields,
                                       wire::Outcome outcome,
                                       std::string message) {
  wire::Decision d;
  d.id = id;
  d.digest = wire::RequestDigest(fields);
  d.outcome = outcome;
  if (outcome == wire::Outcome::kApproved) {
    d.decided_by = {"bob"};
    d.valid_until = 1767227400;
  } else if (outcome == wire::Outcome::kDenied) {
    d.decided_by = {"carol"};
  }
  d.message = std::move(message);
  return d;
}

// ---------------------------------------------------------------------------
// Canned scripts

FakeBroker::Script FakeBroker::AutoApprove() {
  return [](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    std::string id = c.broker().NextId();
    RETURN_IF_ERROR(c.Send(DecisionFor(id, req.fields, wire::Outcome::kApproved,
                                       "approved by policy dev")));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::AcceptThenApprove() {
  return [](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    std::string id = c.broker().NextId();
    RETURN_IF_ERROR(c.Send(AcceptedFor(id, req.fields)));
    RETURN_IF_ERROR(
        c.Send(wire::StatusUpdate{0, 1, 299, "notified bob, carol"}));
    RETURN_IF_ERROR(c.Send(DecisionFor(id, req.fields, wire::Outcome::kApproved,
                                       "approved by bob")));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::Deny(std::string message) {
  return [message](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    std::string id = c.broker().NextId();
    RETURN_IF_ERROR(c.Send(AcceptedFor(id, req.fields)));
    RETURN_IF_ERROR(
        c.Send(DecisionFor(id, req.fields, wire::Outcome::kDenied, message)));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::NeedReasonThenApprove(bool required,
                                                     std::string prompt) {
  return [required, prompt](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    if (!req.can_prompt || !req.fields.reason.empty()) {
      // As the broker: no prompt possible, decide on what was sent.
      std::string id = c.broker().NextId();
      if (req.fields.reason.empty() && required) {
        return c.Send(DecisionFor(
            id, req.fields, wire::Outcome::kDenied,
            "a reason is required and this client cannot ask for one"));
      }
      RETURN_IF_ERROR(c.Send(AcceptedFor(id, req.fields)));
      return c.Send(DecisionFor(id, req.fields, wire::Outcome::kApproved,
                                "approved by bob"));
    }
    RETURN_IF_ERROR(c.Send(wire::NeedReason{required, prompt}));
    StatusOr<Message> answer = c.Read();
    if (!answer.ok()) return OkStatus();  // the client gave up and closed
    if (std::holds_alternative<wire::Cancel>(*answer)) {
      wire::Decision d;
      d.id = c.broker().NextId();
      d.digest = wire::RequestDigest(req.fields);
      d.outcome = wire::Outcome::kCancelled;
      d.message = "cancelled by the requester";
      (void)c.Send(d);  // the client may have closed already
      return OkStatus();
    }
    ASSIGN_OR_RETURN(
        wire::ProvideReason reason,
        Expect<wire::ProvideReason>(std::move(answer), "ProvideReason"));
    wire::RequestFields fields = req.fields;
    fields.reason = reason.reason;
    std::string id = c.broker().NextId();
    RETURN_IF_ERROR(c.Send(AcceptedFor(id, fields)));
    RETURN_IF_ERROR(c.Send(
        DecisionFor(id, fields, wire::Outcome::kApproved, "approved by bob")));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::AcceptThenCloseToForceResume() {
  struct Shared {
    std::mutex mu;
    std::string id;
    wire::RequestFields fields;
  };
  auto shared = std::make_shared<Shared>();
  return [shared](FakeBrokerConnection& c) -> Status {
    if (c.index() == 0) {
      ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
      std::string id = c.broker().NextId();
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->id = id;
        shared->fields = req.fields;
      }
      RETURN_IF_ERROR(c.Send(AcceptedFor(id, req.fields)));
      c.Close();  // "restart"
      return OkStatus();
    }
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::Resume resume,
                     Expect<wire::Resume>(c.Read(), "Resume"));
    std::lock_guard<std::mutex> lock(shared->mu);
    if (resume.id != shared->id ||
        resume.resume_token != TokenFor(shared->id)) {
      RETURN_IF_ERROR(
          c.Send(wire::Error{wire::ErrorCode::kNotFound, "no such request"}));
      return FailedPreconditionError(
          "fake broker: Resume with the wrong id or token");
    }
    RETURN_IF_ERROR(
        c.Send(AcceptedFor(shared->id, shared->fields, "1 of oncall", 200)));
    RETURN_IF_ERROR(
        c.Send(DecisionFor(shared->id, shared->fields, wire::Outcome::kApproved,
                           "approved by bob")));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::NeverAnswer() {
  return [](FakeBrokerConnection& c) -> Status {
    ASSIGN_OR_RETURN(wire::SubmitRequest req, c.HandshakeAndSubmit());
    RETURN_IF_ERROR(c.Send(AcceptedFor(c.broker().NextId(), req.fields)));
    c.WaitForClientClose(60'000);
    return OkStatus();
  };
}

FakeBroker::Script FakeBroker::SendError(wire::ErrorCode code,
                                         std::string message) {
  return [code, message](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.HandshakeAndSubmit().status());
    RETURN_IF_ERROR(c.Send(wire::Error{code, message}));
    c.WaitForClientClose(1000);
    return OkStatus();
  };
}

}  // namespace jitgate::testing
