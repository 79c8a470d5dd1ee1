#include "broker/state_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace jitgate::broker {
namespace {

// Version 2 added RequestFields.public_key and ttl_seconds; version 1 rows
// (written before) decode with both empty.
constexpr uint8_t kEncodingVersion = 2;
// Caps for decoding: generous for every real value, small enough that a
// corrupted row cannot make the broker allocate without bound.
constexpr size_t kMaxString = 64 * 1024;
constexpr uint16_t kMaxList = 4096;

void PutString(ByteWriter& w, std::string_view s) { w.PutU32Prefixed(s); }

void PutStrings(ByteWriter& w, const std::vector<std::string>& v) {
  w.PutU16(static_cast<uint16_t>(v.size()));
  for (const std::string& s : v) PutString(w, s);
}

void PutI64(ByteWriter& w, int64_t v) { w.PutU64(static_cast<uint64_t>(v)); }

// Decoding helpers: each returns false on truncation or a broken cap.
bool GetString(ByteReader& r, std::string* out) {
  return r.GetU32PrefixedString(out, kMaxString);
}

bool GetStrings(ByteReader& r, std::vector<std::string>* out) {
  uint16_t n;
  if (!r.GetU16(&n) || n > kMaxList) return false;
  out->resize(n);
  for (std::string& s : *out) {
    if (!GetString(r, &s)) return false;
  }
  return true;
}

bool GetI64(ByteReader& r, int64_t* out) {
  uint64_t v;
  if (!r.GetU64(&v)) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

bool GetDuration(ByteReader& r, std::chrono::nanoseconds* out) {
  int64_t v;
  if (!GetI64(r, &v)) return false;
  *out = std::chrono::nanoseconds(v);
  return true;
}

template <typename Enum>
bool GetEnum(ByteReader& r, uint8_t max, Enum* out) {
  uint8_t v;
  if (!r.GetU8(&v) || v > max) return false;
  *out = static_cast<Enum>(v);
  return true;
}

void PutFields(ByteWriter& w, const wire::RequestFields& f) {
  for (const std::string* s : {&f.service, &f.user, &f.target_user, &f.host, &f.remote_addr,
                               &f.tty, &f.command, &f.cwd, &f.reason, &f.public_key}) {
    PutString(w, *s);
  }
  w.PutU32(f.ttl_seconds);
}

bool GetFields(ByteReader& r, uint8_t version, wire::RequestFields* f) {
  for (std::string* s : {&f->service, &f->user, &f->target_user, &f->host, &f->remote_addr,
                         &f->tty, &f->command, &f->cwd, &f->reason}) {
    if (!GetString(r, s)) return false;
  }
  if (version < 2) return true;
  return GetString(r, &f->public_key) && r.GetU32(&f->ttl_seconds);
}

}  // namespace

Bytes EncodeSavedRequest(const SavedRequest& saved) {
  const Request& q = saved.request;
  ByteWriter w(512);
  w.PutU8(kEncodingVersion);
  PutString(w, q.id);
  PutFields(w, q.fields);
  w.PutBytes(ByteSpan(q.digest));
  w.PutU32(q.caller.uid);
  w.PutU32(q.caller.gid);
  w.PutU32(static_cast<uint32_t>(q.caller.pid));
  PutString(w, q.caller.user);
  const Decision& d = q.decision;
  PutString(w, d.policy);
  w.PutU8(static_cast<uint8_t>(d.outcome));
  PutString(w, d.explanation);
  PutStrings(w, d.approver_groups);
  PutStrings(w, d.approvers);
  w.PutU32(static_cast<uint32_t>(d.quorum));
  w.PutU8(static_cast<uint8_t>(d.reason));
  PutI64(w, d.timeout.count());
  PutI64(w, d.ttl.count());
  w.PutU8(static_cast<uint8_t>(q.state));
  for (int64_t t : {q.created_unix_nanos, q.deadline_unix_nanos, q.decided_unix_nanos,
                    q.valid_until_unix_nanos, q.used_unix_nanos}) {
    PutI64(w, t);
  }
  w.PutU16(static_cast<uint16_t>(q.approvals.size()));
  for (const Approval& a : q.approvals) {
    PutString(w, a.approver);
    PutString(w, a.comment);
    PutI64(w, a.time_unix_nanos);
  }
  PutString(w, q.closed_by);
  PutString(w, q.closed_comment);
  w.PutU8(saved.token_hash.has_value() ? 1 : 0);
  if (saved.token_hash.has_value()) w.PutBytes(ByteSpan(*saved.token_hash));
  return w.Release();
}

StatusOr<SavedRequest> DecodeSavedRequest(ByteSpan data) {
  ByteReader r(data);
  SavedRequest saved;
  Request& q = saved.request;
  Decision& d = q.decision;
  uint8_t version = 0;
  uint32_t uid, gid, pid, quorum;
  uint16_t approvals;
  uint8_t has_token;
  bool ok = r.GetU8(&version) && version >= 1 && version <= kEncodingVersion &&
            GetString(r, &q.id) && GetFields(r, version, &q.fields) && r.CopyBytes(q.digest) && r.GetU32(&uid) &&
            r.GetU32(&gid) && r.GetU32(&pid) && GetString(r, &q.caller.user) &&
            GetString(r, &d.policy) &&
            GetEnum(r, static_cast<uint8_t>(Outcome::kApproval), &d.outcome) &&
            GetString(r, &d.explanation) && GetStrings(r, &d.approver_groups) &&
            GetStrings(r, &d.approvers) && r.GetU32(&quorum) &&
            GetEnum(r, static_cast<uint8_t>(ReasonMode::kRequired), &d.reason) &&
            GetDuration(r, &d.timeout) && GetDuration(r, &d.ttl) &&
            GetEnum(r, static_cast<uint8_t>(RequestState::kUsed), &q.state) &&
            GetI64(r, &q.created_unix_nanos) && GetI64(r, &q.deadline_unix_nanos) &&
            GetI64(r, &q.decided_unix_nanos) && GetI64(r, &q.valid_until_unix_nanos) &&
            GetI64(r, &q.used_unix_nanos) && r.GetU16(&approvals) && approvals <= kMaxList;
  if (ok) {
    q.approvals.resize(approvals);
    for (Approval& a : q.approvals) {
      ok = ok && GetString(r, &a.approver) && GetString(r, &a.comment) &&
           GetI64(r, &a.time_unix_nanos);
    }
  }
  ok = ok && GetString(r, &q.closed_by) && GetString(r, &q.closed_comment) &&
       r.GetU8(&has_token) && has_token <= 1;
  if (ok && has_token == 1) {
    crypto::Sha256Digest h{};
    ok = r.CopyBytes(h);
    saved.token_hash = h;
  }
  if (!ok || !r.Empty() || quorum > 1024) {
    return DataLossError("saved request is malformed (version " + std::to_string(version) +
                         ", " + std::to_string(data.size()) + " bytes)");
  }
  q.caller.uid = uid;
  q.caller.gid = gid;
  q.caller.pid = static_cast<int32_t>(pid);
  d.quorum = static_cast<int>(quorum);
  if (wire::RequestDigest(q.fields) != q.digest) {
    return DataLossError("saved request " + q.id + ": digest does not match its fields");
  }
  return saved;
}

StatusOr<std::unique_ptr<StateDb>> StateDb::Open(const std::string& path) {
  // Create the file ourselves so that it is 0600 from the first byte, and
  // refuse one that others could read: it holds resume token hashes and the
  // full request history.
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return ErrnoToStatus(errno, "state database " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "state database " + path);
    if (!S_ISREG(st.st_mode)) {
      return FailedPreconditionError("state database " + path + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
      return FailedPreconditionError("state database " + path +
                                     " is readable by group or others; chmod 600 it");
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return InternalError("state database " + path + ": " + msg);
  }
  std::unique_ptr<StateDb> s(new StateDb(db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(s->Exec(
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');"
      "CREATE TABLE IF NOT EXISTS requests("
      "  id TEXT PRIMARY KEY,"
      "  state INTEGER NOT NULL,"
      "  created_ns INTEGER NOT NULL,"
      "  changed_seq INTEGER NOT NULL,"
      "  body BLOB NOT NULL);"
      "CREATE INDEX IF NOT EXISTS requests_by_state ON requests(state, created_ns);"
      "CREATE INDEX IF NOT EXISTS requests_by_change ON requests(changed_seq);"));
  // The schema version is checked, not assumed: a newer database is refused.
  // Schema 2 added the certificates and the counters; a schema 1 database is
  // upgraded in place.
  auto read_schema = [&s]() -> StatusOr<std::string> {
    sqlite3_stmt* st = nullptr;
    RETURN_IF_ERROR(s->Prepare("SELECT value FROM meta WHERE key='schema'", &st));
    std::string schema;
    if (sqlite3_step(st) == SQLITE_ROW) {
      schema = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return schema;
  };
  ASSIGN_OR_RETURN(std::string schema, read_schema());
  if (schema == "1") {
    RETURN_IF_ERROR(s->Exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS certs("
        "  serial INTEGER PRIMARY KEY,"
        "  kind INTEGER NOT NULL,"
        "  request_id TEXT NOT NULL,"
        "  valid_before INTEGER NOT NULL,"
        "  revoked_at INTEGER NOT NULL,"
        "  policy TEXT NOT NULL,"
        "  info BLOB NOT NULL,"
        "  certificate TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS certs_by_request ON certs(request_id);"
        "INSERT OR IGNORE INTO meta(key, value) VALUES('next_serial', '1');"
        "INSERT OR IGNORE INTO meta(key, value) VALUES('krl_version', '0');"
        "UPDATE meta SET value='2' WHERE key='schema';"
        "COMMIT;"));
    ASSIGN_OR_RETURN(schema, read_schema());
  }
  if (schema == "2") {
    RETURN_IF_ERROR(s->Exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS sessions("
        "  id TEXT PRIMARY KEY,"
        "  ended INTEGER NOT NULL,"
        "  next_index INTEGER NOT NULL,"
        "  start_json TEXT NOT NULL,"
        "  seq INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS sessions_open ON sessions(ended, seq);"
        "UPDATE meta SET value='3' WHERE key='schema';"
        "COMMIT;"));
    ASSIGN_OR_RETURN(schema, read_schema());
  }
  if (schema == "3") {
    // Schema 4: whether the broker named the session (its recorder has no
    // spool). Sessions saved before are taken as spooled: never ended as
    // "recorder lost" by the broker, as before.
    RETURN_IF_ERROR(s->Exec(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE sessions ADD COLUMN broker_named INTEGER NOT NULL DEFAULT 0;"
        "UPDATE meta SET value='4' WHERE key='schema';"
        "COMMIT;"));
    ASSIGN_OR_RETURN(schema, read_schema());
  }
  if (schema == "4") {
    // Schema 5: the sudo process that opened each sudo session. Sessions
    // saved before have none: restored, they wait for their recorder as before.
    RETURN_IF_ERROR(s->Exec(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE sessions ADD COLUMN recorder_process TEXT NOT NULL DEFAULT '';"
        "UPDATE meta SET value='5' WHERE key='schema';"
        "COMMIT;"));
    ASSIGN_OR_RETURN(schema, read_schema());
  }
  if (schema != "5") {
    return FailedPreconditionError("state database " + path + " has schema '" + schema +
                                   "'; this jitgated understands schemas 1 to 5");
  }
  RETURN_IF_ERROR(s->Prepare(
      "INSERT OR REPLACE INTO requests(id, state, created_ns, changed_seq, body) "
      "VALUES(?1, ?2, ?3, (SELECT COALESCE(MAX(changed_seq), 0) + 1 FROM requests), ?4)",
      &s->save_));
  RETURN_IF_ERROR(s->Prepare("SELECT 1 FROM requests WHERE id = ?1", &s->exists_));
  RETURN_IF_ERROR(
      s->Prepare("UPDATE sessions SET ended = 0, next_index = ?2 WHERE id = ?1", &s->progress_));
  return s;
}

StateDb::~StateDb() {
  Rollback();
  sqlite3_finalize(save_);
  sqlite3_finalize(exists_);
  sqlite3_finalize(progress_);
  sqlite3_close(db_);
}

Status StateDb::Error(std::string_view what) {
  return InternalError("state database: " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

Status StateDb::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return InternalError("state database: " + msg);
  }
  return OkStatus();
}

Status StateDb::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) != SQLITE_OK) return Error("prepare");
  return OkStatus();
}

Status StateDb::Begin() {
  if (!in_transaction_) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    in_transaction_ = true;
  }
  return OkStatus();
}

Status StateDb::Save(const SavedRequest& saved) {
  RETURN_IF_ERROR(Begin());
  Bytes body = EncodeSavedRequest(saved);
  const Request& q = saved.request;
  sqlite3_reset(save_);
  sqlite3_bind_text(save_, 1, q.id.data(), static_cast<int>(q.id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int(save_, 2, static_cast<int>(q.state));
  sqlite3_bind_int64(save_, 3, q.created_unix_nanos);
  sqlite3_bind_blob(save_, 4, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(save_);
  sqlite3_reset(save_);
  if (rc != SQLITE_DONE) return Error("saving request " + q.id);
  return OkStatus();
}

Status StateDb::Commit() {
  if (!in_transaction_) return OkStatus();
  in_transaction_ = false;
  Status s = Exec("COMMIT");
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return OkStatus();
}

void StateDb::Rollback() {
  if (!in_transaction_) return;
  in_transaction_ = false;
  (void)Exec("ROLLBACK");
}

StatusOr<std::vector<SavedRequest>> StateDb::Load(sqlite3_stmt* stmt) {
  std::vector<SavedRequest> out;
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      Status s = Error("loading requests");
      sqlite3_finalize(stmt);
      return s;
    }
    const void* blob = sqlite3_column_blob(stmt, 0);
    int n = sqlite3_column_bytes(stmt, 0);
    StatusOr<SavedRequest> saved = DecodeSavedRequest(
        ByteSpan(static_cast<const uint8_t*>(blob), static_cast<size_t>(n)));
    if (!saved.ok()) {
      sqlite3_finalize(stmt);
      return saved.status();
    }
    out.push_back(std::move(*saved));
  }
  sqlite3_finalize(stmt);
  return out;
}

StatusOr<std::vector<SavedRequest>> StateDb::LoadActive() {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT body FROM requests WHERE state IN (?1, ?2) ORDER BY created_ns",
                          &stmt));
  sqlite3_bind_int(stmt, 1, static_cast<int>(RequestState::kPending));
  sqlite3_bind_int(stmt, 2, static_cast<int>(RequestState::kApproved));
  return Load(stmt);
}

StatusOr<std::vector<SavedRequest>> StateDb::LoadRecentFinished(int limit) {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "SELECT body FROM requests WHERE state NOT IN (?1, ?2) ORDER BY changed_seq DESC LIMIT ?3",
      &stmt));
  sqlite3_bind_int(stmt, 1, static_cast<int>(RequestState::kPending));
  sqlite3_bind_int(stmt, 2, static_cast<int>(RequestState::kApproved));
  sqlite3_bind_int(stmt, 3, limit);
  return Load(stmt);
}

StatusOr<bool> StateDb::Exists(std::string_view id) {
  sqlite3_reset(exists_);
  sqlite3_bind_text(exists_, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(exists_);
  sqlite3_reset(exists_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error("looking up request id");
}

StatusOr<int64_t> StateDb::Count() {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT COUNT(*) FROM requests", &stmt));
  int64_t n = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  if (n < 0) return Error("counting requests");
  return n;
}

namespace {

// CertInfo and the policy as one row blob (strings byte-exact). Version 1.
Bytes EncodeCertInfo(const wire::CertInfo& c) {
  ByteWriter w(256);
  w.PutU8(1);
  w.PutU64(c.serial);
  w.PutU8(static_cast<uint8_t>(c.kind));
  PutString(w, c.key_id);
  PutStrings(w, c.principals);
  w.PutU64(c.valid_after);
  w.PutU64(c.valid_before);
  PutString(w, c.fingerprint);
  PutString(w, c.request_id);
  PutString(w, c.issued_to);
  w.PutU64(c.issued_at);
  w.PutU64(c.revoked_at);
  PutString(w, c.revoked_by);
  PutString(w, c.revoke_comment);
  return w.Release();
}

StatusOr<wire::CertInfo> DecodeCertInfo(ByteSpan data) {
  ByteReader r(data);
  wire::CertInfo c;
  uint8_t version = 0;
  bool ok = r.GetU8(&version) && version == 1 && r.GetU64(&c.serial) &&
            GetEnum(r, wire::kMaxCertKind, &c.kind) && c.kind != wire::CertKind{0} &&
            GetString(r, &c.key_id) && GetStrings(r, &c.principals) &&
            r.GetU64(&c.valid_after) && r.GetU64(&c.valid_before) &&
            GetString(r, &c.fingerprint) && GetString(r, &c.request_id) &&
            GetString(r, &c.issued_to) && r.GetU64(&c.issued_at) && r.GetU64(&c.revoked_at) &&
            GetString(r, &c.revoked_by) && GetString(r, &c.revoke_comment) && r.Empty();
  if (!ok) return DataLossError("saved certificate is malformed (" + std::to_string(data.size()) + " bytes)");
  return c;
}

std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const unsigned char* t = sqlite3_column_text(stmt, col);
  return t == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(t),
                                    static_cast<size_t>(sqlite3_column_bytes(stmt, col)));
}

// SQLite integers are signed; serials and times are stored as their bit
// pattern.
int64_t AsSql(uint64_t v) { return static_cast<int64_t>(v); }

}  // namespace

StatusOr<uint64_t> StateDb::NextCounter(const char* key) {
  RETURN_IF_ERROR(Begin());
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT value FROM meta WHERE key = ?1", &stmt));
  sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  std::string value;
  if (sqlite3_step(stmt) == SQLITE_ROW) value = ColumnText(stmt, 0);
  sqlite3_finalize(stmt);
  uint64_t current = 0;
  if (value.empty() || value.size() > 19 ||
      value.find_first_not_of("0123456789") != std::string::npos) {
    return DataLossError(std::string("state database: counter ") + key + " is unreadable");
  }
  current = std::stoull(value);
  RETURN_IF_ERROR(Prepare("UPDATE meta SET value = ?2 WHERE key = ?1", &stmt));
  sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  std::string next = std::to_string(current + 1);
  sqlite3_bind_text(stmt, 2, next.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error(std::string("advancing ") + key);
  return current;
}

StatusOr<uint64_t> StateDb::NextSerial() {
  ASSIGN_OR_RETURN(uint64_t serial, NextCounter("next_serial"));
  if (serial == 0) return DataLossError("state database: certificate serial counter is 0");
  return serial;
}

StatusOr<uint64_t> StateDb::NextKrlVersion() {
  ASSIGN_OR_RETURN(uint64_t v, NextCounter("krl_version"));
  return v + 1;
}

Status StateDb::SaveCert(const CertRecord& cert) {
  RETURN_IF_ERROR(Begin());
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "INSERT OR REPLACE INTO certs(serial, kind, request_id, valid_before, revoked_at, policy, "
      "info, certificate) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      &stmt));
  const wire::CertInfo& c = cert.info;
  Bytes info = EncodeCertInfo(c);
  sqlite3_bind_int64(stmt, 1, AsSql(c.serial));
  sqlite3_bind_int(stmt, 2, static_cast<int>(c.kind));
  sqlite3_bind_text(stmt, 3, c.request_id.data(), static_cast<int>(c.request_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 4, AsSql(c.valid_before));
  sqlite3_bind_int64(stmt, 5, AsSql(c.revoked_at));
  sqlite3_bind_text(stmt, 6, cert.policy.data(), static_cast<int>(cert.policy.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(stmt, 7, info.data(), static_cast<int>(info.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 8, cert.certificate.data(), static_cast<int>(cert.certificate.size()),
                    SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("saving certificate " + std::to_string(c.serial));
  return OkStatus();
}

StatusOr<std::vector<CertRecord>> StateDb::LoadCerts(sqlite3_stmt* stmt) {
  std::vector<CertRecord> out;
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      Status s = Error("loading certificates");
      sqlite3_finalize(stmt);
      return s;
    }
    CertRecord rec;
    const void* blob = sqlite3_column_blob(stmt, 0);
    StatusOr<wire::CertInfo> info = DecodeCertInfo(
        ByteSpan(static_cast<const uint8_t*>(blob), static_cast<size_t>(sqlite3_column_bytes(stmt, 0))));
    if (!info.ok()) {
      sqlite3_finalize(stmt);
      return info.status();
    }
    rec.info = std::move(*info);
    rec.policy = ColumnText(stmt, 1);
    rec.certificate = ColumnText(stmt, 2);
    out.push_back(std::move(rec));
  }
  sqlite3_finalize(stmt);
  return out;
}

StatusOr<std::optional<CertRecord>> StateDb::GetCert(uint64_t serial) {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT info, policy, certificate FROM certs WHERE serial = ?1", &stmt));
  sqlite3_bind_int64(stmt, 1, AsSql(serial));
  ASSIGN_OR_RETURN(std::vector<CertRecord> v, LoadCerts(stmt));
  if (v.empty()) return std::optional<CertRecord>();
  return std::optional<CertRecord>(std::move(v.front()));
}

StatusOr<std::vector<CertRecord>> StateDb::CertsOfRequest(std::string_view request_id) {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "SELECT info, policy, certificate FROM certs WHERE request_id = ?1 ORDER BY serial", &stmt));
  sqlite3_bind_text(stmt, 1, request_id.data(), static_cast<int>(request_id.size()), SQLITE_TRANSIENT);
  return LoadCerts(stmt);
}

StatusOr<std::vector<CertRecord>> StateDb::ListCerts(bool valid_only, uint64_t now, int limit) {
  sqlite3_stmt* stmt = nullptr;
  if (valid_only) {
    RETURN_IF_ERROR(Prepare(
        "SELECT info, policy, certificate FROM certs WHERE revoked_at = 0 AND valid_before > ?1 "
        "ORDER BY serial DESC LIMIT ?2",
        &stmt));
    sqlite3_bind_int64(stmt, 1, AsSql(now));
  } else {
    RETURN_IF_ERROR(Prepare(
        "SELECT info, policy, certificate FROM certs ORDER BY serial DESC LIMIT ?2", &stmt));
  }
  sqlite3_bind_int(stmt, 2, limit);
  return LoadCerts(stmt);
}

StatusOr<std::vector<uint64_t>> StateDb::RevokedSerials() {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT serial FROM certs WHERE revoked_at != 0 ORDER BY serial", &stmt));
  std::vector<uint64_t> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back(static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("loading revoked serials");
  return out;
}

Status StateDb::SaveSession(const SavedSession& session) {
  RETURN_IF_ERROR(Begin());
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "INSERT INTO sessions(id, ended, next_index, start_json, seq, broker_named, "
      "  recorder_process) "
      "VALUES(?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions), ?5, ?6) "
      "ON CONFLICT(id) DO UPDATE SET ended = ?2, next_index = ?3",
      &stmt));
  const std::string& id = session.id;
  sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int(stmt, 2, session.ended ? 1 : 0);
  sqlite3_bind_int64(stmt, 3, AsSql(session.next_index));
  sqlite3_bind_text(stmt, 4, session.start_json.data(),
                    static_cast<int>(session.start_json.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int(stmt, 5, session.broker_named ? 1 : 0);
  sqlite3_bind_text(stmt, 6, session.recorder_process.data(),
                    static_cast<int>(session.recorder_process.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("saving session " + id);
  return OkStatus();
}

StatusOr<bool> StateDb::SaveSessionProgress(std::string_view id, uint64_t next_index) {
  RETURN_IF_ERROR(Begin());
  sqlite3_reset(progress_);
  sqlite3_bind_text(progress_, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(progress_, 2, AsSql(next_index));
  int rc = sqlite3_step(progress_);
  sqlite3_reset(progress_);
  if (rc != SQLITE_DONE) return Error("saving session " + std::string(id));
  return sqlite3_changes(db_) > 0;
}

StatusOr<std::vector<StateDb::SavedSession>> StateDb::LoadOpenSessions() {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "SELECT id, start_json, next_index, broker_named, recorder_process FROM sessions "
      "WHERE ended = 0 ORDER BY seq",
      &stmt));
  std::vector<SavedSession> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1),
                   static_cast<uint64_t>(sqlite3_column_int64(stmt, 2)), false,
                   sqlite3_column_int(stmt, 3) != 0, ColumnText(stmt, 4)});
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("loading sessions");
  return out;
}

StatusOr<std::vector<StateDb::SavedSession>> StateDb::FindSessions(std::string_view prefix,
                                                                   int limit) {
  // A range on the primary key: every id with the prefix sorts in
  // [prefix, prefix + "{"), '{' being the byte after 'z'.
  const std::string end = std::string(prefix) + "{";
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare(
      "SELECT id, start_json, next_index, ended, broker_named, recorder_process FROM sessions "
      "WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
      &stmt));
  sqlite3_bind_text(stmt, 1, prefix.data(), static_cast<int>(prefix.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, end.data(), static_cast<int>(end.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int(stmt, 3, limit);
  std::vector<SavedSession> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1),
                   static_cast<uint64_t>(sqlite3_column_int64(stmt, 2)),
                   sqlite3_column_int(stmt, 3) != 0, sqlite3_column_int(stmt, 4) != 0,
                   ColumnText(stmt, 5)});
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error("looking up sessions");
  return out;
}

StatusOr<bool> StateDb::SessionExists(std::string_view id) {
  sqlite3_stmt* stmt = nullptr;
  RETURN_IF_ERROR(Prepare("SELECT 1 FROM sessions WHERE id = ?1", &stmt));
  sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error("looking up session id");
}

}  // namespace jitgate::broker
