// Fuzz target: ParseConfig over arbitrary bytes, then Evaluate over whatever
// it accepted.
//
// Properties beyond "no crash": every error is INVALID_ARGUMENT and starts
// with the file name (so it can be located); every accepted configuration
// satisfies the invariants policy.h promises (unique names, known groups,
// reachable quorums, bounded durations), and evaluating it never yields an
// approval decision that could not be met.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "broker/config.h"
#include "broker/policy.h"

namespace {

using jitgate::broker::Config;
using jitgate::broker::Decision;
using jitgate::broker::Outcome;
using jitgate::broker::Rule;

constexpr std::string_view kFile = "fuzz.yaml";

void Check(bool ok) {
  if (!ok) abort();
}

void CheckInvariants(const Config& cfg) {
  Check(!cfg.broker.socket.empty() && cfg.broker.socket[0] == '/');
  Check(cfg.broker.socket.size() <= 107);
  Check(!cfg.store.dir.empty() && cfg.store.dir[0] == '/');
  std::set<std::string> names;
  for (const Rule& rule : cfg.policy.rules) {
    Check(names.insert(rule.name).second);
    Check(rule.mark.line >= 1);
    if (rule.outcome == Outcome::kApproval) {
      Check(!rule.approver_groups.empty());
      std::set<std::string> members;
      for (const std::string& g : rule.approver_groups) {
        auto it = cfg.policy.approver_groups.find(g);
        Check(it != cfg.policy.approver_groups.end());
        members.insert(it->second.begin(), it->second.end());
      }
      Check(rule.quorum >= 1 &&
            static_cast<size_t>(rule.quorum) <= members.size());
      Check(rule.timeout >= jitgate::broker::kMinDuration &&
            rule.timeout <= jitgate::broker::kMaxTimeout);
    } else {
      Check(rule.approver_groups.empty() && rule.quorum == 0);
    }
    if (rule.outcome != Outcome::kDeny) {
      Check(rule.ttl >= jitgate::broker::kMinDuration &&
            rule.ttl <= jitgate::broker::kMaxTtl);
    }
  }
}

void CheckEvaluate(const Config& cfg) {
  jitgate::wire::RequestFields r;
  r.service = "sshd";
  r.user = "alice";
  r.target_user = "alice";
  r.host = "db1";
  r.command = "/usr/bin/systemctl restart nginx";
  for (const char* service : {"sshd", "sudo", "bastion", "su"}) {
    r.service = service;
    Decision d = jitgate::broker::Evaluate(cfg.policy, r, {"ops", "wheel"});
    if (d.outcome == Outcome::kApproval) {
      Check(d.quorum >= 1 &&
            static_cast<size_t>(d.quorum) <= d.approvers.size());
    }
    if (d.policy.empty()) Check(d.outcome == Outcome::kDeny);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = jitgate::broker::ParseConfig(text, kFile);
  if (!cfg.ok()) {
    Check(cfg.status().code() == jitgate::StatusCode::kInvalidArgument);
    Check(cfg.status().message().substr(0, kFile.size()) == kFile);
    return 0;
  }
  CheckInvariants(*cfg);
  CheckEvaluate(*cfg);
  return 0;
}
