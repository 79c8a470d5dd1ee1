// Evidence bundles (PRODUCT.md F6; docs/recording-format.md §9): one file that
// proves, offline and with nothing but the log's public key, that a recorded
// session is in the signed store, complete and unchanged.
//
//   bundle  = magic section+                      ; to the end of the file
//   magic   = "JGBNDL" 0x00 0x01                  ; 8 bytes, the last is the version
//   section = u8 type | u32 length | length bytes ; big-endian
//   order   = KEY CHECKPOINT (ENTRY PROOF)+
//
//   KEY        the log's C2SP verifier key (vkey text, no newline)
//   CHECKPOINT the signed checkpoint every proof is against, verbatim
//   ENTRY      one store entry, verbatim: exactly the Merkle leaf data
//   PROOF      that entry's c2sp.org/tlog-proof@v1, without an extra line,
//              whose checkpoint is byte for byte the CHECKPOINT section
//
// A session's bundle holds its session_start event, its chunks 0..n-1 and its
// session_end event, in that order, which is also their order in the log.
//
// Parsing (BundleReader, ParseBundle) checks structure only: the framing,
// each section's cap before anything is allocated for it, the section order,
// and that each section parses (vkey, signed note and checkpoint body, store
// entry, tlog-proof). VerifyBundle checks the evidence. Every error is one
// line naming the byte offset or the item.
//
// Thread-compatible: a BundleReader or BundleWriter is used by one thread.
#ifndef JITGATE_CLI_BUNDLE_H_
#define JITGATE_CLI_BUNDLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/env.h"
#include "core/base/status.h"
#include "recorder/recording.h"
#include "store/merkle/merkle.h"
#include "store/note/keys.h"
#include "store/note/tlog_proof.h"
#include "store/store_format.h"

namespace jitgate::cli {

inline constexpr uint8_t kBundleMagic[8] = {'J', 'G', 'B', 'N', 'D', 'L', 0, 1};
inline constexpr size_t kBundleSectionHeaderSize = 1 + 4;

enum class BundleSection : uint8_t {
  kKey = 1,
  kCheckpoint = 2,
  kEntry = 3,
  kProof = 4,
};

// Caps on section bodies, checked before a body is read or allocated.
inline constexpr size_t kMaxBundleKey = 1024;
inline constexpr size_t kMaxBundleCheckpoint = store::kMaxCheckpointSize;  // 16 KiB
inline constexpr size_t kMaxBundleEntry = store::kMaxEntrySize;            // 65,535
// The tlog-proof header and index lines, 63 path lines and a checkpoint.
inline constexpr size_t kMaxBundleProof = 32 * 1024;
// ENTRY/PROOF pairs per bundle (2^24 chunks of 60 KiB is about 1 TiB).
inline constexpr uint64_t kMaxBundleItems = uint64_t{1} << 24;

// One ENTRY section and the PROOF section after it.
struct BundleItem {
  Bytes entry;            // the store entry, verbatim (the Merkle leaf data)
  note::TlogProof proof;  // its inclusion proof; proof.checkpoint is the bundle's
  friend bool operator==(const BundleItem&, const BundleItem&) = default;
};

// A whole bundle in memory (tests, the fuzz target; real bundles are
// streamed through BundleWriter and BundleReader).
struct Bundle {
  std::string vkey;
  std::string checkpoint;
  std::vector<BundleItem> items;
  friend bool operator==(const Bundle&, const Bundle&) = default;
};

// BundleWriter streams a bundle to a sink. It refuses (kInvalidArgument, and
// writes nothing) what BundleReader would not read back unchanged, so a
// bundle it completes always parses.
class BundleWriter {
 public:
  using Sink = std::function<Status(ByteSpan)>;
  explicit BundleWriter(Sink sink) : sink_(std::move(sink)) {}

  // Writes the magic, KEY and CHECKPOINT. Must be called once, first.
  Status Begin(std::string_view vkey, std::string_view checkpoint);
  // Writes one ENTRY and its PROOF. proof must have no extra data and carry
  // the checkpoint given to Begin.
  Status Add(ByteSpan entry, const note::TlogProof& proof);
  // Pairs written so far.
  uint64_t items() const { return items_; }
  // Bytes written so far.
  uint64_t bytes() const { return bytes_; }

 private:
  Status Section(BundleSection type, ByteSpan body);

  Sink sink_;
  bool begun_ = false;
  std::string checkpoint_;
  uint64_t items_ = 0;
  uint64_t bytes_ = 0;
};

// EncodeBundle writes b through a BundleWriter. kInvalidArgument as Begin
// and Add, or if b has no items.
StatusOr<Bytes> EncodeBundle(const Bundle& b);

// BundleReader parses a bundle from a file sequentially with bounded memory
// (one section at a time). file must outlive the reader.
class BundleReader {
 public:
  BundleReader(const RandomAccessFile* file, uint64_t size) : file_(file), size_(size) {}

  // Reads the magic, KEY and CHECKPOINT. Must be called once, first.
  Status ReadHeader();
  const std::string& vkey() const { return vkey_; }
  const std::string& checkpoint() const { return checkpoint_; }

  // Reads the next ENTRY/PROOF pair into *item. Returns false at the end of
  // the file, which is only valid after at least one pair. kInvalidArgument
  // naming the offset for anything malformed; I/O errors as they come.
  StatusOr<bool> Next(BundleItem* item);
  // Pairs read so far.
  uint64_t items() const { return items_; }

 private:
  // Reads one section header and body, checking the type and the cap.
  Status ReadSection(BundleSection want, size_t cap, Bytes* body);
  Status ReadExact(size_t n, uint8_t* out);

  const RandomAccessFile* file_;
  uint64_t size_;
  uint64_t pos_ = 0;
  bool header_done_ = false;
  std::string vkey_;
  std::string checkpoint_;
  uint64_t items_ = 0;
};

// ParseBundle parses a whole bundle held in memory, as BundleReader.
StatusOr<Bundle> ParseBundle(ByteSpan data);

// What a verified bundle shows.
struct BundleSummary {
  recorder::SessionInfo session;  // from session_start and session_end
  uint64_t items = 0;             // entries in the bundle: chunks + 2
  uint64_t first_entry = 0;       // log index of session_start
  uint64_t last_entry = 0;        // log index of session_end
  std::string origin;             // the checkpoint's
  uint64_t checkpoint_size = 0;
  merkle::Hash root{};
};

// VerifyBundle checks a bundle against the log's key, offline, in one pass
// (docs/recording-format.md §9.3):
//   1. the bundle's KEY is the given key, and the CHECKPOINT is signed by it
//      with the key's name as origin;
//   2. every PROOF carries that checkpoint, has an index below its size,
//      indexes strictly increase, and the inclusion proof of SHA-256(0x00 ||
//      ENTRY) verifies against its root;
//   3. every ENTRY parses, and they are, in order: a session_start, the
//      session's chunks 0, 1, ..., n-1 (each decoding, times never going
//      back), and a session_end of the same session counting n chunks.
// Unauthenticated for a wrong key or signature, kDataLoss for evidence that
// does not hold (naming the item and its log index), kInvalidArgument for a
// malformed bundle.
StatusOr<BundleSummary> VerifyBundle(BundleReader* reader, const note::Verifier& key);
StatusOr<BundleSummary> VerifyBundleFile(Env* env, const std::string& path,
                                         const note::Verifier& key);
StatusOr<BundleSummary> VerifyBundleBytes(ByteSpan data, const note::Verifier& key);

// "session ID (USER as LOGIN@TARGET, START UTC, exit 0): session_start, N
// chunks and session_end, log entries A..B, proven against checkpoint ORIGIN
// size S", escaped for the terminal.
std::string FormatBundleSummary(const BundleSummary& s);

// What WriteSessionBundle wrote.
struct BundleExport {
  std::string vkey;  // the store's key, as written in the bundle
  uint64_t items = 0;
  uint64_t chunks = 0;
  uint64_t checkpoint_size = 0;
  uint64_t bytes = 0;
};

// WriteSessionBundle writes the bundle of the session `session_id` (a full
// id) from the store at store_dir to sink, reading the store once,
// sequentially. It proves the entries against the store's latest checkpoint
// (which it verifies with the store's own key) and checks every proof before
// writing it. Resent chunks (same index, same body) appear once; the first
// copy of each is used. kNotFound if the session has no session_start in the
// checkpointed log; kFailedPrecondition if the store has no checkpoint or the
// session's session_end is not covered by it yet (or it has not ended);
// kDataLoss if the stored session is not complete and in order (the message
// names the entry). On error the sink may have received part of a bundle.
StatusOr<BundleExport> WriteSessionBundle(Env* env, const std::string& store_dir,
                                          const std::string& session_id,
                                          const BundleWriter::Sink& sink);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_BUNDLE_H_
