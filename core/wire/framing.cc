#include "core/wire/framing.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace jitgate::wire {

StatusOr<Bytes> EncodeFrame(uint8_t type, ByteSpan body) {
  if (body.size() > kMaxBodySize) {
    return OutOfRangeError("frame body of " + std::to_string(body.size()) +
                           " bytes exceeds the cap of " + std::to_string(kMaxBodySize));
  }
  ByteWriter w(kFrameHeaderSize + body.size());
  w.PutU32(uint32_t(body.size() + 1));
  w.PutU8(type);
  w.PutBytes(body);
  return w.Release();
}

Status WriteFull(int fd, ByteSpan data, const Deadline& deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data = data.subspan(size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoToStatus(errno, "write");
    // The socket buffer is full: wait until it drains or the deadline passes.
    while (true) {
      int timeout = deadline.PollTimeoutMs();
      if (timeout == 0) return DeadlineExceededError("write timed out");
      pollfd p{fd, POLLOUT, 0};
      int r = ::poll(&p, 1, timeout);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoToStatus(errno, "poll");
      if (r > 0) break;
    }
  }
  return OkStatus();
}

Status FrameReader::StartBody() {
  uint32_t length = LoadU32BE(header_.data());
  uint8_t type = header_[kFrameLengthSize];
  if (!IsKnownMessageType(type)) {
    return InvalidArgumentError("frame " + MessageTypeName(type) + " is not a message type");
  }
  // The length was checked against the cap in Commit(); only now allocate.
  body_.assign(length - 1, 0);
  body_have_ = 0;
  if (body_.empty()) has_frame_ = true;
  return OkStatus();
}

std::span<uint8_t> FrameReader::NextSpace() {
  if (header_have_ < kFrameHeaderSize) {
    return std::span<uint8_t>(header_).subspan(header_have_);
  }
  return std::span<uint8_t>(body_).subspan(body_have_);
}

Status FrameReader::Commit(size_t n) {
  if (header_have_ < kFrameHeaderSize) {
    header_have_ += n;
    // The length is known after 4 bytes: reject it at once, so a peer cannot
    // park a connection on a frame that can never be valid.
    if (header_have_ >= kFrameLengthSize) {
      uint32_t length = LoadU32BE(header_.data());
      if (length == 0) return InvalidArgumentError("frame length 0 is invalid");
      if (length > kMaxFrameLength) {
        return InvalidArgumentError("frame length " + std::to_string(length) +
                                    " exceeds the cap of " + std::to_string(kMaxFrameLength));
      }
    }
    if (header_have_ == kFrameHeaderSize) return StartBody();
    return OkStatus();
  }
  body_have_ += n;
  if (body_have_ == body_.size()) has_frame_ = true;
  return OkStatus();
}

StatusOr<size_t> FrameReader::Feed(ByteSpan in) {
  if (!status_.ok()) return status_;
  size_t used = 0;
  while (used < in.size() && !has_frame_) {
    std::span<uint8_t> space = NextSpace();
    size_t n = std::min(space.size(), in.size() - used);
    std::memcpy(space.data(), in.data() + used, n);
    used += n;
    status_ = Commit(n);
    if (!status_.ok()) return status_;
  }
  return used;
}

Frame FrameReader::TakeFrame() {
  Frame f;
  f.type = header_[kFrameLengthSize];
  f.body = std::move(body_);
  body_.clear();
  body_have_ = 0;
  header_have_ = 0;
  has_frame_ = false;
  return f;
}

StatusOr<FrameReader::ReadResult> FrameReader::ReadFrom(int fd) {
  if (!status_.ok()) return status_;
  if (has_frame_) return FailedPreconditionError("FrameReader::ReadFrom with a frame not taken");
  // Read no further than the current frame needs: the next frame's bytes stay
  // in the kernel's (bounded) socket buffer, and ours never exceeds one frame.
  std::span<uint8_t> space = NextSpace();
  ssize_t n;
  do {
    n = ::read(fd, space.data(), space.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadResult::kWouldBlock;
    return ErrnoToStatus(errno, "read");
  }
  if (n == 0) return ReadResult::kEof;
  status_ = Commit(size_t(n));
  if (!status_.ok()) return status_;
  return ReadResult::kProgress;
}

}  // namespace jitgate::wire
