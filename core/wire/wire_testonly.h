// Test-only sample messages for the wire tests, the fuzz seed corpora and
// anyone who needs a valid instance of every message. Never linked into a
// shipped binary (header-only; included only by tests and fuzz targets).
#ifndef JITGATE_CORE_WIRE_WIRE_TESTONLY_H_
#define JITGATE_CORE_WIRE_WIRE_TESTONLY_H_

#include <string>
#include <vector>

#include "core/wire/messages.h"

namespace jitgate::wire::testonly {

inline RequestFields SampleFields() {
  RequestFields f;
  f.service = "sudo";
  f.user = "alice";
  f.target_user = "root";
  f.host = "db1";
  f.remote_addr = "10.0.0.7";
  f.tty = "/dev/pts/3";
  f.command = "/usr/bin/systemctl restart nginx";
  f.cwd = "/home/alice";
  f.reason = "deploy hotfix #412";
  return f;
}

inline ResumeToken SampleToken() {
  ResumeToken t;
  for (size_t i = 0; i < t.size(); ++i) t[i] = uint8_t(0xa0 + i);
  return t;
}

inline RequestInfo SampleInfo() {
  RequestInfo r;
  r.id = "7f3a9c02e1";
  r.fields = SampleFields();
  r.digest = RequestDigest(r.fields);
  r.state = RequestState::kPending;
  r.filed_by = "uid 0 (root) pid 4242 sudo";
  r.approvers = "2 of oncall";
  r.approvals_needed = 2;
  r.created_at = 1767225600;
  r.expires_at = 1767225900;
  r.votes.push_back(Vote{Verdict::kApprove, "bob", 1767225660, "ok for the hotfix"});
  return r;
}

// The largest RequestInfo the caps allow.
inline RequestInfo MaxInfo() {
  RequestInfo r;
  r.id = std::string(kMaxRequestIdLength, 'z');
  r.fields.service = std::string(kMaxNameField, 's');
  r.fields.user = std::string(kMaxNameField, 'u');
  r.fields.target_user = std::string(kMaxNameField, 't');
  r.fields.host = std::string(kMaxNameField, 'h');
  r.fields.remote_addr = std::string(kMaxAddressField, 'a');
  r.fields.tty = std::string(kMaxNameField, 'y');
  r.fields.command = std::string(kMaxCommandField, 'c');
  r.fields.cwd = std::string(kMaxCwdField, 'd');
  r.fields.reason = std::string(kMaxReasonField, 'r');
  r.digest = RequestDigest(r.fields);
  r.state = RequestState::kUsed;
  r.filed_by = std::string(kMaxLabelField, 'f');
  r.approvers = std::string(kMaxLabelField, 'p');
  r.approvals_needed = 0xffff;
  r.created_at = ~uint64_t{0};
  r.expires_at = ~uint64_t{0};
  for (size_t i = 0; i < kMaxVotes; ++i) {
    r.votes.push_back(Vote{Verdict::kDeny, std::string(kMaxLabelField, 'v'), ~uint64_t{0},
                           std::string(kMaxCommentField, 'm')});
  }
  return r;
}

// One valid, non-trivial instance of every message type, in type order.
inline std::vector<Message> SampleMessages() {
  std::vector<Message> out;
  out.push_back(Hello{1, 1, "pam_jitgate 0.1.0"});
  out.push_back(HelloAck{1, "jitgated 0.1.0 db1"});
  out.push_back(Error{ErrorCode::kAmbiguous, "2 requests match \"7f3a\""});
  out.push_back(SubmitRequest{SampleFields(), 300, true});
  out.push_back(NeedReason{true, "Reason for sudo on db1: "});
  out.push_back(ProvideReason{"deploy hotfix #412"});
  out.push_back(RequestAccepted{"7f3a9c02e1", SampleToken(), RequestDigest(SampleFields()),
                                "2 of oncall", 300});
  out.push_back(StatusUpdate{1, 2, 240, "approved by bob (1 of 2)"});
  out.push_back(Decision{"7f3a9c02e1", RequestDigest(SampleFields()), Outcome::kApproved,
                         {"bob", "carol"}, "go ahead", "approved by bob, carol", 1767227400});
  out.push_back(Resume{"7f3a9c02e1", SampleToken()});
  out.push_back(Cancel{});
  out.push_back(ListRequests{ListFilter::kAll, 50});
  RequestList list;
  list.more = true;
  list.items.push_back(SampleInfo());
  RequestInfo second = SampleInfo();
  second.id = "0b1c2d3e4f";
  second.state = RequestState::kDenied;
  second.votes.push_back(Vote{Verdict::kDeny, "carol", 1767225700, ""});
  list.items.push_back(second);
  out.push_back(list);
  out.push_back(GetRequest{"7f3a"});
  out.push_back(SampleInfo());
  out.push_back(Approve{"7f3a", RequestDigest(SampleFields()), "ok"});
  out.push_back(Deny{"7f3a9c02e1", RequestDigest(SampleFields()), "not during the freeze"});
  out.push_back(Follow{ListFilter::kPending});
  return out;
}

}  // namespace jitgate::wire::testonly

#endif  // JITGATE_CORE_WIRE_WIRE_TESTONLY_H_
