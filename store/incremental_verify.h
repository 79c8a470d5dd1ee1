// IncrementalVerifier: verifies a store that a writer is appending to, a
// piece at a time, picking up where it left off. The broker runs one to know
// -- not assume -- that its own store verifies (docs/jitgated.md, "Health").
//
// It makes the checks of VerifyStore (docs/store-format.md §9) that prove the
// log: the STORE file names the given key; segments follow each other
// (numbering, first entry, origin, and each sealed segment's valid length
// pinned by its successor's header); every record's framing and CRC; every
// entry parses; every checkpoint is signed by the key and its size and root
// equal those recomputed from the entries before it. It skips tree.nodes (a
// derived index that the writer itself checks against the latest checkpoint
// when it opens the store) and saved checkpoints. The end of the active
// segment is read as the current end of the log, as any reader does while a
// writer appends (a torn tail is a record being written); a damaged record
// before it is an error.
//
// The first problem is sticky: later calls return it. Each call reads only
// what was appended since the last (plus the directory listing), so calling
// it every few seconds costs what the log grew by. Not thread-safe.
#ifndef JITGATE_STORE_INCREMENTAL_VERIFY_H_
#define JITGATE_STORE_INCREMENTAL_VERIFY_H_

#include <cstdint>
#include <string>

#include "core/base/env.h"
#include "core/base/status.h"
#include "store/merkle/compact_range.h"
#include "store/note/keys.h"

namespace jitgate::store {

class IncrementalVerifier {
 public:
  // dir must be a store; key is the log's verifier key. env: nullptr for
  // DefaultEnv().
  IncrementalVerifier(std::string dir, note::Verifier key, Env* env = nullptr);

  // Verifies what was appended since the last call, reading at most about
  // max_bytes of records (a pass may then be continued by the next call).
  // Returns true when it reached the current end of the log, false when the
  // budget ran out first. A failed check is DataLoss naming the segment,
  // offset and entry or checkpoint (as VerifyStore does); an I/O error keeps
  // its code. Either is returned again by every later call.
  StatusOr<bool> Advance(uint64_t max_bytes);

  // Entries read and hashed so far.
  uint64_t entries() const { return count_; }
  // The size of the latest checkpoint that verified: the entries proven.
  uint64_t verified_entries() const { return verified_; }
  // Bytes of segment files as of the last call (the size of the log on disk).
  uint64_t bytes() const { return bytes_; }

 private:
  Status Fail(Status s);
  StatusOr<bool> Step(uint64_t max_bytes);

  const std::string dir_;
  const note::Verifier key_;
  Env* env_;
  Status error_;
  std::string origin_;         // "" until the STORE file was checked
  bool listing_failed_ = false;  // the last segment listing failed
  uint64_t segment_ = 1;       // the segment being read
  uint64_t offset_ = 0;        // next record's offset in it; 0: not started
  uint64_t count_ = 0;
  int64_t last_checkpoint_ = -1;
  uint64_t verified_ = 0;
  uint64_t bytes_ = 0;
  merkle::CompactRange range_;
};

}  // namespace jitgate::store

#endif  // JITGATE_STORE_INCREMENTAL_VERIFY_H_
