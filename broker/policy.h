// Policy: which requests need whose approval (jitgate.yaml `policies`).
//
// A Policy is an ordered list of Rules plus the approver groups they name.
// Evaluate walks the rules in file order and the first rule whose `match`
// accepts the request decides; when none does, the request is denied
// ("no policy matches"). Evaluate is a pure function of its inputs: it never
// looks up users or groups itself (the daemon resolves the requesting user's
// groups through NSS and passes them in), so tests need no passwd database.
#ifndef JITGATE_BROKER_POLICY_H_
#define JITGATE_BROKER_POLICY_H_

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/glob.h"
#include "core/config/yaml.h"
#include "core/wire/request.h"

namespace jitgate::broker {

// Outcome is what a rule does with a request it matches.
enum class Outcome {
  kDeny,         // refuse at once
  kAutoApprove,  // approve at once, no human involved
  kApproval,     // wait for `quorum` distinct members of the approver groups
};

// ReasonMode says whether the requester must give a reason (jitgate.yaml
// `reason: required|optional|none`; PAM's `reason=` argument).
enum class ReasonMode { kNone, kOptional, kRequired };

// "deny", "auto", "approval"; "none", "optional", "required". Stable: these
// strings appear in audit events and JSON output.
std::string_view OutcomeName(Outcome outcome);
std::string_view ReasonModeName(ReasonMode mode);

// Match is a rule's `match` section. Each field is a list of patterns; a field
// matches when any of its patterns matches, and the Match accepts a request
// when every non-empty field matches. An empty field (key absent) matches
// anything. `group` matches when any pattern matches any of the requesting
// user's groups. ParseConfig compiles host patterns to ignore ASCII case
// (DNS names are case-insensitive); all other fields match exactly.
struct Match {
  std::vector<Glob> service;
  std::vector<Glob> host;
  std::vector<Glob> user;
  std::vector<Glob> group;
  std::vector<Glob> target_user;
  std::vector<Glob> command;
};

// Rule is one entry of `policies`.
// What a policy fixes in the certificates of the requests it approves
// (`cert:` in a policy; docs/jitgated.md).
struct CertPolicy {
  std::string force_command;                // critical option; "" = none
  std::vector<std::string> source_address;  // critical option; empty = the request's address, if any
  std::vector<std::string> extensions = {"permit-pty"};  // sorted, distinct
};

struct Rule {
  std::string name;   // unique within the Policy
  config::Mark mark;  // where the rule starts, for messages
  Match match;
  Outcome outcome = Outcome::kDeny;
  std::vector<std::string> approver_groups;  // kApproval only, in file order
  int quorum = 0;                            // kApproval only: >= 1
  ReasonMode reason = ReasonMode::kOptional;
  std::chrono::nanoseconds timeout{0};  // kApproval: how long a request waits
  std::chrono::nanoseconds ttl{0};      // approved: how long the approval lasts
  CertPolicy cert;  // certificates of approved requests (jitgate request)
};

// Policy is the whole `approvers` + `policies` configuration. ParseConfig
// guarantees its invariants: rule names are unique, every approver group a
// rule names exists, and quorum <= the number of distinct users in those
// groups.
struct Policy {
  std::vector<Rule> rules;  // file order: first match wins
  std::map<std::string, std::vector<std::string>> approver_groups;
};

// Decision is what Evaluate concluded for one request. It is a snapshot: the
// request book keeps it, so a later configuration reload does not change who
// may approve a request already waiting.
struct Decision {
  std::string policy;  // name of the matching rule; "" if none matched
  Outcome outcome = Outcome::kDeny;
  std::string explanation;  // for kDeny: why ("no policy matches", ...)
  std::vector<std::string> approver_groups;  // kApproval: group names
  std::vector<std::string> approvers;  // kApproval: distinct members, sorted
  int quorum = 0;                      // kApproval: distinct approvals needed
  ReasonMode reason = ReasonMode::kNone;
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds ttl{0};
};

// Matches reports whether match accepts request r from a user in user_groups.
bool Matches(const Match& match, const wire::RequestFields& r,
             const std::vector<std::string>& user_groups);

// Evaluate returns the decision of the first rule in policies that matches r,
// or a kDeny decision with explanation "no policy matches". user_groups are
// the names of the requesting user's (r.user's) groups. A rule that names an
// approver group missing from policies.approver_groups (impossible after
// ParseConfig) yields kDeny: policy errors fail closed. Pure; thread-safe.
Decision Evaluate(const Policy& policies, const wire::RequestFields& r,
                  const std::vector<std::string>& user_groups);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_POLICY_H_
