// One command and its reply over a wire::Client, for the CLI's one-shot
// commands (approver and certificate commands alike): the expected reply, the
// broker's Error, or a transport failure as a Status.
#ifndef JITGATE_CLI_BROKER_CALL_H_
#define JITGATE_CLI_BROKER_CALL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/wire/client.h"
#include "core/wire/deadline.h"
#include "core/wire/messages.h"

namespace jitgate::cli {

// Hello.client of every CLI connection.
inline constexpr char kCliClientName[] = "jitgate 0.1.0";
// One request/reply with a local broker; generous for a loaded machine.
inline constexpr int64_t kCallTimeoutMs = 10'000;

// The reply to one command: exactly one of value and error is set.
template <typename T>
struct Reply {
  std::optional<T> value;
  std::optional<wire::Error> error;
};

// Connects to the broker at path and completes the Hello exchange within
// kCallTimeoutMs of clock.
inline StatusOr<wire::Client> ConnectToBroker(const std::string& path, Clock* clock) {
  return wire::Client::Connect(path, wire::Deadline::InMillis(clock, kCallTimeoutMs),
                               kCliClientName);
}

// Sends m and waits (kCallTimeoutMs) for a T or an Error. Any other message
// is kDataLoss; transport failures are the client's Status.
template <typename T>
StatusOr<Reply<T>> CallBroker(wire::Client& client, const wire::Message& m, Clock* clock) {
  StatusOr<wire::Message> r = client.Call(m, wire::Deadline::InMillis(clock, kCallTimeoutMs));
  if (!r.ok()) return r.status();
  Reply<T> reply;
  if (T* v = std::get_if<T>(&*r)) {
    reply.value = std::move(*v);
  } else if (wire::Error* e = std::get_if<wire::Error>(&*r)) {
    reply.error = std::move(*e);
  } else {
    return DataLossError("unexpected " + wire::MessageTypeName(wire::TypeOf(*r)) +
                         " from the broker");
  }
  return reply;
}

// A Status message as one line after the CLI's own "jitgate: " prefix: the
// wire layer's messages start with "jitgate broker ..." (they are also shown
// by sshd and sudo), which would otherwise read "jitgate: jitgate broker".
inline std::string StatusLine(const Status& s) {
  constexpr std::string_view kOwnName = "jitgate ";
  std::string_view m = s.message();
  if (m.substr(0, kOwnName.size()) == kOwnName) m.remove_prefix(kOwnName.size());
  return std::string(m);
}

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_BROKER_CALL_H_
