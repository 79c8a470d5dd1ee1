#include "core/wire/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "core/base/status_macros.h"
#include "core/wire/wire_testonly.h"
#include "tests/testing/simulated_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::wire {
namespace {

using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;

Deadline Soon() { return Deadline::InMillis(RealClock(), 5000); }

// Blocking helpers for the fake broker.
StatusOr<Message> ServerRead(int fd) {
  FrameReader r;
  while (!r.HasFrame()) {
    ASSIGN_OR_RETURN(auto res, r.ReadFrom(fd));
    if (res == FrameReader::ReadResult::kEof) return UnavailableError("eof");
  }
  Frame f = r.TakeFrame();
  return DecodeMessage(f.type, f.body);
}
void ServerWrite(int fd, const Message& m) {
  StatusOr<Bytes> f = EncodeMessage(m);
  ASSERT_OK(f);
  ASSERT_OK(WriteFull(fd, *f, Soon()));
}
void ServerHandshake(int fd) {
  StatusOr<Message> hello = ServerRead(fd);
  ASSERT_OK(hello);
  ASSERT_TRUE(std::holds_alternative<Hello>(*hello));
  EXPECT_EQ(std::get<Hello>(*hello).client, "test-client");
  ServerWrite(fd, HelloAck{1, "fake-broker"});
}

// A fake broker on a real Unix socket in a temporary directory. The script
// runs on its own thread with the accepted connection.
class FakeBroker {
 public:
  explicit FakeBroker(std::function<void(int)> script, bool accept = true)
      : path_(dir_.Join("jitgated.sock")) {
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    if (!accept) return;
    thread_ = std::thread([this, script = std::move(script)] {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn) script(conn.get());
    });
  }
  ~FakeBroker() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  jitgate::testing::TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  std::thread thread_;
};

TEST(ClientTest, MissingSocketIsBrokerUnreachable) {
  jitgate::testing::TempDir dir;
  std::string path = dir.Join("nope.sock");
  EXPECT_THAT(Client::Connect(path, Soon(), "test-client").status(),
              StatusIs(StatusCode::kUnavailable,
                       "jitgate broker unreachable at " + path + ": No such file or directory"));
}

TEST(ClientTest, SocketWithoutListenerIsBrokerUnreachable) {
  // A socket file left behind by a crashed broker: bound, never listening.
  jitgate::testing::TempDir dir;
  std::string path = dir.Join("stale.sock");
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  EXPECT_THAT(Client::Connect(path, Soon(), "test-client").status(),
              StatusIs(StatusCode::kUnavailable,
                       "jitgate broker unreachable at " + path + ": Connection refused"));
}

TEST(ClientTest, BadSocketPathIsInvalidArgument) {
  EXPECT_THAT(Client::Connect(std::string(200, 'x'), Soon()).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("socket path must be 1-107 bytes")));
  EXPECT_THAT(Client::Connect("", Soon()).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("socket path")));
}

TEST(ClientTest, SilentBrokerHitsTheDeadline) {
  // The kernel completes the connect from the listen backlog; nobody answers.
  FakeBroker broker([](int) {}, /*accept=*/false);
  EXPECT_THAT(Client::Connect(broker.path(), Deadline::InMillis(RealClock(), 100), "test-client").status(),
              StatusIs(StatusCode::kDeadlineExceeded,
                       "timed out waiting for jitgate broker at " + broker.path()));
}

TEST(ClientTest, AnExpiredDeadlineFailsWithoutWaiting) {
  FakeBroker broker([](int) {}, /*accept=*/false);
  jitgate::testing::SimulatedClock clock;
  Deadline expired(&clock, clock.MonotonicNanos());
  EXPECT_THAT(Client::Connect(broker.path(), expired, "test-client").status(),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("timed out")));
}

TEST(ClientTest, BrokerClosingIsUnavailable) {
  FakeBroker broker([](int fd) { (void)ServerRead(fd); });  // reads Hello, then closes
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kUnavailable,
                       "jitgate broker at " + broker.path() + " closed the connection"));
}

TEST(ClientTest, BrokerClosingMidFrameSaysSo) {
  FakeBroker broker([](int fd) {
    (void)ServerRead(fd);
    const uint8_t partial[] = {0, 0, 0, 9, 0x02, 0};
    ASSERT_OK(WriteFull(fd, partial, Soon()));
  });
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kUnavailable,
                       "jitgate broker at " + broker.path() +
                           " closed the connection in the middle of a message"));
}

TEST(ClientTest, BrokerRefusingTheHelloIsReported) {
  FakeBroker broker([](int fd) {
    (void)ServerRead(fd);
    ServerWrite(fd, Error{ErrorCode::kUnsupportedVersion, "protocol version 1 not supported"});
  });
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kFailedPrecondition,
                       "jitgate broker at " + broker.path() +
                           " refused the connection: protocol version 1 not supported"));
}

TEST(ClientTest, GarbageFromTheBrokerIsDataLoss) {
  FakeBroker broker([](int fd) {
    (void)ServerRead(fd);
    const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0x02};
    ASSERT_OK(WriteFull(fd, huge, Soon()));
  });
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kDataLoss,
                       "jitgate broker at " + broker.path() +
                           " sent an invalid frame: frame length 2147483647 exceeds the cap of 65536"));
}

TEST(ClientTest, MalformedBodyFromTheBrokerIsDataLoss) {
  FakeBroker broker([](int fd) {
    (void)ServerRead(fd);
    ASSERT_OK_AND_ASSIGN(Bytes f, EncodeFrame(uint8_t(MessageType::kHelloAck), Bytes{0, 1}));
    ASSERT_OK(WriteFull(fd, f, Soon()));
  });
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kDataLoss,
                       "jitgate broker at " + broker.path() +
                           " sent an invalid message: HelloAck: field server_id: truncated"));
}

TEST(ClientTest, OutOfStateMessageFromTheBrokerIsDataLoss) {
  FakeBroker broker([](int fd) {
    (void)ServerRead(fd);
    ServerWrite(fd, Decision{"7f3a9c02e1", {}, Outcome::kApproved, {"bob"}, "", "", 1, ""});
  });
  EXPECT_THAT(Client::Connect(broker.path(), Soon(), "test-client").status(),
              StatusIs(StatusCode::kDataLoss,
                       HasSubstr("broke the protocol: state machine error: Decision not allowed "
                                 "in state REPLY (expecting HelloAck)")));
}

TEST(ClientTest, RequesterFlowEndToEnd) {
  const RequestFields fields = testonly::SampleFields();
  FakeBroker broker([&](int fd) {
    ServerHandshake(fd);
    ASSERT_OK_AND_ASSIGN(Message sub, ServerRead(fd));
    ASSERT_TRUE(std::holds_alternative<SubmitRequest>(sub));
    EXPECT_TRUE(std::get<SubmitRequest>(sub).can_prompt);
    ServerWrite(fd, NeedReason{true, "Reason: "});
    ASSERT_OK_AND_ASSIGN(Message reason, ServerRead(fd));
    ASSERT_TRUE(std::holds_alternative<ProvideReason>(reason));
    RequestFields recorded = std::get<SubmitRequest>(sub).fields;
    recorded.reason = std::get<ProvideReason>(reason).reason;
    ServerWrite(fd, RequestAccepted{"7f3a9c02e1", testonly::SampleToken(), RequestDigest(recorded),
                                    "1 of oncall", 300});
    ServerWrite(fd, StatusUpdate{0, 1, 299, "notified bob"});
    ServerWrite(fd, Decision{"7f3a9c02e1", RequestDigest(recorded), Outcome::kApproved, {"bob"},
                             "ok", "approved by bob", 1767227400, ""});
  });
  ASSERT_OK_AND_ASSIGN(Client c, Client::Connect(broker.path(), Soon(), "test-client"));
  EXPECT_EQ(c.hello_ack().server_id, "fake-broker");
  EXPECT_EQ(c.broker_credentials().uid, ::getuid());
  EXPECT_EQ(c.broker_credentials().pid, ::getpid());
  RequestFields f = fields;
  f.reason = "";
  ASSERT_OK_AND_ASSIGN(Message m, c.Call(SubmitRequest{f, 300, true}, Soon()));
  ASSERT_TRUE(std::holds_alternative<NeedReason>(m));
  EXPECT_EQ(c.state(), ConnState::kAwaitReason);
  ASSERT_OK_AND_ASSIGN(m, c.Call(ProvideReason{fields.reason}, Soon()));
  ASSERT_TRUE(std::holds_alternative<RequestAccepted>(m));
  EXPECT_EQ(std::get<RequestAccepted>(m).digest, RequestDigest(fields));
  ASSERT_OK_AND_ASSIGN(m, c.Receive(Soon()));
  EXPECT_EQ(std::get<StatusUpdate>(m).message, "notified bob");
  ASSERT_OK_AND_ASSIGN(m, c.Receive(Soon()));
  ASSERT_TRUE(std::holds_alternative<Decision>(m));
  EXPECT_EQ(std::get<Decision>(m).outcome, Outcome::kApproved);
  EXPECT_EQ(std::get<Decision>(m).digest, RequestDigest(fields));
  EXPECT_EQ(c.state(), ConnState::kDone);
  // Nothing more may be sent after the Decision, except a crossing Cancel.
  EXPECT_THAT(c.Send(SubmitRequest{fields, 0, false}, Soon()),
              StatusIs(StatusCode::kFailedPrecondition,
                       "jitgate client: state machine error: SubmitRequest not allowed in state DONE"));
}

TEST(ClientTest, WaitingPastTheDeadlineIsDeadlineExceeded) {
  FakeBroker broker([](int fd) {
    ServerHandshake(fd);
    (void)ServerRead(fd);  // SubmitRequest
    ServerWrite(fd, RequestAccepted{"7f3a9c02e1", {}, {}, "1 of oncall", 300});
    (void)ServerRead(fd);  // returns at EOF when the client gives up
  });
  ASSERT_OK_AND_ASSIGN(Client c, Client::Connect(broker.path(), Soon(), "test-client"));
  ASSERT_OK_AND_ASSIGN(Message m, c.Call(SubmitRequest{testonly::SampleFields(), 1, false}, Soon()));
  ASSERT_TRUE(std::holds_alternative<RequestAccepted>(m));
  EXPECT_THAT(c.Receive(Deadline::InMillis(RealClock(), 50)),
              StatusIs(StatusCode::kDeadlineExceeded,
                       "timed out waiting for jitgate broker at " + broker.path()));
  // The failed connection is closed; later calls say so.
  EXPECT_EQ(c.fd(), -1);
  EXPECT_THAT(c.Receive(Soon()), StatusIs(StatusCode::kFailedPrecondition,
                                          "connection to jitgate broker at " + broker.path() +
                                              " is closed"));
}

TEST(ClientTest, BrokerGoingAwayWhileWaitingIsUnavailable) {
  FakeBroker broker([](int fd) {
    ServerHandshake(fd);
    (void)ServerRead(fd);
    ServerWrite(fd, RequestAccepted{"7f3a9c02e1", {}, {}, "1 of oncall", 300});
    // The broker restarts: the connection just ends.
  });
  ASSERT_OK_AND_ASSIGN(Client c, Client::Connect(broker.path(), Soon(), "test-client"));
  ASSERT_OK(c.Call(SubmitRequest{testonly::SampleFields(), 0, false}, Soon()).status());
  EXPECT_THAT(c.Receive(Soon()),
              StatusIs(StatusCode::kUnavailable,
                       "jitgate broker at " + broker.path() + " closed the connection"));
}

TEST(ClientTest, SendAfterTheBrokerClosedIsUnavailableWithoutSigpipe) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  UniqueFd client_end(sv[0]);
  UniqueFd server_end(sv[1]);
  std::thread server([fd = server_end.get()] { ServerHandshake(fd); });
  ASSERT_OK_AND_ASSIGN(Client c, Client::FromConnectedFd(std::move(client_end), "socketpair",
                                                          Soon(), "test-client"));
  server.join();
  server_end.reset();
  Status s = c.Send(ListRequests{}, Soon());
  // The first write to a socket whose peer closed fails with EPIPE (no SIGPIPE
  // thanks to MSG_NOSIGNAL; this test would die otherwise).
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable,
                          "connection to jitgate broker at socketpair lost: write: Broken pipe"));
}

TEST(ClientTest, CallerStateErrorsLeaveTheConnectionUsable) {
  FakeBroker broker([](int fd) {
    ServerHandshake(fd);
    ASSERT_OK_AND_ASSIGN(Message m, ServerRead(fd));
    ASSERT_TRUE(std::holds_alternative<GetRequest>(m));
    ServerWrite(fd, Error{ErrorCode::kAmbiguous, "2 requests match \"7f3a\""});
    ASSERT_OK_AND_ASSIGN(m, ServerRead(fd));
    ASSERT_TRUE(std::holds_alternative<GetRequest>(m));
    ServerWrite(fd, testonly::SampleInfo());
  });
  ASSERT_OK_AND_ASSIGN(Client c, Client::Connect(broker.path(), Soon(), "test-client"));
  EXPECT_THAT(c.Send(Cancel{}, Soon()),
              StatusIs(StatusCode::kFailedPrecondition,
                       "jitgate client: state machine error: Cancel not allowed in state READY"));
  EXPECT_THAT(c.Send(GetRequest{"NOT-AN-ID"}, Soon()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("GetRequest: field id")));
  ASSERT_OK_AND_ASSIGN(Message m, c.Call(GetRequest{"7f3a"}, Soon()));
  ASSERT_TRUE(std::holds_alternative<Error>(m));
  EXPECT_EQ(c.state(), ConnState::kReady);  // a non-fatal error answers one command
  ASSERT_OK_AND_ASSIGN(m, c.Call(GetRequest{"7f3a9c"}, Soon()));
  EXPECT_TRUE(std::get<RequestInfo>(m) == testonly::SampleInfo());
}

}  // namespace
}  // namespace jitgate::wire
