// The sample configuration from docs (PRODUCT.md, "Interfaces to keep
// stable"), verbatim, for tests. The key names are a stable interface: if this
// file has to change, the documented shape changed.
#ifndef JITGATE_CORE_CONFIG_SAMPLE_CONFIG_TESTONLY_H_
#define JITGATE_CORE_CONFIG_SAMPLE_CONFIG_TESTONLY_H_

namespace jitgate::config::testonly {

// Line numbers matter to the tests: "broker:" is line 1.
inline constexpr char kSampleConfig[] =
    R"(broker:
  socket: /run/jitgate/jitgated.sock   # PAM modules, plugins and the CLI connect here
  state_dir: /var/lib/jitgate          # SQLite state; everything the broker must remember
  submitters: [root]                   # local users whose processes may file requests for others
store:
  dir: /var/lib/jitgate/store
  key: /etc/jitgate/log.key            # from `jitgate log keygen`
ca:
  key: /etc/jitgate/ca                 # OpenSSH private key (ssh-keygen -t ed25519)
  max_ttl: 1h
bastion:
  listen: 0.0.0.0:2222
  host_key: /etc/jitgate/bastion_host_ed25519
  users:                               # who may use the bastion, by their own keys
    alice: ["ssh-ed25519 AAAA... alice@laptop"]
  targets:
    db1: {address: 10.0.0.5, port: 22, host_key: "ssh-ed25519 AAAA..."}
approvers:                             # groups of approvers, by local user name
  oncall: [bob, carol]
policies:                              # first match wins; no match = deny
  - name: dev
    match: {service: [sshd], host: ["dev-*"]}
    approve: auto
  - name: prod
    match: {service: [sshd, sudo, bastion], host: ["*"], user: ["*"]}
    approvers: [oncall]
    quorum: 1
    reason: required
    timeout: 5m      # how long a request may wait
    ttl: 30m         # how long an approval (and its certificate, session) lasts
)";

}  // namespace jitgate::config::testonly

#endif  // JITGATE_CORE_CONFIG_SAMPLE_CONFIG_TESTONLY_H_
