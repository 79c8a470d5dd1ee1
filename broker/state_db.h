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

struct sqlite3;
struct sqlite3_stmt;

namespace jitgate::broker {

// A request as saved: the request and the hash of its resume token (absent
// for requests decided at once, which never had one).
struct SavedRequest {
  Request request;
  std::optional<crypto::Sha256Digest> token_hash;
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

 private:
  explicit StateDb(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Error(std::string_view what);
  StatusOr<std::vector<SavedRequest>> Load(sqlite3_stmt* stmt);

  sqlite3* db_;
  sqlite3_stmt* save_ = nullptr;
  sqlite3_stmt* exists_ = nullptr;
  bool in_transaction_ = false;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_STATE_DB_H_
