// The session process's privilege drop; see privileges.h.
//
// Capabilities go through the raw capget/capset system calls: three 64-bit
// masks are all this file needs, which is less code than linking libcap.
#include "broker/bastion/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "broker/bastion/privileges_internal.h"
#include "core/base/status_macros.h"

namespace jitgate::bastion {
namespace {

// CAP_* values are below 64; the kernel answers EINVAL past its last one.
constexpr int kMaxCaps = 64;
constexpr uint64_t kSwitchCaps = CapBit(CAP_SETUID) | CapBit(CAP_SETGID);

Status Failed(const std::string& what) {
  return InternalError("bastion: " + what + ": " + std::strerror(errno));
}

// Empties the bounding set, so that not even an exec of a binary with file
// capabilities could bring one back. Needs CAP_SETPCAP.
Status DropBoundingSet() {
  for (int cap = 0; cap < kMaxCaps; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the last
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return Failed("cannot drop capability " + std::to_string(cap) +
                    " from the bounding set");
    }
  }
  return OkStatus();
}

bool AnyAmbient() {
  for (int cap = 0; cap < kMaxCaps; ++cap) {
    const int set = ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
    if (set < 0) break;  // past the last (or no ambient sets at all)
    if (set == 1) return true;
  }
  return false;
}

// The checks after the drop trust no single call's return value: they ask
// the kernel what is left. No uid in `gone` may be regained (setuid to it
// must fail) and every capability set must be empty.
Status CheckNoWayBack(std::initializer_list<uid_t> gone) {
  const uid_t now = ::geteuid();
  for (uid_t back : gone) {
    if (back != now && ::setuid(back) == 0) {
      return InternalError("bastion: uid " + std::to_string(back) +
                           " could be regained after dropping privileges");
    }
  }
  ASSIGN_OR_RETURN(CapSets left, GetCaps());
  if (left.effective != 0 || left.permitted != 0 || left.inheritable != 0 ||
      AnyAmbient()) {
    return InternalError(
        "bastion: capabilities are left after dropping privileges");
  }
  return OkStatus();
}

}  // namespace

StatusOr<CapSets> GetCaps() {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return Failed("capget");
  CapSets c;
  c.effective = data[0].effective | uint64_t{data[1].effective} << 32;
  c.permitted = data[0].permitted | uint64_t{data[1].permitted} << 32;
  c.inheritable = data[0].inheritable | uint64_t{data[1].inheritable} << 32;
  return c;
}

Status SetCaps(const CapSets& c) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    data[i].effective = static_cast<uint32_t>(c.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(c.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(c.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) return Failed("capset");
  return OkStatus();
}

StatusOr<SessionIdentity> DropPrivileges(const std::string& run_as) {
  errno = 0;
  const passwd* pw = ::getpwnam(run_as.c_str());
  if (pw == nullptr)
    return FailedPreconditionError("bastion.run_as: no user '" + run_as + "'");
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  if (uid == 0)
    return FailedPreconditionError("bastion.run_as may not be root");

  const uid_t old_ruid = ::getuid();
  const uid_t old_euid = ::geteuid();
  ASSIGN_OR_RETURN(CapSets caps, GetCaps());
  const bool can_switch =
      old_euid == 0 || (caps.permitted & kSwitchCaps) == kSwitchCaps;
  if (can_switch) {
    if ((caps.effective & CapBit(CAP_SETPCAP)) != 0)
      RETURN_IF_ERROR(DropBoundingSet());
    if (old_euid != 0) {
      caps.effective |= kSwitchCaps;  // lowered by LowerSwitchCapabilities
      RETURN_IF_ERROR(SetCaps(caps));
    }
    // Groups first: setgroups and setresgid need CAP_SETGID, which a non-root
    // process keeps across setresuid but root loses with its uid.
    if (::setgroups(0, nullptr) != 0) return Failed("setgroups");
    if (::setresgid(gid, gid, gid) != 0)
      return Failed("setresgid to " + run_as);
    if (::setresuid(uid, uid, uid) != 0)
      return Failed("setresuid to " + run_as);
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (::getresuid(&r, &e, &s) != 0 || ::getresgid(&rg, &eg, &sg) != 0 ||
        r != uid || e != uid || s != uid || rg != gid || eg != gid ||
        sg != gid || ::getgroups(0, nullptr) != 0) {
      return InternalError("bastion: ids are not " + run_as +
                           "'s after the switch");
    }
  }
  // From root to another uid the kernel clears the permitted, effective and
  // ambient sets itself; from one non-root uid to another it keeps them all.
  // So clear them here in every case, the ambient set first (it must stay a
  // subset of the other two; EINVAL: a kernel without ambient sets).
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
      errno != EINVAL) {
    return Failed("cannot clear the ambient capabilities");
  }
  ASSIGN_OR_RETURN(CapSets left, GetCaps());
  // Without a capability, skip capset: a seccomp filter may deny it.
  if (left.effective != 0 || left.permitted != 0 || left.inheritable != 0) {
    RETURN_IF_ERROR(SetCaps(CapSets{}));
  }
  // Unchanged, the process was never root and keeps its own uids.
  RETURN_IF_ERROR(can_switch ? CheckNoWayBack({0, old_ruid, old_euid})
                             : CheckNoWayBack({0}));

  // The listener asked for SIGTERM when jitgated dies; changing uid cleared
  // that, so ask again (and go now if jitgated is already gone). The kernel
  // sends it with the dying parent's permissions: after a switch away from a
  // non-root jitgated it does not arrive, and the session ends instead when
  // its connection is shut down or by the service manager.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0)
    return Failed("PR_SET_PDEATHSIG");
  if (::getppid() == 1) return UnavailableError("bastion: jitgated is gone");
  if (::chdir("/") != 0) return Failed("chdir /");
  // Nothing executed from here on gains privileges (setuid bits, file
  // capabilities), and no other process of this uid may ptrace or dump us.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Failed("PR_SET_NO_NEW_PRIVS");
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return Failed("PR_SET_DUMPABLE");
  return can_switch ? SessionIdentity::kSwitched : SessionIdentity::kUnchanged;
}

Status LowerSwitchCapabilities() {
  if (::geteuid() == 0) return OkStatus();
  ASSIGN_OR_RETURN(CapSets caps, GetCaps());
  if ((caps.effective & kSwitchCaps) == 0) return OkStatus();
  caps.effective &= ~kSwitchCaps;
  return SetCaps(caps);
}

}  // namespace jitgate::bastion
