#include "broker/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "broker/config.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::broker {
namespace {

using std::chrono::minutes;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kPolicies[] = R"(approvers:
  oncall: [bob, carol]
  security: [carol, dave]
policies:
  - name: dev
    match: {service: [sshd], host: ["dev-*"]}
    approve: auto
  - name: no-shells
    match: {service: [sudo], command: ["/bin/bash", "/bin/sh *"]}
    approve: deny
  - name: restart
    match: {service: [sudo], group: [ops, "sre-*"], target_user: [root],
            command: ["/usr/bin/systemctl restart *"]}
    approvers: [oncall, security]
    quorum: 2
    reason: required
    timeout: 10m
    ttl: 5m
  - name: prod-ssh
    match: {service: [sshd, bastion], host: ["db[0-9]", "web?.prod"], user: ["*"]}
    approvers: [oncall]
    reason: optional
)";

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(config_, ParseConfig(kPolicies, "p.yaml"));
  }
  Decision Eval(const wire::RequestFields& r,
                const std::vector<std::string>& groups = {}) {
    return Evaluate(config_.policy, r, groups);
  }
  static wire::RequestFields Ssh(std::string host, std::string user = "alice") {
    wire::RequestFields r;
    r.service = "sshd";
    r.user = user;
    r.target_user = user;
    r.host = std::move(host);
    r.remote_addr = "192.0.2.7";
    return r;
  }
  static wire::RequestFields Sudo(std::string command) {
    wire::RequestFields r;
    r.service = "sudo";
    r.user = "alice";
    r.target_user = "root";
    r.host = "web1";
    r.tty = "/dev/pts/3";
    r.command = std::move(command);
    r.cwd = "/home/alice";
    return r;
  }

  Config config_;
};

TEST_F(PolicyTest, FirstMatchWins) {
  // The auto rule for dev hosts is the first that matches.
  Decision d = Eval(Ssh("dev-1"));
  EXPECT_EQ(d.policy, "dev");
  EXPECT_EQ(d.outcome, Outcome::kAutoApprove);
  EXPECT_EQ(d.ttl, kDefaultTtl);
  EXPECT_THAT(d.approvers, IsEmpty());

  // A policy whose first rule matches everything shadows the rest.
  Policy all_deny = config_.policy;
  Rule deny_all;
  deny_all.name = "lockdown";
  deny_all.outcome = Outcome::kDeny;
  all_deny.rules.insert(all_deny.rules.begin(), deny_all);
  Decision locked = Evaluate(all_deny, Ssh("dev-1"), {});
  EXPECT_EQ(locked.policy, "lockdown");
  EXPECT_EQ(locked.outcome, Outcome::kDeny);
  EXPECT_EQ(locked.explanation, "denied by policy 'lockdown'");
}

TEST_F(PolicyTest, DefaultDeny) {
  Decision d = Eval(Ssh("mail1"));
  EXPECT_EQ(d.policy, "");
  EXPECT_EQ(d.outcome, Outcome::kDeny);
  EXPECT_EQ(d.explanation, "no policy matches");

  wire::RequestFields su = Ssh("db1");
  su.service = "su";  // only sshd and bastion are covered for db hosts
  EXPECT_EQ(Eval(su).explanation, "no policy matches");

  EXPECT_EQ(Evaluate(Policy{}, Ssh("db1"), {}).outcome, Outcome::kDeny);
}

TEST_F(PolicyTest, ApprovalDecisionCarriesEverything) {
  Decision d = Eval(Sudo("/usr/bin/systemctl restart nginx"), {"users", "ops"});
  EXPECT_EQ(d.policy, "restart");
  EXPECT_EQ(d.outcome, Outcome::kApproval);
  EXPECT_THAT(d.approver_groups, ElementsAre("oncall", "security"));
  EXPECT_THAT(d.approvers, ElementsAre("bob", "carol", "dave"));  // distinct
  EXPECT_EQ(d.quorum, 2);
  EXPECT_EQ(d.reason, ReasonMode::kRequired);
  EXPECT_EQ(d.timeout, minutes(10));
  EXPECT_EQ(d.ttl, minutes(5));
  EXPECT_EQ(d.explanation, "");
}

TEST_F(PolicyTest, GroupMatchesAnyOfTheUsersGroups) {
  const auto cmd = Sudo("/usr/bin/systemctl restart nginx");
  EXPECT_EQ(Eval(cmd, {"sre-emea"}).policy, "restart");
  EXPECT_EQ(Eval(cmd, {"users", "ops"}).policy, "restart");
  EXPECT_EQ(Eval(cmd, {"users"}).explanation, "no policy matches");
  EXPECT_EQ(Eval(cmd, {}).explanation, "no policy matches");
}

TEST_F(PolicyTest, TargetUserIsMatched) {
  auto r = Sudo("/usr/bin/systemctl restart nginx");
  r.target_user = "postgres";
  EXPECT_EQ(Eval(r, {"ops"}).explanation, "no policy matches");
}

TEST_F(PolicyTest, CommandGlobs) {
  EXPECT_EQ(Eval(Sudo("/bin/bash")).policy, "no-shells");
  EXPECT_EQ(Eval(Sudo("/bin/sh -c id")).policy, "no-shells");
  EXPECT_EQ(Eval(Sudo("/bin/sh")).explanation,
            "no policy matches");  // needs " *"
  EXPECT_EQ(Eval(Sudo("/bin/bash -i")).explanation, "no policy matches");
  EXPECT_EQ(Eval(Sudo("/usr/bin/systemctl stop nginx"), {"ops"}).explanation,
            "no policy matches");
  // The command is the whole line: a login request (no command) does not
  // match a command pattern.
  wire::RequestFields login = Sudo("");
  EXPECT_EQ(Eval(login, {"ops"}).explanation, "no policy matches");
}

TEST_F(PolicyTest, HostGlobsAndCase) {
  EXPECT_EQ(Eval(Ssh("db1")).policy, "prod-ssh");
  EXPECT_EQ(Eval(Ssh("DB1")).policy, "prod-ssh");  // hosts ignore case
  EXPECT_EQ(Eval(Ssh("db12")).explanation, "no policy matches");
  EXPECT_EQ(Eval(Ssh("web2.prod")).policy, "prod-ssh");
  EXPECT_EQ(Eval(Ssh("web2.prod.example")).explanation, "no policy matches");
  Decision d = Eval(Ssh("db1"));
  EXPECT_EQ(d.quorum, 1);
  EXPECT_EQ(d.timeout, kDefaultTimeout);
  EXPECT_THAT(d.approvers, ElementsAre("bob", "carol"));
}

TEST_F(PolicyTest, UnknownGroupInHandBuiltPolicyFailsClosed) {
  Policy p;
  Rule r;
  r.name = "broken";
  r.outcome = Outcome::kApproval;
  r.approver_groups = {"ghosts"};
  r.quorum = 1;
  p.rules.push_back(r);
  Decision d = Evaluate(p, Ssh("db1"), {});
  EXPECT_EQ(d.outcome, Outcome::kDeny);
  EXPECT_EQ(d.policy, "broken");
  EXPECT_EQ(d.explanation,
            "policy 'broken' names unknown approver group 'ghosts'");

  p.approver_groups["ghosts"] = {"casper"};
  p.rules[0].quorum = 2;
  EXPECT_EQ(Evaluate(p, Ssh("db1"), {}).explanation,
            "policy 'broken' has a quorum its groups cannot meet");
}

TEST(OutcomeNames, AreStable) {
  EXPECT_EQ(OutcomeName(Outcome::kDeny), "deny");
  EXPECT_EQ(OutcomeName(Outcome::kAutoApprove), "auto");
  EXPECT_EQ(OutcomeName(Outcome::kApproval), "approval");
  EXPECT_EQ(ReasonModeName(ReasonMode::kRequired), "required");
  EXPECT_EQ(ReasonModeName(ReasonMode::kOptional), "optional");
  EXPECT_EQ(ReasonModeName(ReasonMode::kNone), "none");
}

}  // namespace
}  // namespace jitgate::broker
