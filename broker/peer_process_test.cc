#include "broker/peer_process.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace jitgate::broker {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(PeerProcessTest, StartTicksFromProcStat) {
  // Fields 3 to 22 after the command name; the start time is 987654.
  EXPECT_EQ(StartTicksFromProcStat("4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 "
                                   "0 1 0 987654 1000 10\n"),
            987654u);
  // A command name may hold spaces and parentheses (any user picks it).
  EXPECT_EQ(StartTicksFromProcStat("4242 (a) 1 2 3 (b) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 "
                                   "0 20 0 1 0 55 1000 10\n"),
            55u);
  // The last field of a file cut short.
  EXPECT_EQ(StartTicksFromProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7"), 7u);
  for (std::string_view bad : {
           "",
           "4242 bash S 1",                                         // no command name
           "4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2",  // too few
                                                                    // fields
           "4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
           "x 1\n",
           "4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
           "-5 1\n",
           "4242 (bash)  S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
           "5 1\n",
           "4242 (bash) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
           "99999999999999999999 1\n",
       }) {
    EXPECT_FALSE(StartTicksFromProcStat(bad).has_value()) << bad;
  }
  // This process's own file, as the kernel writes it.
  std::optional<uint64_t> mine = StartTicksFromProcStat(ReadAll("/proc/self/stat"));
  ASSERT_TRUE(mine.has_value());
  EXPECT_GT(*mine, 0u);
}

TEST(PeerProcessTest, EncodeAndDecode) {
  PeerProcess p{4242, 987654, "0f5e2b2c-6d5b-4b8e-9e57-3f1f8d6c1a2b"};
  const std::string text = EncodePeerProcess(p);
  EXPECT_EQ(text, "4242 987654 0f5e2b2c-6d5b-4b8e-9e57-3f1f8d6c1a2b");
  std::optional<PeerProcess> back = DecodePeerProcess(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->start_ticks, 987654u);
  EXPECT_EQ(back->boot_id, p.boot_id);
  // What could not be read stays unknown.
  back = DecodePeerProcess(EncodePeerProcess({7, 0, ""}));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 7);
  EXPECT_EQ(back->start_ticks, 0u);
  EXPECT_EQ(back->boot_id, "");
  // An unknown pid (another pid namespace) is not described at all.
  EXPECT_EQ(EncodePeerProcess({0, 5, p.boot_id}), "");
  for (std::string_view bad :
       {"", "4242", "4242 5", "0 5 ", "-1 5 ", "04242 5 ", "4242 05 ", "4242 5 not-a-boot-id",
        "4242 5 0F5E2B2C-6D5B-4B8E-9E57-3F1F8D6C1A2B",
        "4242 5 0f5e2b2c-6d5b-4b8e-9e57-3f1f8d6c1a2b ", " 4242 5 "}) {
    EXPECT_FALSE(DecodePeerProcess(bad).has_value()) << bad;
  }
}

TEST(PeerProcessTest, GoneOnlyWhenCertain) {
  const PeerProcess me = DescribePeerProcess(::getpid());
  EXPECT_EQ(me.pid, ::getpid());
  ASSERT_NE(me.start_ticks, 0u) << "this test reads its own /proc/self/stat";
  EXPECT_FALSE(PeerProcessGone(me));
  // Unknown parts count as a match.
  EXPECT_FALSE(PeerProcessGone({::getpid(), 0, ""}));
  EXPECT_FALSE(PeerProcessGone({}));
  // The pid now names a process that started at another time.
  EXPECT_TRUE(PeerProcessGone({::getpid(), me.start_ticks + 1, me.boot_id}));
  if (!me.boot_id.empty()) {
    // Another boot: nothing of it runs.
    PeerProcess other_boot = me;
    other_boot.boot_id[0] = other_boot.boot_id[0] == '0' ? '1' : '0';
    EXPECT_TRUE(PeerProcessGone(other_boot));
  }
  // A child that has exited and been reaped: no process has its pid.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  const PeerProcess described = DescribePeerProcess(child);  // running, or a zombie
  EXPECT_FALSE(PeerProcessGone(described));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(PeerProcessGone(described));
  EXPECT_TRUE(PeerProcessGone({child, 0, ""}));
}

}  // namespace
}  // namespace jitgate::broker
