#include "broker/daemon_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace jitgate::broker {
namespace {

using ::testing::ElementsAre;

TEST(DaemonLogTest, JournalFieldsCarryTheRequestAndTheDecision) {
  EXPECT_THAT(JournalFieldsFor("request 7f3a9c02 approved by bob",
                               LogFields{.request = "7f3a9c02",
                                         .user = "alice",
                                         .service = "sshd",
                                         .decision = "approved",
                                         .actor = "bob"}),
              ElementsAre("MESSAGE=request 7f3a9c02 approved by bob", "PRIORITY=6",
                          "SYSLOG_IDENTIFIER=jitgated", "JITGATE_REQUEST=7f3a9c02",
                          "JITGATE_USER=alice", "JITGATE_SERVICE=sshd",
                          "JITGATE_DECISION=approved", "JITGATE_ACTOR=bob"));
  // Unset fields are left out, warnings have priority 4.
  EXPECT_THAT(JournalFieldsFor("reload refused", LogFields{.warning = true}),
              ElementsAre("MESSAGE=reload refused", "PRIORITY=4", "SYSLOG_IDENTIFIER=jitgated"));
}

TEST(DaemonLogTest, StderrIsTheJournalOnlyWhenJournalStreamNamesIt) {
  const char* saved = getenv("JOURNAL_STREAM");
  std::string old = saved != nullptr ? saved : "";
  struct stat st;
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
  setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  // Inherited from a parent whose stderr was the journal, but ours is not.
  setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
  EXPECT_FALSE(StderrIsJournal());
  setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(StderrIsJournal());
  if (saved != nullptr) {
    setenv("JOURNAL_STREAM", old.c_str(), 1);
  } else {
    unsetenv("JOURNAL_STREAM");
  }
}

}  // namespace
}  // namespace jitgate::broker
