// VerifyStore: the auditor's check of a whole store (docs/store-format.md §9).
// Reads everything once, sequentially, with bounded memory (about two
// buffers of VerifyOptions::buffer_size), and stops at the first problem,
// which it names: segment, entry index and offset, or checkpoint.
#ifndef JITGATE_STORE_VERIFY_H_
#define JITGATE_STORE_VERIFY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/status.h"
#include "store/merkle/merkle.h"
#include "store/note/checkpoint.h"
#include "store/note/keys.h"

namespace jitgate::store {

struct VerifyOptions {
  Env* env = nullptr;  // default: DefaultEnv()
  // A checkpoint the auditor saved earlier (signed note text). The store must
  // be an append-only extension of it.
  std::optional<std::string> saved_checkpoint;
  size_t buffer_size = 1u << 20;
};

struct VerifyReport {
  // OK when the store is intact; otherwise DataLoss (or another code for I/O
  // problems) whose message names the first bad item and why.
  Status status;
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  uint64_t segments = 0;
  uint64_t bytes = 0;          // bytes of segment files read
  uint64_t entry_bytes = 0;    // bytes of entries hashed
  uint64_t latest_checkpoint_size = 0;
  merkle::Hash root{};         // root of all entries
  uint64_t torn_tail_bytes = 0;     // at the end of the active segment
  uint64_t skipped_torn_bytes = 0;  // in sealed segments, accounted for by successors
  std::optional<uint64_t> saved_checkpoint_size;  // when a saved checkpoint was checked
  std::vector<std::string> notes;   // non-fatal observations

  // One line: "intact: ..." or "FAILED: <first problem>".
  std::string Summary() const;
};

VerifyReport VerifyStore(const std::string& dir, const note::Verifier& key,
                         const VerifyOptions& options);

// CheckCheckpointRecord: step 6 of the verification for one CHECKPOINT
// record's payload, found after `count` entries whose recomputed root is
// `root` and after a checkpoint of size last_size (-1: none): the signature
// by key, the origin, the size (= count, and larger than last_size) and the
// root. Returns the checkpoint, or DataLoss "<what>: <first problem>".
StatusOr<note::Checkpoint> CheckCheckpointRecord(ByteSpan payload, const note::Verifier& key,
                                                 const std::string& origin, uint64_t count,
                                                 const merkle::Hash& root, int64_t last_size,
                                                 const std::string& what);

}  // namespace jitgate::store

#endif  // JITGATE_STORE_VERIFY_H_
