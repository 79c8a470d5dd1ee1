#include "broker/daemon_log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace jitgate::broker {

bool StderrIsJournal() {
  // JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; a
  // shell redirect or a pipe inherited from elsewhere does not match it.
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  uintmax_t dev = 0;
  uintmax_t ino = 0;
  if (std::sscanf(stream, "%ju:%ju", &dev, &ino) != 2) return false;
  struct stat st;
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

std::vector<std::string> JournalFieldsFor(std::string_view line, const LogFields& fields) {
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + std::string(line));
  out.push_back(fields.warning ? "PRIORITY=4" : "PRIORITY=6");
  out.push_back("SYSLOG_IDENTIFIER=jitgated");
  auto add = [&](const char* name, std::string_view value) {
    if (!value.empty()) out.push_back(std::string(name) + "=" + std::string(value));
  };
  add("JITGATE_REQUEST", fields.request);
  add("JITGATE_USER", fields.user);
  add("JITGATE_SERVICE", fields.service);
  add("JITGATE_DECISION", fields.decision);
  add("JITGATE_ACTOR", fields.actor);
  add("JITGATE_SESSION", fields.session);
  return out;
}

void DaemonLog(std::string_view line, const LogFields& fields) {
  static const bool journal = StderrIsJournal();
  if (journal) {
    std::vector<std::string> f = JournalFieldsFor(line, fields);
    std::vector<iovec> iov;
    iov.reserve(f.size());
    for (std::string& s : f) iov.push_back(iovec{s.data(), s.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
    // The journal refused it: the line still goes to stderr below.
  }
  std::string out = "jitgated: ";
  out.append(line);
  out.push_back('\n');
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

void NotifyReady(std::string_view status) {
  std::string s = "READY=1\nSTATUS=" + std::string(status);
  (void)sd_notify(0, s.c_str());
}

void NotifyReloading() {
  // MONOTONIC_USEC lets newer systemd (Type=notify-reload) match the reload;
  // older versions ignore it.
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  std::string s = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
  (void)sd_notify(0, s.c_str());
}

void NotifyStopping() { (void)sd_notify(0, "STOPPING=1"); }

}  // namespace jitgate::broker
