#include "broker/state_db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
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

TEST(SavedRequestTest, VersionOneRowsStillDecode) {
  // Rows written before certificate requests existed have no public_key and
  // ttl_seconds: the same bytes minus those 8 (two zero u32s), version 1.
  SavedRequest s = Sample("7f3a0001", RequestState::kPending, 1000);
  Bytes v2 = EncodeSavedRequest(s);
  ASSERT_EQ(v2[0], 2);
  size_t at = 1 + 4 + s.request.id.size();
  const wire::RequestFields& f = s.request.fields;
  for (const std::string* x : {&f.service, &f.user, &f.target_user, &f.host, &f.remote_addr, &f.tty,
                               &f.command, &f.cwd, &f.reason}) {
    at += 4 + x->size();
  }
  Bytes v1(v2.begin(), v2.begin() + static_cast<long>(at));
  v1.insert(v1.end(), v2.begin() + static_cast<long>(at + 8), v2.end());
  v1[0] = 1;
  ASSERT_OK_AND_ASSIGN(SavedRequest back, DecodeSavedRequest(v1));
  EXPECT_TRUE(SameRequest(back, s));
  // A key and a lifetime survive in version 2.
  s.request.fields.public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  s.request.fields.ttl_seconds = 600;
  s.request.digest = wire::RequestDigest(s.request.fields);
  ASSERT_OK_AND_ASSIGN(SavedRequest keyed, DecodeSavedRequest(EncodeSavedRequest(s)));
  EXPECT_EQ(keyed.request.fields, s.request.fields);
  EXPECT_THAT(DecodeSavedRequest(Bytes{3}), StatusIs(StatusCode::kDataLoss, HasSubstr("malformed")));
}

wire::CertInfo Cert(uint64_t serial, std::string request, uint64_t valid_before) {
  wire::CertInfo c;
  c.serial = serial;
  c.kind = request.empty() ? wire::CertKind::kHost : wire::CertKind::kUser;
  c.key_id = "jitgate:" + request + ":bob";
  c.principals = {"root"};
  c.valid_after = 100;
  c.valid_before = valid_before;
  c.fingerprint = "SHA256:x";
  c.request_id = std::move(request);
  c.issued_to = "alice";
  c.issued_at = 160;
  return c;
}

TEST(StateDbTest, CertificatesSerialsAndRevocationsPersist) {
  TempDir dir;
  const std::string path = dir.Join("jitgated.db");
  {
    ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
    ASSERT_OK_AND_ASSIGN(uint64_t s1, db->NextSerial());
    ASSERT_OK_AND_ASSIGN(uint64_t s2, db->NextSerial());
    EXPECT_EQ(s1, 1u);  // never 0: OpenSSH cannot revoke serial 0
    EXPECT_EQ(s2, 2u);
    ASSERT_OK(db->SaveCert({Cert(s1, "aaaa0001", 1000), "prod", "ssh-ed25519-cert-v01@openssh.com A"}));
    ASSERT_OK(db->SaveCert({Cert(s2, "aaaa0002", 5000), "prod", "ssh-ed25519-cert-v01@openssh.com B"}));
    ASSERT_OK(db->Commit());
    // An uncommitted serial is given out again only if nobody ever saw it.
    ASSERT_OK(db->NextSerial().status());
    db->Rollback();
  }
  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
  ASSERT_OK_AND_ASSIGN(uint64_t s3, db->NextSerial());
  EXPECT_EQ(s3, 3u);
  ASSERT_OK_AND_ASSIGN(std::optional<CertRecord> got, db->GetCert(2));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->info, Cert(2, "aaaa0002", 5000));
  EXPECT_EQ(got->policy, "prod");
  EXPECT_EQ(got->certificate, "ssh-ed25519-cert-v01@openssh.com B");
  ASSERT_OK_AND_ASSIGN(std::optional<CertRecord> none, db->GetCert(77));
  EXPECT_FALSE(none.has_value());

  CertRecord rev = *got;
  rev.info.revoked_at = 200;
  rev.info.revoked_by = "carol";
  ASSERT_OK(db->SaveCert(rev));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> revoked, db->RevokedSerials());
  EXPECT_THAT(revoked, ElementsAre(2u));
  // Valid at 500: serial 1 (until 1000); serial 2 is revoked.
  ASSERT_OK_AND_ASSIGN(std::vector<CertRecord> valid, db->ListCerts(true, 500, 10));
  ASSERT_EQ(valid.size(), 1u);
  EXPECT_EQ(valid[0].info.serial, 1u);
  ASSERT_OK_AND_ASSIGN(valid, db->ListCerts(true, 1000, 10));  // expired at valid_before
  EXPECT_TRUE(valid.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<CertRecord> all, db->ListCerts(false, 0, 10));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].info.serial, 2u);  // newest first
  ASSERT_OK_AND_ASSIGN(std::vector<CertRecord> of, db->CertsOfRequest("aaaa0001"));
  ASSERT_EQ(of.size(), 1u);
  EXPECT_EQ(of[0].info.serial, 1u);
  ASSERT_OK_AND_ASSIGN(uint64_t v1, db->NextKrlVersion());
  ASSERT_OK_AND_ASSIGN(uint64_t v2, db->NextKrlVersion());
  EXPECT_EQ(v1, 1u);
  EXPECT_EQ(v2, 2u);
}

TEST(StateDbTest, FindsSessionsByIdPrefix) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(dir.Join("jitgated.db")));
  ASSERT_OK(db->SaveSession({"k3n8v2x9q4m1", "{\"a\":1}", 3, false, true, "4242 987654 "}));
  ASSERT_OK(db->SaveSession({"k3n8zzzzzzzz", "{\"b\":2}", 5, true, false, ""}));
  ASSERT_OK(db->SaveSession({"k3n9aaaaaaaa", "{}", 0, true, false, ""}));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> both, db->FindSessions("k3n8", 10));
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].id, "k3n8v2x9q4m1");
  EXPECT_FALSE(both[0].ended);
  EXPECT_EQ(both[0].next_index, 3u);
  EXPECT_EQ(both[0].start_json, "{\"a\":1}");
  EXPECT_TRUE(both[0].broker_named);
  EXPECT_EQ(both[0].recorder_process, "4242 987654 ");
  EXPECT_EQ(both[1].recorder_process, "");
  EXPECT_EQ(both[1].id, "k3n8zzzzzzzz");  // 'z' is the last id character
  EXPECT_TRUE(both[1].ended);
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> one, db->FindSessions("k3n8", 1));
  EXPECT_EQ(one.size(), 1u);
  ASSERT_OK_AND_ASSIGN(one, db->FindSessions("k3n9aaaaaaaa", 10));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0].ended);
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> none, db->FindSessions("k3n7", 10));
  EXPECT_TRUE(none.empty());
}

// SaveSessionProgress writes what SaveSession would for an open session,
// and nothing for one never saved.
TEST(StateDbTest, SessionProgressUpdatesOnlySavedSessions) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(dir.Join("jitgated.db")));
  ASSERT_OK_AND_ASSIGN(bool saved, db->SaveSessionProgress("k3n8v2x9q4m1", 7));
  EXPECT_FALSE(saved);
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(bool exists, db->SessionExists("k3n8v2x9q4m1"));
  EXPECT_FALSE(exists);

  ASSERT_OK(db->SaveSession({"k3n8v2x9q4m1", "{\"a\":1}", 0, false, true, "4242 987654 "}));
  ASSERT_OK(db->SaveSession({"k3n8v2x9q4m2", "{\"b\":2}", 2, false, false, ""}));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(saved, db->SaveSessionProgress("k3n8v2x9q4m1", 7));
  EXPECT_TRUE(saved);
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> open, db->LoadOpenSessions());
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].id, "k3n8v2x9q4m1");
  EXPECT_EQ(open[0].next_index, 7u);
  EXPECT_EQ(open[0].start_json, "{\"a\":1}");  // written once
  EXPECT_TRUE(open[0].broker_named);
  EXPECT_EQ(open[0].recorder_process, "4242 987654 ");
  EXPECT_EQ(open[1].next_index, 2u);  // the other session is untouched

  // Like SaveSession, it is part of the open transaction.
  ASSERT_OK_AND_ASSIGN(saved, db->SaveSessionProgress("k3n8v2x9q4m1", 9));
  EXPECT_TRUE(saved);
  db->Rollback();
  ASSERT_OK_AND_ASSIGN(open, db->LoadOpenSessions());
  EXPECT_EQ(open[0].next_index, 7u);
}

// A database as an older jitgated left it: sql run on a fresh file, mode 0600.
void WriteOldDatabase(const std::string& path, const char* sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
  sqlite3_close(raw);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
}

TEST(StateDbTest, SchemaThreeSessionsAreUpgradedAsSpooled) {
  // A session table as schema 3 wrote it, with one open session: who named
  // it is unknown, so it must not look broker-named (never ended as lost).
  TempDir dir;
  const std::string path = dir.Join("jitgated.db");
  ASSERT_NO_FATAL_FAILURE(WriteOldDatabase(
      path,
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta(key, value) VALUES('schema', '3');"
      "CREATE TABLE sessions(id TEXT PRIMARY KEY, ended INTEGER NOT NULL,"
      "  next_index INTEGER NOT NULL, start_json TEXT NOT NULL,"
      "  seq INTEGER NOT NULL);"
      "INSERT INTO sessions VALUES('k3n8v2x9q4m1', 0, 4, '{}', 1);"));
  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> open, db->LoadOpenSessions());
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].next_index, 4u);
  EXPECT_FALSE(open[0].broker_named);
  ASSERT_OK(db->SaveSession({"k3n8v2x9q4m2", "{}", 0, false, true, ""}));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(open, db->LoadOpenSessions());
  ASSERT_EQ(open.size(), 2u);
  EXPECT_TRUE(open[1].broker_named);
}

TEST(StateDbTest, SchemaFourSessionsAreUpgradedWithoutARecorderProcess) {
  // A session table as schema 4 wrote it, with one open broker-named
  // session: the process that opened it is unknown, so a restarted broker
  // waits for it as before.
  TempDir dir;
  const std::string path = dir.Join("jitgated.db");
  ASSERT_NO_FATAL_FAILURE(WriteOldDatabase(
      path,
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta(key, value) VALUES('schema', '4');"
      "CREATE TABLE sessions(id TEXT PRIMARY KEY, ended INTEGER NOT NULL,"
      "  next_index INTEGER NOT NULL, start_json TEXT NOT NULL,"
      "  seq INTEGER NOT NULL, broker_named INTEGER NOT NULL DEFAULT 0);"
      "INSERT INTO sessions VALUES('k3n8v2x9q4m1', 0, 4, '{}', 1, 1);"));
  ASSERT_OK_AND_ASSIGN(auto db, StateDb::Open(path));
  ASSERT_OK_AND_ASSIGN(std::vector<StateDb::SavedSession> open, db->LoadOpenSessions());
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].next_index, 4u);
  EXPECT_TRUE(open[0].broker_named);
  EXPECT_EQ(open[0].recorder_process, "");
  ASSERT_OK(db->SaveSession({"k3n8v2x9q4m2", "{}", 0, false, true, "31337 55 "}));
  ASSERT_OK(db->Commit());
  ASSERT_OK_AND_ASSIGN(open, db->LoadOpenSessions());
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[1].recorder_process, "31337 55 ");
  db.reset();
  // Opened again: already schema 5, nothing to upgrade.
  ASSERT_OK_AND_ASSIGN(db, StateDb::Open(path));
  ASSERT_OK_AND_ASSIGN(open, db->LoadOpenSessions());
  EXPECT_EQ(open.size(), 2u);
}

}  // namespace
}  // namespace jitgate::broker
