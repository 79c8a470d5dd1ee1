// Config: jitgated's configuration file (jitgate.yaml), validated strictly.
//
// The shape and key names are a stable interface (PRODUCT.md, "Interfaces to
// keep stable"): keys may be added, never renamed. Anything not understood is
// an error, never ignored: unknown keys at every level, wrong types, bad
// durations or paths, unknown approver groups, impossible quorums and
// contradictory policy settings. Every error is INVALID_ARGUMENT with a
// message "file:line: ..." naming the key by its path, e.g.
//   jitgate.yaml:31: 'policies[1].approvers[0]': unknown approver group
//   'oncal' (groups: oncall, security)
//
// Sections and defaults:
//   broker:    socket      /run/jitgate/jitgated.sock  (absolute, <= 107 bytes)
//              state_dir   /var/lib/jitgate            (absolute)
//              submitters  [root]                      (user names)
//   store:     dir         <broker.state_dir>/store    (absolute)
//              key         /etc/jitgate/log.key        (absolute)
//              group       a group whose members may read the store
//                          (auditors; default none: owner only)
//   ca:        optional; key (absolute, required), max_ttl (default 1h,
//              1s..30d)
//   bastion:   optional (docs/bastion.md):
//              listen       host:port or [v6]:port (default 0.0.0.0:2222;
//                           port 0: any free port, printed at start)
//              host_key     absolute path (required)
//              users        {name: [authorized key lines]}
//              user_ca_keys [CA public key lines] (default none)
//              targets      {name: {address (required), port (default 22),
//                           host_key (required: the bastion never trusts on
//                           first use)}}
//              run_as       user name, not root (default nobody)
//              max_sessions 1..10000 (default 100)
//              login_grace  1s..1h (default 2m)
//              accept_env   non-empty patterns of [A-Za-z0-9_*?] (default
//                           [LANG, LC_*])
//   metrics:   optional (docs/jitgated.md, "Metrics"):
//              listen  127.0.0.1:PORT (any 127.0.0.0/8 address), [::1]:PORT,
//                      or unix:/absolute/path (<= 107 bytes); required.
//                      Nothing but loopback or a Unix socket: Prometheus
//                      metrics are served without authentication.
//   approvers: optional; {group: [user, ...]}, no user twice in a group
//   policies:  required (may be []); see policy.h. Per rule:
//              name      required, unique, [A-Za-z0-9_.-]{1,64}
//              match     optional (absent = every request); keys service,
//                        host, user, group, target_user, command: non-empty
//                        lists of glob patterns (glob.h)
//              approve   auto | deny; omitted when `approvers` is given
//              approvers non-empty list of known groups, no repeats
//              quorum    1..distinct members of those groups (default 1)
//              reason    required | optional | none (default optional;
//                        not allowed with deny)
//              timeout   1s..24h (default 5m; approvers only)
//              ttl       1s..30d (default 30m; not allowed with deny)
//   quorum, approvers and timeout are errors with approve: auto/deny, because
//   a setting that would be silently ignored is almost always a mistake.
// ca.max_ttl does not bound policy ttl: certificates get the shorter of the
// two.
#ifndef JITGATE_BROKER_CONFIG_H_
#define JITGATE_BROKER_CONFIG_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/policy.h"
#include "core/base/status.h"

namespace jitgate::broker {

inline constexpr char kDefaultConfigPath[] = "/etc/jitgate/jitgate.yaml";
inline constexpr char kDefaultSocketPath[] = "/run/jitgate/jitgated.sock";
inline constexpr char kDefaultStateDir[] = "/var/lib/jitgate";
inline constexpr char kDefaultStoreKey[] = "/etc/jitgate/log.key";
inline constexpr char kDefaultBastionListen[] = "0.0.0.0:2222";

inline constexpr std::chrono::nanoseconds kDefaultTimeout =
    std::chrono::minutes(5);
inline constexpr std::chrono::nanoseconds kDefaultTtl =
    std::chrono::minutes(30);
inline constexpr std::chrono::nanoseconds kDefaultCaMaxTtl =
    std::chrono::hours(1);
inline constexpr std::chrono::nanoseconds kMinDuration =
    std::chrono::seconds(1);
inline constexpr std::chrono::nanoseconds kMaxTimeout = std::chrono::hours(24);
inline constexpr std::chrono::nanoseconds kMaxTtl = std::chrono::hours(24 * 30);

// A no-spool recorder whose connection breaks reconnects and resumes at once
// (RecordingClient::Reconnect, bounded by its ack timeout, 30 s by default),
// so a minute never cuts a recorder that is still alive.
inline constexpr std::chrono::nanoseconds kDefaultRecorderResumeGrace = std::chrono::seconds(60);
inline constexpr std::chrono::nanoseconds kMaxRecorderResumeGrace = std::chrono::hours(24);

struct BrokerSettings {
  std::string socket = kDefaultSocketPath;
  std::string state_dir = kDefaultStateDir;
  std::vector<std::string> submitters = {"root"};
  // Processes running with this effective group (a setgid jitgate-rec) may
  // record sessions of their own user; "" = only root and submitters record.
  std::string recorder_group;
  // A recorded session whose recorder has no spool (the broker named it) and
  // whose connection closed without CloseSession is ended as "recorder lost"
  // when no recorder resumes it within this long (docs/jitgated.md,
  // "Recorded sessions").
  std::chrono::nanoseconds recorder_resume_grace = kDefaultRecorderResumeGrace;
};

struct StoreSettings {
  std::string dir;  // default: state_dir + "/store"
  std::string key = kDefaultStoreKey;
  // A group whose members may read the store (auditors): "" = owner only.
  std::string group;
};

inline constexpr std::chrono::nanoseconds kDefaultCaClockSkew = std::chrono::minutes(1);
inline constexpr std::chrono::nanoseconds kMaxCaClockSkew = std::chrono::minutes(10);
inline constexpr std::chrono::nanoseconds kDefaultHostCertTtl = std::chrono::hours(24 * 365);
inline constexpr std::chrono::nanoseconds kMaxHostCertTtl = std::chrono::hours(24 * 365 * 5);

struct CaSettings {
  std::string key;  // OpenSSH private key; readable by the broker's user only
  std::chrono::nanoseconds max_ttl = kDefaultCaMaxTtl;
  // Where the broker writes the KRL of revoked serials for sshd's
  // RevokedKeys. Default: <broker.state_dir>/ca.krl.
  std::string krl;
  // User certificates are valid from now - clock_skew, for servers whose
  // clocks run a little behind the broker's.
  std::chrono::nanoseconds clock_skew = kDefaultCaClockSkew;
  // Local users whose processes may have host keys signed (jitgate ca
  // sign-host), and the longest host certificate they may ask for.
  std::vector<std::string> host_signers = {"root"};
  std::chrono::nanoseconds host_max_ttl = kDefaultHostCertTtl;
};

struct BastionTarget {
  std::string address;
  int port = 22;
  std::string host_key;  // OpenSSH public key line; parsed by the bastion
};

inline constexpr std::chrono::nanoseconds kDefaultBastionLoginGrace = std::chrono::minutes(2);

struct BastionSettings {
  std::string listen = kDefaultBastionListen;
  std::string host_key;
  // user -> authorized public key lines (parsed by the bastion, not here).
  std::map<std::string, std::vector<std::string>> users;
  // CA public key lines whose user certificates the bastion accepts (valid
  // now, user type, exactly one principal: the person's name).
  std::vector<std::string> user_ca_keys;
  std::map<std::string, BastionTarget> targets;
  // The account a per-connection session process runs as once it has read
  // its host key (when jitgated runs as root): it handles network bytes and
  // holds no CA or log key.
  std::string run_as = "nobody";
  // Connections at once (sessions and logins in progress); more are closed.
  int max_sessions = 100;
  // Time to authenticate, not counting the wait for approval.
  std::chrono::nanoseconds login_grace = kDefaultBastionLoginGrace;
  // Environment variables passed upstream (glob patterns, as sshd's AcceptEnv).
  std::vector<std::string> accept_env = {"LANG", "LC_*"};
};

// The Prometheus endpoint (broker/metrics_http.h). listen is validated: a
// loopback TCP address with a port (0: any free port) or "unix:" and an
// absolute path.
struct MetricsSettings {
  std::string listen;
};
inline constexpr char kUnixListenPrefix[] = "unix:";

// Config is a validated jitgate.yaml. A plain value type.
struct Config {
  std::string file;  // the file name it was read from, for messages
  BrokerSettings broker;
  StoreSettings store;
  std::optional<CaSettings> ca;  // krl defaulted from broker.state_dir
  std::optional<BastionSettings> bastion;
  std::optional<MetricsSettings> metrics;
  Policy policy;  // `approvers` and `policies`
};

// ParseConfig validates text, the contents of a jitgate.yaml, and returns the
// configuration. file_name is used only in messages. Fails with
// INVALID_ARGUMENT and a "file:line: " message on the first problem found (in
// file order, except that cross-checks such as unknown approver groups are
// reported at the line that refers to the missing thing). Thread-safe.
// IsAddressOrCidr: an IPv4 or IPv6 address, optionally with a /prefix, as
// sshd's source-address certificate option takes them.
bool IsAddressOrCidr(std::string_view text);

StatusOr<Config> ParseConfig(std::string_view text, std::string_view file_name);

// LoadConfig reads the file at path (core/config LoadYamlFile: at most 1 MiB,
// a regular file) and validates it with ParseConfig. Read errors keep their
// errno-derived code (NOT_FOUND, PERMISSION_DENIED, ...).
StatusOr<Config> LoadConfig(const std::string& path);

// A configuration as read from its file, with the SHA-256 (lowercase hex)
// of the exact bytes that were validated, for the audit trail.
struct LoadedConfig {
  Config config;
  std::string text;    // the bytes validated
  std::string sha256;  // of text
};

// LoadConfigFile is LoadConfig that also returns the digest of the bytes.
StatusOr<LoadedConfig> LoadConfigFile(const std::string& path);

// CheckReloadable says whether a running broker can switch from running to
// next without a restart (SIGHUP, `systemctl reload`). What a reload applies:
// broker.submitters and recorder_group, ca.max_ttl, clock_skew, host_signers
// and host_max_ttl, every bastion setting but listen and host_key (for new
// connections), approvers and policies (for new requests: a waiting request
// keeps the decision it was filed under). What needs a restart, and is refused
// with FAILED_PRECONDITION naming the first such key: broker.socket and
// state_dir, store.dir and key, adding or removing the ca section or changing
// ca.key or ca.krl, adding or removing the bastion section or changing
// bastion.listen or host_key, adding, removing or moving metrics.listen.
Status CheckReloadable(const Config& running, const Config& next);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_CONFIG_H_
