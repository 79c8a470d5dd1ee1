#include "core/base/unix_socket.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate {
namespace {

using ::jitgate::testing::StatusIs;

TEST(UnixSocketTest, BindsAndReplacesOnlyADeadSocket) {
  testing::TempDir dir;
  const std::string path = dir.Join("s.sock");
  ASSERT_OK_AND_ASSIGN(UniqueFd first, BindUnixSocket(path, "another test"));
  ASSERT_EQ(::listen(first.get(), 1), 0);
  EXPECT_THAT(BindUnixSocket(path, "another test").status(),
              StatusIs(StatusCode::kFailedPrecondition, "another test is already listening on " + path));
  first.reset();  // its file stays behind, as after a crash
  ASSERT_OK_AND_ASSIGN(UniqueFd second, BindUnixSocket(path, "another test"));
  EXPECT_TRUE(second);

  const std::string file = dir.Join("file");
  std::ofstream(file) << "x";
  EXPECT_THAT(BindUnixSocket(file, "x").status(),
              StatusIs(StatusCode::kFailedPrecondition,
                       file + " exists and is not a socket; refusing to replace it"));
  EXPECT_THAT(BindUnixSocket("/" + std::string(120, 's'), "x").status(),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("socket path too long")));
  EXPECT_THAT(BindUnixSocket(dir.Join("missing/s.sock"), "x").status(),
              StatusIs(StatusCode::kNotFound, ::testing::HasSubstr("bind ")));
}

}  // namespace
}  // namespace jitgate
