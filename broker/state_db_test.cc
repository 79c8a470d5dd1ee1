#include "broker/state_db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::broker {
namespace {

using ::jitgate::testing::StatusIs;
using ::jitgate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

SavedRequest Sample(std::string id, RequestState state, int64_t created) {
  SavedRequest s;
  Request& r = s.request;
  r.id = std::move(id);
  r.fields.service = "sudo";
  r.fields.user = "alice";
  r.fields.target_user = "root";
  r.fields.host = "db1";
  // Bytes that are not UTF-8 and control characters survive exactly.
  r.fields.command = std::string("/usr/bin/printf '\xff\x1b[31m'");
  r.fields.cwd = "/home/alice";
  r.fields.reason = "INC-1";
  r.digest = wire::RequestDigest(r.fields);
  r.caller = Caller{0, 0, 4242, "root"};
  r.decision.policy = "prod";
  r.decision.outcome = Outcome::kApproval;
  r.decision.approver_groups = {"oncall"};
  r.decision.approvers = {"bob", "carol"};
  r.decision.quorum = 2;
  r.decision.reason = ReasonMode::kRequired;
  r.decision.timeout = std::chrono::minutes(5);
  r.decision.ttl = std::chrono::minutes(30);
  r.state = state;
  r.created_unix_nanos = created;
  r.deadline_unix_nanos = created + 300'000'000'000;
  r.approvals = {{"bob", "ok \xfe", created + 5}};
  r.closed_by = "";
  crypto::Sha256Digest h{};
  h[0] = 0xab;
  s.token_hash = h;
  return s;
}

bool SameRequest(const SavedRequest& a, const SavedRequest& b) {
  return EncodeSavedRequest(a) == EncodeSavedRequest(b);
}

TEST(SavedRequestTest, RoundTripsByteExact) {
  SavedRequest s = Sample("7f3a0001", RequestState::kPending, 1000);
  Bytes enc = EncodeSavedRequest(s);
  ASSERT_OK_AND_ASSIGN(SavedRequest back, DecodeSavedRequest(enc));
  EXPECT_EQ(back.request.fields, s.request.fields);
  EXPECT_EQ(back.request.approvals.size(), 1u);
  EXPECT_EQ(back.request.approvals[0].comment, "ok \xfe");
  EXPECT_EQ(back.token_hash, s.token_hash);
  EXPECT_EQ(EncodeSavedRequest(back), enc);

  s.token_hash.reset();
  ASSERT_OK_AND_ASSIGN(SavedRequest no_token, DecodeSavedRequest(EncodeSavedRequest(s)));
  EXPECT_FALSE(no_token.token_hash.has_value());
}

TEST(SavedRequestTest, RejectsTruncationTrailingBytesAndTampering) {
  Bytes enc = EncodeSavedRequest(Sample("7f3a0001", RequestState::kPending, 1000));
  for (size_t n : {size_t{0}, size_t{1}, enc.size() / 2, enc.size() - 1}) {
    Bytes cut(enc.begin(), enc.begin() + static_cast<long>(n));
    EXPECT_THAT(DecodeSavedRequest(cut), StatusIs(StatusCode::kDataLoss, HasSubstr("malformed")))
        << n;
  }
  Bytes longer = enc;
  longer.push_back(0);
  EXPECT_THAT(DecodeSavedRequest(longer), StatusIs(StatusCode::kDataLoss, ::testing::_));
  // A changed field no longer matches the digest the approvers saw.
  SavedRequest s = Sample("7f3a0001", RequestState::kPending, 1000);
  s.request.fields.command = "/bin/sh";
  EXPECT_THAT(DecodeSavedRequest(EncodeSavedRequest(s)),
              StatusIs(StatusCode::kDataLoss, HasSubstr("digest")));
}

TEST(StateDbTest, SavesCommitsAndReloads) {
  TempDir dir;
  const std::string path = dir.Join("state.db");
  {
    ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
    ASSERT_OK(db->Save(Sample("aaaa0001", RequestState::kPending, 1)));
    ASSERT_OK(db->Save(Sample("aaaa0002", RequestState::kApproved, 2)));
    ASSERT_OK(db->Save(Sample("aaaa0003", RequestState::kDenied, 3)));
    ASSERT_OK(db->Save(Sample("aaaa0004", RequestState::kUsed, 4)));
    ASSERT_OK(db->Commit());
    // Not committed: lost when the process goes away.
    ASSERT_OK(db->Save(Sample("aaaa0005", RequestState::kPending, 5)));
  }
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
  ASSERT_OK_AND_ASSIGN(std::vector<SavedRequest> active, db->LoadActive());
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].request.id, "aaaa0001");
  EXPECT_EQ(active[1].request.id, "aaaa0002");
  EXPECT_TRUE(SameRequest(active[0], Sample("aaaa0001", RequestState::kPending, 1)));
  ASSERT_OK_AND_ASSIGN(std::vector<SavedRequest> done, db->LoadRecentFinished(10));
  std::vector<std::string> ids;
  for (const SavedRequest& s : done) ids.push_back(s.request.id);
  EXPECT_THAT(ids, ElementsAre("aaaa0004", "aaaa0003"));
  ASSERT_OK_AND_ASSIGN(bool exists, db->Exists("aaaa0003"));
  EXPECT_TRUE(exists);
  ASSERT_OK_AND_ASSIGN(exists, db->Exists("aaaa0005"));
  EXPECT_FALSE(exists);
  ASSERT_OK_AND_ASSIGN(int64_t n, db->Count());
  EXPECT_EQ(n, 4);

  // A later save replaces the row and moves it to the front of the history.
  ASSERT_OK(db->Save(Sample("aaaa0001", RequestState::kExpired, 1)));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(done, db->LoadRecentFinished(1));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request.id, "aaaa0001");
}

TEST(StateDbTest, RefusesAFileOthersCanRead) {
  TempDir dir;
  const std::string path = dir.Join("state.db");
  { ASSERT_OK(StateDb::Open(path).status()); }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_THAT(StateDb::Open(path).status(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
}

TEST(StateDbTest, RefusesGarbage) {
  TempDir dir;
  const std::string path = dir.Join("state.db");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not an SQLite database, just text long enough to be read as a header..",
             f);
  std::fclose(f);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_THAT(StateDb::Open(path).status(), StatusIs(StatusCode::kInternal, ::testing::_));
}

}  // namespace
}  // namespace jitgate::broker
