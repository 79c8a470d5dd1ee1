#include "broker/peer_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "core/base/unique_fd.h"

namespace jitgate::broker {
namespace {

// /proc/PID/stat is under 1 KiB (the command name is at most 64 bytes); the
// boot id is 37. Anything longer is not the file meant.
constexpr size_t kMaxProcFile = 4096;

std::optional<std::string> ReadProcFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string out(kMaxProcFile, '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == out.size()) return std::nullopt;
  out.resize(got);
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;  // one spelling each
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool IsBootId(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// This boot's id, read once: it cannot change while the process runs.
const std::string& BootId() {
  static const std::string id = [] {
    std::optional<std::string> read = ReadProcFile("/proc/sys/kernel/random/boot_id");
    if (!read.has_value()) return std::string();
    if (!read->empty() && read->back() == '\n') read->pop_back();
    return IsBootId(*read) ? *read : std::string();
  }();
  return id;
}

uint64_t StartTicks(pid_t pid) {
  std::optional<std::string> stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.has_value()) return 0;
  return StartTicksFromProcStat(*stat).value_or(0);
}

}  // namespace

std::optional<uint64_t> StartTicksFromProcStat(std::string_view stat) {
  // "PID (COMM) STATE PPID ...": COMM may hold ") ", so the fields after it
  // start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  // Fields 3 onwards, one space before each; the start time is field 22.
  for (int field = 3; field <= 22; ++field) {
    if (rest.empty() || rest[0] != ' ') return std::nullopt;
    rest.remove_prefix(1);
    size_t end = rest.find_first_of(" \n");
    std::string_view value = rest.substr(0, end);
    if (value.empty()) return std::nullopt;
    if (field == 22) {
      uint64_t ticks = 0;
      if (!ParseNumber(value, &ticks)) return std::nullopt;
      return ticks;
    }
    if (end == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(end);
  }
  return std::nullopt;
}

PeerProcess DescribePeerProcess(pid_t pid) {
  PeerProcess p;
  if (pid <= 0) return p;
  p.pid = pid;
  p.start_ticks = StartTicks(pid);
  p.boot_id = BootId();
  return p;
}

std::string EncodePeerProcess(const PeerProcess& p) {
  if (p.pid <= 0) return "";
  return std::to_string(p.pid) + " " + std::to_string(p.start_ticks) + " " + p.boot_id;
}

std::optional<PeerProcess> DecodePeerProcess(std::string_view text) {
  size_t a = text.find(' ');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  PeerProcess p;
  if (!ParseNumber(text.substr(0, a), &p.pid) || p.pid <= 0) return std::nullopt;
  if (!ParseNumber(text.substr(a + 1, b - a - 1), &p.start_ticks)) return std::nullopt;
  std::string_view boot = text.substr(b + 1);
  if (!boot.empty() && !IsBootId(boot)) return std::nullopt;
  p.boot_id = std::string(boot);
  return p;
}

bool PeerProcessGone(const PeerProcess& p) {
  if (p.pid <= 0) return false;
  if (!p.boot_id.empty()) {
    const std::string& now = BootId();
    if (!now.empty() && now != p.boot_id) return true;
  }
  // EPERM: it runs, as another user.
  if (::kill(p.pid, 0) != 0 && errno == ESRCH) return true;
  if (p.start_ticks != 0) {
    const uint64_t now = StartTicks(p.pid);
    if (now != 0 && now != p.start_ticks) return true;
  }
  return false;
}

}  // namespace jitgate::broker
