// FakeBroker: a scripted, in-process stand-in for jitgated's requester side,
// for unit tests of clients (core/wire/requester, the PAM module, the sudo
// plugin). Test-only: never linked into a shipped binary.
//
// It listens on a real Unix socket in its own temporary directory and serves
// the connections one after the other on its own thread: for each accepted
// connection it calls the script with a FakeBrokerConnection, which reads
// decoded messages from the client and sends replies. The script decides
// everything, including whether to complete the Hello exchange. Canned
// scripts cover the usual behaviours:
//
//   FakeBroker broker(FakeBroker::AutoApprove());
//   RequesterOptions o;
//   o.socket_path = broker.socket_path();
//   ...
//   EXPECT_EQ(broker.Submitted().size(), 1u);
//
// Every message a client sends is recorded (Received()), so a test can
// assert that a Cancel or a Resume was sent. Waits inside a script are
// bounded (5 s unless told otherwise) and end early when the broker is
// destroyed, so a failing client never hangs a test. The accessors are
// thread-safe; the script runs on the broker's thread.
#ifndef JITGATE_TESTS_TESTING_FAKE_BROKER_H_
#define JITGATE_TESTS_TESTING_FAKE_BROKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/base/status.h"
#include "core/base/unique_fd.h"
#include "core/wire/framing.h"
#include "core/wire/messages.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::testing {

class FakeBroker;

// One accepted client connection, as the script sees it.
class FakeBrokerConnection {
 public:
  // The 0-based number of this connection since the broker started.
  int index() const { return index_; }
  FakeBroker& broker() { return *broker_; }

  // The next message from the client. Fails with kUnavailable when the client
  // closed, kDeadlineExceeded after timeout_ms, kCancelled when the broker is
  // shutting down, kDataLoss for bytes that are not a valid message.
  StatusOr<wire::Message> Read(int64_t timeout_ms = 5000);
  // Sends one message (encoded strictly: an invalid message fails here).
  Status Send(const wire::Message& m);
  // Writes raw bytes (for malformed-frame tests).
  Status SendRaw(ByteSpan bytes);

  // Reads the Hello and answers HelloAck (server_id "fake-broker").
  StatusOr<wire::Hello> Handshake();
  // Handshake, then reads the client's command and requires a SubmitRequest.
  StatusOr<wire::SubmitRequest> HandshakeAndSubmit();
  // Reads until the client closes the connection; true if it did before
  // timeout_ms. Messages read meanwhile are recorded as usual.
  bool WaitForClientClose(int64_t timeout_ms = 5000);
  // Closes the connection now (the broker "restarts" or crashes).
  void Close() { fd_.reset(); }

 private:
  friend class FakeBroker;
  FakeBrokerConnection(FakeBroker* broker, UniqueFd fd, int index)
      : broker_(broker), fd_(std::move(fd)), index_(index) {}

  FakeBroker* broker_;
  UniqueFd fd_;
  int index_;
  wire::FrameReader reader_;
};

class FakeBroker {
 public:
  // A script serves one connection. It runs on the broker's thread; the
  // connection is closed when it returns. A non-OK return is recorded in
  // ScriptErrors() (tests usually expect none).
  using Script = std::function<Status(FakeBrokerConnection&)>;

  // Starts listening on "<temp dir>/jitgated.sock" and serving. Aborts the
  // test binary if the socket cannot be set up.
  explicit FakeBroker(Script script);
  // Stops serving (interrupting a script's wait) and joins the thread.
  ~FakeBroker();
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  // The broker's temporary directory (for test files next to the socket).
  const std::string& dir() const { return dir_.path(); }

  // Stops accepting and removes the socket file: the broker is gone for good
  // (clients then get ENOENT). The current script keeps its connection.
  // Callable from the script or the test.
  void StopListening();

  // Every message received from clients, in order, over all connections.
  std::vector<wire::Message> Received() const;
  // The SubmitRequests among them.
  std::vector<wire::SubmitRequest> Submitted() const;
  // True if a message of type T was received.
  template <typename T>
  bool Got() const {
    for (const wire::Message& m : Received()) {
      if (std::holds_alternative<T>(m)) return true;
    }
    return false;
  }
  // Connections accepted so far / whose script has returned.
  int connections() const { return accepted_.load(); }
  int finished() const;
  // Waits until the scripts of n connections have returned (so everything
  // they read is in Received()); false after timeout_ms.
  bool WaitUntilFinished(int n, int64_t timeout_ms = 5000);
  // Non-OK results of scripts, with the connection index prefixed.
  std::vector<Status> ScriptErrors() const;

  // Mints request ids "7f3a9c02", "7f3a9c03", ... and fixed resume tokens.
  std::string NextId();
  static wire::ResumeToken TokenFor(const std::string& id);

  // Messages bound to a request (the digest of fields, as the real broker).
  static wire::RequestAccepted AcceptedFor(
      const std::string& id, const wire::RequestFields& fields,
      std::string approvers = "1 of oncall", uint32_t wait_seconds = 300);
  static wire::Decision DecisionFor(const std::string& id,
                                    const wire::RequestFields& fields,
                                    wire::Outcome outcome, std::string message);

  // Canned scripts (the same script serves every connection).
  // Decision(approved) right after SubmitRequest, like `approve: auto`.
  static Script AutoApprove();
  // RequestAccepted, a StatusUpdate, then Decision(approved by bob).
  static Script AcceptThenApprove();
  // RequestAccepted, then Decision(denied, message).
  static Script Deny(
      std::string message = "denied by carol: not during the freeze");
  // NeedReason(required), then (after ProvideReason) accepted and approved;
  // if the client cancels instead, Decision(cancelled).
  static Script NeedReasonThenApprove(
      bool required = true, std::string prompt = "Reason for access: ");
  // First connection: RequestAccepted, then close (a broker restart).
  // Later connections: expect Resume with the right id and token, answer
  // RequestAccepted again, then Decision(approved).
  static Script AcceptThenCloseToForceResume();
  // RequestAccepted, then nothing until the client gives up and closes.
  static Script NeverAnswer();
  // Error(code, message) right after SubmitRequest.
  static Script SendError(wire::ErrorCode code, std::string message);

 private:
  friend class FakeBrokerConnection;
  void Serve();
  void Record(const wire::Message& m);
  bool stopping() const { return stop_.load(); }
  int stop_fd() const { return wake_read_.get(); }

  TempDir dir_;
  std::string socket_path_;
  Script script_;
  UniqueFd listener_;
  UniqueFd wake_read_,
      wake_write_;  // a pipe: closing the write end wakes polls
  std::atomic<bool> stop_{false};
  std::atomic<bool> listening_{true};
  std::atomic<int> accepted_{0};
  std::atomic<uint32_t> next_id_{0x7f3a9c02};
  mutable std::mutex mu_;
  std::vector<wire::Message> received_;  // guarded by mu_
  std::vector<Status> script_errors_;    // guarded by mu_
  int finished_ = 0;                     // guarded by mu_
  std::condition_variable finished_cv_;
  std::thread thread_;
};

}  // namespace jitgate::testing

#endif  // JITGATE_TESTS_TESTING_FAKE_BROKER_H_
