#include "broker/lifecycle.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <utility>

#include "core/base/status_macros.h"

namespace jitgate::broker {

namespace {

// Attempts at drawing an unused id. With 40-bit ids a collision is already
// unlikely; repeated collisions mean a broken id source.
constexpr int kMaxIdAttempts = 16;

// "5m", "1h30m", "30s", "250ms": durations as jitgate.yaml writes them.
std::string FormatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns <= 0) return "0s";
  struct Unit {
    const char* name;
    int64_t nanos;
  };
  constexpr Unit kUnits[] = {{"d", int64_t{86400} * 1'000'000'000},
                             {"h", int64_t{3600} * 1'000'000'000},
                             {"m", int64_t{60} * 1'000'000'000},
                             {"s", 1'000'000'000},
                             {"ms", 1'000'000}};
  std::string out;
  for (const Unit& u : kUnits) {
    if (ns >= u.nanos) {
      out += std::to_string(ns / u.nanos) + u.name;
      ns %= u.nanos;
    }
  }
  return out.empty() ? std::to_string(ns) + "ns" : out;
}

// Canonical lower-case form of an id or id prefix typed by a person.
StatusOr<std::string> NormalizeId(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("empty request id");
  if (text.size() > kRequestIdLength) {
    return InvalidArgumentError("not a request id (longer than " +
                                std::to_string(kRequestIdLength) +
                                " characters)");
  }
  std::string id;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == 'i' || c == 'l') c = '1';
    if (c == 'o') c = '0';
    if (kRequestIdAlphabet.find(c) == std::string_view::npos) {
      return InvalidArgumentError(
          "not a request id (request ids use 0-9 and a-z without i, l, o, u)");
    }
    id += c;
  }
  return id;
}

bool IsWellFormedId(std::string_view id) {
  if (id.size() != kRequestIdLength) return false;
  for (char c : id) {
    if (kRequestIdAlphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// When Expire would next act on r: the wait deadline of a pending request,
// the end of an unused approval; nothing for a finished request.
std::optional<int64_t> DueTime(const Request& r) {
  if (r.state == RequestState::kPending) return r.deadline_unix_nanos;
  if (r.state == RequestState::kApproved) return r.valid_until_unix_nanos;
  return std::nullopt;
}

Status NotPending(const Request& r) {
  return FailedPreconditionError("request " + r.id + " is already " +
                                 std::string(RequestStateName(r.state)));
}

Status Expired(const Request& r) {
  return DeadlineExceededError("request " + r.id + " expired (" +
                               r.closed_comment + ")");
}

Status DigestMismatch(const Request& r) {
  return FailedPreconditionError(
      "request " + r.id +
      ": the fields presented differ from the request's (digest mismatch)");
}

// The one request whose id starts with id_or_prefix (normalized). R is
// Request or const Request, so that Find and the mutators share the lookup.
template <typename R, typename Map>
StatusOr<R*> ResolvePrefix(Map& requests, std::string_view id_or_prefix) {
  ASSIGN_OR_RETURN(std::string prefix, NormalizeId(id_or_prefix));
  size_t matches = 0;
  R* found = nullptr;
  for (auto it = requests.lower_bound(prefix);
       it != requests.end() && it->first.starts_with(prefix); ++it) {
    ++matches;
    found = &it->second;
  }
  if (matches == 0) return NotFoundError("no request " + prefix);
  if (matches > 1) {
    return InvalidArgumentError("prefix '" + prefix + "' matches " +
                                std::to_string(matches) +
                                " requests; type more of the id");
  }
  return found;
}

}  // namespace

std::string_view RequestStateName(RequestState state) {
  switch (state) {
    case RequestState::kPending:
      return "pending";
    case RequestState::kApproved:
      return "approved";
    case RequestState::kDenied:
      return "denied";
    case RequestState::kExpired:
      return "expired";
    case RequestState::kCancelled:
      return "cancelled";
    case RequestState::kUsed:
      return "used";
  }
  return "unknown";
}

StatusOr<std::string> RandomRequestId() {
  // 8 symbols x 5 bits = 40 bits = 5 bytes, read most significant bit first.
  std::array<uint8_t, 5> bytes{};
  RETURN_IF_ERROR(crypto::RandomBytes(bytes));
  uint64_t bits = 0;
  for (uint8_t b : bytes) bits = (bits << 8) | b;
  std::string id(kRequestIdLength, '0');
  for (size_t i = kRequestIdLength; i-- > 0;) {
    id[i] = kRequestIdAlphabet[bits & 31];
    bits >>= 5;
  }
  return id;
}

RequestBook::RequestBook(AuditSink* sink, RequestIdSource ids)
    : sink_(sink), ids_(std::move(ids)) {}

AuditEvent RequestBook::EventFor(const Request& r, AuditEventType type,
                                 std::string_view actor,
                                 std::string_view comment, int64_t now) const {
  AuditEvent e;
  e.type = type;
  e.request_id = r.id;
  e.actor = std::string(actor);
  e.comment = std::string(comment);
  e.time_unix_nanos = now;
  e.fields_digest = r.digest;
  e.policy = r.decision.policy;
  if (type == AuditEventType::kVote || type == AuditEventType::kApproved) {
    for (const Approval& a : r.approvals) e.approvers.push_back(a.approver);
    e.quorum = r.decision.outcome == Outcome::kApproval ? r.decision.quorum : 0;
  }
  if (type == AuditEventType::kApproved) {
    e.valid_until_unix_nanos = r.valid_until_unix_nanos;
  }
  return e;
}

void RequestBook::Track(const Request& r, std::optional<int64_t> old_due) {
  std::optional<int64_t> due = DueTime(r);
  if (due == old_due) return;
  if (old_due.has_value()) due_.erase({*old_due, r.id});
  if (due.has_value()) due_.insert({*due, r.id});
}

void RequestBook::Close(Request& r, RequestState state, AuditEventType type,
                        std::string_view actor, std::string_view comment,
                        int64_t now) {
  std::optional<int64_t> old_due = DueTime(r);
  if (r.state == RequestState::kPending) {
    r.decided_unix_nanos = now;
    --pending_;
  }
  r.state = state;
  Track(r, old_due);
  r.closed_by = std::string(actor);
  r.closed_comment = std::string(comment);
  sink_->Emit(EventFor(r, type, actor, comment, now));
}

StatusOr<Request> RequestBook::Create(const wire::RequestFields& fields,
                                      const Caller& caller,
                                      const Decision& decision, int64_t now) {
  if (fields.service.empty() || fields.user.empty() ||
      fields.target_user.empty() || fields.host.empty()) {
    return InvalidArgumentError(
        "a request must name the service, user, target user and host");
  }
  if (decision.outcome != Outcome::kDeny &&
      decision.reason == ReasonMode::kRequired && fields.reason.empty()) {
    return FailedPreconditionError("a reason is required (policy '" +
                                   decision.policy + "')");
  }

  std::string id;
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMaxIdAttempts) {
      return InternalError("could not draw an unused request id");
    }
    ASSIGN_OR_RETURN(id, ids_());
    if (!IsWellFormedId(id)) {
      return InternalError("request id source returned a malformed id");
    }
    if (!requests_.contains(id)) break;
  }

  Request r;
  r.id = id;
  r.fields = fields;
  r.digest = wire::RequestDigest(fields);
  r.caller = caller;
  r.decision = decision;
  r.state = RequestState::kPending;
  r.created_unix_nanos = now;
  Request& stored = requests_.emplace(id, std::move(r)).first->second;
  ++pending_;  // until the decision below, if any

  AuditEvent created =
      EventFor(stored, AuditEventType::kCreated, fields.user, "", now);
  created.fields = fields;
  created.caller = caller;
  sink_->Emit(created);

  switch (decision.outcome) {
    case Outcome::kDeny:
      Close(stored, RequestState::kDenied, AuditEventType::kDenied,
            kBrokerActor,
            decision.explanation.empty() ? "denied by policy"
                                         : decision.explanation,
            now);
      break;
    case Outcome::kAutoApprove:
      if (decision.ttl.count() <= 0) {
        Close(stored, RequestState::kDenied, AuditEventType::kDenied,
              kBrokerActor, "policy error: approval ttl is not positive", now);
        break;
      }
      stored.state = RequestState::kApproved;
      --pending_;
      stored.decided_unix_nanos = now;
      stored.valid_until_unix_nanos = now + decision.ttl.count();
      stored.closed_by = kBrokerActor;
      stored.closed_comment = "approved by policy '" + decision.policy + "'";
      sink_->Emit(EventFor(stored, AuditEventType::kApproved, kBrokerActor,
                           stored.closed_comment, now));
      break;
    case Outcome::kApproval: {
      // Fail closed on a hand-built decision that could never be met, and
      // answer at once when the requester's own membership makes the quorum
      // unreachable, instead of letting the requester wait for the timeout.
      if (decision.quorum < 1 || decision.timeout.count() <= 0 ||
          decision.ttl.count() <= 0) {
        Close(stored, RequestState::kDenied, AuditEventType::kDenied,
              kBrokerActor, "policy error: invalid quorum, timeout or ttl",
              now);
        break;
      }
      size_t eligible = 0;
      for (const std::string& a : decision.approvers) {
        if (a != fields.user && a != fields.target_user) ++eligible;
      }
      if (eligible < static_cast<size_t>(decision.quorum)) {
        Close(stored, RequestState::kDenied, AuditEventType::kDenied,
              kBrokerActor,
              "policy '" + decision.policy + "' needs " +
                  std::to_string(decision.quorum) +
                  " approvers other than the requester and target user; " +
                  std::to_string(eligible) + " available",
              now);
        break;
      }
      stored.deadline_unix_nanos = now + decision.timeout.count();
      break;
    }
  }
  Track(stored, std::nullopt);
  return stored;
}

StatusOr<Request*> RequestBook::Resolve(std::string_view id_or_prefix) {
  return ResolvePrefix<Request>(requests_, id_or_prefix);
}

StatusOr<Request*> RequestBook::ResolveExact(std::string_view id) {
  ASSIGN_OR_RETURN(std::string normal, NormalizeId(id));
  auto it = requests_.find(normal);
  if (it == requests_.end() || normal.size() != kRequestIdLength) {
    return NotFoundError("no request " + normal);
  }
  return &it->second;
}

StatusOr<Request> RequestBook::Find(std::string_view id_or_prefix) const {
  ASSIGN_OR_RETURN(const Request* r,
                   ResolvePrefix<const Request>(requests_, id_or_prefix));
  return *r;
}

std::vector<Request> RequestBook::List() const {
  std::vector<Request> out;
  out.reserve(requests_.size());
  for (const auto& [id, r] : requests_) out.push_back(r);
  return out;
}

bool RequestBook::ExpireIfDue(Request& r, int64_t now) {
  if (r.state == RequestState::kPending && now >= r.deadline_unix_nanos) {
    Close(r, RequestState::kExpired, AuditEventType::kExpired, kBrokerActor,
          "no decision within " + FormatDuration(r.decision.timeout), now);
    return true;
  }
  if (r.state == RequestState::kApproved && now >= r.valid_until_unix_nanos) {
    Close(r, RequestState::kExpired, AuditEventType::kExpired, kBrokerActor,
          "approval not used within " + FormatDuration(r.decision.ttl), now);
    return true;
  }
  return false;
}

std::vector<std::string> RequestBook::Expire(int64_t now) {
  std::vector<std::string> due;
  for (auto it = due_.begin(); it != due_.end() && it->first <= now; ++it) {
    due.push_back(it->second);
  }
  std::sort(due.begin(), due.end());
  std::vector<std::string> expired;
  for (const std::string& id : due) {
    auto it = requests_.find(id);
    if (it != requests_.end() && ExpireIfDue(it->second, now)) {
      expired.push_back(id);
    }
  }
  return expired;
}

std::optional<int64_t> RequestBook::NextDeadline() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

Status RequestBook::Restore(Request request) {
  if (!IsWellFormedId(request.id)) {
    return InvalidArgumentError("cannot restore request with malformed id '" +
                                request.id + "'");
  }
  auto [it, inserted] = requests_.emplace(request.id, std::move(request));
  if (!inserted) {
    return AlreadyExistsError("request " + it->first + " already exists");
  }
  if (it->second.state == RequestState::kPending) ++pending_;
  Track(it->second, std::nullopt);
  return OkStatus();
}

Status RequestBook::Forget(std::string_view id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return OkStatus();
  if (DueTime(it->second).has_value()) {
    return FailedPreconditionError("request " + it->first + " is still " +
                                   std::string(RequestStateName(it->second.state)));
  }
  requests_.erase(it);
  return OkStatus();
}

const Request* RequestBook::Get(std::string_view id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

StatusOr<Request*> RequestBook::ResolveForDecision(
    std::string_view id_or_prefix, const crypto::Sha256Digest& seen,
    int64_t now) {
  ASSIGN_OR_RETURN(Request * r, Resolve(id_or_prefix));
  ExpireIfDue(*r, now);
  if (r->state == RequestState::kExpired) return Expired(*r);
  if (r->state != RequestState::kPending) return NotPending(*r);
  if (seen != r->digest) return DigestMismatch(*r);
  return r;
}

StatusOr<Request> RequestBook::Approve(std::string_view id_or_prefix,
                                       std::string_view approver,
                                       const crypto::Sha256Digest& seen,
                                       std::string_view comment, int64_t now) {
  ASSIGN_OR_RETURN(Request * r, ResolveForDecision(id_or_prefix, seen, now));
  const Decision& d = r->decision;
  if (approver == r->fields.user || approver == r->fields.target_user) {
    return PermissionDeniedError(
        std::string(approver) + " cannot approve request " + r->id +
        ": it is their own (requester or target user)");
  }
  if (!std::binary_search(d.approvers.begin(), d.approvers.end(), approver)) {
    std::string groups;
    for (const std::string& g : d.approver_groups) {
      groups += (groups.empty() ? "" : ", ") + g;
    }
    return PermissionDeniedError(
        std::string(approver) + " is not an approver of request " + r->id +
        " (policy '" + d.policy + "' needs " + groups + ")");
  }
  for (const Approval& a : r->approvals) {
    if (a.approver == approver) {
      return AlreadyExistsError(std::string(approver) +
                                " has already approved request " + r->id);
    }
  }
  r->approvals.push_back({std::string(approver), std::string(comment), now});
  if (r->approvals.size() < static_cast<size_t>(d.quorum)) {
    sink_->Emit(EventFor(*r, AuditEventType::kVote, approver, comment, now));
    return *r;
  }
  std::optional<int64_t> old_due = DueTime(*r);
  r->state = RequestState::kApproved;
  --pending_;
  r->decided_unix_nanos = now;
  r->valid_until_unix_nanos = now + d.ttl.count();
  Track(*r, old_due);
  r->closed_by = std::string(approver);
  r->closed_comment = std::string(comment);
  sink_->Emit(EventFor(*r, AuditEventType::kApproved, approver, comment, now));
  return *r;
}

StatusOr<Request> RequestBook::Deny(std::string_view id_or_prefix,
                                    std::string_view approver,
                                    const crypto::Sha256Digest& seen,
                                    std::string_view comment, int64_t now) {
  ASSIGN_OR_RETURN(Request * r, ResolveForDecision(id_or_prefix, seen, now));
  const Decision& d = r->decision;
  if (!std::binary_search(d.approvers.begin(), d.approvers.end(), approver)) {
    return PermissionDeniedError(std::string(approver) +
                                 " is not an approver of request " + r->id);
  }
  Close(*r, RequestState::kDenied, AuditEventType::kDenied, approver, comment,
        now);
  return *r;
}

Status RequestBook::Cancel(std::string_view id, std::string_view actor,
                           std::string_view comment, int64_t now) {
  ASSIGN_OR_RETURN(Request * r, ResolveExact(id));
  ExpireIfDue(*r, now);
  if (r->state != RequestState::kPending &&
      r->state != RequestState::kApproved) {
    return NotPending(*r);
  }
  Close(*r, RequestState::kCancelled, AuditEventType::kCancelled, actor,
        comment, now);
  return OkStatus();
}

StatusOr<Request> RequestBook::MarkUsed(std::string_view id,
                                        const crypto::Sha256Digest& digest,
                                        int64_t now) {
  ASSIGN_OR_RETURN(Request * r, ResolveExact(id));
  ExpireIfDue(*r, now);
  if (r->state == RequestState::kExpired) return Expired(*r);
  if (r->state != RequestState::kApproved) {
    if (r->state == RequestState::kPending) {
      return FailedPreconditionError("request " + r->id +
                                     " is not approved yet");
    }
    return NotPending(*r);
  }
  if (digest != r->digest) return DigestMismatch(*r);
  std::optional<int64_t> old_due = DueTime(*r);
  r->state = RequestState::kUsed;
  r->used_unix_nanos = now;
  Track(*r, old_due);
  sink_->Emit(EventFor(*r, AuditEventType::kUsed, r->fields.user, "", now));
  return *r;
}

}  // namespace jitgate::broker
