#include "broker/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace jitgate::broker {
namespace {

TEST(AuditEventToJsonTest, ApprovedEventIsStableCompactJson) {
  AuditEvent e;
  e.type = AuditEventType::kApproved;
  e.request_id = "7f3a0001";
  e.actor = "bob";
  e.comment = "ok \"quoted\"";
  e.time_unix_nanos = int64_t{1704067200} * 1'000'000'000 + 5;
  e.fields_digest.fill(0xab);
  e.policy = "prod";
  e.approvers = {"bob"};
  e.quorum = 1;
  e.valid_until_unix_nanos = 7;
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "ab";
  EXPECT_EQ(AuditEventToJson(e),
            R"({"actor":"bob","approvers":["bob"],"comment":"ok \"quoted\"",)"
            R"("digest":")" +
                hex +
                R"(","policy":"prod","quorum":1,"request":"7f3a0001",)"
                R"("time":"2024-01-01T00:00:00.000000005Z",)"
                R"("time_unix_nanos":1704067200000000005,"type":"approved",)"
                R"("valid_until_unix_nanos":7})");
}

TEST(AuditEventToJsonTest, CreatedEventCarriesFieldsAndCaller) {
  AuditEvent e;
  e.type = AuditEventType::kCreated;
  e.request_id = "7f3a0001";
  e.actor = "alice";
  wire::RequestFields f;
  f.service = "sudo";
  f.user = "alice";
  f.target_user = "root";
  f.host = "web1";
  f.command = "/usr/bin/systemctl restart nginx";
  f.cwd = "/home/alice";
  f.reason = "bad\xff byte";
  e.fields = f;
  e.caller = Caller{0, 0, 99, "root"};
  const auto j = nlohmann::json::parse(AuditEventToJson(e));
  EXPECT_EQ(j["type"], "created");
  EXPECT_EQ(j["fields"]["command"], "/usr/bin/systemctl restart nginx");
  EXPECT_EQ(j["fields"]["target_user"], "root");
  EXPECT_EQ(j["fields"]["reason"], "bad\xef\xbf\xbd byte");  // U+FFFD
  EXPECT_EQ(j["caller"]["pid"], 99);
  EXPECT_FALSE(j.contains("approvers"));
  EXPECT_FALSE(j.contains("valid_until_unix_nanos"));
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000000000Z");
}

TEST(AuditEventTypeNameTest, AreStable) {
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kCreated), "created");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kVote), "vote");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kApproved), "approved");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kDenied), "denied");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kExpired), "expired");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kCancelled), "cancelled");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kUsed), "used");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kCertIssued), "cert_issued");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kCertRevoked), "cert_revoked");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kSessionTerminated), "session_terminated");
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kBastion), "bastion");
}

TEST(AuditEventToJsonTest, BastionEventCarriesWhatTheBastionSaid) {
  AuditEvent e;
  e.type = AuditEventType::kBastion;
  e.actor = "alice";
  e.comment = "direct-tcpip to 127.0.0.1:5432";
  e.request_id = "7f3a0001";
  e.session = "k3n8v2x9q4m1";
  e.bastion = BastionAudit{"forward_opened", "192.0.2.7", "deploy@db1"};
  const auto j = nlohmann::json::parse(AuditEventToJson(e));
  EXPECT_EQ(j["type"], "bastion");
  EXPECT_EQ(j["bastion"]["event"], "forward_opened");
  EXPECT_EQ(j["bastion"]["remote_addr"], "192.0.2.7");
  EXPECT_EQ(j["bastion"]["ssh_user"], "deploy@db1");
  EXPECT_EQ(j["session"], "k3n8v2x9q4m1");
  EXPECT_EQ(j["actor"], "alice");
  EXPECT_EQ(j["comment"], "direct-tcpip to 127.0.0.1:5432");
}

TEST(AuditEventToJsonTest, ConfigEventNamesTheFileAndItsDigest) {
  AuditEvent e;
  e.type = AuditEventType::kConfig;
  e.actor = kBrokerActor;
  e.comment = "jitgate.yaml:3: 'policies': unknown key";
  e.config = ConfigAudit{"reload_refused", "/etc/jitgate/jitgate.yaml", std::string(64, 'a')};
  const auto j = nlohmann::json::parse(AuditEventToJson(e));
  EXPECT_EQ(AuditEventTypeName(AuditEventType::kConfig), "config");
  EXPECT_EQ(j["type"], "config");
  EXPECT_EQ(j["config"]["event"], "reload_refused");
  EXPECT_EQ(j["config"]["file"], "/etc/jitgate/jitgate.yaml");
  EXPECT_EQ(j["config"]["sha256"], std::string(64, 'a'));
  EXPECT_EQ(j["comment"], "jitgate.yaml:3: 'policies': unknown key");
  EXPECT_FALSE(j.contains("session"));
}

TEST(AuditEventToJsonTest, SessionTerminatedNamesTheSession) {
  AuditEvent e;
  e.type = AuditEventType::kSessionTerminated;
  e.request_id = "7f3a0001";
  e.actor = "bob";
  e.comment = "done";
  e.session = "k3n8v2x9q4m1";
  const auto j = nlohmann::json::parse(AuditEventToJson(e));
  EXPECT_EQ(j["type"], "session_terminated");
  EXPECT_EQ(j["session"], "k3n8v2x9q4m1");
  EXPECT_EQ(j["request"], "7f3a0001");
  EXPECT_EQ(j["actor"], "bob");
  EXPECT_EQ(j["comment"], "done");
  // Other events keep their bytes: no session key.
  e.type = AuditEventType::kApproved;
  EXPECT_FALSE(nlohmann::json::parse(AuditEventToJson(e)).contains("session"));
}

}  // namespace
}  // namespace jitgate::broker
