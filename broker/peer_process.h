// The process at the other end of a recording connection, described so that
// a broker started later can still ask whether that very process runs.
//
// A sudo session's recorder is the sudo process itself (the I/O plugin runs
// in it). After a broker restart its session waits for that process, which
// may be quiet for hours; it should stop waiting once the process is gone.
// A pid alone is not enough (pids are reused, and another boot reuses them
// all), so the description also holds the process's start time and the
// boot's id, each where the broker can read it.

#ifndef JITGATE_BROKER_PEER_PROCESS_H_
#define JITGATE_BROKER_PEER_PROCESS_H_

#include <stdint.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace jitgate::broker {

struct PeerProcess {
  pid_t pid = 0;             // 0: unknown (another pid namespace)
  uint64_t start_ticks = 0;  // /proc/PID/stat field 22; 0: not readable
  std::string boot_id;       // /proc/sys/kernel/random/boot_id; empty: not readable
};

// Describes pid as this process sees it now. What it cannot read is left
// unknown: a broker under systemd's ProtectProc=invisible sees only its own
// processes' /proc entries, and ProcSubset=pid hides the boot id.
PeerProcess DescribePeerProcess(pid_t pid);

// "PID START_TICKS BOOT_ID" (BOOT_ID may be empty); "" for an unknown pid.
std::string EncodePeerProcess(const PeerProcess& p);
// The inverse; nullopt for "" or for anything EncodePeerProcess cannot have
// written.
std::optional<PeerProcess> DecodePeerProcess(std::string_view text);

// True only when it is certain that the described process no longer runs:
// this is another boot, no process has its pid (kill(pid, 0) fails with
// ESRCH), or the process with its pid started at another time. Unknown
// parts count as a match, so an unreadable /proc never ends a live session.
bool PeerProcessGone(const PeerProcess& p);

// The start time (field 22, clock ticks after boot) in the text of a
// /proc/PID/stat file; nullopt if it is not one. The command name (field 2)
// may hold any bytes, spaces and parentheses included.
std::optional<uint64_t> StartTicksFromProcStat(std::string_view stat);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_PEER_PROCESS_H_
