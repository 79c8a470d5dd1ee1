#include "cli/approver_format.h"

#include <cctype>
#include <cstdio>
#include <ctime>

#include "ca/sshkey.h"
#include "core/base/bytes.h"
#include "core/base/text.h"

namespace jitgate::cli {

namespace {


std::string Or(std::string s, std::string_view fallback) {
  return s.empty() ? std::string(fallback) : s;
}

std::string_view StateName(wire::RequestState s) { return wire::RequestStateName(s); }


std::string ActionVerb(ApproverAction action) {
  switch (action) {
    case ApproverAction::kApprove:
      return "approve";
    case ApproverAction::kDeny:
      return "deny";
    case ApproverAction::kShow:
      return "see";
    case ApproverAction::kList:
      return "list requests";
    case ApproverAction::kFollow:
      return "follow requests";
  }
  return "do that";
}

}  // namespace

std::string ResolveSocketPath(const std::optional<std::string>& flag, const char* env_value) {
  if (flag.has_value()) return *flag;
  if (env_value != nullptr && env_value[0] != '\0') return env_value;
  return kDefaultSocketPath;
}


std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  char buf[48];
  if (seconds < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", (long long)seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)(seconds / 60),
                  (long long)(seconds % 60));
  } else if (seconds < 86400) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)(seconds / 3600),
                  (long long)(seconds % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh", (long long)(seconds / 86400),
                  (long long)(seconds % 86400 / 3600));
  }
  return buf;
}

std::string FormatExpiry(const wire::RequestInfo& r, uint64_t now) {
  if (r.state != wire::RequestState::kPending) return "";
  if (r.expires_at > now) return "expires in " + FormatDuration(int64_t(r.expires_at - now));
  return "expired " + FormatDuration(int64_t(now - r.expires_at)) + " ago";
}

std::string FormatUtc(uint64_t unix_seconds) {
  time_t t = time_t(unix_seconds);
  struct tm tm;
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

int CountApprovals(const wire::RequestInfo& r) {
  int n = 0;
  for (const wire::Vote& v : r.votes) n += v.verdict == wire::Verdict::kApprove;
  return n;
}

std::string FormatRequestLine(const wire::RequestInfo& r, uint64_t now) {
  const wire::RequestFields& f = r.fields;
  std::string line = EscapeForTerminal(r.id);
  std::string state(StateName(r.state));
  state.resize(std::max<size_t>(state.size(), 9), ' ');
  line += "  " + state + " " + EscapeForTerminal(f.service) + "  " + EscapeForTerminal(f.user) +
          " \u2192 " + EscapeForTerminal(f.target_user) + "@" + EscapeForTerminal(f.host);
  if (!f.remote_addr.empty()) line += " from " + EscapeForTerminal(f.remote_addr);
  if (!f.command.empty()) line += "  " + EscapeForTerminal(f.command);
  std::string tail = std::to_string(CountApprovals(r)) + "/" + std::to_string(r.approvals_needed);
  std::string expiry = FormatExpiry(r, now);
  if (!expiry.empty()) tail += ", " + expiry;
  line += "  (" + tail + ")";
  return line;
}

namespace {

// "SHA256:..." of a key line, or "" if it does not parse.
std::string KeyFingerprint(const std::string& line) {
  StatusOr<ca::PublicKey> key = ca::PublicKey::FromLine(line);
  return key.ok() ? key->Fingerprint() : "";
}

// "ED25519 SHA256:..." for the detail view.
std::string KeySummary(const std::string& line) {
  StatusOr<ca::PublicKey> key = ca::PublicKey::FromLine(line);
  if (!key.ok()) return "(unreadable key: " + EscapeForTerminal(key.status().message()) + ")";
  return std::string(ca::KeyTypeLabel(key->type())) + " " + key->Fingerprint();
}

}  // namespace

std::string FormatRequestDetail(const wire::RequestInfo& r, uint64_t now) {
  const wire::RequestFields& f = r.fields;
  std::string out;
  auto row = [&out](std::string_view label, const std::string& value) {
    std::string l(label);
    l.resize(std::max<size_t>(l.size(), 10), ' ');
    out += l + value + "\n";
  };
  row("request", EscapeForTerminal(r.id) + " (" + std::string(StateName(r.state)) + ")");
  row("service", EscapeForTerminal(f.service));
  row("user", EscapeForTerminal(f.user) + " \u2192 " + EscapeForTerminal(f.target_user) + "@" +
                  EscapeForTerminal(f.host));
  row("from", Or(EscapeForTerminal(f.remote_addr), "-"));
  row("tty", Or(EscapeForTerminal(f.tty), "-"));
  row("command", Or(EscapeForTerminal(f.command), "(login shell)"));
  row("cwd", Or(EscapeForTerminal(f.cwd), "-"));
  row("reason", Or(EscapeForTerminal(f.reason), "(none given)"));
  if (!f.public_key.empty()) {
    // A certificate request: the approver sees which key will be certified.
    row("cert key", KeySummary(f.public_key));
  }
  if (!f.public_key.empty() || f.ttl_seconds != 0) {
    row("lifetime", f.ttl_seconds != 0
                        ? FormatDuration(f.ttl_seconds) + " asked (at most the policy's ttl)"
                        : "the policy's ttl");
  }
  row("filed by", Or(EscapeForTerminal(r.filed_by), "-"));
  row("policy", "approvers " + Or(EscapeForTerminal(r.approvers), "-") + "; " +
                    std::to_string(CountApprovals(r)) + " of " +
                    std::to_string(r.approvals_needed) + " approvals");
  if (r.votes.empty()) {
    row("votes", "none yet");
  } else {
    bool first = true;
    for (const wire::Vote& v : r.votes) {
      std::string text = (v.verdict == wire::Verdict::kApprove ? "approved by " : "denied by ") +
                         EscapeForTerminal(v.approver) + " at " + FormatUtc(v.at);
      if (!v.comment.empty()) text += ": \"" + EscapeForTerminal(v.comment) + "\"";
      row(first ? "votes" : "", text);
      first = false;
    }
  }
  std::string created = FormatUtc(r.created_at);
  if (now >= r.created_at) created += " (" + FormatDuration(int64_t(now - r.created_at)) + " ago)";
  row("created", created);
  std::string expiry = FormatExpiry(r, now);
  if (!expiry.empty()) row("expires", expiry.substr(expiry.find(' ') + 1));
  row("digest", HexEncode(r.digest));
  return out;
}

nlohmann::json RequestToJson(const wire::RequestInfo& r) {
  const wire::RequestFields& f = r.fields;
  nlohmann::json votes = nlohmann::json::array();
  for (const wire::Vote& v : r.votes) {
    votes.push_back({{"verdict", v.verdict == wire::Verdict::kApprove ? "approve" : "deny"},
                     {"approver", v.approver},
                     {"at", v.at},
                     {"comment", v.comment}});
  }
  return {
      {"id", r.id},
      {"state", std::string(StateName(r.state))},
      {"service", f.service},
      {"user", f.user},
      {"target_user", f.target_user},
      {"host", f.host},
      {"remote_addr", f.remote_addr},
      {"tty", f.tty},
      {"command", f.command},
      {"cwd", f.cwd},
      {"reason", f.reason},
      {"public_key", f.public_key},
      {"key_fingerprint", f.public_key.empty() ? "" : KeyFingerprint(f.public_key)},
      {"ttl_seconds", f.ttl_seconds},
      {"digest", HexEncode(r.digest)},
      {"filed_by", r.filed_by},
      {"approvers", r.approvers},
      {"approvals", CountApprovals(r)},
      {"approvals_needed", r.approvals_needed},
      {"created_at", r.created_at},
      {"expires_at", r.expires_at},
      {"votes", std::move(votes)},
  };
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string DescribeBrokerError(const wire::Error& e, ApproverAction action, std::string_view id) {
  std::string rid = EscapeForTerminal(id);
  std::string broker = EscapeForTerminal(e.message);
  switch (e.code) {
    case wire::ErrorCode::kNotFound:
      return "no request matches " + rid + " (or you may not see it)";
    case wire::ErrorCode::kAmbiguous:
      return rid + " matches several requests; type more of its id";
    case wire::ErrorCode::kPermissionDenied:
      if (action == ApproverAction::kApprove || action == ApproverAction::kDeny) {
        return "you are not an approver of request " + rid + "; nothing was changed";
      }
      return "you may not " + ActionVerb(action) + (rid.empty() ? "" : " " + rid) +
             (broker.empty() ? "" : " (" + broker + ")");
    case wire::ErrorCode::kDigestMismatch:
      return "request " + rid +
             " is not the request you were shown (it changed or the prefix now names another); "
             "nothing was " +
             (action == ApproverAction::kDeny ? "denied" : "approved");
    case wire::ErrorCode::kNotPending:
      return "request " + rid + " is no longer pending (already decided, expired or cancelled)";
    case wire::ErrorCode::kSelfApproval:
      return "you cannot " + ActionVerb(action) + " your own request " + rid;
    case wire::ErrorCode::kDuplicateVote:
      return "you have already voted on request " + rid;
    case wire::ErrorCode::kBusy:
      return "the broker is busy; try again later";
    default:
      break;
  }
  std::string out = "broker error (" + std::string(wire::ErrorCodeName(e.code)) + ")";
  if (!broker.empty()) out += ": " + broker;
  return out;
}

std::optional<std::string> NormalizeIdSelector(std::string_view typed) {
  if (typed.size() < wire::kMinRequestIdPrefix || typed.size() > wire::kMaxRequestIdLength) {
    return std::nullopt;
  }
  std::string id;
  for (char c : typed) id += char(std::tolower(static_cast<unsigned char>(c)));
  if (!wire::IsValidRequestId(id)) return std::nullopt;
  return id;
}

}  // namespace jitgate::cli
