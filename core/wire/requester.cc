#include "core/wire/requester.h"

#include <poll.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <variant>

#include "core/crypto/crypto.h"
#include "core/wire/client.h"
#include "core/wire/deadline.h"

namespace jitgate::wire {
namespace {

// docs/protocol.md §5.3: reconnect backoff.
constexpr int kFirstBackoffMs = 100;
constexpr int kMaxBackoffMs = 1000;

// The broker's Error code as a Status code (requester.h).
StatusCode MapErrorCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return StatusCode::kNotFound;
    case ErrorCode::kPermissionDenied:
      return StatusCode::kPermissionDenied;
    case ErrorCode::kInvalidRequest:
      return StatusCode::kInvalidArgument;
    case ErrorCode::kBusy:
      return StatusCode::kResourceExhausted;
    default:
      return StatusCode::kInternal;
  }
}

// Sleeps for ms milliseconds of real time, but not past the deadline.
// poll() with no fds is the one sleep that needs no signal handling and
// returns early only on EINTR, which merely shortens one backoff step.
void SleepUntilEarlier(int ms, const Deadline& deadline) {
  int t = std::min(ms, deadline.PollTimeoutMs());
  if (t > 0) (void)::poll(nullptr, 0, t);
}

// One run of the protocol. Keeps what is needed across reconnects.
class Run {
 public:
  Run(const RequestFields& fields, const RequesterOptions& options,
      RequesterUi* ui, Clock* clock)
      : options_(options),
        ui_(ui),
        deadline_(Deadline::InMillis(clock, options.timeout_ms)),
        submitted_(fields),
        timeout_seconds_(options.timeout_ms / 1000 +
                         (options.timeout_ms % 1000 != 0 ? 1 : 0)) {}

  ~Run() { crypto::Cleanse(token_.data(), token_.size()); }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  RequesterResult Go();

 private:
  // Handles one message from the broker. Returns nullopt to keep waiting,
  // or the final result.
  std::optional<RequesterResult> Handle(Message m);
  std::optional<RequesterResult> OnNeedReason(const NeedReason& ask);
  std::optional<RequesterResult> OnAccepted(const RequestAccepted& accepted);
  RequesterResult OnDecision(Decision d);
  // Called when Receive failed: reconnects and resumes if possible, else
  // returns the final error.
  std::optional<RequesterResult> OnLost(const Status& why);
  // Sends Cancel (best effort), closes, returns s.
  Status CancelWith(Status s);

  std::string Path() const { return options_.socket_path; }
  std::string Timeout() const {
    return std::to_string(timeout_seconds_) + " s";
  }
  Status DeadlinePassed() const {
    if (id_.empty()) {
      return DeadlineExceededError("no answer from jitgate broker at " +
                                   Path() + " within " + Timeout());
    }
    return DeadlineExceededError("no decision on request " + id_ + " within " +
                                 Timeout());
  }

  const RequesterOptions& options_;
  RequesterUi* ui_;
  const Deadline deadline_;
  RequestFields submitted_;  // with the reason provided: what the digest binds
  int64_t timeout_seconds_;
  std::optional<Client> client_;
  // Set by the first RequestAccepted; needed for Resume.
  std::string id_;
  ResumeToken token_{};
};

RequesterResult Run::Go() {
  StatusOr<Client> c =
      Client::Connect(options_.socket_path, deadline_, options_.client_name);
  if (!c.ok()) {
    if (c.status().code() == StatusCode::kDeadlineExceeded)
      return DeadlinePassed();
    return c.status();
  }
  client_.emplace(std::move(*c));

  SubmitRequest submit;
  submit.fields = submitted_;
  submit.timeout_seconds =
      uint32_t(std::min<int64_t>(timeout_seconds_, UINT32_MAX));
  submit.can_prompt = options_.can_prompt;
  if (Status s = client_->Send(submit, deadline_); !s.ok()) {
    if (s.code() == StatusCode::kDeadlineExceeded) return DeadlinePassed();
    if (s.code() == StatusCode::kUnavailable) {
      return UnavailableError("jitgate broker unreachable at " + Path() +
                              ": connection lost before the request was "
                              "accepted");
    }
    return s;
  }

  while (true) {
    StatusOr<Message> m = client_->Receive(deadline_);
    std::optional<RequesterResult> done =
        m.ok() ? Handle(std::move(*m)) : OnLost(m.status());
    if (done) {
      client_.reset();  // closes; the broker cancels anything still pending
      return std::move(*done);
    }
  }
}

std::optional<RequesterResult> Run::Handle(Message m) {
  if (auto* ask = std::get_if<NeedReason>(&m)) return OnNeedReason(*ask);
  if (auto* accepted = std::get_if<RequestAccepted>(&m))
    return OnAccepted(*accepted);
  if (auto* update = std::get_if<StatusUpdate>(&m)) {
    ui_->OnStatus(*update);
    return std::nullopt;
  }
  if (auto* d = std::get_if<Decision>(&m)) return OnDecision(std::move(*d));
  if (auto* err = std::get_if<Error>(&m)) {
    std::string what =
        id_.empty() ? std::string("the request") : "request " + id_;
    return Status(MapErrorCode(err->code),
                  "jitgate broker refused " + what + " (" +
                      std::string(ErrorCodeName(err->code)) +
                      "): " + err->message);
  }
  // The client's state machine admits nothing else in a requester state.
  return Status(DataLossError("jitgate broker at " + Path() + " sent " +
                              MessageTypeName(TypeOf(m)) + " to a requester"));
}

std::optional<RequesterResult> Run::OnNeedReason(const NeedReason& ask) {
  if (!options_.can_prompt) {
    // The broker may ask only when the client said it can prompt.
    return DataLossError(
        "jitgate broker at " + Path() +
        " asked for a reason although this client cannot prompt");
  }
  std::optional<std::string> reason = ui_->AskReason(ask);
  if (!reason)
    return CancelWith(CancelledError("no reason given; request cancelled"));
  if (ask.required && reason->empty()) {
    return CancelWith(
        CancelledError("a reason is required; request cancelled"));
  }
  if (reason->size() > kMaxReasonField) {
    return CancelWith(InvalidArgumentError(
        "reason too long (" + std::to_string(reason->size()) +
        " bytes, at most " + std::to_string(kMaxReasonField) +
        "); request cancelled"));
  }
  if (reason->find('\0') != std::string::npos) {
    return CancelWith(
        InvalidArgumentError("reason contains a NUL byte; request cancelled"));
  }
  submitted_.reason = *reason;
  if (Status s = client_->Send(ProvideReason{std::move(*reason)}, deadline_);
      !s.ok()) {
    // Lost before RequestAccepted: no id to resume with.
    return OnLost(s);
  }
  return std::nullopt;
}

std::optional<RequesterResult> Run::OnAccepted(
    const RequestAccepted& accepted) {
  if (!id_.empty() && accepted.id != id_) {
    return CancelWith(DataLossError("jitgate broker resumed request " + id_ +
                                    " as " + accepted.id + "; access denied"));
  }
  if (!crypto::ConstantTimeEquals(accepted.digest, RequestDigest(submitted_))) {
    return CancelWith(
        DataLossError("jitgate broker accepted request " + accepted.id +
                      " for different fields than were sent (digest mismatch); "
                      "access denied"));
  }
  id_ = accepted.id;
  token_ = accepted.resume_token;
  ui_->OnAccepted(accepted);
  return std::nullopt;
}

RequesterResult Run::OnDecision(Decision d) {
  if (d.id.empty()) {
    // No request was recorded: only an error outcome can say so (the decoder
    // guarantees an all-zero digest).
    if (d.outcome != Outcome::kError || !id_.empty()) {
      return DataLossError("jitgate broker sent a " +
                           std::string(OutcomeName(d.outcome)) +
                           " decision without a request id; access denied");
    }
    return d;
  }
  if (!id_.empty() && d.id != id_) {
    return DataLossError("jitgate broker sent a decision for request " + d.id +
                         " while waiting for " + id_ + "; access denied");
  }
  if (!crypto::ConstantTimeEquals(d.digest, RequestDigest(submitted_))) {
    return DataLossError(
        "jitgate broker's decision on request " + d.id +
        " is for different fields than were sent (digest mismatch); "
        "access denied");
  }
  return d;
}

std::optional<RequesterResult> Run::OnLost(const Status& why) {
  if (why.code() == StatusCode::kDeadlineExceeded) return DeadlinePassed();
  if (why.code() != StatusCode::kUnavailable)
    return why;  // protocol violation etc.
  if (id_.empty()) {
    // Before RequestAccepted there is nothing to resume (§5.3).
    return UnavailableError(
        "jitgate broker unreachable at " + Path() +
        ": connection lost before the request was accepted");
  }
  client_.reset();
  ui_->OnReconnecting(why);
  Status last = why;
  int backoff = kFirstBackoffMs;
  while (true) {
    SleepUntilEarlier(backoff, deadline_);
    backoff = std::min(backoff * 2, kMaxBackoffMs);
    if (deadline_.Expired()) {
      return DeadlineExceededError("no decision on request " + id_ +
                                   " within " + Timeout() + " (" +
                                   last.message() + ")");
    }
    StatusOr<Client> c =
        Client::Connect(options_.socket_path, deadline_, options_.client_name);
    if (!c.ok()) {
      last = c.status();
      // A broker that is starting may refuse or drop the handshake; anything
      // else (a protocol violation, a bad path) will not heal by retrying.
      if (last.code() == StatusCode::kUnavailable) continue;
      if (last.code() == StatusCode::kDeadlineExceeded) return DeadlinePassed();
      return last;
    }
    client_.emplace(std::move(*c));
    Status s = client_->Send(Resume{id_, token_}, deadline_);
    if (s.ok()) return std::nullopt;  // the answer arrives in the main loop
    client_.reset();
    last = s;
    if (s.code() == StatusCode::kDeadlineExceeded) return DeadlinePassed();
    if (s.code() != StatusCode::kUnavailable) return s;
  }
}

Status Run::CancelWith(Status s) {
  if (client_) {
    // Best effort: if it fails the close below cancels too (§5.3).
    client_->Send(Cancel{}, deadline_).IgnoreError();
    client_.reset();
  }
  return s;
}

}  // namespace

bool Granted(const RequesterResult& result) {
  return result.ok() && result->outcome == Outcome::kApproved &&
         !result->id.empty();
}

RequesterResult RunRequest(const RequestFields& fields,
                           const RequesterOptions& options, RequesterUi* ui) {
  if (ui == nullptr)
    return InvalidArgumentError("jitgate requester: no user interface given");
  if (options.timeout_ms <= 0) {
    return InvalidArgumentError(
        "jitgate requester: timeout must be positive, not " +
        std::to_string(options.timeout_ms) + " ms");
  }
  Clock* clock = options.clock != nullptr ? options.clock : RealClock();
  Run run(fields, options, ui, clock);
  return run.Go();
}

}  // namespace jitgate::wire
