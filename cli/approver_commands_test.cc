// The approver commands against a scripted broker (tests/testing/fake_broker.h):
// what goes over the wire and what the approver sees. End-to-end runs against
// the real jitgated are in tests/integration/.
#include "cli/approver_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "cli/approver_format.h"
#include "core/base/status_macros.h"
#include "tests/testing/fake_broker.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::testing::HasSubstr;
using ::testing::Not;

wire::RequestInfo Pending() {
  wire::RequestInfo r;
  r.id = "7f3a9c02";
  r.fields = {"sudo",
              "alice",
              "root",
              "db1",
              "",
              "/dev/pts/3",
              "/usr/bin/systemctl restart nginx",
              "/home/alice",
              "deploy hotfix",
              "",
              0};
  r.digest = wire::RequestDigest(r.fields);
  r.filed_by = "uid 0 (root) pid 4242 sudo";
  r.approvers = "1 of oncall";
  r.approvals_needed = 1;
  uint64_t now = uint64_t(RealClock()->NowUnixNanos() / 1'000'000'000);
  r.created_at = now - 10;
  r.expires_at = now + 290;
  return r;
}

template <typename T>
StatusOr<T> Expect(StatusOr<wire::Message> m) {
  if (!m.ok()) return m.status();
  if (T* v = std::get_if<T>(&*m)) return std::move(*v);
  return FailedPreconditionError("unexpected " + wire::MessageTypeName(wire::TypeOf(*m)));
}

class ApproverCommandsTest : public ::testing::Test {
 protected:
  ApproverIo Io() { return ApproverIo{&out_, &err_, RealClock(), nullptr, confirm_}; }
  std::vector<std::string> Args(std::vector<std::string> args, const FakeBroker& broker) {
    args.push_back("--socket");
    args.push_back(broker.socket_path());
    return args;
  }

  std::ostringstream out_, err_;
  std::function<bool(const std::string&)> confirm_;
};

// GetRequest -> RequestInfo, then the vote -> reply (a RequestInfo or an Error).
FakeBroker::Script VoteScript(wire::RequestInfo shown, wire::Message reply) {
  return [shown, reply](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::GetRequest get, Expect<wire::GetRequest>(c.Read()));
    RETURN_IF_ERROR(c.Send(shown));
    StatusOr<wire::Message> vote = c.Read();
    if (!vote.ok()) return OkStatus();  // the CLI stopped before voting
    return c.Send(reply);
  };
}

TEST_F(ApproverCommandsTest, ApproveSendsTheDigestItShowed) {
  wire::RequestInfo after = Pending();
  after.state = wire::RequestState::kApproved;
  after.votes = {{wire::Verdict::kApprove, "bob", after.created_at + 5, "ok"}};
  FakeBroker broker(VoteScript(Pending(), after));
  EXPECT_EQ(RunApprove(Args({"7F3A", "--comment", "ok", "--yes"}, broker), Io()), 0) << err_.str();
  EXPECT_EQ(err_.str(), "");
  EXPECT_THAT(out_.str(), HasSubstr("command   /usr/bin/systemctl restart nginx\n"));
  EXPECT_THAT(out_.str(), HasSubstr("user      alice \u2192 root@db1\n"));
  EXPECT_THAT(out_.str(),
              HasSubstr("approved request 7f3a9c02 (1 of 1 approvals; now approved)\n"));
  std::vector<wire::Message> got = broker.Received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(std::get<wire::GetRequest>(got[1]).id, "7f3a");
  const auto& approve = std::get<wire::Approve>(got[2]);
  EXPECT_EQ(approve.id, "7f3a9c02");
  EXPECT_EQ(approve.digest, wire::RequestDigest(Pending().fields));
  EXPECT_EQ(approve.comment, "ok");
  EXPECT_TRUE(broker.ScriptErrors().empty());
}

TEST_F(ApproverCommandsTest, SelfApprovalIsOneClearLine) {
  FakeBroker broker(
      VoteScript(Pending(), wire::Error{wire::ErrorCode::kSelfApproval, "self approval"}));
  EXPECT_EQ(RunApprove(Args({"7f3a9c02", "--yes"}, broker), Io()), 1);
  EXPECT_EQ(err_.str(), "jitgate: you cannot approve your own request 7f3a9c02\n");
}

TEST_F(ApproverCommandsTest, ApproveAsksForConfirmationAndSendsNothingOnNo) {
  std::string asked;
  confirm_ = [&asked](const std::string& q) {
    asked = q;
    return false;
  };
  FakeBroker broker(VoteScript(Pending(), Pending()));
  EXPECT_EQ(RunApprove(Args({"7f3a"}, broker), Io()), 1);
  EXPECT_EQ(asked, "Approve request 7f3a9c02 (alice \u2192 root@db1)? [y/N] ");
  EXPECT_THAT(err_.str(), HasSubstr("not approved"));
  EXPECT_FALSE(broker.Got<wire::Approve>());
}

TEST_F(ApproverCommandsTest, ApproveWithConfirmation) {
  confirm_ = [](const std::string&) { return true; };
  wire::RequestInfo after = Pending();
  after.state = wire::RequestState::kApproved;
  FakeBroker broker(VoteScript(Pending(), after));
  EXPECT_EQ(RunApprove(Args({"7f3a"}, broker), Io()), 0) << err_.str();
  EXPECT_TRUE(broker.Got<wire::Approve>());
}

TEST_F(ApproverCommandsTest, DecidedRequestIsNotVotedOn) {
  wire::RequestInfo decided = Pending();
  decided.state = wire::RequestState::kDenied;
  FakeBroker broker(VoteScript(decided, decided));
  EXPECT_EQ(RunApprove(Args({"7f3a", "--yes"}, broker), Io()), 1);
  EXPECT_EQ(err_.str(), "jitgate: request 7f3a9c02 is denied, not pending; nothing to approve\n");
  EXPECT_FALSE(broker.Got<wire::Approve>());
}

TEST_F(ApproverCommandsTest, DenySendsTheDigestAndComment) {
  wire::RequestInfo after = Pending();
  after.state = wire::RequestState::kDenied;
  FakeBroker broker(VoteScript(Pending(), after));
  EXPECT_EQ(RunDeny(Args({"7f3a", "--comment", "not during the freeze"}, broker), Io()), 0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("denied request 7f3a9c02 (now denied)\n"));
  std::vector<wire::Message> got = broker.Received();
  ASSERT_EQ(got.size(), 3u);
  const auto& deny = std::get<wire::Deny>(got[2]);
  EXPECT_EQ(deny.digest, wire::RequestDigest(Pending().fields));
  EXPECT_EQ(deny.comment, "not during the freeze");
}

TEST_F(ApproverCommandsTest, DigestMismatchSaysNothingWasApproved) {
  FakeBroker broker(
      VoteScript(Pending(), wire::Error{wire::ErrorCode::kDigestMismatch, "digest mismatch"}));
  EXPECT_EQ(RunApprove(Args({"7f3a", "--yes"}, broker), Io()), 1);
  EXPECT_THAT(err_.str(), HasSubstr("nothing was approved"));
}

TEST_F(ApproverCommandsTest, UnknownIdIsNotFound) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<wire::GetRequest>(c.Read()).status());
    return c.Send(wire::Error{wire::ErrorCode::kNotFound, "no request matches \"zzzz\""});
  });
  EXPECT_EQ(RunShow(Args({"zzzz"}, broker), Io()), 1);
  EXPECT_EQ(err_.str(), "jitgate: no request matches zzzz (or you may not see it)\n");
}

TEST_F(ApproverCommandsTest, ShowJson) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<wire::GetRequest>(c.Read()).status());
    return c.Send(Pending());
  });
  EXPECT_EQ(RunShow(Args({"7f3a", "--json"}, broker), Io()), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["id"], "7f3a9c02");
  EXPECT_EQ(j["digest"], HexEncode(wire::RequestDigest(Pending().fields)));
}

TEST_F(ApproverCommandsTest, BadIdIsAUsageError) {
  FakeBroker broker([](FakeBrokerConnection&) { return OkStatus(); });
  EXPECT_EQ(RunApprove(Args({"7f3", "--yes"}, broker), Io()), 2);
  EXPECT_THAT(err_.str(), HasSubstr("'7f3' is not a request id"));
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(ApproverCommandsTest, UnreachableBroker) {
  ApproverIo io = Io();
  io.socket_env = "/nonexistent/jitgated.sock";
  EXPECT_EQ(RunShow({"7f3a"}, io), 1);
  EXPECT_EQ(err_.str(),
            "jitgate: jitgate broker unreachable at /nonexistent/jitgated.sock: No such file or "
            "directory\n");
}

TEST_F(ApproverCommandsTest, RequestsListsOneLineEach) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::ListRequests ask, Expect<wire::ListRequests>(c.Read()));
    wire::RequestList list;
    list.items = {Pending(), Pending()};
    list.items[1].id = "7f3a9c03";
    list.items[1].fields.command = "ls\x1b[2J";
    list.more = ask.limit == 2;
    return c.Send(list);
  });
  EXPECT_EQ(RunRequests(Args({"--limit", "2"}, broker), Io()), 0) << err_.str();
  std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("7f3a9c02  pending   sudo  alice \u2192 root@db1  "
                             "/usr/bin/systemctl restart nginx  (0/1, expires in "));
  EXPECT_THAT(out, HasSubstr("7f3a9c03  pending   sudo  alice \u2192 root@db1  ls\\x1b[2J"));
  EXPECT_THAT(out, HasSubstr("(more requests not shown; see --limit)\n"));
  const wire::ListRequests ask = std::get<wire::ListRequests>(broker.Received()[1]);
  EXPECT_EQ(ask.filter, wire::ListFilter::kPending);
  EXPECT_EQ(ask.limit, 2);
}

TEST_F(ApproverCommandsTest, RequestsAllJson) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<wire::ListRequests>(c.Read()).status());
    wire::RequestList list;
    list.items = {Pending()};
    return c.Send(list);
  });
  EXPECT_EQ(RunRequests(Args({"--all", "--json"}, broker), Io()), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["more"], false);
  ASSERT_EQ(j["requests"].size(), 1u);
  EXPECT_EQ(j["requests"][0]["command"], "/usr/bin/systemctl restart nginx");
  EXPECT_EQ(std::get<wire::ListRequests>(broker.Received()[1]).filter, wire::ListFilter::kAll);
}

TEST_F(ApproverCommandsTest, EmptyList) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<wire::ListRequests>(c.Read()).status());
    return c.Send(wire::RequestList{});
  });
  EXPECT_EQ(RunRequests(Args({}, broker), Io()), 0) << err_.str();
  EXPECT_EQ(out_.str(), "no pending requests\n");
}

TEST_F(ApproverCommandsTest, FollowPrintsSnapshotThenPushesAsJsonLines) {
  FakeBroker broker([](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    ASSIGN_OR_RETURN(wire::Follow f, Expect<wire::Follow>(c.Read()));
    if (f.filter != wire::ListFilter::kAll) return InvalidArgumentError("want filter all");
    wire::RequestList snapshot;
    snapshot.items = {Pending()};
    RETURN_IF_ERROR(c.Send(snapshot));
    wire::RequestInfo next = Pending();
    next.id = "7f3a9c03";
    RETURN_IF_ERROR(c.Send(next));
    next.state = wire::RequestState::kApproved;
    return c.Send(next);  // then the broker goes away
  });
  EXPECT_EQ(RunRequests(Args({"--follow", "--all", "--json"}, broker), Io()), 1);
  std::istringstream lines(out_.str());
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(lines, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0]["id"], "7f3a9c02");
  EXPECT_EQ(objects[1]["id"], "7f3a9c03");
  EXPECT_EQ(objects[2]["state"], "approved");
  EXPECT_THAT(err_.str(), HasSubstr("closed the connection"));
}

TEST_F(ApproverCommandsTest, UsageErrors) {
  FakeBroker broker([](FakeBrokerConnection&) { return OkStatus(); });
  EXPECT_EQ(RunRequests(Args({"--pending", "--all"}, broker), Io()), 2);
  EXPECT_EQ(RunRequests(Args({"--follow", "--limit", "3"}, broker), Io()), 2);
  EXPECT_EQ(RunRequests(Args({"--limit", "70000"}, broker), Io()), 2);
  EXPECT_EQ(RunShow(Args({}, broker), Io()), 2);
  EXPECT_EQ(RunDeny(Args({"7f3a", "--comment", std::string(600, 'x')}, broker), Io()), 2);
  EXPECT_EQ(broker.connections(), 0);
  EXPECT_THAT(err_.str(), Not(HasSubstr("unreachable")));
}

// jitgate terminate ----------------------------------------------------------

// Expects one TerminateSession and answers with reply.
FakeBroker::Script TerminateScript(wire::Message reply) {
  return [reply](FakeBrokerConnection& c) -> Status {
    RETURN_IF_ERROR(c.Handshake().status());
    RETURN_IF_ERROR(Expect<wire::TerminateSession>(c.Read()).status());
    return c.Send(reply);
  };
}

TEST_F(ApproverCommandsTest, TerminateSendsThePrefixAndComment) {
  FakeBroker broker(TerminateScript(wire::SessionTerminateAck{"k3n8v2x9q4m1", false}));
  EXPECT_EQ(RunTerminate(Args({"K3N8", "--comment", "done"}, broker), Io()), 0) << err_.str();
  EXPECT_EQ(out_.str(), "session k3n8v2x9q4m1 terminated\n");
  EXPECT_EQ(err_.str(), "");
  std::vector<wire::Message> got = broker.Received();
  ASSERT_EQ(got.size(), 2u);
  const auto& t = std::get<wire::TerminateSession>(got[1]);
  EXPECT_EQ(t.session, "k3n8");
  EXPECT_EQ(t.comment, "done");
}

TEST_F(ApproverCommandsTest, TerminateOfAnEndedSessionSaysSo) {
  FakeBroker broker(TerminateScript(wire::SessionTerminateAck{"k3n8v2x9q4m1", true}));
  EXPECT_EQ(RunTerminate(Args({"k3n8v2x9q4m1"}, broker), Io()), 0) << err_.str();
  EXPECT_EQ(out_.str(), "session k3n8v2x9q4m1 had already ended\n");
}

TEST_F(ApproverCommandsTest, TerminateRefusalsAreOneLine) {
  struct Case {
    wire::ErrorCode code;
    std::string line;
  };
  for (const Case& k : std::vector<Case>{
           {wire::ErrorCode::kNotFound, "jitgate: no live session k3n8\n"},
           {wire::ErrorCode::kAmbiguous,
            "jitgate: k3n8 matches several sessions; type more of its id\n"},
           {wire::ErrorCode::kPermissionDenied,
            "jitgate: you may not terminate session k3n8: only root and the approvers of the "
            "request it runs under may\n"},
           {wire::ErrorCode::kInternal,
            "jitgate: broker error (internal): broker state database failed\n"},
       }) {
    SCOPED_TRACE(std::string(wire::ErrorCodeName(k.code)));
    out_.str("");
    err_.str("");
    FakeBroker broker(TerminateScript(wire::Error{k.code, "broker state database failed"}));
    EXPECT_EQ(RunTerminate(Args({"k3n8"}, broker), Io()), 1);
    EXPECT_EQ(err_.str(), k.line);
    EXPECT_EQ(out_.str(), "");
  }
}

TEST_F(ApproverCommandsTest, TerminateUsageErrorsReachNoBroker) {
  FakeBroker broker([](FakeBrokerConnection&) { return OkStatus(); });
  EXPECT_EQ(RunTerminate(Args({"k3n"}, broker), Io()), 2);
  EXPECT_EQ(err_.str(),
            "jitgate: 'k3n' is not a session id (4 to 32 characters of 0-9 and a-z)\n");
  err_.str("");
  EXPECT_EQ(RunTerminate(Args({}, broker), Io()), 2);
  EXPECT_EQ(err_.str(), "jitgate: missing SESSION\n");
  err_.str("");
  EXPECT_EQ(RunTerminate(Args({"k3n8", "--comment", std::string(513, 'c')}, broker), Io()), 2);
  EXPECT_THAT(err_.str(), HasSubstr("the limit is 512"));
  EXPECT_EQ(broker.connections(), 0);
  out_.str("");
  EXPECT_EQ(RunTerminate({"--help"}, Io()), 0);
  EXPECT_THAT(out_.str(), HasSubstr("usage: jitgate terminate SESSION [--comment TEXT]"));
}

TEST_F(ApproverCommandsTest, TerminateWithoutABroker) {
  ApproverIo io = Io();
  io.socket_env = "/nonexistent/jitgated.sock";
  EXPECT_EQ(RunTerminate({"k3n8"}, io), 1);
  EXPECT_EQ(err_.str(),
            "jitgate: broker unreachable at /nonexistent/jitgated.sock: No such file or "
            "directory\n");
}

}  // namespace
}  // namespace jitgate::cli
