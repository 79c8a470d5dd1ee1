// The hand-over from the approval plugin to the I/O plugin inside one sudo
// process: which jitgate request approved the command that is about to run,
// so that its recording names that request (session_start.request_id).
//
// sudo calls the approval plugins' check() and only then the I/O plugins'
// open() (sudo.c: policy_check, approval_check, iolog_open), in the same
// process and thread, once per command. The link is therefore a plain
// process global. It reaches the I/O plugin only when both plugins come from
// the same shared object (jitgate_sudo.so), which sudo dlopens once however
// many Plugin lines name it, as sudoers.so shares its state between
// sudoers_policy and sudoers_io. Nothing here is visible to the user, the
// command or its environment, so the link cannot be forged from outside.
//
// Every function is noexcept and allocation-free (safe in the C ABI
// trampolines). Not thread-safe, like sudo's plugin calls.
#ifndef JITGATE_SUDO_SESSION_LINK_H_
#define JITGATE_SUDO_SESSION_LINK_H_

#include <string_view>

namespace jitgate::sudo {

// Records that request `id` approved the command about to run. An id that is
// not a valid request id (wire::IsValidRequestId) clears the link instead.
void NoteApprovedRequest(std::string_view id) noexcept;
// Clears the link (a new approval plugin session started).
void ForgetApprovedRequest() noexcept;
// The request noted last, or "" if none. Valid until the next Note/Forget.
std::string_view ApprovedRequest() noexcept;

}  // namespace jitgate::sudo

#endif  // JITGATE_SUDO_SESSION_LINK_H_
