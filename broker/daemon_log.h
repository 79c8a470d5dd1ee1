// DaemonLog: jitgated's log lines and its readiness notices to systemd.
//
// A line goes to stderr as "jitgated: TEXT". When stderr is connected to the
// journal (systemd sets JOURNAL_STREAM to the device and inode of the stream
// it gave the service, and stderr is that stream), the line is sent to the
// journal instead, with structured fields an operator can filter on:
//
//   journalctl -u jitgated JITGATE_REQUEST=7f3a9c02
//   journalctl -u jitgated JITGATE_DECISION=denied JITGATE_USER=alice
//
// Fields: JITGATE_REQUEST, JITGATE_USER, JITGATE_SERVICE, JITGATE_DECISION,
// JITGATE_ACTOR, JITGATE_SESSION (each only when set), SYSLOG_IDENTIFIER
// jitgated and PRIORITY (6, info; 4, warning).
//
// The Notify* calls tell systemd (Type=notify) what the daemon is doing:
// READY=1 once it serves, RELOADING=1 then READY=1 around a reload,
// STOPPING=1. They do nothing when the daemon was not started by systemd
// (NOTIFY_SOCKET unset). Thread-safe.
#ifndef JITGATE_BROKER_DAEMON_LOG_H_
#define JITGATE_BROKER_DAEMON_LOG_H_

#include <string>
#include <string_view>
#include <vector>

namespace jitgate::broker {

struct LogFields {
  // Every member has a default, so that designated initializers may name
  // only what they set (and -Wmissing-field-initializers stays quiet).
  std::string_view request = {};   // request id
  std::string_view user = {};      // the requesting user
  std::string_view service = {};   // sshd, sudo, bastion, ssh-cert, ...
  std::string_view decision = {};  // approved, denied, expired, cancelled, used, ...
  std::string_view actor = {};     // who decided (an approver, "jitgated")
  std::string_view session = {};   // recorded session id
  bool warning = false;            // PRIORITY 4 instead of 6
};

// Writes one log line (see above). line has no trailing newline.
void DaemonLog(std::string_view line, const LogFields& fields = {});

// True when stderr is the journal stream systemd gave this process.
bool StderrIsJournal();

// JournalFieldsFor returns the "NAME=value" journal fields DaemonLog sends
// for line and fields (MESSAGE first). For tests.
std::vector<std::string> JournalFieldsFor(std::string_view line, const LogFields& fields);

void NotifyReady(std::string_view status);
void NotifyReloading();
void NotifyStopping();

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_DAEMON_LOG_H_
