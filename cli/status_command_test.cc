// `jitgate status` against a scripted broker, and its output exactly.
#include "cli/status_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "cli/golden_testonly.h"
#include "core/wire/wire_testonly.h"
#include "tests/testing/fake_broker.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::cli {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadGolden(const std::string& name, const std::string& got) {
  return testonly::ReadGolden(JITGATE_CLI_TESTDATA, name, got);
}

// The sample report gone wrong in every way the command judges.
wire::StatusReport Broken() {
  wire::StatusReport r = wire::testonly::SampleStatusReport();
  r.uncovered_entries = 3;
  r.uncovered_age = 42;
  r.verify = wire::CheckState::kFailed;
  r.verified_entries = 1000;
  r.verify_error = "checkpoint of size 1040 (segment 0000000001 offset 9000): signed root does "
                   "not match the entries\x1b[2J";
  r.ca = wire::CheckState::kFailed;
  r.ca_detail = "ca.key /etc/jitgate/ca: No such file or directory";
  r.bastion_listen.clear();
  r.metrics_listen.clear();
  r.spools.clear();
  return r;
}

TEST(StatusFormatTest, AHealthyBroker) {
  StatusView v = FormatStatus(wire::testonly::SampleStatusReport(), kDefaultMaxCheckpointAgeSeconds);
  EXPECT_THAT(v.problems, IsEmpty());
  EXPECT_EQ(v.text, ReadGolden("status_ok.out.ok", v.text));
}

TEST(StatusFormatTest, EveryProblemIsNamed) {
  StatusView v = FormatStatus(Broken(), kDefaultMaxCheckpointAgeSeconds);
  EXPECT_EQ(v.text, ReadGolden("status_broken.out.ok", v.text));
  EXPECT_THAT(v.problems,
              ::testing::ElementsAre(
                  "checkpoint: 3 entries have waited 42s for a signed checkpoint (more than 10s)",
                  "the store does not verify: checkpoint of size 1040 (segment 0000000001 offset "
                  "9000): signed root does not match the entries\\x1b[2J",
                  "CA key: ca.key /etc/jitgate/ca: No such file or directory"));
  // A longer allowance makes the checkpoint's wait acceptable.
  EXPECT_EQ(FormatStatus(Broken(), 60).problems.size(), 2u);
  wire::StatusReport first = wire::testonly::SampleStatusReport();
  first.verify = wire::CheckState::kUnknown;
  EXPECT_THAT(FormatStatus(first, 10).problems, IsEmpty());  // still verifying: not wrong
}

TEST(StatusFormatTest, JsonHasEveryFieldAndTheVerdict) {
  wire::StatusReport r = Broken();
  std::string json = StatusJson(r, FormatStatus(r, 10));
  for (const char* s : {"\"healthy\": false", "\"verify\": \"failed\"", "\"ca\": \"failed\"",
                        "\"uncovered_age\": 42", "\"spools\": []", "\"store_entries\": 1042"}) {
    EXPECT_THAT(json, HasSubstr(s));
  }
}

class StatusCommandTest : public ::testing::Test {
 protected:
  ApproverIo Io() { return ApproverIo{&out_, &err_, RealClock(), nullptr, nullptr}; }
  std::ostringstream out_, err_;
};

FakeBroker::Script Answer(wire::Message reply) {
  return [reply](FakeBrokerConnection& c) -> Status {
    if (Status s = c.Handshake().status(); !s.ok()) return s;
    StatusOr<wire::Message> m = c.Read();
    if (!m.ok()) return m.status();
    if (!std::holds_alternative<wire::GetStatus>(*m)) return InternalError("expected GetStatus");
    return c.Send(reply);
  };
}

TEST_F(StatusCommandTest, HealthyIsExitZero) {
  FakeBroker broker(Answer(wire::testonly::SampleStatusReport()));
  EXPECT_EQ(RunStatus({"--socket", broker.socket_path()}, Io()), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ok    verified    1040 entries, last pass 5s ago\n"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(StatusCommandTest, ProblemsAreExitOneWithALineEach) {
  FakeBroker broker(Answer(Broken()));
  EXPECT_EQ(RunStatus({"--socket", broker.socket_path(), "--json"}, Io()), 1);
  EXPECT_THAT(out_.str(), HasSubstr("\"healthy\": false"));
  EXPECT_EQ(err_.str(),
            "jitgate: checkpoint: 3 entries have waited 42s for a signed checkpoint (more than 10s)\n"
            "jitgate: the store does not verify: checkpoint of size 1040 (segment 0000000001 "
            "offset 9000): signed root does not match the entries\\x1b[2J\n"
            "jitgate: CA key: ca.key /etc/jitgate/ca: No such file or directory\n");
}

TEST_F(StatusCommandTest, BrokerErrorsAndAbsenceAreExitOne) {
  FakeBroker broker(Answer(wire::Error{wire::ErrorCode::kInvalidRequest, "no health"}));
  EXPECT_EQ(RunStatus({"--socket", broker.socket_path()}, Io()), 1);
  EXPECT_EQ(err_.str(), "jitgate: broker error (invalid_request): no health\n");
  err_.str("");
  testing::TempDir dir;
  EXPECT_EQ(RunStatus({"--socket", dir.Join("none.sock")}, Io()), 1);
  EXPECT_THAT(err_.str(), HasSubstr("jitgate: broker unreachable at " + dir.Join("none.sock")));
  EXPECT_EQ(err_.str().find('\n'), err_.str().size() - 1);  // one line
}

TEST_F(StatusCommandTest, UsageErrorsAreExitTwo) {
  EXPECT_EQ(RunStatus({"--max-checkpoint-age", "ten"}, Io()), 2);
  EXPECT_THAT(err_.str(), HasSubstr("jitgate: --max-checkpoint-age: bad duration 'ten'"));
}

}  // namespace
}  // namespace jitgate::cli
