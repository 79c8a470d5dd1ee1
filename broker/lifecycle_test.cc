#include "broker/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::broker {
namespace {

using ::jitgate::testing::SimulatedClock;
using ::jitgate::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMinute = 60 * kSecond;

class RecordingSink : public AuditSink {
 public:
  void Emit(const AuditEvent& event) override { events.push_back(event); }
  std::vector<AuditEventType> types() const {
    std::vector<AuditEventType> out;
    for (const AuditEvent& e : events) out.push_back(e.type);
    return out;
  }
  std::vector<AuditEvent> events;
};

// Hands out the given ids in order; then fails.
RequestIdSource FixedIds(std::vector<std::string> ids) {
  auto queue =
      std::make_shared<std::deque<std::string>>(ids.begin(), ids.end());
  return [queue]() -> StatusOr<std::string> {
    if (queue->empty()) return InternalError("out of test ids");
    std::string id = queue->front();
    queue->pop_front();
    return id;
  };
}

wire::RequestFields SshFields(std::string user = "alice") {
  wire::RequestFields r;
  r.service = "sshd";
  r.user = user;
  r.target_user = user;
  r.host = "db1";
  r.remote_addr = "192.0.2.7";
  r.tty = "ssh";
  r.reason = "INC-42 disk full";
  return r;
}

Caller SshdCaller() { return Caller{0, 0, 4242, "root"}; }

Decision Needs(int quorum, std::vector<std::string> approvers) {
  Decision d;
  d.policy = "prod";
  d.outcome = Outcome::kApproval;
  d.approver_groups = {"oncall"};
  d.approvers = std::move(approvers);
  d.quorum = quorum;
  d.reason = ReasonMode::kRequired;
  d.timeout = std::chrono::minutes(5);
  d.ttl = std::chrono::minutes(30);
  return d;
}

class LifecycleTest : public ::testing::Test {
 protected:
  LifecycleTest()
      : book_(&sink_, FixedIds({"7f3a0001", "7f3a0002", "7f3b0003", "k9m20004",
                                "k9m20005", "k9m20006"})) {}

  int64_t now() { return clock_.NowUnixNanos(); }

  Request MustCreate(const wire::RequestFields& f, const Decision& d) {
    StatusOr<Request> r = book_.Create(f, SshdCaller(), d, now());
    EXPECT_OK(r);
    return r.ok() ? *r : Request{};
  }

  SimulatedClock clock_;
  RecordingSink sink_;
  RequestBook book_;
};

TEST_F(LifecycleTest, PendingThenApprovedWithQuorumOne) {
  const auto f = SshFields();
  Request r = MustCreate(f, Needs(1, {"bob", "carol"}));
  EXPECT_EQ(r.id, "7f3a0001");
  EXPECT_EQ(r.state, RequestState::kPending);
  EXPECT_EQ(r.digest, wire::RequestDigest(f));
  EXPECT_EQ(r.deadline_unix_nanos, now() + 5 * kMinute);

  clock_.Advance(10 * kSecond);
  ASSERT_OK_AND_ASSIGN(Request a,
                       book_.Approve("7f3a0001", "bob", r.digest, "ok", now()));
  EXPECT_EQ(a.state, RequestState::kApproved);
  EXPECT_EQ(a.decided_unix_nanos, now());
  EXPECT_EQ(a.valid_until_unix_nanos, now() + 30 * kMinute);
  ASSERT_EQ(a.approvals.size(), 1u);
  EXPECT_EQ(a.approvals[0].approver, "bob");
  EXPECT_EQ(a.approvals[0].comment, "ok");

  // Decided: further decisions are refused.
  EXPECT_THAT(book_.Approve("7f3a0001", "carol", r.digest, "", now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("request 7f3a0001 is already approved")));
  EXPECT_THAT(book_.Deny("7f3a0001", "carol", r.digest, "", now()),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("approved")));
}

TEST_F(LifecycleTest, QuorumTwoNeedsTwoDistinctApprovers) {
  Request r = MustCreate(SshFields(), Needs(2, {"bob", "carol", "dave"}));

  ASSERT_OK_AND_ASSIGN(Request one,
                       book_.Approve(r.id, "bob", r.digest, "", now()));
  EXPECT_EQ(one.state, RequestState::kPending);  // one is not enough

  // The same approver twice does not count twice.
  EXPECT_THAT(book_.Approve(r.id, "bob", r.digest, "again", now()),
              StatusIs(StatusCode::kAlreadyExists,
                       Eq("bob has already approved request 7f3a0001")));
  ASSERT_OK_AND_ASSIGN(Request still, book_.Find(r.id));
  EXPECT_EQ(still.state, RequestState::kPending);
  EXPECT_EQ(still.approvals.size(), 1u);

  ASSERT_OK_AND_ASSIGN(Request two,
                       book_.Approve(r.id, "dave", r.digest, "lgtm", now()));
  EXPECT_EQ(two.state, RequestState::kApproved);
  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kVote,
                          AuditEventType::kApproved));
  EXPECT_THAT(sink_.events[1].approvers, ElementsAre("bob"));
  EXPECT_THAT(sink_.events[2].approvers, ElementsAre("bob", "dave"));
  EXPECT_EQ(sink_.events[2].quorum, 2);
  EXPECT_EQ(sink_.events[2].actor, "dave");
}

TEST_F(LifecycleTest, SelfApprovalIsRefused) {
  // alice is in the group, but cannot approve her own request.
  Request r = MustCreate(SshFields("alice"), Needs(1, {"alice", "bob"}));
  EXPECT_THAT(book_.Approve(r.id, "alice", r.digest, "", now()),
              StatusIs(StatusCode::kPermissionDenied,
                       Eq("alice cannot approve request 7f3a0001: it is their "
                          "own (requester or target user)")));

  // sudo -u bob: the target user cannot approve access into their account.
  wire::RequestFields sudo = SshFields("alice");
  sudo.service = "sudo";
  sudo.target_user = "bob";
  sudo.command = "/usr/bin/id";
  Request s = MustCreate(sudo, Needs(1, {"bob", "carol"}));
  EXPECT_THAT(book_.Approve(s.id, "bob", s.digest, "", now()),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("their own")));
  EXPECT_OK(book_.Approve(s.id, "carol", s.digest, "", now()));
}

TEST_F(LifecycleTest, OutsidersCannotApproveOrDeny) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob", "carol"}));
  EXPECT_THAT(book_.Approve(r.id, "mallory", r.digest, "", now()),
              StatusIs(StatusCode::kPermissionDenied,
                       Eq("mallory is not an approver of request 7f3a0001 "
                          "(policy 'prod' needs oncall)")));
  EXPECT_THAT(book_.Deny(r.id, "mallory", r.digest, "", now()),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("mallory")));
  EXPECT_THAT(sink_.types(), ElementsAre(AuditEventType::kCreated));
}

TEST_F(LifecycleTest, DigestMismatchIsRefused) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  wire::RequestFields other = SshFields();
  other.remote_addr = "198.51.100.1";  // the approver was shown another source
  EXPECT_THAT(book_.Approve(r.id, "bob", wire::RequestDigest(other), "", now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("request 7f3a0001: the fields presented differ from "
                          "the request's (digest mismatch)")));
  EXPECT_THAT(book_.Deny(r.id, "bob", wire::RequestDigest(other), "", now()),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("digest")));
  ASSERT_OK_AND_ASSIGN(Request same, book_.Find(r.id));
  EXPECT_EQ(same.state, RequestState::kPending);
  EXPECT_THAT(same.approvals, IsEmpty());
}

TEST_F(LifecycleTest, DenyIsAVeto) {
  Request r = MustCreate(SshFields(), Needs(2, {"bob", "carol"}));
  ASSERT_OK(book_.Approve(r.id, "bob", r.digest, "", now()));
  ASSERT_OK_AND_ASSIGN(Request d,
                       book_.Deny(r.id, "carol", r.digest, "not now", now()));
  EXPECT_EQ(d.state, RequestState::kDenied);
  EXPECT_EQ(d.closed_by, "carol");
  EXPECT_EQ(d.closed_comment, "not now");
  EXPECT_THAT(book_.MarkUsed(r.id, r.digest, now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("request 7f3a0001 is already denied")));
}

TEST_F(LifecycleTest, PendingRequestExpires) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  EXPECT_EQ(book_.NextDeadline(), r.deadline_unix_nanos);
  clock_.Advance(5 * kMinute - 1);
  EXPECT_THAT(book_.Expire(now()), IsEmpty());
  clock_.Advance(1);
  EXPECT_THAT(book_.Expire(now()), ElementsAre("7f3a0001"));
  EXPECT_THAT(book_.Expire(now()), IsEmpty());  // once
  EXPECT_EQ(book_.NextDeadline(), std::nullopt);
  ASSERT_OK_AND_ASSIGN(Request e, book_.Find(r.id));
  EXPECT_EQ(e.state, RequestState::kExpired);
  EXPECT_EQ(e.closed_comment, "no decision within 5m");
  EXPECT_THAT(book_.Approve(r.id, "bob", r.digest, "", now()),
              StatusIs(StatusCode::kDeadlineExceeded,
                       Eq("request 7f3a0001 expired (no decision within 5m)")));
  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kExpired));
  EXPECT_EQ(sink_.events[1].actor, kBrokerActor);
}

TEST_F(LifecycleTest, LateApprovalExpiresTheRequestLazily) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  clock_.Advance(6 * kMinute);  // no Expire() call in between
  EXPECT_THAT(book_.Approve(r.id, "bob", r.digest, "", now()),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("expired")));
  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kExpired));
}

TEST_F(LifecycleTest, CancelWhenTheClientGoesAway) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  ASSERT_OK(book_.Cancel(r.id, kBrokerActor, "client disconnected", now()));
  ASSERT_OK_AND_ASSIGN(Request c, book_.Find(r.id));
  EXPECT_EQ(c.state, RequestState::kCancelled);
  EXPECT_THAT(
      book_.Approve(r.id, "bob", r.digest, "", now()),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("cancelled")));
  EXPECT_THAT(
      book_.Cancel(r.id, kBrokerActor, "", now()),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("cancelled")));
  // Cancel wants the exact id.
  EXPECT_THAT(book_.Cancel("7f3a", kBrokerActor, "", now()),
              StatusIs(StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(sink_.types(), ElementsAre(AuditEventType::kCreated,
                                         AuditEventType::kCancelled));
  EXPECT_EQ(sink_.events[1].comment, "client disconnected");
}

TEST_F(LifecycleTest, UnusedApprovalCanBeCancelled) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  ASSERT_OK(book_.Approve(r.id, "bob", r.digest, "", now()));
  ASSERT_OK(book_.Cancel(r.id, kBrokerActor, "client disconnected", now()));
  EXPECT_THAT(
      book_.MarkUsed(r.id, r.digest, now()),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("cancelled")));
}

TEST_F(LifecycleTest, ApprovalIsOneTime) {
  const auto f = SshFields();
  Request r = MustCreate(f, Needs(1, {"bob"}));
  EXPECT_THAT(book_.MarkUsed(r.id, r.digest, now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("request 7f3a0001 is not approved yet")));
  ASSERT_OK(book_.Approve(r.id, "bob", r.digest, "", now()));

  // Another user's login presenting this approval: different fields.
  EXPECT_THAT(
      book_.MarkUsed(r.id, wire::RequestDigest(SshFields("eve")), now()),
      StatusIs(StatusCode::kFailedPrecondition, HasSubstr("digest")));

  clock_.Advance(kSecond);
  ASSERT_OK_AND_ASSIGN(Request used, book_.MarkUsed(r.id, r.digest, now()));
  EXPECT_EQ(used.state, RequestState::kUsed);
  EXPECT_EQ(used.used_unix_nanos, now());
  EXPECT_THAT(book_.MarkUsed(r.id, r.digest, now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("request 7f3a0001 is already used")));
  // Used approvals need no timer.
  EXPECT_EQ(book_.NextDeadline(), std::nullopt);
  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kApproved,
                          AuditEventType::kUsed));
  EXPECT_EQ(sink_.events[2].actor, "alice");
}

TEST_F(LifecycleTest, ApprovalExpiresAfterTtl) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  clock_.Advance(kMinute);
  ASSERT_OK_AND_ASSIGN(Request a,
                       book_.Approve(r.id, "bob", r.digest, "", now()));
  EXPECT_EQ(book_.NextDeadline(), a.valid_until_unix_nanos);
  clock_.Advance(30 * kMinute);  // exactly valid_until: no longer valid
  EXPECT_THAT(book_.MarkUsed(r.id, r.digest, now()),
              StatusIs(StatusCode::kDeadlineExceeded,
                       Eq("request 7f3a0001 expired (approval not used within "
                          "30m)")));
  ASSERT_OK_AND_ASSIGN(Request e, book_.Find(r.id));
  EXPECT_EQ(e.state, RequestState::kExpired);
  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kApproved,
                          AuditEventType::kExpired));
}

TEST_F(LifecycleTest, ApprovalTtlSweptByExpire) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob"}));
  ASSERT_OK(book_.Approve(r.id, "bob", r.digest, "", now()));
  clock_.Advance(30 * kMinute - 1);
  EXPECT_OK(book_.MarkUsed(r.id, r.digest, now()));  // just in time

  Request r2 = MustCreate(SshFields(), Needs(1, {"bob"}));
  ASSERT_OK(book_.Approve(r2.id, "bob", r2.digest, "", now()));
  clock_.Advance(30 * kMinute);
  EXPECT_THAT(book_.Expire(now()), ElementsAre(r2.id));
}

TEST_F(LifecycleTest, PolicyDecidesAtOnce) {
  Decision deny;
  deny.outcome = Outcome::kDeny;
  deny.explanation = "no policy matches";
  ASSERT_OK_AND_ASSIGN(Request d,
                       book_.Create(SshFields(), SshdCaller(), deny, now()));
  EXPECT_EQ(d.state, RequestState::kDenied);
  EXPECT_EQ(d.closed_comment, "no policy matches");

  Decision autod;
  autod.policy = "dev";
  autod.outcome = Outcome::kAutoApprove;
  autod.ttl = std::chrono::minutes(2);
  ASSERT_OK_AND_ASSIGN(Request a,
                       book_.Create(SshFields(), SshdCaller(), autod, now()));
  EXPECT_EQ(a.state, RequestState::kApproved);
  EXPECT_EQ(a.valid_until_unix_nanos, now() + 2 * kMinute);
  EXPECT_OK(book_.MarkUsed(a.id, a.digest, now()));

  EXPECT_THAT(sink_.types(),
              ElementsAre(AuditEventType::kCreated, AuditEventType::kDenied,
                          AuditEventType::kCreated, AuditEventType::kApproved,
                          AuditEventType::kUsed));
  EXPECT_EQ(sink_.events[1].actor, kBrokerActor);
  EXPECT_EQ(sink_.events[1].comment, "no policy matches");
  EXPECT_EQ(sink_.events[3].actor, kBrokerActor);
  EXPECT_EQ(sink_.events[3].comment, "approved by policy 'dev'");
  EXPECT_EQ(sink_.events[3].quorum, 0);
}

TEST_F(LifecycleTest, UnreachableQuorumIsDeniedAtOnce) {
  // Quorum 2 of {alice, bob}, requested by alice: only bob can approve.
  ASSERT_OK_AND_ASSIGN(Request r,
                       book_.Create(SshFields("alice"), SshdCaller(),
                                    Needs(2, {"alice", "bob"}), now()));
  EXPECT_EQ(r.state, RequestState::kDenied);
  EXPECT_EQ(r.closed_comment,
            "policy 'prod' needs 2 approvers other than the requester and "
            "target user; 1 available");
}

TEST_F(LifecycleTest, ReasonRequired) {
  wire::RequestFields f = SshFields();
  f.reason = "";
  EXPECT_THAT(book_.Create(f, SshdCaller(), Needs(1, {"bob"}), now()),
              StatusIs(StatusCode::kFailedPrecondition,
                       Eq("a reason is required (policy 'prod')")));
  EXPECT_EQ(book_.size(), 0u);
  EXPECT_THAT(sink_.events, IsEmpty());
  Decision optional = Needs(1, {"bob"});
  optional.reason = ReasonMode::kOptional;
  EXPECT_OK(book_.Create(f, SshdCaller(), optional, now()));
}

TEST_F(LifecycleTest, IncompleteFieldsAreRejected) {
  wire::RequestFields f = SshFields();
  f.host = "";
  EXPECT_THAT(book_.Create(f, SshdCaller(), Needs(1, {"bob"}), now()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("host")));
}

TEST_F(LifecycleTest, PrefixLookup) {
  Request a = MustCreate(SshFields(), Needs(1, {"bob"}));  // 7f3a0001
  Request b = MustCreate(SshFields(), Needs(1, {"bob"}));  // 7f3a0002
  Request c = MustCreate(SshFields(), Needs(1, {"bob"}));  // 7f3b0003

  EXPECT_THAT(book_.Find("7f3"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("prefix '7f3' matches 3 requests; type more of the "
                          "id")));
  EXPECT_THAT(
      book_.Approve("7f3a", "bob", a.digest, "", now()),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("matches 2 requests")));
  ASSERT_OK_AND_ASSIGN(Request found, book_.Find("7f3b"));
  EXPECT_EQ(found.id, c.id);
  // Case and look-alike letters are folded: "7F3A000l" reads as 7f3a0001.
  ASSERT_OK_AND_ASSIGN(Request folded, book_.Find("7F3A000l"));
  EXPECT_EQ(folded.id, a.id);
  ASSERT_OK_AND_ASSIGN(Request approved,
                       book_.Approve("7f3a0002", "bob", b.digest, "", now()));
  EXPECT_EQ(approved.id, b.id);

  EXPECT_THAT(book_.Find("zz"),
              StatusIs(StatusCode::kNotFound, Eq("no request zz")));
  EXPECT_THAT(book_.Find(""),
              StatusIs(StatusCode::kInvalidArgument, Eq("empty request id")));
  EXPECT_THAT(book_.Find("7f3u"), StatusIs(StatusCode::kInvalidArgument,
                                           HasSubstr("not a request id")));
  EXPECT_THAT(book_.Find("7f3a00011"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("longer")));
  EXPECT_THAT(book_.Find("7f3a-1"), StatusIs(StatusCode::kInvalidArgument,
                                             HasSubstr("not a request id")));
  // MarkUsed wants the full id, never a prefix.
  EXPECT_THAT(book_.MarkUsed("7f3a000", b.digest, now()),
              StatusIs(StatusCode::kNotFound, ::testing::_));
  EXPECT_EQ(book_.List().size(), 3u);
}

TEST_F(LifecycleTest, AuditEventsCarryTheRightFields) {
  const wire::RequestFields f = SshFields();
  const auto digest = wire::RequestDigest(f);
  const int64_t t0 = now();
  Request r = MustCreate(f, Needs(2, {"bob", "carol"}));
  clock_.Advance(kSecond);
  ASSERT_OK(book_.Approve(r.id, "bob", digest, "first", now()));
  clock_.Advance(kSecond);
  ASSERT_OK(book_.Approve(r.id, "carol", digest, "second", now()));
  clock_.Advance(kSecond);
  ASSERT_OK(book_.MarkUsed(r.id, digest, now()));

  ASSERT_EQ(sink_.events.size(), 4u);
  for (size_t i = 0; i < sink_.events.size(); ++i) {
    const AuditEvent& e = sink_.events[i];
    EXPECT_EQ(e.request_id, "7f3a0001");
    EXPECT_EQ(e.fields_digest, digest);
    EXPECT_EQ(e.policy, "prod");
    EXPECT_EQ(e.time_unix_nanos, t0 + static_cast<int64_t>(i) * kSecond);
  }
  const AuditEvent& created = sink_.events[0];
  EXPECT_EQ(created.type, AuditEventType::kCreated);
  EXPECT_EQ(created.actor, "alice");
  ASSERT_TRUE(created.fields.has_value());
  EXPECT_EQ(*created.fields, f);
  ASSERT_TRUE(created.caller.has_value());
  EXPECT_EQ(created.caller->pid, 4242);

  EXPECT_EQ(sink_.events[1].type, AuditEventType::kVote);
  EXPECT_EQ(sink_.events[1].actor, "bob");
  EXPECT_EQ(sink_.events[1].comment, "first");
  EXPECT_FALSE(sink_.events[1].fields.has_value());

  EXPECT_EQ(sink_.events[2].type, AuditEventType::kApproved);
  EXPECT_EQ(sink_.events[2].actor, "carol");
  EXPECT_EQ(sink_.events[2].comment, "second");
  EXPECT_EQ(sink_.events[2].valid_until_unix_nanos,
            t0 + 2 * kSecond + 30 * kMinute);

  EXPECT_EQ(sink_.events[3].type, AuditEventType::kUsed);
}

TEST_F(LifecycleTest, RestoreBringsBackARequestWithoutEvents) {
  Request r = MustCreate(SshFields(), Needs(1, {"bob", "carol"}));
  sink_.events.clear();

  RecordingSink other_sink;
  RequestBook restarted(&other_sink, FixedIds({"k9m20009"}));
  ASSERT_OK(restarted.Restore(r));
  EXPECT_THAT(other_sink.events, IsEmpty());
  EXPECT_EQ(restarted.NextDeadline(), r.deadline_unix_nanos);
  EXPECT_EQ(restarted.active(), 1u);
  EXPECT_THAT(restarted.Restore(r), StatusIs(StatusCode::kAlreadyExists, ::testing::_));
  Request bad = r;
  bad.id = "NOT-AN-ID";
  EXPECT_THAT(restarted.Restore(bad), StatusIs(StatusCode::kInvalidArgument, ::testing::_));

  // The restored request carries on: approve, use.
  ASSERT_OK_AND_ASSIGN(Request a, restarted.Approve(r.id, "bob", r.digest, "",
                                                    now()));
  EXPECT_EQ(a.state, RequestState::kApproved);
  ASSERT_OK(restarted.MarkUsed(r.id, r.digest, now()).status());
  EXPECT_THAT(other_sink.types(),
              ElementsAre(AuditEventType::kApproved, AuditEventType::kUsed));
  EXPECT_EQ(restarted.NextDeadline(), std::nullopt);
}

TEST_F(LifecycleTest, ForgetDropsOnlyFinishedRequests) {
  Request pending = MustCreate(SshFields(), Needs(1, {"bob"}));
  Request denied = MustCreate(SshFields(), Needs(1, {"bob"}));
  ASSERT_OK(book_.Deny(denied.id, "bob", denied.digest, "no", now()).status());
  EXPECT_THAT(book_.Forget(pending.id),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("pending")));
  ASSERT_OK(book_.Forget(denied.id));
  EXPECT_EQ(book_.Get(denied.id), nullptr);
  ASSERT_NE(book_.Get(pending.id), nullptr);
  EXPECT_EQ(book_.size(), 1u);
  EXPECT_OK(book_.Forget("zzzzzzzz"));  // unknown: nothing to do
}

TEST_F(LifecycleTest, NextDeadlineFollowsTheEarliestActiveRequest) {
  Decision slow = Needs(1, {"bob"});
  Decision fast = Needs(1, {"bob"});
  fast.timeout = std::chrono::minutes(1);
  Request a = MustCreate(SshFields(), slow);
  Request b = MustCreate(SshFields(), fast);
  EXPECT_EQ(book_.NextDeadline(), b.deadline_unix_nanos);
  ASSERT_OK(book_.Cancel(b.id, "alice", "", now()));
  EXPECT_EQ(book_.NextDeadline(), a.deadline_unix_nanos);
  clock_.Advance(5 * kMinute);
  EXPECT_THAT(book_.Expire(now()), ElementsAre(a.id));
  EXPECT_EQ(book_.NextDeadline(), std::nullopt);
  EXPECT_EQ(book_.active(), 0u);
}

TEST_F(LifecycleTest, PendingCountsOnlyRequestsWaitingForADecision) {
  EXPECT_EQ(book_.pending(), 0u);
  Decision deny;
  deny.outcome = Outcome::kDeny;
  ASSERT_OK(book_.Create(SshFields(), SshdCaller(), deny, now()).status());
  Decision autod;
  autod.outcome = Outcome::kAutoApprove;
  autod.ttl = std::chrono::minutes(2);
  ASSERT_OK(book_.Create(SshFields(), SshdCaller(), autod, now()).status());
  EXPECT_EQ(book_.pending(), 0u);
  Request a = MustCreate(SshFields(), Needs(2, {"bob", "carol"}));
  Request b = MustCreate(SshFields(), Needs(1, {"bob"}));
  Request c = MustCreate(SshFields(), Needs(1, {"bob"}));
  Request d = MustCreate(SshFields(), Needs(1, {"bob"}));
  EXPECT_EQ(book_.pending(), 4u);
  ASSERT_OK(book_.Approve(a.id, "bob", a.digest, "", now()).status());  // a vote
  EXPECT_EQ(book_.pending(), 4u);
  ASSERT_OK(book_.Approve(a.id, "carol", a.digest, "", now()).status());
  ASSERT_OK(book_.Deny(b.id, "bob", b.digest, "", now()).status());
  ASSERT_OK(book_.Cancel(c.id, "alice", "", now()));
  EXPECT_EQ(book_.pending(), 1u);
  RequestBook restarted(&sink_, FixedIds({"k9m20009"}));
  ASSERT_OK(restarted.Restore(d));
  ASSERT_OK(restarted.Restore(*book_.Get(a.id)));  // approved
  EXPECT_EQ(restarted.pending(), 1u);
  clock_.Advance(5 * kMinute);
  EXPECT_THAT(book_.Expire(now()), ::testing::Contains(d.id));  // and the auto-approval's
  EXPECT_EQ(book_.pending(), 0u);
}

TEST(RequestIdTest, RandomIdsAreWellFormedAndSpread) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string id, RandomRequestId());
    ASSERT_EQ(id.size(), kRequestIdLength);
    for (char c : id) {
      EXPECT_NE(kRequestIdAlphabet.find(c), std::string_view::npos) << id;
    }
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);  // 40 bits: a collision here is ~5e-7
}

TEST(RequestIdTest, CollisionsAreRetriedAndBadSourcesFailClosed) {
  RecordingSink sink;
  RequestBook book(&sink, FixedIds({"aaaa0001", "aaaa0001", "aaaa0002"}));
  Decision d = Needs(1, {"bob"});
  SimulatedClock clock;
  ASSERT_OK_AND_ASSIGN(Request a, book.Create(SshFields(), SshdCaller(), d,
                                              clock.NowUnixNanos()));
  ASSERT_OK_AND_ASSIGN(Request b, book.Create(SshFields(), SshdCaller(), d,
                                              clock.NowUnixNanos()));
  EXPECT_EQ(a.id, "aaaa0001");
  EXPECT_EQ(b.id, "aaaa0002");

  RequestBook bad(&sink, FixedIds({"AAAA0001"}));
  EXPECT_THAT(bad.Create(SshFields(), SshdCaller(), d, clock.NowUnixNanos()),
              StatusIs(StatusCode::kInternal, HasSubstr("malformed")));
  RequestBook same(&sink, [] { return StatusOr<std::string>("aaaa0001"); });
  ASSERT_OK(same.Create(SshFields(), SshdCaller(), d, clock.NowUnixNanos()));
  EXPECT_THAT(same.Create(SshFields(), SshdCaller(), d, clock.NowUnixNanos()),
              StatusIs(StatusCode::kInternal, HasSubstr("unused request id")));
}

}  // namespace
}  // namespace jitgate::broker
