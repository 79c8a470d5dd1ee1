// GoogleTest helpers for Status and StatusOr<T> (after Abseil's
// status_matchers.h): prefer checking the specific error.
//
//   EXPECT_THAT(DoIt(), StatusIs(StatusCode::kDataLoss, HasSubstr("checksum")));
//   ASSERT_OK(store->Append(e));
//   ASSERT_OK_AND_ASSIGN(auto cp, ParseCheckpoint(text));
#ifndef JITGATE_TESTS_TESTING_STATUS_MATCHERS_H_
#define JITGATE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/status.h"

namespace jitgate::testing {

inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
const Status& GetStatus(const StatusOr<T>& s) { return s.status(); }

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has code ") + std::string(StatusCodeName(code))) {
  const Status& s = ::jitgate::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, s.message(), result_listener);
}

MATCHER(IsOk, "is OK") {
  const Status& s = ::jitgate::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.ok();
}

}  // namespace jitgate::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::jitgate::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::jitgate::testing::IsOk())

#define JITGATE_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                       \
  ASSERT_OK(tmp);                                          \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  JITGATE_ASSERT_OK_AND_ASSIGN_IMPL_(JITGATE_CONCAT_(jitgate_assign_, __LINE__), lhs, expr)
#ifndef JITGATE_CONCAT_
#define JITGATE_CONCAT_INNER_(a, b) a##b
#define JITGATE_CONCAT_(a, b) JITGATE_CONCAT_INNER_(a, b)
#endif

#endif  // JITGATE_TESTS_TESTING_STATUS_MATCHERS_H_
