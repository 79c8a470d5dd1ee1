#include "broker/config.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <set>
#include <utility>

#include "core/base/bytes.h"
#include "core/base/status_macros.h"
#include "core/config/reader.h"
#include "core/config/yaml.h"
#include "core/config/yaml_internal.h"
#include "core/crypto/crypto.h"

namespace jitgate::broker {

namespace {

using config::Find;
using config::MappingEntry;
using config::Node;
using config::internal::Quote;

// sockaddr_un::sun_path is 108 bytes on Linux, including the terminating NUL.
constexpr size_t kMaxSocketPath = 107;
constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxUserNameBytes = 256;
constexpr int64_t kMaxQuorum = 1000;

// "file:line: 'broker.socket': message" (or "file:line: message" at the root).
Status Error(const Node& node, std::string_view message) {
  std::string prefix = node.mark().ToString() + ": ";
  if (!node.path().empty()) prefix += Quote(node.path()) + ": ";
  return InvalidArgumentError(prefix + std::string(message));
}

Status ErrorAt(const config::Mark& mark, std::string_view message) {
  return InvalidArgumentError(mark.ToString() + ": " + std::string(message));
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// Identifiers jitgate defines itself (policy, approver group and bastion
// target names): short, printable, and safe in messages, JSON and URLs.
bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}
constexpr char kIdentifierRule[] =
    "letters, digits, '_', '.' and '-', at most 64 bytes";

// Local user names as NSS may return them (including "name@domain" from
// SSSD), excluding what can never be a user: empty, whitespace or control
// characters, separators of passwd/group files, a leading '-'.
bool IsUserName(std::string_view s) {
  if (s.empty() || s.size() > kMaxUserNameBytes || s[0] == '-') return false;
  for (unsigned char c : s) {
    if (c <= ' ' || c == 0x7f || c == ':' || c == ',' || c == '/') return false;
  }
  return true;
}

StatusOr<std::string> UserNameOf(const Node& node) {
  ASSIGN_OR_RETURN(std::string name, config::AsString(node));
  if (!IsUserName(name)) {
    return Error(node, "not a valid user name: " + Quote(name));
  }
  return name;
}

// A list of user names, none repeated.
StatusOr<std::vector<std::string>> UserListOf(const Node& list) {
  if (!list.is_sequence()) {
    return Error(list, "expected a list, got " +
                           std::string(config::KindName(list.kind())));
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Node& item : list.items()) {
    ASSIGN_OR_RETURN(std::string name, UserNameOf(item));
    if (!seen.insert(name).second) {
      return Error(item, Quote(name) + " is listed twice");
    }
    out.push_back(std::move(name));
  }
  return out;
}

// An absolute path under key, or fallback when the key is absent.
StatusOr<std::string> PathOf(const Node& map, std::string_view key,
                             const std::string* fallback) {
  const Node* node = Find(map, key);
  if (node == nullptr) {
    if (fallback != nullptr) return *fallback;
    return config::GetString(map, key);  // reports the missing key
  }
  ASSIGN_OR_RETURN(std::string path, config::AsString(*node));
  if (path.empty() || path[0] != '/') {
    return Error(*node, "expected an absolute path, got " + Quote(path));
  }
  return path;
}

StatusOr<std::string> RequiredPath(const Node& map, std::string_view key) {
  return PathOf(map, key, nullptr);
}
StatusOr<std::string> OptionalPath(const Node& map, std::string_view key,
                                   const std::string& fallback) {
  return PathOf(map, key, &fallback);
}

// A non-empty string under key (required).
StatusOr<std::string> NonEmptyString(const Node& map, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, config::GetString(map, key));
  if (s.empty()) return Error(*Find(map, key), "must not be empty");
  return s;
}

// A duration under key within [min, max], or fallback when absent.
StatusOr<std::chrono::nanoseconds> BoundedDuration(
    const Node& map, std::string_view key, std::chrono::nanoseconds fallback,
    std::chrono::nanoseconds min, std::chrono::nanoseconds max,
    std::string_view range) {
  ASSIGN_OR_RETURN(std::chrono::nanoseconds d,
                   config::GetDuration(map, key, fallback));
  if (d < min || d > max) {
    const Node* node = Find(map, key);
    return Error(*node, "must be from " + std::string(range) + ", got " +
                            Quote(node->value()));
  }
  return d;
}

StatusOr<BrokerSettings> ParseBroker(const Node* node) {
  BrokerSettings b;
  if (node == nullptr) return b;
  RETURN_IF_ERROR(
      config::CheckKeys(*node, {"socket", "state_dir", "submitters", "recorder_group",
                                "recorder_resume_grace"}));
  ASSIGN_OR_RETURN(b.socket, OptionalPath(*node, "socket", b.socket));
  if (b.socket.size() > kMaxSocketPath) {
    return Error(*Find(*node, "socket"), "socket path is longer than " +
                                             std::to_string(kMaxSocketPath) +
                                             " bytes and cannot be bound");
  }
  ASSIGN_OR_RETURN(b.state_dir, OptionalPath(*node, "state_dir", b.state_dir));
  if (const Node* s = Find(*node, "submitters")) {
    ASSIGN_OR_RETURN(b.submitters, UserListOf(*s));
  }
  ASSIGN_OR_RETURN(b.recorder_group, config::GetString(*node, "recorder_group", ""));
  if (const Node* g = Find(*node, "recorder_group"); g != nullptr && !IsIdentifier(b.recorder_group)) {
    return Error(*g, "bad group name " + Quote(b.recorder_group) + " (" + kIdentifierRule + ")");
  }
  ASSIGN_OR_RETURN(b.recorder_resume_grace,
                   BoundedDuration(*node, "recorder_resume_grace", kDefaultRecorderResumeGrace,
                                   std::chrono::milliseconds(100), kMaxRecorderResumeGrace,
                                   "100ms to 1d"));
  return b;
}

StatusOr<StoreSettings> ParseStore(const Node* node,
                                   const BrokerSettings& broker) {
  StoreSettings s;
  s.dir = broker.state_dir + "/store";
  if (node == nullptr) return s;
  RETURN_IF_ERROR(config::CheckKeys(*node, {"dir", "key", "group"}));
  ASSIGN_OR_RETURN(s.dir, OptionalPath(*node, "dir", s.dir));
  ASSIGN_OR_RETURN(s.key, OptionalPath(*node, "key", s.key));
  ASSIGN_OR_RETURN(s.group, config::GetString(*node, "group", ""));
  if (const Node* g = Find(*node, "group"); g != nullptr && !IsIdentifier(s.group)) {
    return Error(*g, "bad group name " + Quote(s.group) + " (" + kIdentifierRule + ")");
  }
  return s;
}

StatusOr<CaSettings> ParseCa(const Node& node, const BrokerSettings& broker) {
  RETURN_IF_ERROR(config::CheckKeys(
      node, {"key", "max_ttl", "krl", "clock_skew", "host_signers", "host_max_ttl"}));
  CaSettings ca;
  ASSIGN_OR_RETURN(ca.key, RequiredPath(node, "key"));
  ASSIGN_OR_RETURN(ca.max_ttl,
                   BoundedDuration(node, "max_ttl", kDefaultCaMaxTtl,
                                   kMinDuration, kMaxTtl, "1s to 30d"));
  ASSIGN_OR_RETURN(ca.krl, OptionalPath(node, "krl", broker.state_dir + "/ca.krl"));
  ASSIGN_OR_RETURN(ca.clock_skew,
                   BoundedDuration(node, "clock_skew", kDefaultCaClockSkew,
                                   std::chrono::nanoseconds(0), kMaxCaClockSkew, "0s to 10m"));
  if (const Node* s = Find(node, "host_signers")) {
    ASSIGN_OR_RETURN(ca.host_signers, UserListOf(*s));
  }
  ASSIGN_OR_RETURN(ca.host_max_ttl,
                   BoundedDuration(node, "host_max_ttl", kDefaultHostCertTtl, kMinDuration,
                                   kMaxHostCertTtl, "1s to 1825d"));
  return ca;
}

StatusOr<CertPolicy> ParseCertPolicy(const Node& node) {
  RETURN_IF_ERROR(config::CheckKeys(node, {"force_command", "source_address", "extensions"}));
  CertPolicy cert;
  ASSIGN_OR_RETURN(cert.force_command, config::GetString(node, "force_command", ""));
  if (const Node* n = Find(node, "force_command"); n != nullptr && cert.force_command.empty()) {
    return Error(*n, "must not be empty (omit it for no forced command)");
  }
  if (const Node* n = Find(node, "source_address")) {
    ASSIGN_OR_RETURN(cert.source_address, config::AsStringList(*n));
    if (cert.source_address.empty()) return Error(*n, "must list at least one address");
    for (size_t i = 0; i < cert.source_address.size(); ++i) {
      if (!IsAddressOrCidr(cert.source_address[i])) {
        return Error(n->items()[i], "expected an IP address or CIDR block, got " +
                                        Quote(cert.source_address[i]));
      }
    }
  }
  if (const Node* n = Find(node, "extensions")) {
    static const std::set<std::string> kKnown = {
        "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding",
        "permit-pty", "permit-user-rc"};
    ASSIGN_OR_RETURN(std::vector<std::string> ext, config::AsStringList(*n));
    std::set<std::string> seen;
    for (size_t i = 0; i < ext.size(); ++i) {
      if (kKnown.count(ext[i]) == 0) {
        return Error(n->items()[i], "unknown extension " + Quote(ext[i]) +
                                        " (known: permit-X11-forwarding, permit-agent-forwarding, "
                                        "permit-port-forwarding, permit-pty, permit-user-rc)");
      }
      if (!seen.insert(ext[i]).second) return Error(n->items()[i], Quote(ext[i]) + " is listed twice");
    }
    cert.extensions.assign(seen.begin(), seen.end());
  }
  return cert;
}

constexpr int64_t kMaxBastionSessions = 10000;
constexpr size_t kMaxEnvPatternBytes = 256;

// An AcceptEnv-style pattern naming environment variables: no '=', no
// brackets or other characters a variable name never has.
bool IsEnvPattern(std::string_view s) {
  if (s.empty() || s.size() > kMaxEnvPatternBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '*' || c == '?';
    if (!ok) return false;
  }
  return true;
}

// "host:port" with a non-empty host (an address, a name, or "[v6]") and a
// port from 0 (any free port: tests) to 65535. Name resolution is the
// bastion's business.
Status CheckListen(const Node& node, std::string_view listen) {
  const size_t colon = listen.rfind(':');
  const std::string_view host =
      colon == std::string_view::npos ? "" : listen.substr(0, colon);
  const std::string_view port =
      colon == std::string_view::npos ? "" : listen.substr(colon + 1);
  bool ok = !host.empty() && !port.empty() && port.size() <= 5 &&
            (port[0] != '0' || port == "0");
  int value = 0;
  for (char c : port) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  if (!ok || value > 65535) {
    return Error(
        node, "expected host:port (e.g. 0.0.0.0:2222), got " + Quote(listen));
  }
  return OkStatus();
}

// A loopback TCP address with a port ("127.0.0.1:9464", "[::1]:9464") or a
// Unix socket ("unix:/run/jitgate/metrics.sock"). Names are refused: what
// "localhost" resolves to is not this file's to promise.
StatusOr<MetricsSettings> ParseMetrics(const Node& node) {
  RETURN_IF_ERROR(config::CheckKeys(node, {"listen"}));
  MetricsSettings m;
  ASSIGN_OR_RETURN(m.listen, config::GetString(node, "listen"));
  const Node& at = *Find(node, "listen");
  const std::string_view listen = m.listen;
  if (listen.starts_with(kUnixListenPrefix)) {
    const std::string_view path = listen.substr(std::string_view(kUnixListenPrefix).size());
    if (path.empty() || path[0] != '/' || path.size() > kMaxSocketPath) {
      return Error(at, "expected unix: and an absolute path of at most " +
                           std::to_string(kMaxSocketPath) + " bytes, got " + Quote(listen));
    }
    return m;
  }
  RETURN_IF_ERROR(CheckListen(at, listen));
  std::string host(listen.substr(0, listen.rfind(':')));
  unsigned char addr[16];
  bool loopback = false;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    loopback = host == "[::1]";
  } else if (::inet_pton(AF_INET, host.c_str(), addr) == 1) {
    loopback = addr[0] == 127;
  }
  if (!loopback) {
    return Error(at, "must be a loopback address (127.0.0.1:PORT, [::1]:PORT) or unix:PATH, got " +
                         Quote(listen) + ": metrics are served without authentication");
  }
  return m;
}

StatusOr<BastionSettings> ParseBastion(const Node& node) {
  RETURN_IF_ERROR(config::CheckKeys(
      node, {"listen", "host_key", "users", "user_ca_keys", "targets", "run_as",
             "max_sessions", "login_grace", "accept_env"}));
  BastionSettings b;
  ASSIGN_OR_RETURN(b.listen, config::GetString(node, "listen", b.listen));
  if (const Node* listen = Find(node, "listen")) {
    RETURN_IF_ERROR(CheckListen(*listen, b.listen));
  }
  ASSIGN_OR_RETURN(b.host_key, RequiredPath(node, "host_key"));
  ASSIGN_OR_RETURN(const Node* users, config::GetMapping(node, "users", false));
  if (users != nullptr) {
    for (const MappingEntry& e : users->entries()) {
      if (!IsUserName(e.key)) {
        return ErrorAt(e.key_mark, "not a valid user name: " + Quote(e.key));
      }
      ASSIGN_OR_RETURN(std::vector<std::string> keys,
                       config::AsStringList(e.value));
      b.users.emplace(e.key, std::move(keys));
    }
  }
  ASSIGN_OR_RETURN(const Node* targets,
                   config::GetMapping(node, "targets", false));
  if (targets != nullptr) {
    for (const MappingEntry& e : targets->entries()) {
      if (!IsIdentifier(e.key)) {
        return ErrorAt(e.key_mark, "bad target name " + Quote(e.key) + " (" +
                                       kIdentifierRule + ")");
      }
      RETURN_IF_ERROR(
          config::CheckKeys(e.value, {"address", "port", "host_key"}));
      BastionTarget t;
      ASSIGN_OR_RETURN(t.address, NonEmptyString(e.value, "address"));
      ASSIGN_OR_RETURN(int64_t port,
                       config::GetInt64(e.value, "port", 1, 65535, 22));
      t.port = static_cast<int>(port);
      // Required: a target whose key is not pinned could be impersonated.
      ASSIGN_OR_RETURN(t.host_key, NonEmptyString(e.value, "host_key"));
      b.targets.emplace(e.key, std::move(t));
    }
  }
  if (const Node* n = Find(node, "user_ca_keys")) {
    ASSIGN_OR_RETURN(b.user_ca_keys, config::AsStringList(*n));
    for (size_t i = 0; i < b.user_ca_keys.size(); ++i) {
      if (b.user_ca_keys[i].empty()) return Error(n->items()[i], "must not be empty");
    }
  }
  if (const Node* n = Find(node, "run_as")) {
    ASSIGN_OR_RETURN(b.run_as, UserNameOf(*n));
    // The session process reads network bytes; it must not keep root.
    if (b.run_as == "root") return Error(*n, "must not be root");
  }
  ASSIGN_OR_RETURN(int64_t max_sessions,
                   config::GetInt64(node, "max_sessions", 1, kMaxBastionSessions,
                                    b.max_sessions));
  b.max_sessions = static_cast<int>(max_sessions);
  ASSIGN_OR_RETURN(b.login_grace,
                   BoundedDuration(node, "login_grace", kDefaultBastionLoginGrace,
                                   kMinDuration, std::chrono::hours(1), "1s to 1h"));
  if (const Node* n = Find(node, "accept_env")) {
    ASSIGN_OR_RETURN(b.accept_env, config::AsStringList(*n));
    for (size_t i = 0; i < b.accept_env.size(); ++i) {
      if (!IsEnvPattern(b.accept_env[i])) {
        return Error(n->items()[i], "bad variable pattern " + Quote(b.accept_env[i]) +
                                        " (letters, digits, '_', '*' and '?', at most 256 bytes)");
      }
    }
  }
  return b;
}

StatusOr<std::map<std::string, std::vector<std::string>>> ParseApprovers(
    const Node* node) {
  std::map<std::string, std::vector<std::string>> groups;
  if (node == nullptr) return groups;
  for (const MappingEntry& e : node->entries()) {
    if (!IsIdentifier(e.key)) {
      return ErrorAt(e.key_mark, "bad approver group name " + Quote(e.key) +
                                     " (" + kIdentifierRule + ")");
    }
    ASSIGN_OR_RETURN(std::vector<std::string> users, UserListOf(e.value));
    groups.emplace(e.key, std::move(users));
  }
  return groups;
}

StatusOr<std::vector<Glob>> ParsePatterns(const Node& match,
                                          std::string_view key,
                                          bool ignore_case) {
  std::vector<Glob> out;
  ASSIGN_OR_RETURN(const Node* list, config::GetSequence(match, key, false));
  if (list == nullptr) return out;
  if (list->items().empty()) {
    return Error(*list, "an empty list matches nothing; omit '" +
                            std::string(key) + "' to match any");
  }
  for (const Node& item : list->items()) {
    ASSIGN_OR_RETURN(std::string pattern, config::AsString(item));
    StatusOr<Glob> glob = Glob::Compile(pattern, ignore_case);
    if (!glob.ok()) {
      return Error(item, "bad pattern " + Quote(pattern) + ": " +
                             glob.status().message());
    }
    out.push_back(std::move(glob).value());
  }
  return out;
}

StatusOr<Match> ParseMatch(const Node& node) {
  RETURN_IF_ERROR(config::CheckKeys(
      node, {"service", "host", "user", "group", "target_user", "command"}));
  Match m;
  ASSIGN_OR_RETURN(m.service, ParsePatterns(node, "service", false));
  ASSIGN_OR_RETURN(m.host, ParsePatterns(node, "host", true));
  ASSIGN_OR_RETURN(m.user, ParsePatterns(node, "user", false));
  ASSIGN_OR_RETURN(m.group, ParsePatterns(node, "group", false));
  ASSIGN_OR_RETURN(m.target_user, ParsePatterns(node, "target_user", false));
  ASSIGN_OR_RETURN(m.command, ParsePatterns(node, "command", false));
  return m;
}

// Rejects key in rule when the rule's outcome makes it meaningless.
Status Disallow(const Node& rule, std::string_view key, std::string_view why) {
  if (const Node* n = Find(rule, key)) return Error(*n, why);
  return OkStatus();
}

StatusOr<Rule> ParseRule(
    const Node& node,
    const std::map<std::string, std::vector<std::string>>& groups) {
  RETURN_IF_ERROR(
      config::CheckKeys(node, {"name", "match", "approve", "approvers",
                               "quorum", "reason", "timeout", "ttl", "cert"}));
  Rule rule;
  rule.mark = node.mark();
  ASSIGN_OR_RETURN(rule.name, config::GetString(node, "name"));
  if (!IsIdentifier(rule.name)) {
    return Error(*Find(node, "name"), "bad policy name " + Quote(rule.name) +
                                          " (" + kIdentifierRule + ")");
  }
  ASSIGN_OR_RETURN(const Node* match, config::GetMapping(node, "match", false));
  if (match != nullptr) {
    ASSIGN_OR_RETURN(rule.match, ParseMatch(*match));
  }

  const Node* approve = Find(node, "approve");
  const Node* approvers = Find(node, "approvers");
  if (approve != nullptr) {
    ASSIGN_OR_RETURN(std::string mode, config::AsString(*approve));
    if (mode == "auto") {
      rule.outcome = Outcome::kAutoApprove;
    } else if (mode == "deny") {
      rule.outcome = Outcome::kDeny;
    } else {
      return Error(*approve,
                   "expected auto or deny, got " + Quote(mode) +
                       " (to require approval, omit 'approve' and list "
                       "'approvers')");
    }
    const std::string with = "not allowed with 'approve: " + mode + "'";
    RETURN_IF_ERROR(Disallow(node, "approvers", with));
    RETURN_IF_ERROR(Disallow(node, "quorum", with));
    RETURN_IF_ERROR(Disallow(node, "timeout", with));
    if (rule.outcome == Outcome::kDeny) {
      RETURN_IF_ERROR(Disallow(node, "reason", with));
      RETURN_IF_ERROR(Disallow(node, "ttl", with));
      RETURN_IF_ERROR(Disallow(node, "cert", with));
    }
  } else if (approvers != nullptr) {
    rule.outcome = Outcome::kApproval;
  } else {
    return ErrorAt(node.mark(),
                   "policy " + Quote(rule.name) +
                       " needs 'approve: auto', 'approve: deny' or "
                       "'approvers'");
  }

  if (rule.outcome == Outcome::kApproval) {
    if (!approvers->is_sequence()) {
      return Error(*approvers,
                   "expected a list, got " +
                       std::string(config::KindName(approvers->kind())));
    }
    if (approvers->items().empty()) {
      return Error(*approvers, "must name at least one approver group");
    }
    std::set<std::string> members;
    for (const Node& item : approvers->items()) {
      ASSIGN_OR_RETURN(std::string group, config::AsString(item));
      auto it = groups.find(group);
      if (it == groups.end()) {
        std::vector<std::string> names;
        for (const auto& [name, users] : groups) names.push_back(name);
        return Error(item,
                     "unknown approver group " + Quote(group) +
                         (names.empty() ? std::string(" (no groups are defined "
                                                      "under 'approvers')")
                                        : " (groups: " + Join(names) + ")"));
      }
      for (const std::string& g : rule.approver_groups) {
        if (g == group) return Error(item, Quote(group) + " is listed twice");
      }
      rule.approver_groups.push_back(group);
      members.insert(it->second.begin(), it->second.end());
    }
    ASSIGN_OR_RETURN(int64_t quorum,
                     config::GetInt64(node, "quorum", 1, kMaxQuorum, 1));
    if (static_cast<size_t>(quorum) > members.size()) {
      const Node* at = Find(node, "quorum");
      return Error(at != nullptr ? *at : *approvers,
                   "quorum " + std::to_string(quorum) + " exceeds the " +
                       std::to_string(members.size()) +
                       " distinct approvers in " + Join(rule.approver_groups));
    }
    rule.quorum = static_cast<int>(quorum);
    ASSIGN_OR_RETURN(rule.timeout,
                     BoundedDuration(node, "timeout", kDefaultTimeout,
                                     kMinDuration, kMaxTimeout, "1s to 24h"));
  }

  if (rule.outcome != Outcome::kDeny) {
    ASSIGN_OR_RETURN(std::string reason,
                     config::GetString(node, "reason", "optional"));
    if (reason == "required") {
      rule.reason = ReasonMode::kRequired;
    } else if (reason == "optional") {
      rule.reason = ReasonMode::kOptional;
    } else if (reason == "none") {
      rule.reason = ReasonMode::kNone;
    } else {
      return Error(*Find(node, "reason"),
                   "expected required, optional or none, got " + Quote(reason));
    }
    ASSIGN_OR_RETURN(rule.ttl,
                     BoundedDuration(node, "ttl", kDefaultTtl, kMinDuration,
                                     kMaxTtl, "1s to 30d"));
    ASSIGN_OR_RETURN(const Node* cert, config::GetMapping(node, "cert", false));
    if (cert != nullptr) {
      ASSIGN_OR_RETURN(rule.cert, ParseCertPolicy(*cert));
    }
  } else {
    rule.reason = ReasonMode::kNone;
  }
  return rule;
}

StatusOr<Config> FromYaml(const Node& root) {
  if (root.is_null()) {
    return ErrorAt(root.mark(),
                   "empty configuration (expected at least 'policies')");
  }
  RETURN_IF_ERROR(config::CheckKeys(
      root, {"broker", "store", "ca", "bastion", "metrics", "approvers", "policies"}));
  Config cfg;
  cfg.file = root.mark().file;

  ASSIGN_OR_RETURN(const Node* broker,
                   config::GetMapping(root, "broker", false));
  ASSIGN_OR_RETURN(cfg.broker, ParseBroker(broker));
  ASSIGN_OR_RETURN(const Node* store, config::GetMapping(root, "store", false));
  ASSIGN_OR_RETURN(cfg.store, ParseStore(store, cfg.broker));
  ASSIGN_OR_RETURN(const Node* ca, config::GetMapping(root, "ca", false));
  if (ca != nullptr) {
    ASSIGN_OR_RETURN(cfg.ca, ParseCa(*ca, cfg.broker));
  }
  ASSIGN_OR_RETURN(const Node* bastion,
                   config::GetMapping(root, "bastion", false));
  if (bastion != nullptr) {
    ASSIGN_OR_RETURN(cfg.bastion, ParseBastion(*bastion));
  }
  ASSIGN_OR_RETURN(const Node* metrics, config::GetMapping(root, "metrics", false));
  if (metrics != nullptr) {
    ASSIGN_OR_RETURN(cfg.metrics, ParseMetrics(*metrics));
  }
  ASSIGN_OR_RETURN(const Node* approvers,
                   config::GetMapping(root, "approvers", false));
  ASSIGN_OR_RETURN(cfg.policy.approver_groups, ParseApprovers(approvers));

  ASSIGN_OR_RETURN(const Node* policies,
                   config::GetSequence(root, "policies", true));
  std::map<std::string, int> lines;  // policy name -> line of first use
  for (const Node& item : policies->items()) {
    ASSIGN_OR_RETURN(Rule rule, ParseRule(item, cfg.policy.approver_groups));
    auto [it, inserted] = lines.emplace(rule.name, item.mark().line);
    if (!inserted) {
      return Error(*Find(item, "name"), "duplicate policy name " +
                                            Quote(rule.name) +
                                            " (first defined at line " +
                                            std::to_string(it->second) + ")");
    }
    cfg.policy.rules.push_back(std::move(rule));
  }
  return cfg;
}

}  // namespace

bool IsAddressOrCidr(std::string_view text) {
  std::string addr(text);
  std::string prefix;
  if (size_t slash = addr.find('/'); slash != std::string::npos) {
    prefix = addr.substr(slash + 1);
    addr.resize(slash);
    if (prefix.empty() || prefix.size() > 3 ||
        prefix.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
  }
  unsigned char buf[16];
  int max_prefix;
  if (::inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    max_prefix = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    max_prefix = 128;
  } else {
    return false;
  }
  return prefix.empty() || std::stoi(prefix) <= max_prefix;
}

StatusOr<Config> ParseConfig(std::string_view text,
                             std::string_view file_name) {
  // libyaml asserts on a null input pointer, which an empty string_view may
  // carry (a default-constructed one, or libFuzzer's empty input).
  if (text.data() == nullptr) text = "";
  ASSIGN_OR_RETURN(Node root, config::ParseYaml(text, file_name));
  return FromYaml(root);
}

StatusOr<Config> LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(Node root, config::LoadYamlFile(path));
  return FromYaml(root);
}

StatusOr<LoadedConfig> LoadConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, config::ReadYamlFile(path));
  ASSIGN_OR_RETURN(Config cfg, ParseConfig(text, path));
  std::string sha256 = HexEncode(ByteSpan(crypto::Sha256(AsBytes(text))));
  return LoadedConfig{std::move(cfg), std::move(text), std::move(sha256)};
}

Status CheckReloadable(const Config& running, const Config& next) {
  auto restart = [&](const std::string& key) {
    return FailedPreconditionError("'" + key + "' changed: restart jitgated to apply it");
  };
  if (next.broker.socket != running.broker.socket) return restart("broker.socket");
  if (next.broker.state_dir != running.broker.state_dir) return restart("broker.state_dir");
  if (next.store.dir != running.store.dir) return restart("store.dir");
  if (next.store.key != running.store.key) return restart("store.key");
  if (next.store.group != running.store.group) return restart("store.group");
  if (next.ca.has_value() != running.ca.has_value()) return restart("ca");
  if (next.ca.has_value()) {
    if (next.ca->key != running.ca->key) return restart("ca.key");
    if (next.ca->krl != running.ca->krl) return restart("ca.krl");
  }
  if (next.bastion.has_value() != running.bastion.has_value()) return restart("bastion");
  if (next.bastion.has_value()) {
    if (next.bastion->listen != running.bastion->listen) return restart("bastion.listen");
    if (next.bastion->host_key != running.bastion->host_key) return restart("bastion.host_key");
  }
  if (next.metrics.has_value() != running.metrics.has_value()) return restart("metrics");
  if (next.metrics.has_value() && next.metrics->listen != running.metrics->listen) {
    return restart("metrics.listen");
  }
  return OkStatus();
}

}  // namespace jitgate::broker
