// Framing of the broker protocol (docs/protocol.md §2):
//
//   u32 length (big-endian, counts type + body) | u8 type | body
//
// with 1 <= length <= kMaxFrameLength and a known message type. FrameReader
// checks both as soon as the 5 header bytes are in, before it allocates the
// body, in the manner of sudo's logsrvd (`msg_len > MESSAGE_SIZE_MAX`).
#ifndef JITGATE_CORE_WIRE_FRAMING_H_
#define JITGATE_CORE_WIRE_FRAMING_H_

#include <array>
#include <cstdint>
#include <span>

#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/wire/deadline.h"
#include "core/wire/wire_format.h"

namespace jitgate::wire {

// One complete frame: its type byte and body (without the header).
struct Frame {
  uint8_t type = 0;
  Bytes body;
  friend bool operator==(const Frame&, const Frame&) = default;
};

// The bytes of a frame. Fails with OutOfRange if the body exceeds
// kMaxBodySize. The type is not checked (tests build bad frames with it).
StatusOr<Bytes> EncodeFrame(uint8_t type, ByteSpan body);

// Writes all of `data` to the stream socket fd (nonblocking or not) with
// send(MSG_NOSIGNAL), waiting with poll() while the socket is full, until the
// deadline. Retries EINTR. Fails with DeadlineExceeded ("write timed out"), or
// the errno mapped by ErrnoToStatus ("write: Broken pipe" is Unavailable).
// On failure an unknown prefix of data may have been written.
Status WriteFull(int fd, ByteSpan data, const Deadline& deadline);

// FrameReader reassembles frames from a byte stream that arrives in pieces of
// any size, from a buffer (Feed) or a nonblocking fd (ReadFrom). It holds at
// most one frame: it never consumes input beyond the end of the current frame,
// so no unbounded queue can build up, and it allocates a frame's body only
// after validating its header. An invalid header makes the reader fail for
// good: the stream cannot be resynchronised and the connection must close.
// Not thread-safe.
class FrameReader {
 public:
  FrameReader() = default;
  FrameReader(FrameReader&&) noexcept = default;
  FrameReader& operator=(FrameReader&&) noexcept = default;
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Consumes bytes from `in` up to the end of the current frame and returns
  // how many it consumed (0 while HasFrame()). Fails with InvalidArgument on a
  // zero or over-cap length or an unknown type, and with the same error on
  // every later call.
  StatusOr<size_t> Feed(ByteSpan in);

  // True when a complete frame is waiting in TakeFrame().
  bool HasFrame() const { return has_frame_; }
  // Returns the complete frame and starts the next. Precondition: HasFrame().
  Frame TakeFrame();

  // True if no byte of an unfinished frame is buffered: an EOF here is an
  // orderly close, elsewhere it is a truncated frame.
  bool AtBoundary() const { return !has_frame_ && header_have_ == 0; }

  enum class ReadResult {
    kProgress,    // bytes were consumed (maybe completing a frame)
    kWouldBlock,  // EAGAIN: nothing to read now
    kEof,         // the peer closed its end
  };
  // One read() from fd of at most the bytes the current frame still needs
  // (EINTR is retried). Errors are ErrnoToStatus("read", errno) or the sticky
  // framing error. Precondition: !HasFrame().
  StatusOr<ReadResult> ReadFrom(int fd);

 private:
  // Where the current frame's next bytes go (never empty unless HasFrame()).
  std::span<uint8_t> NextSpace();
  // Accounts for n bytes just written into NextSpace(); validates the header
  // as soon as its bytes are in.
  Status Commit(size_t n);
  // The header is complete and its length valid: check the type, allocate.
  Status StartBody();

  std::array<uint8_t, kFrameHeaderSize> header_{};
  size_t header_have_ = 0;
  Bytes body_;
  size_t body_have_ = 0;
  bool has_frame_ = false;
  Status status_;
};

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_FRAMING_H_
