// Loads the built jitgate_approval.so with dlopen(RTLD_NOW), as sudo does, and
// drives open/check/close with synthetic sudo arrays against a scripted broker
// (tests/testing/fake_broker.h). End-to-end runs under the real sudo are in
// tests/integration/.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sudo_plugin.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sudo/sudo_testonly.h"
#include "tests/testing/fake_broker.h"

namespace jitgate::sudo {
namespace {

using ::jitgate::testing::FakeBroker;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What the plugin printed and asked, through the fake sudo front end below.
struct FrontEnd {
  std::vector<std::pair<int, std::string>> printed;
  std::vector<std::string> prompts;
  std::vector<int> prompt_types;
  std::vector<std::string> answers;  // popped front per prompt; none left: conversation fails
};
FrontEnd* g_front = nullptr;

int FakePrintf(int type, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[4096];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  g_front->printed.emplace_back(type, buf);
  return n;
}

int FakeConversation(int num_msgs, const sudo_conv_message msgs[], sudo_conv_reply replies[],
                     sudo_conv_callback*) {
  for (int i = 0; i < num_msgs; ++i) {
    g_front->prompts.push_back(msgs[i].msg);
    g_front->prompt_types.push_back(msgs[i].msg_type);
    if (g_front->answers.empty()) return -1;
    replies[i].reply = strdup(g_front->answers.front().c_str());  // the plugin frees it
    g_front->answers.erase(g_front->answers.begin());
  }
  return 0;
}

using testonly::Argv;

class ApprovalPluginTest : public ::testing::Test {
 protected:
  // Loaded once and never unloaded, as sudo does: the library keeps
  // process-lifetime singletons (RealClock()) that LeakSanitizer would report
  // as leaks once dlclose() unmapped the pointers to them.
  static void SetUpTestSuite() {
    handle_ = dlopen(JITGATE_APPROVAL_SO, RTLD_NOW | RTLD_LOCAL);
    if (handle_ != nullptr)
      plugin_ = static_cast<approval_plugin*>(dlsym(handle_, "jitgate_approval"));
  }
  void SetUp() override {
    g_front = &front_;
    ASSERT_NE(handle_, nullptr) << dlerror();
    ASSERT_NE(plugin_, nullptr) << dlerror();
  }
  void TearDown() override { g_front = nullptr; }

  int Open(std::vector<std::string> options, std::vector<std::string> extra_settings = {}) {
    std::vector<std::string> all_settings = {"progname=sudo", "network_addrs=127.0.0.1/255.0.0.0"};
    all_settings.insert(all_settings.end(), extra_settings.begin(), extra_settings.end());
    Argv settings(std::move(all_settings));
    Argv user_info({"pid=4242", "user=alice", "uid=1001", "gid=1001", "cwd=/home/alice",
                    "tty=/dev/pts/3", "host=db1", "lines=24", "cols=80"});
    Argv submit_argv({"sudo", "systemctl", "restart", "nginx"});
    Argv submit_envp({"PATH=/usr/bin", "TERM=xterm"});
    Argv plugin_options(std::move(options));
    errstr_ = nullptr;
    return plugin_->open(SUDO_API_VERSION, FakeConversation, FakePrintf, settings.get(),
                         user_info.get(), 1, submit_argv.get(), submit_envp.get(),
                         plugin_options.get(), &errstr_);
  }

  int Check(std::vector<std::string> argv = {"systemctl", "restart", "nginx"}) {
    Argv command_info({"command=/usr/bin/systemctl", "runas_uid=0", "runas_gid=0",
                       "runas_user=root", "cwd=/srv/app"});
    Argv run_argv(std::move(argv));
    Argv run_envp({"PATH=/usr/bin", "HOME=/root"});
    errstr_ = nullptr;
    return plugin_->check(command_info.get(), run_argv.get(), run_envp.get(), &errstr_);
  }

  std::string Printed(int type) const {
    std::string all;
    for (const auto& [t, s] : front_.printed) {
      if ((t & 0xff) == type) all += s;
    }
    return all;
  }

  FrontEnd front_;
  static inline void* handle_ = nullptr;
  static inline approval_plugin* plugin_ = nullptr;
  const char* errstr_ = nullptr;
};

TEST_F(ApprovalPluginTest, IsAnApprovalPluginOfThisApi) {
  EXPECT_EQ(plugin_->type, unsigned(SUDO_APPROVAL_PLUGIN));
  EXPECT_EQ(plugin_->version, unsigned(SUDO_API_VERSION));
  ASSERT_NE(plugin_->open, nullptr);
  ASSERT_NE(plugin_->close, nullptr);
  ASSERT_NE(plugin_->check, nullptr);
  ASSERT_NE(plugin_->show_version, nullptr);
  // Internals stay hidden (the version script): nothing but the struct resolves.
  EXPECT_EQ(dlsym(handle_, "_ZN7jitgate4wire7GrantedERKNS_8StatusOrINS0_8DecisionEEE"), nullptr);
  EXPECT_EQ(
      dlsym(handle_, "_ZN7jitgate4sudo10ShellQuoteESt17basic_string_viewIcSt11char_traitsIcEE"),
      nullptr);
}

TEST_F(ApprovalPluginTest, ApprovedCommandRuns) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "timeout=10"}), 1) << errstr_;
  EXPECT_EQ(Check(), 1) << (errstr_ ? errstr_ : "");
  plugin_->close();
  ASSERT_EQ(broker.Submitted().size(), 1u);
  const wire::SubmitRequest sent = broker.Submitted()[0];
  EXPECT_EQ(sent.fields.service, "sudo");
  EXPECT_EQ(sent.fields.user, "alice");
  EXPECT_EQ(sent.fields.target_user, "root");
  EXPECT_EQ(sent.fields.host, "db1");
  EXPECT_EQ(sent.fields.remote_addr, "");
  EXPECT_EQ(sent.fields.tty, "/dev/pts/3");
  EXPECT_EQ(sent.fields.command, "/usr/bin/systemctl restart nginx");
  EXPECT_EQ(sent.fields.cwd, "/srv/app");
  EXPECT_EQ(sent.fields.reason, "");
  EXPECT_EQ(sent.timeout_seconds, 10u);
  EXPECT_TRUE(sent.can_prompt);
  std::string info = Printed(SUDO_CONV_INFO_MSG);
  EXPECT_THAT(info, HasSubstr("jitgate: request 7f3a9c02 sent to approvers (1 of oncall); "
                              "waiting up to 5m\u2026\n"));
  EXPECT_THAT(info, HasSubstr("jitgate: notified bob, carol\n"));
  EXPECT_THAT(info, HasSubstr("jitgate: request 7f3a9c02 approved by bob\n"));
  EXPECT_THAT(Printed(SUDO_CONV_ERROR_MSG), IsEmpty());
  EXPECT_THAT(broker.ScriptErrors(), IsEmpty());
}

TEST_F(ApprovalPluginTest, StatusGoesToTheTerminalOrStderrNeverStdout) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path()}), 1);
  EXPECT_EQ(Check(), 1);
  plugin_->close();
  ASSERT_FALSE(front_.printed.empty());
  for (const auto& [type, text] : front_.printed) {
    EXPECT_EQ(type, SUDO_CONV_INFO_MSG | SUDO_CONV_PREFER_TTY) << text;
  }

  // No terminal (sudo -n from a script): status on stderr.
  front_.printed.clear();
  Argv user_info({"user=alice", "host=db1", "cwd=/"});
  Argv empty({});
  Argv options({"socket=" + broker.socket_path()});
  ASSERT_EQ(plugin_->open(SUDO_API_VERSION, FakeConversation, FakePrintf, empty.get(),
                          user_info.get(), 0, empty.get(), empty.get(), options.get(), &errstr_),
            1);
  EXPECT_EQ(Check(), 1);
  plugin_->close();
  ASSERT_FALSE(front_.printed.empty());
  for (const auto& [type, text] : front_.printed) EXPECT_EQ(type, SUDO_CONV_ERROR_MSG) << text;
}

TEST_F(ApprovalPluginTest, EachCommandIsANewRequest) {
  FakeBroker broker(FakeBroker::AutoApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path()}), 1);
  EXPECT_EQ(Check(), 1);
  EXPECT_EQ(Check({"systemctl", "stop", "nginx"}), 1);
  plugin_->close();
  ASSERT_EQ(broker.Submitted().size(), 2u);
  EXPECT_EQ(broker.Submitted()[0].fields.command, "/usr/bin/systemctl restart nginx");
  EXPECT_EQ(broker.Submitted()[1].fields.command, "/usr/bin/systemctl stop nginx");
}

TEST_F(ApprovalPluginTest, DeniedCommandIsRefusedWithTheReason) {
  FakeBroker broker(FakeBroker::Deny());
  ASSERT_EQ(Open({"socket=" + broker.socket_path()}), 1);
  EXPECT_EQ(Check(), 0);
  ASSERT_NE(errstr_, nullptr);
  EXPECT_STREQ(errstr_, "jitgate: denied by carol: not during the freeze");
  EXPECT_EQ(Printed(SUDO_CONV_ERROR_MSG), "jitgate: denied by carol: not during the freeze\n");
  plugin_->close();
}

TEST_F(ApprovalPluginTest, UnreachableBrokerFailsClosed) {
  FakeBroker broker(FakeBroker::AutoApprove());
  std::string gone = broker.dir() + "/nobody-here.sock";
  ASSERT_EQ(Open({"socket=" + gone}), 1);
  EXPECT_EQ(Check(), 0);
  ASSERT_NE(errstr_, nullptr);
  EXPECT_EQ(std::string(errstr_),
            "jitgate: broker unreachable at " + gone + ": No such file or directory");
  plugin_->close();
}

TEST_F(ApprovalPluginTest, TimeoutFailsClosed) {
  FakeBroker broker(FakeBroker::NeverAnswer());
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "timeout=1"}), 1);
  EXPECT_EQ(Check(), 0);
  ASSERT_NE(errstr_, nullptr);
  EXPECT_THAT(errstr_, HasSubstr("no decision on request 7f3a9c02 within"));
  plugin_->close();
}

TEST_F(ApprovalPluginTest, BrokerAskedReasonGoesThroughTheConversation) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(true, "Reason for sudo on db1: "));
  front_.answers = {"deploy hotfix #412"};
  ASSERT_EQ(Open({"socket=" + broker.socket_path()}), 1);
  EXPECT_EQ(Check(), 1) << (errstr_ ? errstr_ : "");
  plugin_->close();
  EXPECT_THAT(front_.prompts, ElementsAre("Reason for sudo on db1: "));
  EXPECT_THAT(front_.prompt_types, ElementsAre(SUDO_CONV_PROMPT_ECHO_ON));
  EXPECT_TRUE(broker.Got<wire::ProvideReason>());
}

TEST_F(ApprovalPluginTest, RequiredReasonIsAskedFirst) {
  FakeBroker broker(FakeBroker::AutoApprove());
  front_.answers = {"restart after config change"};
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=required"}), 1);
  EXPECT_EQ(Check(), 1);
  plugin_->close();
  EXPECT_THAT(front_.prompts, ElementsAre("Reason for running this command as root: "));
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_EQ(broker.Submitted()[0].fields.reason, "restart after config change");
}

TEST_F(ApprovalPluginTest, RequiredReasonNotGivenRefusesWithoutFiling) {
  FakeBroker broker(FakeBroker::AutoApprove());
  front_.answers = {""};
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=required"}), 1);
  EXPECT_EQ(Check(), 0);
  EXPECT_STREQ(errstr_, "jitgate: a reason is required; command not run");
  front_.answers = {};  // the conversation fails (no tty)
  EXPECT_EQ(Check(), 0);
  plugin_->close();
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(ApprovalPluginTest, ReasonNoneNeverPrompts) {
  FakeBroker broker(FakeBroker::NeedReasonThenApprove(true));
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=none"}), 1);
  EXPECT_EQ(Check(), 0);
  plugin_->close();
  EXPECT_THAT(front_.prompts, IsEmpty());
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_FALSE(broker.Submitted()[0].can_prompt);
  EXPECT_THAT(errstr_, HasSubstr("a reason is required"));
}

// `sudo -n` (settings noninteractive=true): sudo's conversation would fail, so
// the plugin tells the broker it cannot prompt instead of being asked and
// cancelling; an optional reason then never stops the request.
TEST_F(ApprovalPluginTest, SudoDashNDoesNotOfferToPrompt) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=optional"}, {"noninteractive=true"}),
            1);
  EXPECT_EQ(Check(), 1) << (errstr_ ? errstr_ : "");
  plugin_->close();
  EXPECT_THAT(front_.prompts, IsEmpty());
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_FALSE(broker.Submitted()[0].can_prompt);
}

TEST_F(ApprovalPluginTest, SudoDashNWithRequiredReasonRefusesWithoutFiling) {
  FakeBroker broker(FakeBroker::AutoApprove());
  front_.answers = {"would never be read"};
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=required"}, {"noninteractive=true"}),
            1);
  EXPECT_EQ(Check(), 0);
  plugin_->close();
  EXPECT_STREQ(errstr_, "jitgate: a reason is required and sudo -n cannot ask for one; "
                        "command not run");
  EXPECT_THAT(front_.prompts, IsEmpty());
  EXPECT_EQ(broker.connections(), 0);
}

TEST_F(ApprovalPluginTest, InteractiveSudoStillOffersToPrompt) {
  FakeBroker broker(FakeBroker::AcceptThenApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path(), "reason=optional"}, {"noninteractive=false"}),
            1);
  EXPECT_EQ(Check(), 1) << (errstr_ ? errstr_ : "");
  plugin_->close();
  ASSERT_EQ(broker.Submitted().size(), 1u);
  EXPECT_TRUE(broker.Submitted()[0].can_prompt);
}

TEST_F(ApprovalPluginTest, BadConfigurationIsAnError) {
  EXPECT_EQ(Open({"timeout=forever"}), -1);
  ASSERT_NE(errstr_, nullptr);
  EXPECT_THAT(errstr_, HasSubstr("bad Plugin line in sudo.conf: timeout must be 1 to 86400"));
  EXPECT_THAT(Printed(SUDO_CONV_ERROR_MSG), HasSubstr("timeout=forever"));
}

TEST_F(ApprovalPluginTest, WrongMajorVersionIsRefused) {
  Argv empty({});
  EXPECT_EQ(plugin_->open(SUDO_API_MKVERSION(2, 0), FakeConversation, FakePrintf, empty.get(),
                          empty.get(), 0, empty.get(), empty.get(), empty.get(), &errstr_),
            -1);
  EXPECT_THAT(errstr_, HasSubstr("incompatible sudo plugin API version 2.0"));
}

TEST_F(ApprovalPluginTest, CheckWithoutOpenOrUserIsAnError) {
  EXPECT_EQ(Check(), -1);
  Argv empty({});
  ASSERT_EQ(plugin_->open(SUDO_API_VERSION, FakeConversation, FakePrintf, empty.get(), empty.get(),
                          0, empty.get(), empty.get(), empty.get(), &errstr_),
            1);
  EXPECT_EQ(Check(), -1);
  EXPECT_THAT(errstr_, HasSubstr("invoking user"));
  plugin_->close();
}

TEST_F(ApprovalPluginTest, ShowVersion) {
  FakeBroker broker(FakeBroker::AutoApprove());
  ASSERT_EQ(Open({"socket=" + broker.socket_path()}), 1);
  EXPECT_EQ(plugin_->show_version(0), 1);
  plugin_->close();
  EXPECT_THAT(Printed(SUDO_CONV_INFO_MSG), HasSubstr("jitgate approval plugin version 0.1.0\n"));
}

}  // namespace
}  // namespace jitgate::sudo
