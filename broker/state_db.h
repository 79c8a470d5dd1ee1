// StateDb: jitgated's memory across restarts, an SQLite database in the
// state directory (`<broker.state_dir>/jitgated.db`, mode 0600).
//
// One row per request ever filed: its id, state, creation time, the SHA-256
// of its resume token (never the token) and the whole broker::Request in a
// versioned binary encoding (strings byte-exact, so the RequestDigest of the
// restored fields is the digest the approvers saw). The daemon saves every
// request it changes inside one transaction per event-loop turn and commits
// before it answers anyone, so what a client is told is on disk
// (journal_mode=WAL, synchronous=FULL).
//
// The database is the broker's working state; the signed store holds the
// audit history. Not thread-safe: the daemon's loop owns it.
#ifndef JITGATE_BROKER_STATE_DB_H_
#define JITGATE_BROKER_STATE_DB_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/lifecycle.h"
#include "core/base/bytes.h"
#include "core/base/status.h"
#include "core/crypto/crypto.h"
#include "core/wire/messages.h"

struct sqlite3;
struct sqlite3_stmt;

namespace jitgate::broker {

// A request as saved: the request and the hash of its resume token (absent
// for requests decided at once, which never had one).
struct SavedRequest {
  Request request;
  std::optional<crypto::Sha256Digest> token_hash;
};

// A certificate the CA issued: what `jitgate certs` shows, the policy whose
// approvers may see and revoke it, and the certificate line itself.
struct CertRecord {
  wire::CertInfo info;
  std::string policy;       // the rule that approved the request; "" for host certs
  std::string certificate;  // "type-cert-v01@openssh.com base64"
};

// The binary encoding of a saved request (exposed for tests and the fuzzer).
Bytes EncodeSavedRequest(const SavedRequest& saved);
// Strict decoding: bounds-checked, caps before allocation, no trailing bytes.
StatusOr<SavedRequest> DecodeSavedRequest(ByteSpan data);

class StateDb {
 public:
  // Opens or creates the database at path (created with mode 0600; an
  // existing file that group or others may read is refused).
  static StatusOr<std::unique_ptr<StateDb>> Open(const std::string& path);
  ~StateDb();
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;

  // Saves (inserts or replaces) a request. Starts a transaction if none is
  // open; nothing is durable until Commit.
  Status Save(const SavedRequest& saved);
  // Commits the open transaction, if any.
  Status Commit();
  // Rolls back the open transaction, if any.
  void Rollback();

  // Every request that is pending or approved (not yet used), oldest first.
  StatusOr<std::vector<SavedRequest>> LoadActive();
  // The most recent finished requests, newest first, at most limit.
  StatusOr<std::vector<SavedRequest>> LoadRecentFinished(int limit);
  // True if a request with this id was ever saved (ids are never reused).
  StatusOr<bool> Exists(std::string_view id);
  // Number of rows.
  StatusOr<int64_t> Count();

  // Certificates (schema 2). NextSerial allocates the CA's next serial
  // (1, 2, 3, ...) from a counter in the open transaction: a serial is
  // never handed out twice, also across restarts, as long as the caller
  // commits before the certificate leaves the broker.
  StatusOr<uint64_t> NextSerial();
  // Saves (inserts or replaces) a certificate record.
  Status SaveCert(const CertRecord& cert);
  // The record of one serial, or nullopt.
  StatusOr<std::optional<CertRecord>> GetCert(uint64_t serial);
  // Certificates issued for a request (exact id).
  StatusOr<std::vector<CertRecord>> CertsOfRequest(std::string_view request_id);
  // The newest first, at most limit; only unrevoked ones valid at now
  // (Unix seconds) if valid_only.
  StatusOr<std::vector<CertRecord>> ListCerts(bool valid_only, uint64_t now, int limit);
  // Serials of every revoked certificate, ascending.
  StatusOr<std::vector<uint64_t>> RevokedSerials();
  // Increments and returns the KRL version counter (in the open transaction).
  StatusOr<uint64_t> NextKrlVersion();

  // Recorded sessions (schema 3, broker_named since schema 4): the
  // session_start JSON, how many chunks are in the store, and whether
  // session_end was written.
  struct SavedSession {
    std::string id;
    std::string start_json;
    uint64_t next_index = 0;
    bool ended = false;
    // The broker named the session, so its recorder has no spool (one that
    // spools names its own). Sessions saved under schema 3 read false.
    bool broker_named = false;
    // The sudo process that opened a sudo session (EncodePeerProcess), so
    // that a restarted broker can tell whether it still runs; empty for
    // other sessions and if unknown (saved under schema 4, peers in another
    // pid namespace).
    std::string recorder_process;
  };
  // Inserts the session, or updates ended and next_index of a saved one
  // (start_json, broker_named and recorder_process are written once), in the
  // open transaction.
  Status SaveSession(const SavedSession& session);
  // What SaveSession does for a saved session that has not ended (ended =
  // false, next_index), for the broker's every turn with transcript chunks:
  // one prepared UPDATE, in the open transaction. False, with nothing
  // written, if no session of this id is saved (SaveSession inserts it).
  StatusOr<bool> SaveSessionProgress(std::string_view id, uint64_t next_index);
  // Sessions not yet ended, oldest first.
  StatusOr<std::vector<SavedSession>> LoadOpenSessions();
  StatusOr<bool> SessionExists(std::string_view id);
  // Sessions, ended or not, whose id starts with prefix (ids are [0-9a-z]),
  // in id order, at most limit.
  StatusOr<std::vector<SavedSession>> FindSessions(std::string_view prefix, int limit);

 private:
  explicit StateDb(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Error(std::string_view what);
  StatusOr<std::vector<SavedRequest>> Load(sqlite3_stmt* stmt);
  StatusOr<std::vector<CertRecord>> LoadCerts(sqlite3_stmt* stmt);
  Status Begin();
  StatusOr<uint64_t> NextCounter(const char* key);

  sqlite3* db_;
  sqlite3_stmt* save_ = nullptr;
  sqlite3_stmt* exists_ = nullptr;
  sqlite3_stmt* progress_ = nullptr;
  bool in_transaction_ = false;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_STATE_DB_H_
