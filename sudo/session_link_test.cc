#include "sudo/session_link.h"

#include <gtest/gtest.h>

#include <string>

namespace jitgate::sudo {
namespace {

TEST(SessionLinkTest, NoteForgetAndInvalidIds) {
  ForgetApprovedRequest();
  EXPECT_EQ(ApprovedRequest(), "");
  NoteApprovedRequest("7f3a9c02");
  EXPECT_EQ(ApprovedRequest(), "7f3a9c02");
  std::string longest(32, 'z');
  NoteApprovedRequest(longest);
  EXPECT_EQ(ApprovedRequest(), longest);
  // Anything that is not a request id clears the link rather than being kept.
  for (std::string bad : {std::string(33, 'a'), std::string("7F3A"), std::string("a b"),
                          std::string(""), std::string("a\0b", 3)}) {
    NoteApprovedRequest("7f3a9c02");
    NoteApprovedRequest(bad);
    EXPECT_EQ(ApprovedRequest(), "") << bad;
  }
  NoteApprovedRequest("abc");
  ForgetApprovedRequest();
  EXPECT_EQ(ApprovedRequest(), "");
}

}  // namespace
}  // namespace jitgate::sudo
