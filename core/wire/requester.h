// Requester: the whole requester side of docs/protocol.md §5.1 and §5.3 in one
// blocking call, shared by the PAM module, the sudo approval plugin and
// `jitgate request`.
//
//   Connect + Hello -> SubmitRequest -> [NeedReason -> ProvideReason]
//   -> RequestAccepted -> StatusUpdate* -> Decision
//
// and, if the connection is lost after RequestAccepted without a Decision
// (the broker restarted), reconnect with backoff (100 ms doubling to 1 s) and
// Resume(id, token) until the deadline, which is fixed once when
// RunRequest starts and never extended.
//
// Fails closed: access is granted only when the result is ok(), its outcome
// is Outcome::kApproved and its digest equals RequestDigest of the fields
// submitted (with the reason provided) -- RunRequest checks the digests of
// RequestAccepted and Decision itself and turns a mismatch into an error, so
// callers test Granted(). Built for life inside sshd and sudo like Client: no
// exceptions, threads, signals, global state or exit().
#ifndef JITGATE_CORE_WIRE_REQUESTER_H_
#define JITGATE_CORE_WIRE_REQUESTER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/wire/messages.h"
#include "core/wire/request.h"

namespace jitgate::wire {

// RequesterUi is how RunRequest talks to the person waiting (PAM
// conversation, terminal). Every method is called from RunRequest's thread.
class RequesterUi {
 public:
  virtual ~RequesterUi() = default;
  // The policy wants a reason and the request had none. Return the reason,
  // or nullopt if the user cannot or will not answer (RunRequest then sends
  // Cancel and fails closed). Called only when RequesterOptions.can_prompt.
  virtual std::optional<std::string> AskReason(const NeedReason& ask) = 0;
  // The request exists and waits for approvers (also after a Resume).
  virtual void OnAccepted(const RequestAccepted& accepted) = 0;
  // Progress while waiting.
  virtual void OnStatus(const StatusUpdate& update) = 0;
  // The connection was lost while waiting; RunRequest reconnects and resumes.
  virtual void OnReconnecting(const Status& why) = 0;
};

struct RequesterOptions {
  std::string socket_path;            // the broker's socket
  std::string client_name = "jitgate";  // Hello.client
  Clock* clock = nullptr;             // default RealClock()
  // The whole wait, fixed at the start; also sent as timeout_seconds
  // (rounded up). Must be > 0.
  int64_t timeout_ms = 300'000;
  bool can_prompt = false;            // SubmitRequest flag: may call AskReason
};

// The final answer. ok() with a Decision for every answer the broker gave
// (approved, denied, expired, cancelled, error); a Status error when there is
// no trustworthy answer: broker unreachable (kUnavailable), deadline passed
// (kDeadlineExceeded), protocol violation or digest mismatch (kDataLoss), an
// Error message from the broker (its code mapped: not_found -> kNotFound,
// permission_denied -> kPermissionDenied, invalid_request ->
// kInvalidArgument, busy -> kResourceExhausted, others kInternal; the
// broker's text in the message), the user gave no reason (kCancelled).
// Every error message is one line for the user, e.g.
//   "jitgate broker unreachable at /run/jitgate/jitgated.sock: Connection refused"
//   "no decision on request 7f3a9c02 within 300 s"
using RequesterResult = StatusOr<Decision>;

// True iff result is ok() and approved (RunRequest has checked the digest).
bool Granted(const RequesterResult& result);

// Runs the request for fields until a decision, an error or the deadline.
// ui may not be null.
RequesterResult RunRequest(const RequestFields& fields, const RequesterOptions& options,
                           RequesterUi* ui);

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_REQUESTER_H_
