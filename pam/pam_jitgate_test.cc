// Tests of pam_jitgate.so through real Linux-PAM (1.5.2's pam_start_confdir:
// a service file in a temporary directory names the module by absolute path,
// as Linux-PAM's own tst-*-retval.c do), against the fake broker.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <security/pam_appl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

#include "core/base/status_macros.h"
#include "pam/module_args.h"
#include "tests/testing/fake_broker.h"
#include "tests/testing/status_matchers.h"

namespace jitgate::pam {
namespace {

using ::jitgate::testing::FakeBroker;
using ::jitgate::testing::FakeBrokerConnection;
using ::jitgate::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// A scripted PAM conversation: records every message as "style:text" and
// answers prompts from `answers` (a prompt with no answer left fails with
// PAM_CONV_ERR, like sshd's account phase).
struct Conversation {
  std::vector<std::string> messages;
  std::deque<std::string> answers;
  bool fail_prompts = false;

  static int Callback(int n, const pam_message** msg, pam_response** resp,
                      void* data) {
    auto* self = static_cast<Conversation*>(data);
    auto* r = static_cast<pam_response*>(
        std::calloc(size_t(n), sizeof(pam_response)));
    if (r == nullptr) return PAM_BUF_ERR;
    for (int i = 0; i < n; ++i) {
      const char* style = "?";
      switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_ON:
          style = "prompt";
          break;
        case PAM_PROMPT_ECHO_OFF:
          style = "secret";
          break;
        case PAM_TEXT_INFO:
          style = "info";
          break;
        case PAM_ERROR_MSG:
          style = "error";
          break;
      }
      self->messages.push_back(std::string(style) + ":" + msg[i]->msg);
      if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON ||
          msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
        if (self->fail_prompts || self->answers.empty()) {
          for (int j = 0; j < i; ++j) std::free(r[j].resp);
          std::free(r);
          return PAM_CONV_ERR;
        }
        r[i].resp = strdup(self->answers.front().c_str());
        self->answers.pop_front();
      }
    }
    *resp = r;
    return PAM_SUCCESS;
  }
};

std::string Hostname() {
  char host[HOST_NAME_MAX + 1] = {};
  (void)gethostname(host, sizeof(host) - 1);
  return host;
}

// One PAM transaction on a service file written for the test.
class PamTest : public ::testing::Test {
 protected:
  // Writes service "jitgate-test" with the module in both phases.
  void WriteService(const FakeBroker& broker, const std::string& args) {
    confdir_ = broker.dir();
    std::ofstream f(confdir_ + "/jitgate-test");
    std::string line = std::string(PAM_JITGATE_SO) + " " + args;
    f << "auth required " << line << "\naccount required " << line << "\n";
  }
  std::string Args(const FakeBroker& broker, const std::string& extra = "") {
    return "socket=" + broker.socket_path() + " timeout=5" +
           (extra.empty() ? "" : " " + extra);
  }
  void Start(const std::string& user = "alice") {
    pam_conv conv{Conversation::Callback, &conv_};
    ASSERT_EQ(pam_start_confdir("jitgate-test", user.c_str(), &conv,
                                confdir_.c_str(), &pamh_),
              PAM_SUCCESS);
  }
  void TearDown() override {
    if (pamh_ != nullptr) pam_end(pamh_, PAM_SUCCESS);
  }
  std::string Env(const char* name) {
    const char* v = pam_getenv(pamh_, name);
    return v == nullptr ? std::string("<unset>") : std::string(v);
  }

  Conversation conv_;
  std::string confdir_;
  pam_handle_t* pamh_ = nullptr;
};

TEST_F(PamTest, ApprovedInAuthThenAccountDoesNotAskAgain) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  WriteService(broker, Args(broker));
  Start();
  ASSERT_EQ(pam_set_item(pamh_, PAM_RHOST, "10.0.0.7"), PAM_SUCCESS);
  ASSERT_EQ(pam_set_item(pamh_, PAM_TTY, "/dev/pts/3"), PAM_SUCCESS);
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_SUCCESS);
  EXPECT_EQ(broker.connections(), 1);
  EXPECT_EQ(Env("JITGATE_REQUEST_ID"), "7f3a9c02");
  EXPECT_EQ(pam_setcred(pamh_, PAM_ESTABLISH_CRED), PAM_SUCCESS);

  ASSERT_EQ(broker.Submitted().size(), 1u);
  wire::SubmitRequest sent = broker.Submitted()[0];
  EXPECT_EQ(sent.fields.service, "jitgate-test");
  EXPECT_EQ(sent.fields.user, "alice");
  EXPECT_EQ(sent.fields.target_user, "alice");
  EXPECT_EQ(sent.fields.host, Hostname());
  EXPECT_EQ(sent.fields.remote_addr, "10.0.0.7");
  EXPECT_EQ(sent.fields.tty, "/dev/pts/3");
  EXPECT_EQ(sent.fields.command, "");
  EXPECT_EQ(sent.fields.cwd, "");
  EXPECT_EQ(sent.timeout_seconds, 5u);
  EXPECT_TRUE(sent.can_prompt);
  EXPECT_THAT(
      conv_.messages,
      ElementsAre(
          "info:jitgate: request 7f3a9c02 sent to approvers (1 of oncall); "
          "waiting up to 5m...",
          "info:jitgate: request 7f3a9c02: notified bob, carol (0 of 1 "
          "approvals, "
          "4m59s left)...",
          "info:jitgate: request 7f3a9c02 approved: approved by bob"));
}

TEST_F(PamTest, RuserIsTheRequesterAndUserTheTarget) {
  FakeBroker broker(FakeBroker::AutoApprove());
  WriteService(broker, Args(broker));
  Start("root");
  ASSERT_EQ(pam_set_item(pamh_, PAM_RUSER, "alice"), PAM_SUCCESS);
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_EQ(broker.Submitted()[0].fields.user, "alice");
  EXPECT_EQ(broker.Submitted()[0].fields.target_user, "root");
}

TEST_F(PamTest, ApprovedInAccountAlone) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  WriteService(broker, Args(broker));
  Start();
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_SUCCESS);
  EXPECT_EQ(Env("JITGATE_REQUEST_ID"), "7f3a9c02");
  EXPECT_THAT(conv_.messages,
              Contains(HasSubstr("request 7f3a9c02 sent to approvers")));
}

TEST_F(PamTest, DeniedInAuthAndInAccount) {
  FakeBroker broker(FakeBroker::Deny("denied by carol: not during the freeze"));
  WriteService(broker, Args(broker));
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_AUTH_ERR);
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_PERM_DENIED);
  EXPECT_EQ(broker.connections(), 2);  // a denial is not cached
  EXPECT_EQ(Env("JITGATE_REQUEST_ID"), "<unset>");
  EXPECT_THAT(conv_.messages,
              Contains("error:jitgate: request 7f3a9c02 denied: denied by "
                       "carol: not during the "
                       "freeze; access denied"));
}

TEST_F(PamTest, TimeoutFailsClosed) {
  FakeBroker broker(FakeBroker::NeverAnswer());
  WriteService(broker, "socket=" + broker.socket_path() + " timeout=1");
  Start();
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_PERM_DENIED);
  EXPECT_THAT(
      conv_.messages,
      ElementsAre(HasSubstr("request 7f3a9c02 sent to approvers (1 of oncall)"),
                  "error:jitgate: no decision on request 7f3a9c02 within 1 s; "
                  "access denied"));
}

TEST_F(PamTest, BrokerUnreachableFailsClosed) {
  FakeBroker broker(FakeBroker::AutoApprove());
  std::string missing = broker.dir() + "/missing.sock";
  WriteService(broker, "socket=" + missing);
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_AUTH_ERR);
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_PERM_DENIED);
  EXPECT_THAT(conv_.messages,
              ElementsAre("error:jitgate: broker unreachable at " + missing +
                              ": No such file or directory; access denied",
                          "error:jitgate: broker unreachable at " + missing +
                              ": No such file or directory; access denied"));
}

TEST_F(PamTest, ReasonAskedThroughTheConversation) {
  FakeBroker broker(
      FakeBroker::NeedReasonThenApprove(true, "Reason for sshd on db1: "));
  WriteService(broker, Args(broker));
  conv_.answers = {"deploy hotfix #412"};
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  EXPECT_THAT(conv_.messages, Contains("prompt:Reason for sshd on db1: "));
  EXPECT_TRUE(broker.Got<wire::ProvideReason>());
}

TEST_F(PamTest, ReasonRefusedCancelsAndFailsClosed) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(true));
  WriteService(broker, Args(broker));
  conv_.fail_prompts = true;  // the user cannot answer
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_AUTH_ERR);
  EXPECT_THAT(
      conv_.messages,
      Contains(
          "error:jitgate: no reason given; request cancelled; access denied"));
}

TEST_F(PamTest, ReasonRequiredAsksBeforeSubmitting) {
  FakeBroker broker(FakeBroker::AutoApprove());
  WriteService(broker, Args(broker, "reason=required"));
  conv_.answers = {"incident 42"};
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  EXPECT_THAT(conv_.messages,
              Contains("prompt:Reason for jitgate-test as alice on " +
                       Hostname() + ": "));
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_EQ(broker.Submitted()[0].fields.reason, "incident 42");
}

TEST_F(PamTest, ReasonRequiredEmptyAnswerFailsClosedWithoutARequest) {
  FakeBroker broker(FakeBroker::AutoApprove());
  WriteService(broker, Args(broker, "reason=required"));
  conv_.answers = {""};
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_AUTH_ERR);
  EXPECT_EQ(broker.connections(), 0);
  EXPECT_THAT(conv_.messages,
              Contains("error:jitgate: a reason is required; access denied"));
}

TEST_F(PamTest, ReasonNoneNeverPrompts) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(/*required=*/true));
  WriteService(broker, Args(broker, "reason=none"));
  conv_.answers = {"would be a reason"};
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_AUTH_ERR);
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_FALSE(broker.Submitted()[0].can_prompt);
  EXPECT_THAT(conv_.messages,
              ElementsAre(AllOf(StartsWith("error:"),
                                HasSubstr("reason is required"))));
}

TEST_F(PamTest, SshdAccountPhaseDoesNotPrompt) {
  // sshd's account phase (PAM_TTY "ssh") cannot prompt: can_prompt is false.
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(/*required=*/false));
  WriteService(broker, Args(broker));
  Start();
  ASSERT_EQ(pam_set_item(pamh_, PAM_TTY, "ssh"), PAM_SUCCESS);
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_SUCCESS);
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_FALSE(broker.Submitted()[0].can_prompt);
  for (const std::string& m : conv_.messages)
    EXPECT_THAT(m, Not(StartsWith("prompt:")));
}

TEST_F(PamTest, SshdAuthPhaseShowsProgressAsPressEnterPrompts) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  WriteService(broker, Args(broker));
  conv_.answers = {"", ""};
  Start();
  ASSERT_EQ(pam_set_item(pamh_, PAM_TTY, "ssh"), PAM_SUCCESS);
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  EXPECT_THAT(
      conv_.messages,
      ElementsAre(
          "prompt:jitgate: request 7f3a9c02 sent to approvers (1 of oncall); "
          "waiting up to 5m. Press Enter to check... ",
          "prompt:jitgate: request 7f3a9c02: notified bob, carol (0 of 1 "
          "approvals, 4m59s left). Press Enter to check... ",
          "info:jitgate: request 7f3a9c02 approved: approved by bob"));
}

TEST_F(PamTest, FailedPressEnterPromptFallsBackToInfo) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  WriteService(broker, Args(broker));
  conv_.fail_prompts = true;
  Start();
  ASSERT_EQ(pam_set_item(pamh_, PAM_TTY, "ssh"), PAM_SUCCESS);
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
  EXPECT_THAT(conv_.messages,
              Contains(StartsWith("info:jitgate: request 7f3a9c02: notified")));
}

TEST_F(PamTest, BrokerRestartIsResumed) {
  FakeBroker broker(FakeBroker::AcceptThenCloseToForceResume());
  WriteService(broker, Args(broker));
  Start();
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_SUCCESS);
  EXPECT_EQ(broker.connections(), 2);
  EXPECT_THAT(conv_.messages,
              Contains(HasSubstr("reconnected; request 7f3a9c02 still waits")));
}

TEST_F(PamTest, ControlCharactersFromTheBrokerAreNeutralised) {
  FakeBroker broker(
      FakeBroker::Deny("denied\x1b]0;pwned\x07 by carol\nfake line"));
  WriteService(broker, Args(broker));
  Start();
  EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_PERM_DENIED);
  EXPECT_THAT(conv_.messages, Contains("error:jitgate: request 7f3a9c02 "
                                       "denied: denied?]0;pwned? by carol?fake "
                                       "line; access denied"));
}

TEST_F(PamTest, BadArgumentsFailClosed) {
  FakeBroker broker(FakeBroker::AutoApprove());
  for (const char* bad :
       {"timout=5", "timeout=0", "timeout=abc", "timeout=86401", "reason=maybe",
        "socket=relative.sock", "debug=1", "verbose"}) {
    SCOPED_TRACE(bad);
    WriteService(broker, Args(broker, bad));
    conv_.messages.clear();
    Start();
    EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SERVICE_ERR);
    EXPECT_EQ(pam_acct_mgmt(pamh_, 0), PAM_SERVICE_ERR);
    EXPECT_THAT(
        conv_.messages,
        Contains(
            "error:jitgate: the PAM module is misconfigured; access denied"));
    pam_end(pamh_, PAM_SUCCESS);
    pamh_ = nullptr;
  }
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(PamTest, DebugIsAccepted) {
  FakeBroker broker(FakeBroker::AutoApprove());
  WriteService(broker, Args(broker, "debug reason=optional"));
  Start();
  EXPECT_EQ(pam_authenticate(pamh_, 0), PAM_SUCCESS);
}

TEST(ModuleArgsTest, DefaultsAndOverrides) {
  const char* none[] = {nullptr};
  ASSERT_OK_AND_ASSIGN(ModuleArgs d, ParseModuleArgs(0, none));
  EXPECT_EQ(d.socket, "/run/jitgate/jitgated.sock");
  EXPECT_EQ(d.timeout_seconds, 300);
  EXPECT_EQ(d.reason, ReasonMode::kOptional);
  EXPECT_FALSE(d.debug);
  const char* argv[] = {"socket=/tmp/x.sock", "timeout=60", "reason=none",
                        "debug", "timeout=61"};
  ASSERT_OK_AND_ASSIGN(ModuleArgs a, ParseModuleArgs(5, argv));
  EXPECT_EQ(a.socket, "/tmp/x.sock");
  EXPECT_EQ(a.timeout_seconds, 61);
  EXPECT_EQ(a.reason, ReasonMode::kNone);
  EXPECT_TRUE(a.debug);
  const char* bad[] = {"timout=5"};
  EXPECT_THAT(
      ParseModuleArgs(1, bad).status(),
      StatusIs(StatusCode::kInvalidArgument, "unknown argument \"timout=5\""));
}

TEST(ModuleExportsTest, LoadsWithRtldNowAndExportsOnlyPamEntryPoints) {
  void* h = dlopen(PAM_JITGATE_SO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  EXPECT_NE(dlsym(h, "pam_sm_authenticate"), nullptr);
  EXPECT_NE(dlsym(h, "pam_sm_acct_mgmt"), nullptr);
  EXPECT_NE(dlsym(h, "pam_sm_setcred"), nullptr);
  // Internal symbols cannot be resolved (sudo's check_symbols idea).
  EXPECT_EQ(dlsym(h,
                  "_ZN7jitgate4wire10RunRequestERKNS0_13RequestFieldsERKNS0_"
                  "16RequesterOptionsEPNS0_11RequesterUiE"),
            nullptr);
  EXPECT_EQ(dlsym(h, "pam_sm_open_session"), nullptr);
  dlclose(h);
}

}  // namespace
}  // namespace jitgate::pam
