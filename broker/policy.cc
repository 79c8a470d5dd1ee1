#include "broker/policy.h"

#include <algorithm>

namespace jitgate::broker {

namespace {

bool AnyMatches(const std::vector<Glob>& patterns, std::string_view text) {
  if (patterns.empty()) return true;
  for (const Glob& g : patterns) {
    if (g.Matches(text)) return true;
  }
  return false;
}

Decision Deny(std::string policy, std::string explanation) {
  Decision d;
  d.policy = std::move(policy);
  d.outcome = Outcome::kDeny;
  d.explanation = std::move(explanation);
  return d;
}

}  // namespace

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDeny:
      return "deny";
    case Outcome::kAutoApprove:
      return "auto";
    case Outcome::kApproval:
      return "approval";
  }
  return "deny";
}

std::string_view ReasonModeName(ReasonMode mode) {
  switch (mode) {
    case ReasonMode::kNone:
      return "none";
    case ReasonMode::kOptional:
      return "optional";
    case ReasonMode::kRequired:
      return "required";
  }
  return "none";
}

bool Matches(const Match& match, const wire::RequestFields& r,
             const std::vector<std::string>& user_groups) {
  if (!AnyMatches(match.service, r.service)) return false;
  if (!AnyMatches(match.host, r.host)) return false;
  if (!AnyMatches(match.user, r.user)) return false;
  if (!AnyMatches(match.target_user, r.target_user)) return false;
  if (!AnyMatches(match.command, r.command)) return false;
  if (!match.group.empty()) {
    bool any = false;
    for (const std::string& g : user_groups) {
      any = any || AnyMatches(match.group, g);
    }
    if (!any) return false;
  }
  return true;
}

Decision Evaluate(const Policy& policies, const wire::RequestFields& r,
                  const std::vector<std::string>& user_groups) {
  for (const Rule& rule : policies.rules) {
    if (!Matches(rule.match, r, user_groups)) continue;
    Decision d;
    d.policy = rule.name;
    d.outcome = rule.outcome;
    d.reason = rule.reason;
    d.timeout = rule.timeout;
    d.ttl = rule.ttl;
    if (rule.outcome == Outcome::kDeny) {
      d.explanation = "denied by policy '" + rule.name + "'";
      d.reason = ReasonMode::kNone;
      return d;
    }
    if (rule.outcome == Outcome::kApproval) {
      d.approver_groups = rule.approver_groups;
      d.quorum = rule.quorum;
      for (const std::string& group : rule.approver_groups) {
        auto it = policies.approver_groups.find(group);
        if (it == policies.approver_groups.end()) {
          return Deny(rule.name, "policy '" + rule.name +
                                     "' names unknown approver group '" +
                                     group + "'");
        }
        d.approvers.insert(d.approvers.end(), it->second.begin(),
                           it->second.end());
      }
      std::sort(d.approvers.begin(), d.approvers.end());
      d.approvers.erase(std::unique(d.approvers.begin(), d.approvers.end()),
                        d.approvers.end());
      if (d.quorum < 1 || static_cast<size_t>(d.quorum) > d.approvers.size()) {
        return Deny(rule.name, "policy '" + rule.name +
                                   "' has a quorum its groups cannot meet");
      }
    }
    return d;
  }
  return Deny("", "no policy matches");
}

}  // namespace jitgate::broker
