#include "broker/bastion/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "broker/bastion/privileges_internal.h"
#include "core/base/unique_fd.h"

namespace jitgate::bastion {
namespace {

// The broker's user in the cases that need a non-root one: an unprivileged
// uid and gid without an account, as good as `jitgate` for the kernel.
constexpr uid_t kBrokerUid = 4242;
constexpr gid_t kBrokerGid = 4242;
constexpr uint64_t kSwitchCaps = CapBit(CAP_SETUID) | CapBit(CAP_SETGID);

// Runs body in a forked child, because what it changes is for good and the
// test process must keep its privileges. Returns what body returned ("ok" or
// the first failed check), or how the child died.
std::string InChild(const std::function<std::string()>& body) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "pipe2 failed";
  UniqueFd in(p[0]), out(p[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    in.reset();
    const std::string said = body();
    (void)!::write(out.get(), said.data(), said.size());
    ::_exit(0);
  }
  out.reset();
  std::string said;
  char buf[512];
  ssize_t n;
  while ((n = ::read(in.get(), buf, sizeof(buf))) > 0)
    said.append(buf, static_cast<size_t>(n));
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return "child died (wait status " + std::to_string(status) + "): " + said;
  }
  return said;
}

std::string Describe(const StatusOr<SessionIdentity>& who) {
  if (!who.ok())
    return "error " + std::to_string(static_cast<int>(who.status().code())) +
           ": " + who.status().message();
  return *who == SessionIdentity::kSwitched ? "switched" : "unchanged";
}

const passwd& Nobody() {
  static const passwd pw = *::getpwnam("nobody");
  return pw;
}

// "ok" when the process has no capability in any set and cannot become root,
// and has the other settings DropPrivileges promises.
std::string NothingLeft() {
  StatusOr<CapSets> caps = GetCaps();
  if (!caps.ok()) return caps.status().message();
  if (caps->effective != 0 || caps->permitted != 0 || caps->inheritable != 0) {
    return "capabilities left: eff " + std::to_string(caps->effective) +
           " prm " + std::to_string(caps->permitted) + " inh " +
           std::to_string(caps->inheritable);
  }
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) {
      return "ambient capability " + std::to_string(cap) + " left";
    }
  }
  if (::setuid(0) == 0) return "setuid(0) succeeded";
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
    return "no_new_privs not set";
  if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) return "still dumpable";
  return "ok";
}

// "ok" when the process runs as pw for good: all uids and gids, no
// supplementary group, nothing left (NothingLeft).
std::string IsForGood(const passwd& pw) {
  uid_t r, e, s;
  gid_t rg, eg, sg;
  if (::getresuid(&r, &e, &s) != 0 || r != pw.pw_uid || e != pw.pw_uid ||
      s != pw.pw_uid) {
    return "uids " + std::to_string(r) + "/" + std::to_string(e) + "/" +
           std::to_string(s);
  }
  if (::getresgid(&rg, &eg, &sg) != 0 || rg != pw.pw_gid || eg != pw.pw_gid ||
      sg != pw.pw_gid) {
    return "gids " + std::to_string(rg) + "/" + std::to_string(eg) + "/" +
           std::to_string(sg);
  }
  if (::getgroups(0, nullptr) != 0) return "supplementary groups left";
  return NothingLeft();
}

// In the child, as root: become kBrokerUid holding only the given
// capabilities, permitted, inheritable and ambient, as jitgated under the
// packaged unit (AmbientCapabilities=) after LowerSwitchCapabilities.
std::string BecomeBrokerUser(uint64_t caps) {
  const gid_t groups[] = {kBrokerGid, 0};  // a group to be cleared
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 ||
      ::setgroups(2, groups) != 0 ||
      ::setresgid(kBrokerGid, kBrokerGid, kBrokerGid) != 0 ||
      ::setresuid(kBrokerUid, kBrokerUid, kBrokerUid) != 0) {
    return "cannot become the broker's user";
  }
  CapSets set;
  set.effective = set.permitted = set.inheritable = caps;
  if (!SetCaps(set).ok()) return "capset failed";
  for (int cap : {CAP_SETUID, CAP_SETGID}) {
    if ((caps & CapBit(cap)) != 0 &&
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      return "cannot raise ambient capability " + std::to_string(cap);
    }
  }
  if (Status s = LowerSwitchCapabilities(); !s.ok()) return s.message();
  StatusOr<CapSets> now = GetCaps();
  if (!now.ok() || now->effective != (caps & ~kSwitchCaps) ||
      now->permitted != caps) {
    return "LowerSwitchCapabilities did not lower exactly CAP_SETUID and "
           "CAP_SETGID";
  }
  return "ok";
}

TEST(DropPrivilegesTest, RootSwitchesToRunAsAndKeepsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: switches uid";
  EXPECT_EQ(InChild([] {
              std::string r = Describe(DropPrivileges("nobody"));
              return r != "switched" ? r : IsForGood(Nobody());
            }),
            "ok");
}

TEST(DropPrivilegesTest, NonRootWithSetuidAndSetgidSwitchesAndKeepsNothing) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: sets up a non-root user with capabilities";
  EXPECT_EQ(InChild([] {
              std::string r = BecomeBrokerUser(kSwitchCaps);
              if (r != "ok") return r;
              r = Describe(DropPrivileges("nobody"));
              if (r != "switched") return r;
              if (::setuid(kBrokerUid) == 0)
                return std::string("the broker's uid came back");
              return IsForGood(Nobody());
            }),
            "ok");
}

TEST(DropPrivilegesTest, NonRootWithOnlyOneOfTheTwoStaysAndKeepsNothing) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root: sets up a non-root user with capabilities";
  EXPECT_EQ(InChild([] {
              std::string r = BecomeBrokerUser(CapBit(CAP_SETUID));
              if (r != "ok") return r;
              r = Describe(DropPrivileges("nobody"));
              if (r != "unchanged") return r;
              if (::geteuid() != kBrokerUid) return std::string("uid changed");
              return NothingLeft();
            }),
            "ok");
}

TEST(DropPrivilegesTest, NonRootWithoutCapabilitiesStays) {
  EXPECT_EQ(InChild([] {
              if (::geteuid() == 0 &&
                  (::setresgid(kBrokerGid, kBrokerGid, kBrokerGid) != 0 ||
                   ::setresuid(kBrokerUid, kBrokerUid, kBrokerUid) != 0)) {
                return std::string("cannot become the broker's user");
              }
              const uid_t before = ::geteuid();
              std::string r = Describe(DropPrivileges("nobody"));
              if (r != "unchanged") return r;
              if (::geteuid() != before || ::getuid() != before)
                return std::string("uid changed");
              return NothingLeft();
            }),
            "ok");
}

TEST(DropPrivilegesTest, RootAndUnknownUsersAreRefusedBeforeAnyChange) {
  const std::string code =
      std::to_string(static_cast<int>(StatusCode::kFailedPrecondition));
  for (const auto& [run_as, want] :
       {std::pair<std::string, std::string>{"root",
                                            "bastion.run_as may not be root"},
        {"no-such-user-jitgate",
         "bastion.run_as: no user 'no-such-user-jitgate'"}}) {
    EXPECT_EQ(InChild([run_as = run_as] {
                const uid_t before = ::geteuid();
                std::string r = Describe(DropPrivileges(run_as));
                if (::geteuid() != before) r += " (and the uid changed)";
                return r;
              }),
              "error " + code + ": " + want)
        << run_as;
  }
}

}  // namespace
}  // namespace jitgate::bastion
