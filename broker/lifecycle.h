// RequestBook: the life of access requests, as an in-memory state machine.
//
//            Create
//              |   (policy: deny)           (policy: auto)
//              v  ------------> denied      ------------> approved
//           pending --Approve x quorum--> approved --MarkUsed--> used
//              |  \--Deny--> denied          |  \--Cancel--> cancelled
//              |   \--Cancel--> cancelled    \--ttl passes--> expired
//              \--timeout passes--> expired
//
// Rules (PRODUCT.md, security requirements):
//  - A decision answers exactly one request. Approve, Deny and MarkUsed take
//    the wire::RequestDigest of the fields the approver saw / the client
//    presents, and refuse a mismatch, so nobody approves something other than
//    what was shown and an approval cannot be used for other fields.
//  - Nobody approves their own request: the approver may be neither the
//    requesting user nor the target user. For sshd these are the same person
//    (the login user); for sudo the target is usually root, and a user who is
//    the target of `sudo -u bob` should not wave others into their own
//    account. Refused also: users outside the policy's approver groups.
//  - Quorum counts distinct approvers; a second approval by the same user is
//    refused. One denial by any approver ends the request (a veto).
//  - If the policy's groups cannot supply `quorum` approvers once the
//    requester and target user are excluded, the request is denied at once
//    rather than left to time out.
//  - An approval is one-time (MarkUsed succeeds once) and valid for the
//    policy's ttl from the moment it was granted.
//  - Deadlines are enforced lazily by every operation that touches a request
//    and eagerly by Expire(now), which the daemon calls from a timer
//    (NextDeadline says when).
//
// Times are Unix nanoseconds (wall clock) passed in by the caller, because the
// daemon persists them and they must survive a restart; tests pass a
// SimulatedClock's time. Every transition emits one AuditEvent, in order.
//
// Not thread-safe: the daemon drives one RequestBook from one thread.
#ifndef JITGATE_BROKER_LIFECYCLE_H_
#define JITGATE_BROKER_LIFECYCLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/audit.h"
#include "broker/policy.h"
#include "core/base/status.h"
#include "core/crypto/crypto.h"
#include "core/wire/request.h"

namespace jitgate::broker {

enum class RequestState {
  kPending,
  kApproved,
  kDenied,
  kExpired,
  kCancelled,
  kUsed
};

// "pending", "approved", "denied", "expired", "cancelled", "used". Stable.
std::string_view RequestStateName(RequestState state);

// Request ids: kRequestIdLength characters from Crockford's base32 alphabet in
// lower case (no i, l, o, u), 40 random bits. Lookups fold case and read i/l
// as 1 and o as 0, so an id read aloud or retyped still finds its request.
inline constexpr size_t kRequestIdLength = 8;
inline constexpr std::string_view kRequestIdAlphabet =
    "0123456789abcdefghjkmnpqrstvwxyz";

// RandomRequestId returns a fresh id from the CSPRNG (crypto::RandomBytes).
StatusOr<std::string> RandomRequestId();

// A source of candidate ids; RequestBook retries on collisions. Tests inject
// predictable ids to exercise prefix lookups.
using RequestIdSource = std::function<StatusOr<std::string>()>;

// Approval is one approver's counted decision.
struct Approval {
  std::string approver;
  std::string comment;
  int64_t time_unix_nanos = 0;
};

// Request is one access request and everything decided about it.
struct Request {
  std::string id;
  wire::RequestFields fields;
  crypto::Sha256Digest digest{};  // wire::RequestDigest(fields)
  Caller caller;
  Decision decision;  // the policy snapshot at creation
  RequestState state = RequestState::kPending;
  int64_t created_unix_nanos = 0;
  int64_t deadline_unix_nanos = 0;     // pending: expires at this time
  int64_t decided_unix_nanos = 0;      // when it left pending
  int64_t valid_until_unix_nanos = 0;  // approved: usable before this time
  int64_t used_unix_nanos = 0;
  std::vector<Approval> approvals;  // distinct approvers, in order
  std::string closed_by;            // who denied/cancelled, or kBrokerActor
  std::string closed_comment;
};

class RequestBook {
 public:
  // sink receives every audit event; it is not owned and must outlive the
  // book. ids supplies candidate ids (default: RandomRequestId).
  explicit RequestBook(AuditSink* sink, RequestIdSource ids = RandomRequestId);

  RequestBook(const RequestBook&) = delete;
  RequestBook& operator=(const RequestBook&) = delete;

  // Create files a request for fields, filed by caller, which policy
  // evaluation answered with decision (policy.h Evaluate), and returns it.
  // Emits `created`, then at once `approved` (auto-approve), or `denied`
  // (policy deny, or too few eligible approvers); otherwise the request is
  // pending until now + decision.timeout. Fails, creating nothing, with
  // INVALID_ARGUMENT if service, user, target_user or host is empty, and
  // FAILED_PRECONDITION "a reason is required ..." if the policy requires a
  // reason and fields.reason is empty (the client should ask and retry).
  StatusOr<Request> Create(const wire::RequestFields& fields,
                           const Caller& caller, const Decision& decision,
                           int64_t now_unix_nanos);

  // Approve records approver's approval of the request id_or_prefix, whose
  // fields the approver saw as seen_digest, and returns the request after it.
  // Emits `vote`, or `approved` once quorum distinct approvers agree.
  // Fails with:
  //   NOT_FOUND / INVALID_ARGUMENT  no such request, ambiguous or bad prefix;
  //   DEADLINE_EXCEEDED   the wait timed out (the request is now expired);
  //   FAILED_PRECONDITION the request is not pending, or seen_digest differs
  //                       from the request's digest;
  //   PERMISSION_DENIED   approver is the requester or the target user, or
  //                       not in the policy's approver groups;
  //   ALREADY_EXISTS      approver already approved this request.
  StatusOr<Request> Approve(std::string_view id_or_prefix,
                            std::string_view approver,
                            const crypto::Sha256Digest& seen_digest,
                            std::string_view comment, int64_t now_unix_nanos);

  // Deny ends a pending request on behalf of approver (any member of the
  // policy's approver groups, even one who approved earlier). Emits `denied`.
  // Fails like Approve, except that self-denial is allowed and there is no
  // ALREADY_EXISTS.
  StatusOr<Request> Deny(std::string_view id_or_prefix,
                         std::string_view approver,
                         const crypto::Sha256Digest& seen_digest,
                         std::string_view comment, int64_t now_unix_nanos);

  // Cancel withdraws the request id (exact, full id) because the waiting
  // client went away or actor withdrew it; a pending request or an unused
  // approval becomes cancelled. Emits `cancelled`. Fails with NOT_FOUND, or
  // FAILED_PRECONDITION if the request is already finished.
  Status Cancel(std::string_view id, std::string_view actor,
                std::string_view comment, int64_t now_unix_nanos);

  // MarkUsed consumes the approval of request id (exact, full id) for a
  // client presenting fields with digest; it succeeds once. Emits `used`.
  // Fails with NOT_FOUND; DEADLINE_EXCEEDED if the approval's ttl has passed
  // (the request is now expired); FAILED_PRECONDITION if the request is not
  // approved (pending, denied, ..., or already used) or digest differs (the
  // approval stays usable for the right fields).
  StatusOr<Request> MarkUsed(std::string_view id,
                             const crypto::Sha256Digest& digest,
                             int64_t now_unix_nanos);

  // Expire moves every pending request whose deadline has come and every
  // approval whose ttl has passed to expired, emitting `expired` for each,
  // and returns their ids in id order.
  std::vector<std::string> Expire(int64_t now_unix_nanos);

  // NextDeadline is the earliest time at which Expire would change
  // something, or nullopt if nothing is waiting.
  std::optional<int64_t> NextDeadline() const;

  // Find returns a copy of the request with this id or unique id prefix.
  // Fails with INVALID_ARGUMENT for text that cannot be an id (or a prefix
  // of one) and for a prefix matching several requests ("prefix 'ab'
  // matches 3 requests"), NOT_FOUND if nothing matches. Does not expire.
  StatusOr<Request> Find(std::string_view id_or_prefix) const;

  // List returns copies of all requests, in id order.
  std::vector<Request> List() const;
  // ForEach calls f on every request, in id order, without copying. f must
  // not add or forget requests.
  void ForEach(const std::function<void(const Request&)>& f) const {
    for (const auto& [id, r] : requests_) f(r);
  }

  // Restore puts back a request exactly as it was saved (the daemon's state
  // database after a restart), without audit events: they were emitted when
  // the request changed. Fails with ALREADY_EXISTS if the id is taken and
  // INVALID_ARGUMENT for a malformed id.
  Status Restore(Request request);

  // Forget drops a finished request (denied, expired, cancelled or used) from
  // memory; its history stays in the daemon's database. No-op for an unknown
  // id; FAILED_PRECONDITION for a request that is still pending or approved.
  Status Forget(std::string_view id);

  // Get returns the request with exactly this full id, or nullptr. The
  // pointer is valid until the next call that adds or forgets a request.
  const Request* Get(std::string_view id) const;

  size_t size() const { return requests_.size(); }
  // Requests pending or approved (not yet used): what may still change.
  size_t active() const { return due_.size(); }
  // Requests waiting for a decision.
  size_t pending() const { return pending_; }

 private:
  StatusOr<Request*> Resolve(std::string_view id_or_prefix);
  StatusOr<Request*> ResolveExact(std::string_view id);
  // Expires r if its deadline or ttl has passed at now; returns true if so.
  bool ExpireIfDue(Request& r, int64_t now);
  // Shared checks of Approve and Deny; returns the pending request.
  StatusOr<Request*> ResolveForDecision(std::string_view id_or_prefix,
                                        const crypto::Sha256Digest& seen,
                                        int64_t now);
  void Close(Request& r, RequestState state, AuditEventType type,
             std::string_view actor, std::string_view comment, int64_t now);
  AuditEvent EventFor(const Request& r, AuditEventType type,
                      std::string_view actor, std::string_view comment,
                      int64_t now) const;
  // Re-files r in due_ after a change; old_due is DueTime(r) before it.
  void Track(const Request& r, std::optional<int64_t> old_due);

  AuditSink* sink_;
  RequestIdSource ids_;
  std::map<std::string, Request, std::less<>> requests_;  // by id
  // (due time, id) of every pending or approved request: Expire and
  // NextDeadline look only here, so finished history costs nothing.
  std::set<std::pair<int64_t, std::string>> due_;
  size_t pending_ = 0;  // requests in state kPending
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_LIFECYCLE_H_
