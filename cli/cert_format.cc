#include "cli/cert_format.h"

#include <array>
#include <cstdio>
#include <ctime>
#include <limits>

#include "cli/approver_format.h"
#include "core/base/text.h"
#include "core/config/reader.h"

namespace jitgate::cli {

namespace {

constexpr uint64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

std::string Quoted(std::string_view s) { return "'" + EscapeForTerminal(s) + "'"; }

std::string KindName(wire::CertKind kind) {
  switch (kind) {
    case wire::CertKind::kUser:
      return "user";
    case wire::CertKind::kHost:
      return "host";
  }
  return "kind " + std::to_string(int(kind));
}

std::string JoinEscaped(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += EscapeForTerminal(s);
  }
  return out;
}

// Columns are aligned by code points: every cell is escaped (printable,
// valid UTF-8), so continuation bytes are the only ones not to count.
size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

bool ToTm(uint64_t unix_seconds, bool utc, struct tm* tm) {
  if (unix_seconds > uint64_t(std::numeric_limits<time_t>::max())) return false;
  time_t t = time_t(unix_seconds);
  return (utc ? gmtime_r(&t, tm) : localtime_r(&t, tm)) != nullptr;
}

std::string ActionVerb(CertAction action) {
  switch (action) {
    case CertAction::kRequest:
      return "request a certificate";
    case CertAction::kList:
      return "list certificates";
    case CertAction::kRevoke:
      return "revoke certificates";
    case CertAction::kSignHost:
      return "have host keys signed";
    case CertAction::kCaInfo:
      return "read the CA's public key";
  }
  return "do that";
}

}  // namespace

StatusOr<int64_t> ParseDurationSeconds(std::string_view text, int64_t max_seconds) {
  int64_t seconds = 0;
  if (AllDigits(text)) {
    // Plain seconds; 19 digits cannot overflow int64.
    if (text.size() > 18) {
      return InvalidArgumentError("bad duration " + Quoted(text) + ": too large");
    }
    for (char c : text) seconds = seconds * 10 + (c - '0');
  } else {
    StatusOr<std::chrono::nanoseconds> d = config::ParseDuration(text);
    if (!d.ok()) return InvalidArgumentError(EscapeForTerminal(d.status().message()));
    if (uint64_t(d->count()) % kNanosPerSecond != 0) {
      return InvalidArgumentError("bad duration " + Quoted(text) + ": not whole seconds");
    }
    seconds = int64_t(uint64_t(d->count()) / kNanosPerSecond);
  }
  if (seconds < 1) {
    return InvalidArgumentError("bad duration " + Quoted(text) + ": must be at least 1s");
  }
  if (seconds > max_seconds) {
    return InvalidArgumentError("bad duration " + Quoted(text) + ": must be at most " +
                                FormatSeconds(max_seconds));
  }
  return seconds;
}

std::optional<uint64_t> ParseSerial(std::string_view text) {
  if (!AllDigits(text) || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    uint64_t digit = uint64_t(c - '0');
    if (v > (kForever - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  if (v == 0) return std::nullopt;
  return v;
}

StatusOr<RevokeTarget> ClassifyRevokeArgument(std::string_view arg, RevokeArgKind kind) {
  RevokeTarget t;
  if (kind != RevokeArgKind::kRequest) {
    if (std::optional<uint64_t> serial = ParseSerial(arg)) {
      t.serial = *serial;
      return t;
    }
    if (kind == RevokeArgKind::kSerial) {
      return InvalidArgumentError(Quoted(arg) +
                                  " is not a certificate serial (a decimal number from 1 to " +
                                  std::to_string(kForever) + ")");
    }
  }
  std::optional<std::string> id = NormalizeIdSelector(arg);
  if (!id.has_value()) {
    return InvalidArgumentError(Quoted(arg) +
                                (kind == RevokeArgKind::kRequest
                                     ? " is not a request id (4 to 32 characters of 0-9 and a-z)"
                                     : " is neither a certificate serial nor a request id (4 to 32 "
                                       "characters of 0-9 and a-z)"));
  }
  t.request_id = std::move(*id);
  return t;
}

std::string ShellQuote(std::string_view s) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) ||
           std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
  };
  bool all_plain = !s.empty();
  for (char c : s) all_plain = all_plain && plain(c);
  if (all_plain) return std::string(s);
  if (IsPrintableText(s)) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  // Not printable: spell every byte outside printable ASCII so that what is
  // shown is both harmless and, pasted into bash or zsh, the same bytes.
  std::string out = "$'";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "'";
}

StatusOr<std::vector<std::string>> SplitList(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) {
      return InvalidArgumentError("empty " + std::string(what) + " in " + Quoted(text));
    }
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool IsSafeName(std::string_view name) {
  if (name.empty() || name.size() > wire::kMaxNameField) return false;
  if (name[0] == '.' || name[0] == '-') return false;
  if (!IsPrintableText(name)) return false;
  return name.find_first_of(" \t/,") == std::string_view::npos;
}

std::string DefaultKeyPath(std::string_view home, std::string_view login, std::string_view host) {
  std::string h(home);
  while (h.size() > 1 && h.back() == '/') h.pop_back();
  return h + "/.ssh/jitgate/" + std::string(login) + "@" + std::string(host);
}

std::string CertPathForKey(std::string_view key_path) {
  return std::string(key_path) + "-cert.pub";
}

std::string CertPathForPublicKeyFile(std::string_view pub_path) {
  constexpr std::string_view kPub = ".pub";
  if (pub_path.size() > kPub.size() && pub_path.substr(pub_path.size() - kPub.size()) == kPub) {
    pub_path.remove_suffix(kPub.size());
  }
  return std::string(pub_path) + "-cert.pub";
}

std::string FormatTime(uint64_t unix_seconds, bool utc) {
  struct tm tm;
  if (!ToTm(unix_seconds, utc, &tm)) return std::to_string(unix_seconds);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string FormatCertState(const wire::CertInfo& c, uint64_t now, bool utc) {
  if (c.revoked_at != 0) {
    return c.revoked_by.empty() ? "revoked" : "revoked by " + EscapeForTerminal(c.revoked_by);
  }
  if (now >= c.valid_before) return "expired";
  if (now < c.valid_after) return "not yet valid";
  if (c.valid_before == kForever) return "forever";
  // The time alone only when it is later today; otherwise the date too.
  std::string until = FormatTime(c.valid_before, utc);
  std::string today = FormatTime(now, utc);
  if (until.size() != 19 || today.size() != 19) return "until " + until;
  if (until.compare(0, 10, today, 0, 10) == 0) return "until " + until.substr(11);
  return "until " + until.substr(0, 16);
}

std::string FormatCertTable(const std::vector<wire::CertInfo>& certs, uint64_t now, bool utc) {
  constexpr size_t kColumns = 6;
  using Row = std::array<std::string, kColumns>;
  std::vector<Row> rows;
  rows.reserve(certs.size() + 1);
  rows.push_back({"SERIAL", "KIND", "PRINCIPALS", "KEY ID", "VALID", "REQUEST"});
  for (const wire::CertInfo& c : certs) {
    rows.push_back({std::to_string(c.serial), KindName(c.kind), JoinEscaped(c.principals, ","),
                    EscapeForTerminal(c.key_id), FormatCertState(c, now, utc),
                    c.request_id.empty() ? "-" : EscapeForTerminal(c.request_id)});
  }
  std::array<size_t, kColumns> width{};
  for (const Row& r : rows) {
    for (size_t i = 0; i < kColumns; ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
  }
  std::string out;
  for (const Row& r : rows) {
    std::string line;
    for (size_t i = 0; i < kColumns; ++i) {
      line += r[i];
      if (i + 1 < kColumns) line += std::string(width[i] - DisplayWidth(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

nlohmann::json CertToJson(const wire::CertInfo& c) {
  return {
      {"serial", c.serial},
      {"kind", KindName(c.kind)},
      {"key_id", c.key_id},
      {"principals", c.principals},
      {"valid_after", c.valid_after},
      {"valid_before", c.valid_before},
      {"fingerprint", c.fingerprint},
      {"request", c.request_id},
      {"issued_to", c.issued_to},
      {"issued_at", c.issued_at},
      {"revoked_at", c.revoked_at},
      {"revoked_by", c.revoked_by},
      {"revoke_comment", c.revoke_comment},
  };
}

std::string FormatRevokedLine(const wire::CertInfo& c) {
  return "revoked certificate " + std::to_string(c.serial) + " (" + KindName(c.kind) +
         ", key id \"" + EscapeForTerminal(c.key_id) + "\", principals " +
         JoinEscaped(c.principals, ",") + ")";
}

std::string DescribeCertError(const wire::Error& e, CertAction action, std::string_view target) {
  std::string what = EscapeForTerminal(target);
  std::string broker = EscapeForTerminal(e.message);
  switch (e.code) {
    case wire::ErrorCode::kNoCa:
      return broker.empty() ? "the broker has no SSH certificate authority configured" : broker;
    case wire::ErrorCode::kNotFound:
      if (action == CertAction::kRevoke) {
        return "no certificate or request matches " + what + " (or you may not see it)";
      }
      break;
    case wire::ErrorCode::kAmbiguous:
      return what + " matches several requests; type more of its id";
    case wire::ErrorCode::kPermissionDenied:
      return "you may not " + ActionVerb(action) + (broker.empty() ? "" : " (" + broker + ")");
    case wire::ErrorCode::kInvalidRequest:
      return "the broker refused: " + (broker.empty() ? std::string("invalid request") : broker);
    case wire::ErrorCode::kBusy:
      return "the broker is busy; try again later";
    default:
      break;
  }
  std::string out = "broker error (" + std::string(wire::ErrorCodeName(e.code)) + ")";
  if (!broker.empty()) out += ": " + broker;
  return out;
}

}  // namespace jitgate::cli
