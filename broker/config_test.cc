#include "broker/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/bytes.h"
#include "core/config/sample_config_testonly.h"
#include "core/config/yaml.h"
#include "core/crypto/crypto.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::broker {
namespace {

using ::jitgate::testing::StatusIs;
using std::chrono::hours;
using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(ConfigTest, AcceptsTheProductSample) {
  ASSERT_OK_AND_ASSIGN(
      Config cfg, ParseConfig(config::testonly::kSampleConfig, "jitgate.yaml"));
  EXPECT_EQ(cfg.file, "jitgate.yaml");
  EXPECT_EQ(cfg.broker.socket, "/run/jitgate/jitgated.sock");
  EXPECT_EQ(cfg.broker.state_dir, "/var/lib/jitgate");
  EXPECT_THAT(cfg.broker.submitters, ElementsAre("root"));
  EXPECT_EQ(cfg.store.dir, "/var/lib/jitgate/store");
  EXPECT_EQ(cfg.store.key, "/etc/jitgate/log.key");
  ASSERT_TRUE(cfg.ca.has_value());
  EXPECT_EQ(cfg.ca->key, "/etc/jitgate/ca");
  EXPECT_EQ(cfg.ca->max_ttl, hours(1));
  ASSERT_TRUE(cfg.bastion.has_value());
  EXPECT_EQ(cfg.bastion->listen, "0.0.0.0:2222");
  EXPECT_EQ(cfg.bastion->host_key, "/etc/jitgate/bastion_host_ed25519");
  EXPECT_THAT(cfg.bastion->users,
              ElementsAre(Pair(
                  "alice", ElementsAre("ssh-ed25519 AAAA... alice@laptop"))));
  ASSERT_EQ(cfg.bastion->targets.size(), 1u);
  const BastionTarget& db1 = cfg.bastion->targets.at("db1");
  EXPECT_EQ(db1.address, "10.0.0.5");
  EXPECT_EQ(db1.port, 22);
  EXPECT_EQ(db1.host_key, "ssh-ed25519 AAAA...");
  EXPECT_THAT(cfg.policy.approver_groups,
              ElementsAre(Pair("oncall", ElementsAre("bob", "carol"))));

  ASSERT_EQ(cfg.policy.rules.size(), 2u);
  const Rule& dev = cfg.policy.rules[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_EQ(dev.mark.line, 21);  // "  - name: dev"
  EXPECT_EQ(dev.outcome, Outcome::kAutoApprove);
  EXPECT_EQ(dev.reason, ReasonMode::kOptional);
  EXPECT_EQ(dev.ttl, minutes(30));
  ASSERT_EQ(dev.match.service.size(), 1u);
  EXPECT_EQ(dev.match.service[0].pattern(), "sshd");
  ASSERT_EQ(dev.match.host.size(), 1u);
  EXPECT_EQ(dev.match.host[0].pattern(), "dev-*");
  EXPECT_THAT(dev.match.user, IsEmpty());

  const Rule& prod = cfg.policy.rules[1];
  EXPECT_EQ(prod.name, "prod");
  EXPECT_EQ(prod.outcome, Outcome::kApproval);
  EXPECT_THAT(prod.approver_groups, ElementsAre("oncall"));
  EXPECT_EQ(prod.quorum, 1);
  EXPECT_EQ(prod.reason, ReasonMode::kRequired);
  EXPECT_EQ(prod.timeout, minutes(5));
  EXPECT_EQ(prod.ttl, minutes(30));
  EXPECT_EQ(prod.match.service.size(), 3u);
}

TEST(ConfigTest, CertificateSettings) {
  ASSERT_OK_AND_ASSIGN(Config cfg, ParseConfig(R"(
broker: {state_dir: /srv/jg}
ca:
  key: /etc/jitgate/ca
  max_ttl: 2h
  clock_skew: 0s
  host_signers: [root, ops]
  host_max_ttl: 90d
policies:
  - name: db
    approve: auto
    ttl: 10m
    cert:
      force_command: /usr/bin/psql
      source_address: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]
      extensions: [permit-pty, permit-agent-forwarding]
  - name: plain
    approve: auto
)", "t.yaml"));
  ASSERT_TRUE(cfg.ca.has_value());
  EXPECT_EQ(cfg.ca->max_ttl, hours(2));
  EXPECT_EQ(cfg.ca->krl, "/srv/jg/ca.krl");  // follows broker.state_dir
  EXPECT_EQ(cfg.ca->clock_skew, std::chrono::nanoseconds(0));
  EXPECT_EQ(cfg.ca->host_signers, (std::vector<std::string>{"root", "ops"}));
  EXPECT_EQ(cfg.ca->host_max_ttl, hours(90 * 24));
  const CertPolicy& c = cfg.policy.rules[0].cert;
  EXPECT_EQ(c.force_command, "/usr/bin/psql");
  EXPECT_EQ(c.source_address, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.168.1.7"}));
  // Sorted, as certificates carry them.
  EXPECT_EQ(c.extensions, (std::vector<std::string>{"permit-agent-forwarding", "permit-pty"}));
  // Defaults: a pty, nothing forced, the request's own address.
  const CertPolicy& d = cfg.policy.rules[1].cert;
  EXPECT_EQ(d.force_command, "");
  EXPECT_TRUE(d.source_address.empty());
  EXPECT_EQ(d.extensions, (std::vector<std::string>{"permit-pty"}));
}

TEST(ConfigTest, BastionSettings) {
  ASSERT_OK_AND_ASSIGN(Config cfg, ParseConfig(R"(
bastion:
  listen: "[::1]:2022"
  host_key: /etc/jitgate/bastion_host_ed25519
  user_ca_keys: ["ssh-ed25519 AAAA... people-ca"]
  run_as: jitgate-bastion
  max_sessions: 10000
  login_grace: 30s
  accept_env: [LANG, LC_*, TZ, "GIT_?UTHOR_*"]
policies: []
)", "t.yaml"));
  ASSERT_TRUE(cfg.bastion.has_value());
  const BastionSettings& b = *cfg.bastion;
  EXPECT_EQ(b.listen, "[::1]:2022");
  EXPECT_THAT(b.user_ca_keys, ElementsAre("ssh-ed25519 AAAA... people-ca"));
  EXPECT_EQ(b.run_as, "jitgate-bastion");
  EXPECT_EQ(b.max_sessions, 10000);
  EXPECT_EQ(b.login_grace, std::chrono::seconds(30));
  EXPECT_THAT(b.accept_env, ElementsAre("LANG", "LC_*", "TZ", "GIT_?UTHOR_*"));
}

TEST(ConfigTest, BastionDefaults) {
  ASSERT_OK_AND_ASSIGN(Config cfg,
                       ParseConfig("bastion: {host_key: /k}\npolicies: []\n", "t.yaml"));
  ASSERT_TRUE(cfg.bastion.has_value());
  const BastionSettings& b = *cfg.bastion;
  EXPECT_EQ(b.listen, kDefaultBastionListen);
  EXPECT_THAT(b.users, IsEmpty());
  EXPECT_THAT(b.user_ca_keys, IsEmpty());
  EXPECT_THAT(b.targets, IsEmpty());
  EXPECT_EQ(b.run_as, "nobody");
  EXPECT_EQ(b.max_sessions, 100);
  EXPECT_EQ(b.login_grace, minutes(2));
  EXPECT_THAT(b.accept_env, ElementsAre("LANG", "LC_*"));

  // Port 0: any free port (jitgated prints the one it got).
  ASSERT_OK_AND_ASSIGN(
      cfg, ParseConfig("bastion: {host_key: /k, listen: '127.0.0.1:0'}\npolicies: []\n", "t.yaml"));
  EXPECT_EQ(cfg.bastion->listen, "127.0.0.1:0");

  // An empty accept_env passes no variables at all.
  ASSERT_OK_AND_ASSIGN(
      cfg, ParseConfig("bastion: {host_key: /k, accept_env: []}\npolicies: []\n", "t.yaml"));
  EXPECT_THAT(cfg.bastion->accept_env, IsEmpty());
}

TEST(ConfigTest, MetricsListensOnLoopbackOrAUnixSocket) {
  ASSERT_OK_AND_ASSIGN(Config none, ParseConfig("policies: []\n", "t.yaml"));
  EXPECT_FALSE(none.metrics.has_value());
  for (const char* ok : {"127.0.0.1:9464", "127.1.2.3:0", "'[::1]:9464'", "unix:/run/jitgate/m.sock"}) {
    ASSERT_OK_AND_ASSIGN(
        Config cfg, ParseConfig(std::string("metrics:\n  listen: ") + ok + "\npolicies: []\n", "t.yaml"));
    ASSERT_TRUE(cfg.metrics.has_value()) << ok;
    std::string want = ok;
    if (want.front() == '\'') want = want.substr(1, want.size() - 2);
    EXPECT_EQ(cfg.metrics->listen, want);
  }
}

TEST(ConfigTest, AddressesAndCidrBlocks) {
  for (const char* ok : {"10.0.0.7", "10.0.0.0/8", "0.0.0.0/0", "::1", "2001:db8::/32", "::/0"}) {
    EXPECT_TRUE(IsAddressOrCidr(ok)) << ok;
  }
  for (const char* bad : {"", "db1", "10.0.0.0/", "10.0.0.0/33", "::1/129", "10.0.0.0/8/8",
                          "10.0.0.0/-1", "10.0.0.0/1a", " 10.0.0.1", "10.0.0.1,10.0.0.2"}) {
    EXPECT_FALSE(IsAddressOrCidr(bad)) << bad;
  }
}

TEST(ConfigTest, LoadsTheShippedSampleFile) {
  ASSERT_OK_AND_ASSIGN(Config cfg,
                       LoadConfig(JITGATE_BROKER_TESTDATA "/jitgate.yaml"));
  ASSERT_EQ(cfg.policy.rules.size(), 4u);
  EXPECT_EQ(cfg.policy.rules[1].outcome, Outcome::kDeny);
  EXPECT_EQ(cfg.policy.rules[1].reason, ReasonMode::kNone);
  EXPECT_EQ(cfg.policy.rules[2].quorum, 2);
  EXPECT_THAT(cfg.policy.rules[2].approver_groups,
              ElementsAre("oncall", "security"));
  EXPECT_EQ(cfg.policy.rules[2].timeout, minutes(10));
  EXPECT_EQ(cfg.policy.rules[2].ttl, minutes(5));
}

TEST(ConfigTest, ReloadAppliesPolicyAndRefusesWhatNeedsARestart) {
  const std::string base =
      "broker:\n  socket: /run/j/s.sock\n  submitters: [root]\n"
      "ca:\n  key: /etc/j/ca\n"
      "bastion:\n  listen: 127.0.0.1:2222\n  host_key: /etc/j/hk\n"
      "approvers:\n  oncall: [bob]\n"
      "policies:\n  - name: p\n    approvers: [oncall]\n";
  ASSERT_OK_AND_ASSIGN(Config running, ParseConfig(base, "a.yaml"));
  auto check = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    StatusOr<Config> next = ParseConfig(text, "b.yaml");
    EXPECT_OK(next.status());
    return next.ok() ? CheckReloadable(running, *next) : next.status();
  };
  // Reloadable: policy, approvers, submitters, CA limits, bastion users.
  EXPECT_OK(check("oncall: [bob]", "oncall: [bob, carol]"));
  EXPECT_OK(check("approvers: [oncall]\n", "approve: auto\n"));
  EXPECT_OK(check("submitters: [root]", "submitters: [root, daemon]"));
  EXPECT_OK(check("key: /etc/j/ca\n", "key: /etc/j/ca\n  max_ttl: 5m\n"));
  EXPECT_OK(check("host_key: /etc/j/hk\n", "host_key: /etc/j/hk\n  max_sessions: 3\n"));
  // A restart: every key whose value is bound at start.
  const std::pair<std::string, std::string> restart[] = {
      {"socket: /run/j/s.sock", "socket: /run/j/t.sock"},
      {"submitters: [root]", "submitters: [root]\n  state_dir: /var/lib/other"},
      {"key: /etc/j/ca\n", "key: /etc/j/ca2\n"},
      {"ca:\n  key: /etc/j/ca\n", ""},
      {"listen: 127.0.0.1:2222", "listen: 127.0.0.1:2223"},
      {"host_key: /etc/j/hk", "host_key: /etc/j/hk2"},
      {"approvers:\n", "metrics:\n  listen: 127.0.0.1:9100\napprovers:\n"},
      {"approvers:\n", "store:\n  group: auditors\napprovers:\n"},
  };
  const char* names[] = {"broker.socket", "broker.state_dir", "ca.key",   "'ca'",
                         "bastion.listen", "bastion.host_key", "'metrics'", "store.group"};
  for (size_t i = 0; i < std::size(restart); ++i) {
    EXPECT_THAT(check(restart[i].first, restart[i].second),
                StatusIs(StatusCode::kFailedPrecondition, ::testing::HasSubstr(names[i])))
        << restart[i].second;
  }
}

TEST(ConfigTest, LoadConfigFileReturnsTheDigestOfTheBytesItChecked) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded,
                       LoadConfigFile(JITGATE_BROKER_TESTDATA "/jitgate.yaml"));
  ASSERT_OK_AND_ASSIGN(std::string text, config::ReadYamlFile(JITGATE_BROKER_TESTDATA "/jitgate.yaml"));
  EXPECT_EQ(loaded.text, text);
  EXPECT_EQ(loaded.sha256, HexEncode(ByteSpan(crypto::Sha256(AsBytes(text)))));
  EXPECT_EQ(loaded.config.policy.rules.size(), 4u);
  EXPECT_THAT(LoadConfigFile("/nonexistent/jitgate.yaml"),
              StatusIs(StatusCode::kNotFound, ::testing::_));
}

TEST(ConfigTest, LoadConfigKeepsReadErrors) {
  EXPECT_THAT(LoadConfig("/nonexistent/jitgate.yaml"),
              StatusIs(StatusCode::kNotFound, ::testing::_));
}

TEST(ConfigTest, MinimalConfigGetsDefaults) {
  ASSERT_OK_AND_ASSIGN(Config cfg, ParseConfig("policies: []\n", "m.yaml"));
  EXPECT_EQ(cfg.broker.socket, kDefaultSocketPath);
  EXPECT_EQ(cfg.broker.state_dir, kDefaultStateDir);
  EXPECT_THAT(cfg.broker.submitters, ElementsAre("root"));
  EXPECT_EQ(cfg.broker.recorder_resume_grace, minutes(1));
  EXPECT_EQ(cfg.store.dir, "/var/lib/jitgate/store");
  EXPECT_EQ(cfg.store.key, kDefaultStoreKey);
  EXPECT_FALSE(cfg.ca.has_value());
  EXPECT_FALSE(cfg.bastion.has_value());
  EXPECT_THAT(cfg.policy.rules, IsEmpty());
  EXPECT_THAT(cfg.policy.approver_groups, IsEmpty());
}

TEST(ConfigTest, StoreDirFollowsStateDir) {
  ASSERT_OK_AND_ASSIGN(
      Config cfg,
      ParseConfig("broker: {state_dir: /tmp/j, submitters: []}\npolicies: []\n",
                  "m.yaml"));
  EXPECT_EQ(cfg.store.dir, "/tmp/j/store");
  EXPECT_THAT(cfg.broker.submitters, IsEmpty());
  EXPECT_EQ(cfg.store.group, "");  // owner only unless set
  ASSERT_OK_AND_ASSIGN(cfg, ParseConfig("store: {group: jitgate-audit}\npolicies: []\n", "m.yaml"));
  EXPECT_EQ(cfg.store.group, "jitgate-audit");
}

TEST(ConfigTest, PolicyDefaultsAndCatchAll) {
  ASSERT_OK_AND_ASSIGN(Config cfg, ParseConfig(R"(approvers:
  a: [x, y]
  b: [y, z]
policies:
  - name: wait
    approvers: [a, b]
    quorum: 3
  - name: rest
    approve: deny
)",
                                               "m.yaml"));
  ASSERT_EQ(cfg.policy.rules.size(), 2u);
  const Rule& wait = cfg.policy.rules[0];
  EXPECT_EQ(wait.quorum, 3);  // x, y, z: y counts once
  EXPECT_EQ(wait.reason, ReasonMode::kOptional);
  EXPECT_EQ(wait.timeout, kDefaultTimeout);
  EXPECT_EQ(wait.ttl, kDefaultTtl);
  EXPECT_THAT(wait.match.service, IsEmpty());
  EXPECT_EQ(cfg.policy.rules[1].outcome, Outcome::kDeny);
}

struct RejectCase {
  int line;  // of this table, for failure messages
  std::string yaml;
  std::string message;  // exact
};

// Each case is a whole file; the expected message is exact, file:line first.
const RejectCase kRejectCases[] = {
    {__LINE__, "",
     "t.yaml:1: empty configuration (expected at least 'policies')"},
    {__LINE__, "- a\n", "t.yaml:1: top level: expected a mapping, got a list"},
    {__LINE__, "polices: []\n",
     "t.yaml:1: unknown key 'polices' at top level (expected one of: broker, "
     "store, ca, bastion, metrics, approvers, policies)"},
    {__LINE__, "broker: {}\n",
     "t.yaml:1: missing required key 'policies' at top level"},
    {__LINE__, "policies:\n",
     "t.yaml:1: 'policies': expected a list, got null"},
    {__LINE__, "broker:\n  sockett: /x\npolicies: []\n",
     "t.yaml:2: unknown key 'sockett' in 'broker' (expected one of: socket, "
     "state_dir, submitters, recorder_group, recorder_resume_grace)"},
    {__LINE__, "broker: [x]\npolicies: []\n",
     "t.yaml:1: 'broker': expected a mapping, got a list"},
    {__LINE__, "broker:\n  submitters: root\npolicies: []\n",
     "t.yaml:2: 'broker.submitters': expected a list, got a string"},
    {__LINE__, "broker:\n  submitters: [root, root]\npolicies: []\n",
     "t.yaml:2: 'broker.submitters[1]': 'root' is listed twice"},
    {__LINE__, "broker:\n  submitters: ['bad user']\npolicies: []\n",
     "t.yaml:2: 'broker.submitters[0]': not a valid user name: 'bad user'"},
    {__LINE__, "broker:\n  socket: run/j.sock\npolicies: []\n",
     "t.yaml:2: 'broker.socket': expected an absolute path, got 'run/j.sock'"},
    {__LINE__,
     "broker:\n  socket: /" + std::string(107, 's') + "\npolicies: []\n",
     "t.yaml:2: 'broker.socket': socket path is longer than 107 bytes and "
     "cannot be bound"},
    {__LINE__, "broker:\n  state_dir: 12\npolicies: []\n",
     "t.yaml:2: 'broker.state_dir': expected an absolute path, got '12'"},
    {__LINE__, "store:\n  dir: /s\n  keyy: /k\npolicies: []\n",
     "t.yaml:3: unknown key 'keyy' in 'store' (expected one of: dir, key, group)"},
    {__LINE__, "store:\n  group: 'audit ors'\npolicies: []\n",
     "t.yaml:2: 'store.group': bad group name 'audit ors' (letters, digits, '_', '.' and '-', at most 64 bytes)"},
    {__LINE__, "ca:\n  max_ttl: 1h\npolicies: []\n",
     "t.yaml:2: missing required key 'key' in 'ca'"},
    {__LINE__, "ca:\n  key: /ca\n  max_ttl: 1.5h\npolicies: []\n",
     "t.yaml:3: 'ca.max_ttl': bad duration '1.5h': fractions are not supported "
     "(write e.g. 1h30m)"},
    {__LINE__, "ca:\n  key: /ca\n  max_ttl: 31d\npolicies: []\n",
     "t.yaml:3: 'ca.max_ttl': must be from 1s to 30d, got '31d'"},
    {__LINE__, "bastion:\n  listen: 2222\n  host_key: /k\npolicies: []\n",
     "t.yaml:2: 'bastion.listen': expected host:port (e.g. 0.0.0.0:2222), got "
     "'2222'"},
    {__LINE__, "bastion:\n  listen: ':2222'\n  host_key: /k\npolicies: []\n",
     "t.yaml:2: 'bastion.listen': expected host:port (e.g. 0.0.0.0:2222), got "
     "':2222'"},
    {__LINE__,
     "bastion:\n  listen: '[::]:70000'\n  host_key: /k\npolicies: []\n",
     "t.yaml:2: 'bastion.listen': expected host:port (e.g. 0.0.0.0:2222), got "
     "'[::]:70000'"},
    {__LINE__, "bastion:\n  listen: 0.0.0.0:022\n  host_key: /k\npolicies: []\n",
     "t.yaml:2: 'bastion.listen': expected host:port (e.g. 0.0.0.0:2222), got "
     "'0.0.0.0:022'"},
    {__LINE__, "bastion:\n  listen: 0.0.0.0:2222\npolicies: []\n",
     "t.yaml:2: missing required key 'host_key' in 'bastion'"},
    {__LINE__,
     "bastion:\n  host_key: /k\n  targets:\n    db1: {address: 10.0.0.5}\n"
     "policies: []\n",
     "t.yaml:4: missing required key 'host_key' in 'bastion.targets.db1'"},
    {__LINE__,
     "bastion:\n  host_key: /k\n  targets:\n    db1: {address: a, port: 0, "
     "host_key: k}\npolicies: []\n",
     "t.yaml:4: 'bastion.targets.db1.port': expected an integer from 1 to "
     "65535, got '0'"},
    {__LINE__,
     "bastion:\n  host_key: /k\n  targets:\n    db1: {address: a, hostkey: "
     "k}\npolicies: []\n",
     "t.yaml:4: unknown key 'hostkey' in 'bastion.targets.db1' (expected one "
     "of: address, port, host_key)"},
    {__LINE__,
     "bastion:\n  host_key: /k\n  targets:\n    'db 1': {address: a, "
     "host_key: k}\npolicies: []\n",
     "t.yaml:4: bad target name 'db 1' (letters, digits, '_', '.' and '-', at "
     "most 64 bytes)"},
    {__LINE__,
     "bastion:\n  host_key: /k\n  users:\n    alice: ssh-ed25519\npolicies: "
     "[]\n",
     "t.yaml:4: 'bastion.users.alice': expected a list, got a string"},
    {__LINE__, "bastion:\n  host_key: /k\n  run_as_user: x\npolicies: []\n",
     "t.yaml:3: unknown key 'run_as_user' in 'bastion' (expected one of: listen, "
     "host_key, users, user_ca_keys, targets, run_as, max_sessions, login_grace, "
     "accept_env)"},
    {__LINE__, "bastion:\n  host_key: /k\n  user_ca_keys: ssh-ed25519\npolicies: []\n",
     "t.yaml:3: 'bastion.user_ca_keys': expected a list, got a string"},
    {__LINE__, "bastion:\n  host_key: /k\n  user_ca_keys: ['']\npolicies: []\n",
     "t.yaml:3: 'bastion.user_ca_keys[0]': must not be empty"},
    {__LINE__, "bastion:\n  host_key: /k\n  user_ca_keys: [[a]]\npolicies: []\n",
     "t.yaml:3: 'bastion.user_ca_keys[0]': expected a string, got a list"},
    {__LINE__, "bastion:\n  host_key: /k\n  run_as: 'no body'\npolicies: []\n",
     "t.yaml:3: 'bastion.run_as': not a valid user name: 'no body'"},
    {__LINE__, "metrics: {}\npolicies: []\n",
     "t.yaml:1: missing required key 'listen' in 'metrics'"},
    {__LINE__, "metrics:\n  listen: 127.0.0.1:9464\n  path: /m\npolicies: []\n",
     "t.yaml:3: unknown key 'path' in 'metrics' (expected one of: listen)"},
    {__LINE__, "metrics:\n  listen: 0.0.0.0:9464\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': must be a loopback address (127.0.0.1:PORT, [::1]:PORT) or "
     "unix:PATH, got '0.0.0.0:9464': metrics are served without authentication"},
    {__LINE__, "metrics:\n  listen: '[::]:9464'\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': must be a loopback address (127.0.0.1:PORT, [::1]:PORT) or "
     "unix:PATH, got '[::]:9464': metrics are served without authentication"},
    {__LINE__, "metrics:\n  listen: localhost:9464\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': must be a loopback address (127.0.0.1:PORT, [::1]:PORT) or "
     "unix:PATH, got 'localhost:9464': metrics are served without authentication"},
    {__LINE__, "metrics:\n  listen: 127.0.0.1\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': expected host:port (e.g. 0.0.0.0:2222), got '127.0.0.1'"},
    {__LINE__, "metrics:\n  listen: unix:run/m.sock\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': expected unix: and an absolute path of at most 107 bytes, "
     "got 'unix:run/m.sock'"},
    {__LINE__, "metrics:\n  listen: 'unix:/" + std::string(107, 'm') + "'\npolicies: []\n",
     "t.yaml:2: 'metrics.listen': expected unix: and an absolute path of at most 107 bytes, "
     "got 'unix:/" + std::string(58, 'm') + "...'"},
    {__LINE__, "bastion:\n  host_key: /k\n  run_as: root\npolicies: []\n",
     "t.yaml:3: 'bastion.run_as': must not be root"},
    {__LINE__, "bastion:\n  host_key: /k\n  run_as: ''\npolicies: []\n",
     "t.yaml:3: 'bastion.run_as': not a valid user name: ''"},
    {__LINE__, "bastion:\n  host_key: /k\n  run_as: [nobody]\npolicies: []\n",
     "t.yaml:3: 'bastion.run_as': expected a string, got a list"},
    {__LINE__, "bastion:\n  host_key: /k\n  max_sessions: 0\npolicies: []\n",
     "t.yaml:3: 'bastion.max_sessions': expected an integer from 1 to 10000, got '0'"},
    {__LINE__, "bastion:\n  host_key: /k\n  max_sessions: 10001\npolicies: []\n",
     "t.yaml:3: 'bastion.max_sessions': expected an integer from 1 to 10000, got "
     "'10001'"},
    {__LINE__, "bastion:\n  host_key: /k\n  max_sessions: many\npolicies: []\n",
     "t.yaml:3: 'bastion.max_sessions': expected a decimal integer, got 'many'"},
    {__LINE__, "bastion:\n  host_key: /k\n  login_grace: 0s\npolicies: []\n",
     "t.yaml:3: 'bastion.login_grace': must be from 1s to 1h, got '0s'"},
    {__LINE__, "bastion:\n  host_key: /k\n  login_grace: 1h1s\npolicies: []\n",
     "t.yaml:3: 'bastion.login_grace': must be from 1s to 1h, got '1h1s'"},
    {__LINE__, "bastion:\n  host_key: /k\n  login_grace: 90\npolicies: []\n",
     "t.yaml:3: 'bastion.login_grace': bad duration '90': missing unit (s, m, h, d)"},
    {__LINE__, "bastion:\n  host_key: /k\n  accept_env: LANG\npolicies: []\n",
     "t.yaml:3: 'bastion.accept_env': expected a list, got a string"},
    {__LINE__, "bastion:\n  host_key: /k\n  accept_env: [LANG, '']\npolicies: []\n",
     "t.yaml:3: 'bastion.accept_env[1]': bad variable pattern '' (letters, digits, "
     "'_', '*' and '?', at most 256 bytes)"},
    {__LINE__, "bastion:\n  host_key: /k\n  accept_env: ['LC_[AB]']\npolicies: []\n",
     "t.yaml:3: 'bastion.accept_env[0]': bad variable pattern 'LC_[AB]' (letters, "
     "digits, '_', '*' and '?', at most 256 bytes)"},
    {__LINE__, "bastion:\n  host_key: /k\n  accept_env: ['A=B']\npolicies: []\n",
     "t.yaml:3: 'bastion.accept_env[0]': bad variable pattern 'A=B' (letters, "
     "digits, '_', '*' and '?', at most 256 bytes)"},
    {__LINE__, "approvers:\n  oncall: [bob, carol, bob]\npolicies: []\n",
     "t.yaml:2: 'approvers.oncall[2]': 'bob' is listed twice"},
    {__LINE__, "approvers:\n  on call: [bob]\npolicies: []\n",
     "t.yaml:2: bad approver group name 'on call' (letters, digits, '_', '.' "
     "and '-', at most 64 bytes)"},
    {__LINE__, "approvers: [bob]\npolicies: []\n",
     "t.yaml:1: 'approvers': expected a mapping, got a list"},
    {__LINE__, "policies:\n  - approve: auto\n",
     "t.yaml:2: missing required key 'name' in 'policies[0]'"},
    {__LINE__, "policies:\n  - dev\n",
     "t.yaml:2: 'policies[0]': expected a mapping, got a string"},
    {__LINE__, "policies:\n  - name: my policy\n    approve: auto\n",
     "t.yaml:2: 'policies[0].name': bad policy name 'my policy' (letters, "
     "digits, '_', '.' and '-', at most 64 bytes)"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n  - name: b\n    approve: "
     "deny\n  - name: a\n    approve: deny\n",
     "t.yaml:6: 'policies[2].name': duplicate policy name 'a' (first defined "
     "at "
     "line 2)"},
    {__LINE__, "policies:\n  - name: a\n    aprove: auto\n",
     "t.yaml:3: unknown key 'aprove' in 'policies[0]' (expected one of: name, "
     "match, approve, approvers, quorum, reason, timeout, ttl, cert)"},
    {__LINE__, "broker:\n  recorder_group: 'rec group'\npolicies: []\n",
     "t.yaml:2: 'broker.recorder_group': bad group name 'rec group' (letters, digits, '_', '.' "
     "and '-', at most 64 bytes)"},
    {__LINE__, "broker:\n  recorder_resume_grace: 50ms\npolicies: []\n",
     "t.yaml:2: 'broker.recorder_resume_grace': must be from 100ms to 1d, got '50ms'"},
    {__LINE__, "ca:\n  key: /ca\n  clock_skew: 11m\npolicies: []\n",
     "t.yaml:3: 'ca.clock_skew': must be from 0s to 10m, got '11m'"},
    {__LINE__, "ca:\n  key: /ca\n  krl: ca.krl\npolicies: []\n",
     "t.yaml:3: 'ca.krl': expected an absolute path, got 'ca.krl'"},
    {__LINE__, "policies:\n  - name: a\n    approve: deny\n    cert: {}\n",
     "t.yaml:4: 'policies[0].cert': not allowed with 'approve: deny'"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    cert: {extensions: [permit-pty, permit-everything]}\n",
     "t.yaml:4: 'policies[0].cert.extensions[1]': unknown extension 'permit-everything' (known: "
     "permit-X11-forwarding, permit-agent-forwarding, permit-port-forwarding, permit-pty, "
     "permit-user-rc)"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    cert: {extensions: [permit-pty, permit-pty]}\n",
     "t.yaml:4: 'policies[0].cert.extensions[1]': 'permit-pty' is listed twice"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    cert: {source_address: [10.0.0.0/33]}\n",
     "t.yaml:4: 'policies[0].cert.source_address[0]': expected an IP address or CIDR block, got "
     "'10.0.0.0/33'"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    cert: {force_command: ''}\n",
     "t.yaml:4: 'policies[0].cert.force_command': must not be empty (omit it for no forced command)"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    cert: {principals: [root]}\n",
     "t.yaml:4: unknown key 'principals' in 'policies[0].cert' (expected one of: force_command, "
     "source_address, extensions)"},
    {__LINE__, "policies:\n  - name: a\n",
     "t.yaml:2: policy 'a' needs 'approve: auto', 'approve: deny' or "
     "'approvers'"},
    {__LINE__, "policies:\n  - name: a\n    approve: yes\n",
     "t.yaml:3: 'policies[0].approve': expected auto or deny, got 'yes' (to "
     "require approval, omit 'approve' and list 'approvers')"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approve: auto\n"
     "    approvers: [oncall]\n",
     "t.yaml:5: 'policies[0].approvers': not allowed with 'approve: auto'"},
    {__LINE__, "policies:\n  - name: a\n    approve: deny\n    quorum: 1\n",
     "t.yaml:4: 'policies[0].quorum': not allowed with 'approve: deny'"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    timeout: 5m\n",
     "t.yaml:4: 'policies[0].timeout': not allowed with 'approve: auto'"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: deny\n    reason: required\n",
     "t.yaml:4: 'policies[0].reason': not allowed with 'approve: deny'"},
    {__LINE__, "policies:\n  - name: a\n    approve: deny\n    ttl: 5m\n",
     "t.yaml:4: 'policies[0].ttl': not allowed with 'approve: deny'"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncal]\n",
     "t.yaml:4: 'policies[0].approvers[0]': unknown approver group 'oncal' "
     "(groups: oncall)"},
    {__LINE__, "policies:\n  - name: a\n    approvers: [oncall]\n",
     "t.yaml:3: 'policies[0].approvers[0]': unknown approver group 'oncall' "
     "(no groups are defined under 'approvers')"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall, oncall]\n",
     "t.yaml:4: 'policies[0].approvers[1]': 'oncall' is listed twice"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: []\n",
     "t.yaml:4: 'policies[0].approvers': must name at least one approver "
     "group"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "oncall\n",
     "t.yaml:4: 'policies[0].approvers': expected a list, got a string"},
    {__LINE__,
     "approvers: {oncall: [bob, carol]}\npolicies:\n  - name: a\n    "
     "approvers: [oncall]\n    quorum: 3\n",
     "t.yaml:5: 'policies[0].quorum': quorum 3 exceeds the 2 distinct "
     "approvers in oncall"},
    {__LINE__,
     "approvers: {a: [x, y], b: [y]}\npolicies:\n  - name: p\n    "
     "approvers: [a, b]\n    quorum: 3\n",
     "t.yaml:5: 'policies[0].quorum': quorum 3 exceeds the 2 distinct "
     "approvers in a, b"},
    {__LINE__,
     "approvers: {empty: []}\npolicies:\n  - name: p\n    approvers: [empty]\n",
     "t.yaml:4: 'policies[0].approvers': quorum 1 exceeds the 0 distinct "
     "approvers in empty"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall]\n    quorum: 0\n",
     "t.yaml:5: 'policies[0].quorum': expected an integer from 1 to 1000, got "
     "'0'"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall]\n    quorum: '1'\n",
     "t.yaml:5: 'policies[0].quorum': expected an integer, not a quoted "
     "string, got '1'"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall]\n    timeout: 5\n",
     "t.yaml:5: 'policies[0].timeout': bad duration '5': missing unit (s, m, "
     "h, d)"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall]\n    timeout: 25h\n",
     "t.yaml:5: 'policies[0].timeout': must be from 1s to 24h, got '25h'"},
    {__LINE__,
     "approvers: {oncall: [bob]}\npolicies:\n  - name: a\n    approvers: "
     "[oncall]\n    timeout: 500ms\n",
     "t.yaml:5: 'policies[0].timeout': must be from 1s to 24h, got '500ms'"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    ttl: 31d\n",
     "t.yaml:4: 'policies[0].ttl': must be from 1s to 30d, got '31d'"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    ttl: [5m]\n",
     "t.yaml:4: 'policies[0].ttl': expected a duration, got a list"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    reason: sometimes\n",
     "t.yaml:4: 'policies[0].reason': expected required, optional or none, got "
     "'sometimes'"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    match: {hosts: [x]}\n",
     "t.yaml:4: unknown key 'hosts' in 'policies[0].match' (expected one of: "
     "service, host, user, group, target_user, command)"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    match: {service: sshd}\n",
     "t.yaml:4: 'policies[0].match.service': expected a list, got a string"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    match: {service: []}\n",
     "t.yaml:4: 'policies[0].match.service': an empty list matches nothing; "
     "omit 'service' to match any"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    match:\n      host: "
     "['db[1-']\n",
     "t.yaml:5: 'policies[0].match.host[0]': bad pattern 'db[1-': "
     "unterminated '['"},
    {__LINE__,
     "policies:\n  - name: a\n    approve: auto\n    match:\n      command: "
     "['[[:digit:]]']\n",
     "t.yaml:5: 'policies[0].match.command[0]': bad pattern '[[:digit:]]': "
     "character classes such as '[:digit:]' are not supported (write a range "
     "such as [0-9])"},
    {__LINE__, "policies:\n  - name: a\n    approve: auto\n    match:\n",
     "t.yaml:4: 'policies[0].match': expected a mapping, got null"},
    {__LINE__, "policies: []\npolicies: []\n",
     "t.yaml:2: duplicate key 'policies' at top level (first defined at line "
     "1)"},
};

TEST(ConfigTest, RejectsWithFileAndLine) {
  for (const RejectCase& c : kRejectCases) {
    SCOPED_TRACE("case at " __FILE__ ":" + std::to_string(c.line));
    EXPECT_THAT(ParseConfig(c.yaml, "t.yaml"),
                StatusIs(StatusCode::kInvalidArgument, Eq(c.message)));
  }
}

}  // namespace
}  // namespace jitgate::broker
