// Privileges of the bastion's session process and of jitgated itself
// (docs/bastion.md, "Process model and privileges").
//
// A session process parses untrusted SSH bytes, so before it reads any it
// becomes bastion.run_as for good. It can switch when it runs as root, or
// when it runs as another user but holds CAP_SETUID and CAP_SETGID: the
// packaged unit runs jitgated as `jitgate` with exactly those two as ambient
// capabilities, which every session process inherits through its exec.
// Going from one non-root uid to another keeps capabilities, so after the
// switch every capability set is emptied and checked.
#ifndef JITGATE_BROKER_BASTION_PRIVILEGES_H_
#define JITGATE_BROKER_BASTION_PRIVILEGES_H_

#include <string>

#include "core/base/status.h"

namespace jitgate::bastion {

// The identity a session process ends up with.
enum class SessionIdentity {
  kSwitched,   // it runs as run_as
  kUnchanged,  // it had no privilege to switch and runs as the broker's user
};

// DropPrivileges makes the calling process run_as for good, when it may:
// when its euid is 0, or when CAP_SETUID and CAP_SETGID are in its permitted
// set (they are made effective for the switch only). It clears the
// supplementary groups, sets the real, effective and saved gid and uid to
// run_as's, and then empties every capability set (effective, permitted,
// inheritable, ambient, and the bounding set when CAP_SETPCAP allows).
// Without the privilege to switch it stays who it is (kUnchanged), but still
// gives up every capability it holds. Either way it then asks for SIGTERM
// when its parent dies, sets PR_SET_NO_NEW_PRIVS, makes itself non-dumpable
// and moves to "/".
//
// Fails with FAILED_PRECONDITION when run_as is unknown or root (nothing has
// changed then), and with INTERNAL when a step fails or a check afterwards
// finds that root or the old uid can be regained or a capability is left:
// the caller must then end the process (fail closed). UNAVAILABLE when the
// parent is already gone.
//
// Capabilities are per thread: call it while the process has one thread.
[[nodiscard]] StatusOr<SessionIdentity> DropPrivileges(
    const std::string& run_as);

// LowerSwitchCapabilities removes CAP_SETUID and CAP_SETGID from the calling
// thread's effective set when its euid is not 0, and leaves them permitted,
// inheritable and ambient, so that a process it executes (a session process)
// still gets them. jitgated calls it first thing, before it starts a thread,
// so that none of its own code runs with them in effect. A no-op for root
// and for a process without them. Fails with INTERNAL if capget or capset
// fails.
[[nodiscard]] Status LowerSwitchCapabilities();

}  // namespace jitgate::bastion

#endif  // JITGATE_BROKER_BASTION_PRIVILEGES_H_
