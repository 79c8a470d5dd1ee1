#include "core/base/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "core/base/status_macros.h"
#include "tests/testing/status_matchers.h"

namespace jitgate {
namespace {

using ::jitgate::testing::IsOk;
using ::jitgate::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_THAT(OkStatus(), IsOk());
}

TEST(StatusTest, OkCodeDropsMessage) {
  Status s(StatusCode::kOk, "ignored");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = DataLossError("segment 3 offset 4096: checksum mismatch");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.ToString(),
            "DATA_LOSS: segment 3 offset 4096: checksum mismatch");
  EXPECT_THAT(s,
              StatusIs(StatusCode::kDataLoss, HasSubstr("checksum mismatch")));
  EXPECT_THAT(s, Not(StatusIs(StatusCode::kInternal, HasSubstr("checksum"))));
  EXPECT_THAT(s, Not(IsOk()));
}

TEST(StatusTest, FactoriesUseTheirCodes) {
  struct Case {
    Status status;
    StatusCode code;
    const char* name;
  } cases[] = {
      {CancelledError("what failed"), StatusCode::kCancelled, "CANCELLED"},
      {UnknownError("what failed"), StatusCode::kUnknown, "UNKNOWN"},
      {InvalidArgumentError("what failed"), StatusCode::kInvalidArgument,
       "INVALID_ARGUMENT"},
      {DeadlineExceededError("what failed"), StatusCode::kDeadlineExceeded,
       "DEADLINE_EXCEEDED"},
      {NotFoundError("what failed"), StatusCode::kNotFound, "NOT_FOUND"},
      {AlreadyExistsError("what failed"), StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {PermissionDeniedError("what failed"), StatusCode::kPermissionDenied,
       "PERMISSION_DENIED"},
      {ResourceExhaustedError("what failed"), StatusCode::kResourceExhausted,
       "RESOURCE_EXHAUSTED"},
      {FailedPreconditionError("what failed"), StatusCode::kFailedPrecondition,
       "FAILED_PRECONDITION"},
      {AbortedError("what failed"), StatusCode::kAborted, "ABORTED"},
      {OutOfRangeError("what failed"), StatusCode::kOutOfRange, "OUT_OF_RANGE"},
      {UnimplementedError("what failed"), StatusCode::kUnimplemented, "UNIMPLEMENTED"},
      {InternalError("what failed"), StatusCode::kInternal, "INTERNAL"},
      {UnavailableError("what failed"), StatusCode::kUnavailable, "UNAVAILABLE"},
      {DataLossError("what failed"), StatusCode::kDataLoss, "DATA_LOSS"},
      {UnauthenticatedError("what failed"), StatusCode::kUnauthenticated,
       "UNAUTHENTICATED"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(c.status, StatusIs(c.code, "what failed"));
    EXPECT_EQ(StatusCodeName(c.code), c.name);
  }
}

TEST(StatusTest, WithContextPrefixes) {
  EXPECT_THAT(NotFoundError("no such file").WithContext("open /x"),
              StatusIs(StatusCode::kNotFound, "open /x: no such file"));
  EXPECT_THAT(OkStatus().WithContext("ignored"), IsOk());
}

TEST(StatusTest, Equality) {
  EXPECT_EQ(NotFoundError("a"), NotFoundError("a"));
  EXPECT_FALSE(NotFoundError("a") == NotFoundError("b"));
  EXPECT_FALSE(NotFoundError("a") == InternalError("a"));
}

TEST(StatusTest, ErrnoToStatusMapsCodes) {
  struct Case {
    int err;
    StatusCode code;
  } cases[] = {
      {ENOENT, StatusCode::kNotFound},
      {EEXIST, StatusCode::kAlreadyExists},
      {EACCES, StatusCode::kPermissionDenied},
      {EPERM, StatusCode::kPermissionDenied},
      {ENOSPC, StatusCode::kResourceExhausted},
      {EIO, StatusCode::kDataLoss},
      {EINVAL, StatusCode::kInvalidArgument},
      {EAGAIN, StatusCode::kUnavailable},
      {ETIMEDOUT, StatusCode::kDeadlineExceeded},
      {EOPNOTSUPP, StatusCode::kUnimplemented},
      {0, StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.err);
    EXPECT_EQ(ErrnoToStatus(c.err, "op").code(), c.code);
  }
  EXPECT_THAT(ErrnoToStatus(ENOSPC, "append /d/seg"),
              StatusIs(StatusCode::kResourceExhausted,
                       "append /d/seg: No space left on device"));
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return OkStatus();
}

Status FailIfNegative(int x) {
  RETURN_IF_ERROR(x < 0 ? OutOfRangeError("negative") : OkStatus());
  return InternalError("reached the end");
}

TEST(StatusOrTest, ValueAndError) {
  StatusOr<int> v = Half(8);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 4);
  EXPECT_THAT(v.status(), IsOk());
  StatusOr<int> e = Half(3);
  EXPECT_FALSE(e.ok());
  EXPECT_THAT(e, StatusIs(StatusCode::kInvalidArgument, "odd"));
  EXPECT_EQ(e.value_or(-1), -1);
}

TEST(StatusOrTest, OkStatusWithoutValueBecomesInternal) {
  StatusOr<int> v = OkStatus();
  EXPECT_THAT(v, StatusIs(StatusCode::kInternal, HasSubstr("without a value")));
}

TEST(StatusOrTest, ConvertingConstructor) {
  StatusOr<std::string> s = "abc";
  ASSERT_OK(s);
  EXPECT_EQ(*s, "abc");
  EXPECT_EQ(s->size(), 3u);
}

TEST(StatusMacrosTest, AssignOrReturnPropagates) {
  int out = 0;
  EXPECT_OK(Quarter(8, &out));
  EXPECT_EQ(out, 2);
  EXPECT_THAT(Quarter(6, &out), StatusIs(StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(Quarter(5, &out), StatusIs(StatusCode::kInvalidArgument, "odd"));
}

TEST(StatusMacrosTest, ReturnIfErrorPropagates) {
  EXPECT_THAT(FailIfNegative(-1),
              StatusIs(StatusCode::kOutOfRange, "negative"));
  EXPECT_THAT(FailIfNegative(1),
              StatusIs(StatusCode::kInternal, "reached the end"));
}

TEST(StatusMacrosTest, AssertOkAndAssign) {
  ASSERT_OK_AND_ASSIGN(int h, Half(10));
  EXPECT_EQ(h, 5);
}

}  // namespace
}  // namespace jitgate
