#include "core/wire/client.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <utility>

#include "core/base/status_macros.h"

namespace jitgate::wire {
namespace {

std::string Errno(int err) { return std::strerror(err); }

// Waits until fd is ready for `events` or the deadline passes. True if ready.
StatusOr<bool> WaitFor(int fd, short events, const Deadline& deadline) {
  while (true) {
    int timeout = deadline.PollTimeoutMs();
    if (timeout == 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoToStatus(errno, "poll");
    if (r > 0) return true;
  }
}

}  // namespace

StatusOr<Client> Client::Connect(std::string_view socket_path, const Deadline& deadline,
                                 std::string_view client_name) {
  std::string path(socket_path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("jitgate broker socket path must be 1-" +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes: \"" + path + "\"");
  }
  if (path.find('\0') != std::string::npos) {
    return InvalidArgumentError("jitgate broker socket path contains a NUL byte");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return UnavailableError("jitgate broker unreachable at " + path + ": socket: " + Errno(errno));

  while (true) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
    int err = errno;
    if (err == EAGAIN) {
      // Linux: the listen backlog is full. Retry briefly until the deadline.
      int timeout = std::min(deadline.PollTimeoutMs(), 10);
      if (timeout == 0) {
        return DeadlineExceededError("timed out connecting to jitgate broker at " + path +
                                     " (the broker is not accepting connections)");
      }
      (void)::poll(nullptr, 0, timeout);
      continue;
    }
    if (err == EINTR || err == EINPROGRESS) {
      // The connection completes asynchronously; its result is SO_ERROR.
      ASSIGN_OR_RETURN(bool ready, WaitFor(fd.get(), POLLOUT, deadline));
      if (!ready) return DeadlineExceededError("timed out connecting to jitgate broker at " + path);
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
      if (so_error == 0) break;
      err = so_error;
    }
    return UnavailableError("jitgate broker unreachable at " + path + ": " + Errno(err));
  }
  return FromConnectedFd(std::move(fd), path, deadline, client_name);
}

StatusOr<Client> Client::FromConnectedFd(UniqueFd fd, std::string_view label,
                                         const Deadline& deadline, std::string_view client_name) {
  Client c(std::move(fd), std::string(label));
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(c.fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    c.broker_ = PeerCredentials{cred.pid, cred.uid, cred.gid};
  }
  RETURN_IF_ERROR(c.Handshake(deadline, client_name));
  return c;
}

Status Client::Handshake(const Deadline& deadline, std::string_view client_name) {
  Hello hello;
  hello.client = std::string(client_name.substr(0, kMaxLabelField));
  RETURN_IF_ERROR(Send(hello, deadline));
  ASSIGN_OR_RETURN(Message reply, Receive(deadline));
  if (const auto* err = std::get_if<Error>(&reply)) {
    Close();
    return FailedPreconditionError("jitgate broker at " + path_ + " refused the connection: " +
                                   err->message);
  }
  hello_ack_ = std::get<HelloAck>(reply);  // the state machine allows nothing else
  if (hello_ack_.version < hello.min_version || hello_ack_.version > hello.max_version) {
    return Fail(DataLossError("jitgate broker at " + path_ + " chose unsupported protocol version " +
                              std::to_string(hello_ack_.version)));
  }
  return OkStatus();
}

Status Client::Fail(Status s) {
  Close();
  return s;
}

Status Client::Send(const Message& m, const Deadline& deadline) {
  if (!fd_) return FailedPreconditionError("connection to jitgate broker at " + path_ + " is closed");
  // Encode before touching the state machine: a bad message changes nothing.
  ASSIGN_OR_RETURN(Bytes frame, EncodeMessage(m));
  ProtocolState before = state_;
  if (Status s = state_.OnClientMessage(m); !s.ok()) {
    state_ = before;  // the caller's mistake; the connection is still good
    return FailedPreconditionError("jitgate client: " + s.message());
  }
  Status s = WriteFull(fd_.get(), frame, deadline);
  if (s.ok()) return s;
  if (s.code() == StatusCode::kDeadlineExceeded) {
    return Fail(DeadlineExceededError("timed out sending to jitgate broker at " + path_));
  }
  return Fail(UnavailableError("connection to jitgate broker at " + path_ + " lost: " + s.message()));
}

StatusOr<Message> Client::Receive(const Deadline& deadline) {
  return ReceiveImpl(&deadline);
}

StatusOr<std::optional<Message>> Client::Poll() {
  StatusOr<Message> m = ReceiveImpl(nullptr);
  if (m.ok()) return std::optional<Message>(std::move(*m));
  if (m.status().code() == StatusCode::kResourceExhausted && fd_) return std::optional<Message>();
  return m.status();
}

StatusOr<Message> Client::ReceiveImpl(const Deadline* deadline) {
  if (!fd_) return FailedPreconditionError("connection to jitgate broker at " + path_ + " is closed");
  while (!reader_.HasFrame()) {
    StatusOr<FrameReader::ReadResult> r = reader_.ReadFrom(fd_.get());
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kInvalidArgument) {  // framing
        return Fail(DataLossError("jitgate broker at " + path_ + " sent an invalid frame: " +
                                  r.status().message()));
      }
      return Fail(UnavailableError("connection to jitgate broker at " + path_ + " lost: " +
                                   r.status().message()));
    }
    switch (*r) {
      case FrameReader::ReadResult::kProgress:
        break;
      case FrameReader::ReadResult::kEof:
        return Fail(UnavailableError(
            "jitgate broker at " + path_ + " closed the connection" +
            (reader_.AtBoundary() ? std::string() : std::string(" in the middle of a message"))));
      case FrameReader::ReadResult::kWouldBlock: {
        // Poll(): nothing complete yet is not an error (kResourceExhausted
        // is the private signal to Poll, never returned to callers).
        if (deadline == nullptr) return ResourceExhaustedError("no message yet");
        StatusOr<bool> ready = WaitFor(fd_.get(), POLLIN, *deadline);
        if (!ready.ok()) return Fail(ready.status());
        if (!*ready) return Fail(DeadlineExceededError("timed out waiting for jitgate broker at " + path_));
        break;
      }
    }
  }
  Frame frame = reader_.TakeFrame();
  StatusOr<Message> m = DecodeMessage(frame.type, frame.body);
  if (!m.ok()) {
    return Fail(DataLossError("jitgate broker at " + path_ + " sent an invalid message: " +
                              m.status().message()));
  }
  if (Status s = state_.OnServerMessage(*m); !s.ok()) {
    return Fail(DataLossError("jitgate broker at " + path_ + " broke the protocol: " + s.message()));
  }
  return m;
}

StatusOr<Message> Client::Call(const Message& m, const Deadline& deadline) {
  RETURN_IF_ERROR(Send(m, deadline));
  return Receive(deadline);
}

}  // namespace jitgate::wire
