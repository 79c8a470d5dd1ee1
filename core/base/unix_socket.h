// Binding a Unix stream socket for a server (jitgated's API socket, its
// metrics socket).
#ifndef JITGATE_CORE_BASE_UNIX_SOCKET_H_
#define JITGATE_CORE_BASE_UNIX_SOCKET_H_

#include <string>
#include <string_view>

#include "core/base/status.h"
#include "core/base/unique_fd.h"

namespace jitgate {

// BindUnixSocket creates a stream socket (close-on-exec, nonblocking) bound
// to path; the caller sets its mode and listens. A socket file that no
// process listens on any more (left by a crash) is replaced. Fails with
// InvalidArgument if path does not fit a sockaddr_un, FailedPrecondition
// "<who> is already listening on PATH" if a process still accepts there or
// "PATH exists and is not a socket; refusing to replace it", else the
// errno-derived code naming the step.
StatusOr<UniqueFd> BindUnixSocket(const std::string& path, std::string_view who);

}  // namespace jitgate

#endif  // JITGATE_CORE_BASE_UNIX_SOCKET_H_
