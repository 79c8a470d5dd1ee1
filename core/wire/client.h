// Client: the blocking broker client used by the PAM module, the sudo plugin
// and the CLI (docs/protocol.md).
//
// Built for life inside sshd and sudo: no exceptions, threads, signals
// (MSG_NOSIGNAL), global state or exit(); every wait is a poll() bounded by a
// Deadline; EINTR is retried; the socket is CLOEXEC and nonblocking. Every
// failure is a Status with one clear line naming the socket path, e.g.
//   UNAVAILABLE: jitgate broker unreachable at /run/jitgate/jitgated.sock: No such file or directory
//   DEADLINE_EXCEEDED: timed out waiting for jitgate broker at /run/jitgate/jitgated.sock
// Codes: kUnavailable means the connection could not be made or was lost (a
// requester may reconnect and Resume); kDeadlineExceeded a deadline passed;
// kDataLoss the broker sent bytes that are not a valid message for the
// state; kFailedPrecondition the broker refused the handshake or the caller
// broke the state machine. After any failure of Send or Receive the
// connection is closed and later calls fail with kFailedPrecondition.
//
// Deadlines should use the real clock: a Deadline on a SimulatedClock works
// only if it has already passed. Move-only; not thread-safe.
#ifndef JITGATE_CORE_WIRE_CLIENT_H_
#define JITGATE_CORE_WIRE_CLIENT_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/base/status.h"
#include "core/base/unique_fd.h"
#include "core/wire/deadline.h"
#include "core/wire/framing.h"
#include "core/wire/messages.h"
#include "core/wire/protocol_state.h"

namespace jitgate::wire {

// The broker's process as the kernel reported it at connect (SO_PEERCRED).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class Client {
 public:
  // Connects to the broker's socket at socket_path and completes the Hello
  // exchange (client_name goes into Hello.client), all before the deadline.
  static StatusOr<Client> Connect(std::string_view socket_path, const Deadline& deadline,
                                  std::string_view client_name = "jitgate");

  // Takes over an already connected stream socket (tests, socket activation)
  // and completes the Hello exchange. `label` stands for the path in messages.
  static StatusOr<Client> FromConnectedFd(UniqueFd fd, std::string_view label,
                                          const Deadline& deadline,
                                          std::string_view client_name = "jitgate");

  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one message. Fails with kFailedPrecondition (without sending) if the
  // state machine does not allow it, kInvalidArgument if it violates a cap.
  Status Send(const Message& m, const Deadline& deadline);

  // Waits for the next message from the broker. An Error message is returned
  // as a Message (the caller decides what it means), not as a Status.
  StatusOr<Message> Receive(const Deadline& deadline);

  // Returns the next message if one has arrived completely, nullopt if not,
  // without waiting (for callers that poll the fd with other work). Fails
  // like Receive on a lost connection or a bad message.
  StatusOr<std::optional<Message>> Poll();
  // Send, then Receive.
  StatusOr<Message> Call(const Message& m, const Deadline& deadline);

  // Closes the connection (a pending request is then cancelled by the broker).
  void Close() { fd_.reset(); }

  const HelloAck& hello_ack() const { return hello_ack_; }
  const PeerCredentials& broker_credentials() const { return broker_; }
  const std::string& socket_path() const { return path_; }
  ConnState state() const { return state_.state(); }
  // The socket (or -1 once closed), for callers that poll other fds too.
  int fd() const { return fd_.get(); }

 private:
  Client(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Status Handshake(const Deadline& deadline, std::string_view client_name);
  // Receive; with deadline null, kResourceExhausted instead of waiting.
  StatusOr<Message> ReceiveImpl(const Deadline* deadline);
  // Closes and returns s.
  Status Fail(Status s);

  UniqueFd fd_;
  std::string path_;
  FrameReader reader_;
  ProtocolState state_;
  HelloAck hello_ack_;
  PeerCredentials broker_;
};

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_CLIENT_H_
