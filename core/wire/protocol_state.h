// ProtocolState: the per-connection state machine of docs/protocol.md §5,
// tracked identically by the broker and by clients.
//
// Each side reports every message it sends or receives, in its own order:
// OnClientMessage for messages the client sent (the broker received them),
// OnServerMessage for messages the broker sent. A message that is not allowed
// in the current state fails with FailedPrecondition "state machine error: X
// not allowed in state Y" and moves to kDone: the connection must close.
// Not thread-safe (one per connection).
#ifndef JITGATE_CORE_WIRE_PROTOCOL_STATE_H_
#define JITGATE_CORE_WIRE_PROTOCOL_STATE_H_

#include <string_view>

#include "core/base/status.h"
#include "core/wire/messages.h"

namespace jitgate::wire {

enum class ConnState : uint8_t {
  kAwaitHello,   // nothing yet; the client sends Hello
  kReady,        // handshake done; the client sends a command
  kSubmitted,    // SubmitRequest / Resume / ProvideReason sent; broker answers
  kAwaitReason,  // NeedReason received; the client sends ProvideReason or Cancel
  kWaiting,      // RequestAccepted; StatusUpdate* then Decision
  kCancelling,   // Cancel sent; StatusUpdate* then Decision
  kReply,        // one broker reply owed (HelloAck, RequestList, RequestInfo)
  kFollowing,    // Follow snapshot sent; RequestInfo pushed until close
  kRecording,    // SessionOpened: SessionData / CloseSession; SessionAck,
                 // SessionTerminated pushed
  kClosing,      // CloseSession sent: SessionAck* (and SessionTerminated) then
                 // SessionClosed
  kDone,         // final answer or fatal error: nothing more; close
};
std::string_view ConnStateName(ConnState s);

class ProtocolState {
 public:
  ProtocolState() = default;

  ConnState state() const { return state_; }
  // In kReply: the message type the broker owes.
  MessageType expected_reply() const { return expect_; }

  // A message the client sent (the broker received). A Cancel in kDone is
  // accepted and ignored: it crossed the Decision on the wire.
  Status OnClientMessage(const Message& m);
  // A message the broker sent (the client received).
  Status OnServerMessage(const Message& m);

 private:
  Status Violation(MessageType type);
  void Expect(MessageType reply, bool then_follow) {
    state_ = ConnState::kReply;
    expect_ = reply;
    then_follow_ = then_follow;
  }

  ConnState state_ = ConnState::kAwaitHello;
  MessageType expect_ = MessageType::kHelloAck;
  bool in_hello_ = false;      // kReply is for the Hello
  bool then_follow_ = false;   // kReply is the Follow snapshot
  bool then_record_ = false;   // kReply is SessionOpened
  bool may_need_reason_ = false;  // kSubmitted came from SubmitRequest, not yet asked
};

}  // namespace jitgate::wire

#endif  // JITGATE_CORE_WIRE_PROTOCOL_STATE_H_
