#include "store/verify.h"

#include <cstring>

#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/merkle/compact_range.h"
#include "store/note/checkpoint.h"
#include "store/scanner.h"
#include "store/segments.h"

namespace jitgate::store {

namespace {

// Reads tree.nodes sequentially, 32 bytes at a time, through a buffer.
class NodeStream {
 public:
  NodeStream(std::unique_ptr<RandomAccessFile> file, uint64_t size, size_t buffer_size)
      : file_(std::move(file)), size_(size), buf_(buffer_size / 32 * 32) {}
  // Returns false at the end of the index.
  StatusOr<bool> Next(merkle::Hash* out) {
    if (file_ == nullptr) return false;
    if (pos_ == len_) {
      uint64_t left = size_ - (offset_);
      size_t want = size_t(std::min<uint64_t>(buf_.size(), left / 32 * 32));
      if (want == 0) return false;
      ASSIGN_OR_RETURN(size_t n, file_->Read(offset_, std::span<uint8_t>(buf_.data(), want)));
      n = n / 32 * 32;
      if (n == 0) return false;
      offset_ += n;
      len_ = n;
      pos_ = 0;
    }
    std::memcpy(out->data(), buf_.data() + pos_, 32);
    pos_ += 32;
    ++index_;
    return true;
  }
  uint64_t consumed() const { return index_; }

 private:
  std::unique_ptr<RandomAccessFile> file_;
  uint64_t size_;
  std::vector<uint8_t> buf_;
  uint64_t offset_ = 0;
  size_t pos_ = 0, len_ = 0;
  uint64_t index_ = 0;
};

std::string B64(const merkle::Hash& h) { return crypto::Base64Encode(h); }

}  // namespace

StatusOr<note::Checkpoint> CheckCheckpointRecord(ByteSpan payload, const note::Verifier& key,
                                                 const std::string& origin, uint64_t count,
                                                 const merkle::Hash& root, int64_t last_size,
                                                 const std::string& what) {
  StatusOr<note::Checkpoint> cp = note::OpenCheckpoint(AsChars(payload), key, origin);
  if (!cp.ok()) return DataLossError(what + ": " + cp.status().message());
  if (cp->size != count) {
    return DataLossError(what + ": claims size " + std::to_string(cp->size) + " but " +
                         std::to_string(count) + " entries precede it");
  }
  if (int64_t(cp->size) <= last_size) {
    return DataLossError(what + ": repeats size " + std::to_string(cp->size));
  }
  if (cp->root != root) {
    return DataLossError(what + ": signed root " + B64(cp->root) + " does not match the entries (" +
                         B64(root) + "): an entry in " +
                         std::to_string(last_size < 0 ? 0 : last_size) + ".." +
                         std::to_string(count == 0 ? 0 : count - 1) +
                         " was altered, removed or reordered");
  }
  return cp;
}

std::string VerifyReport::Summary() const {
  if (!status.ok()) return "FAILED: " + status.message();
  std::string s = "intact: " + std::to_string(entries) + " entries, " +
                  std::to_string(checkpoints) + " checkpoints, " + std::to_string(segments) +
                  " segments, " + std::to_string(bytes) + " bytes; latest checkpoint size " +
                  std::to_string(latest_checkpoint_size) + "; root " + B64(root);
  if (saved_checkpoint_size) {
    s += "; append-only extension of the saved checkpoint (size " +
         std::to_string(*saved_checkpoint_size) + ")";
  }
  if (torn_tail_bytes > 0) s += "; " + std::to_string(torn_tail_bytes) + " bytes of torn tail";
  return s;
}

VerifyReport VerifyStore(const std::string& dir, const note::Verifier& key,
                         const VerifyOptions& options) {
  VerifyReport rep;
  Env* env = options.env ? options.env : DefaultEnv();
  auto fail = [&rep](Status s) -> VerifyReport& {
    rep.status = s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kNotFound
                     ? DataLossError(s.message())
                     : s;
    return rep;
  };

  StatusOr<std::string> id_text = env->ReadFileToString(JoinPath(dir, kIdentityFile), 64 * 1024);
  if (!id_text.ok()) return fail(DataLossError("STORE file: " + id_text.status().message()));
  StatusOr<StoreIdentity> id = ParseIdentity(*id_text);
  if (!id.ok()) return fail(DataLossError(id.status().message()));
  const std::string& origin = id->origin;
  if (origin != key.name()) {
    return fail(DataLossError("store origin '" + origin + "' is not the key's name '" +
                              key.name() + "'"));
  }

  if (id->vkey != key.Encode()) {
    return fail(DataLossError("STORE file names the log key " + id->vkey +
                              ", but the store is being verified with " + key.Encode()));
  }

  std::optional<note::Checkpoint> saved;
  bool saved_found = false;
  if (options.saved_checkpoint) {
    StatusOr<note::Checkpoint> cp = note::OpenCheckpoint(*options.saved_checkpoint, key, origin);
    if (!cp.ok()) {
      return fail(InvalidArgumentError("saved checkpoint does not verify with the key: " +
                                       cp.status().message()));
    }
    saved = *cp;
  }

  StatusOr<std::vector<SegmentInfo>> segs = ListSegments(env, dir);
  if (!segs.ok()) return fail(segs.status());
  if (segs->empty()) return fail(DataLossError("the store has no segments"));
  rep.segments = segs->size();

  std::string nodes_path = JoinPath(dir, kNodesFile);
  std::unique_ptr<RandomAccessFile> nodes_file;
  uint64_t nodes_size = 0;
  if (env->FileExists(nodes_path)) {
    StatusOr<std::unique_ptr<RandomAccessFile>> f = env->NewRandomAccessFile(nodes_path);
    if (!f.ok()) return fail(f.status());
    nodes_file = std::move(f).value();
    StatusOr<uint64_t> sz = nodes_file->Size();
    if (!sz.ok()) return fail(sz.status());
    nodes_size = *sz;
  } else {
    rep.notes.push_back("tree index tree.nodes is missing");
  }
  if (nodes_size % 32 != 0) {
    rep.notes.push_back("tree index has a partial node at its end");
  }
  NodeStream node_stream(std::move(nodes_file), nodes_size, options.buffer_size);
  uint64_t node_pos = 0;
  bool index_ended = false;
  Status node_error;

  merkle::CompactRange range;
  uint64_t count = 0;
  int64_t last_cp_size = -1;
  bool saved_checked = false;
  auto check_saved = [&]() {
    if (saved && !saved_checked && count == saved->size) {
      saved_checked = true;
      if (range.Root() != saved->root) {
        return DataLossError(
            "the store is not an append-only extension of the saved checkpoint: its root at "
            "size " + std::to_string(saved->size) + " is " + B64(range.Root()) +
            ", the saved checkpoint has " + B64(saved->root));
      }
    }
    return OkStatus();
  };
  if (Status s = check_saved(); !s.ok()) return fail(s);

  std::string torn_where;
  for (size_t i = 0; i < segs->size(); ++i) {
    const SegmentInfo& seg = (*segs)[i];
    const bool last = i + 1 == segs->size();
    if (seg.header.origin != origin) {
      return fail(DataLossError(Where(seg.number, 0) + ": segment origin '" + seg.header.origin +
                                "' is not the store's"));
    }
    if (seg.header.first_entry != count) {
      return fail(DataLossError(Where(seg.number, 0) + ": header says the segment starts at entry " +
                                std::to_string(seg.header.first_entry) + " but " +
                                std::to_string(count) + " entries precede it"));
    }
    if (!last) {
      StatusOr<uint32_t> mode = env->FileMode(seg.path);
      if (mode.ok() && (*mode & 0222) != 0) {
        rep.notes.push_back("sealed segment " + std::to_string(seg.number) + " is writable");
      }
    }
    StatusOr<std::unique_ptr<RandomAccessFile>> file = env->NewRandomAccessFile(seg.path);
    if (!file.ok()) return fail(file.status());
    StatusOr<uint64_t> fsize = (*file)->Size();
    if (!fsize.ok()) return fail(fsize.status());
    SegmentScanner scanner(file->get(), *fsize, options.buffer_size);
    ScannedRecord rec;
    bool first = true;
    while (true) {
      StatusOr<bool> got = scanner.Next(&rec);
      if (!got.ok()) return fail(got.status());
      if (!*got) break;
      if (first) {
        first = false;
        continue;  // the header, checked by ListSegments
      }
      // Built only when a check fails: formatting per record would cost
      // more than the checks themselves.
      auto where = [&seg, offset = rec.offset] { return Where(seg.number, offset); };
      if (rec.type == RecordType::kHeader) {
        return fail(DataLossError(where() + ": unexpected segment header"));
      }
      if (rec.type == RecordType::kEntry) {
        StatusOr<Entry> e = ParseEntry(rec.payload);
        if (!e.ok()) {
          return fail(DataLossError("entry " + std::to_string(count) + " (" + where() + "): " +
                                    e.status().message()));
        }
        merkle::Hash leaf = merkle::HashLeaf(rec.payload);
        rep.entry_bytes += rec.payload.size();
        const uint64_t index = count;
        range.Append(leaf, [&](int level, uint64_t node_index, const merkle::Hash& h) {
          if (index_ended || !node_error.ok()) return;
          merkle::Hash stored;
          StatusOr<bool> more = node_stream.Next(&stored);
          if (!more.ok()) {
            node_error = more.status();
            return;
          }
          if (!*more) {
            index_ended = true;
            return;
          }
          if (stored != h) {
            if (level == 0) {
              node_error = DataLossError(
                  "entry " + std::to_string(index) + " (" + where() +
                  "): its leaf hash differs from the one recorded in the tree index; the entry "
                  "or the index was altered");
            } else {
              node_error = DataLossError("tree index node " + std::to_string(node_pos) +
                                         " (level " + std::to_string(level) + ", index " +
                                         std::to_string(node_index) + ") is wrong");
            }
          }
          ++node_pos;
        });
        if (!node_error.ok()) return fail(node_error);
        ++count;
        if (Status s = check_saved(); !s.ok()) return fail(s);
        continue;
      }
      // A checkpoint.
      const uint64_t cp_number = rep.checkpoints + 1;
      StatusOr<note::Checkpoint> cp = CheckCheckpointRecord(
          rec.payload, key, origin, count, range.Root(), last_cp_size,
          "checkpoint " + std::to_string(cp_number) + " (" + where() + ")");
      if (!cp.ok()) return fail(cp.status());
      if (saved && cp->size == saved->size && cp->root == saved->root) saved_found = true;
      last_cp_size = int64_t(cp->size);
      rep.checkpoints++;
      rep.latest_checkpoint_size = cp->size;
    }
    rep.bytes += *fsize;
    if (scanner.end() == SegmentEnd::kCorrupt) {
      std::string where = Where(seg.number, scanner.valid_length());
      // The type byte is only a hint (the checksum covering it failed).
      std::string what =
          scanner.type_hint() == int(RecordType::kEntry)
              ? "entry " + std::to_string(count) + " (" + where + ")"
              : "the record at " + where + " (entry " + std::to_string(count) +
                    ", or the checkpoint of size " + std::to_string(count) + ")";
      return fail(DataLossError(what + ": damaged record: " + scanner.reason()));
    }
    if (last) {
      if (scanner.end() == SegmentEnd::kTorn) {
        rep.torn_tail_bytes = *fsize - scanner.valid_length();
        rep.notes.push_back("active segment ends with " + std::to_string(rep.torn_tail_bytes) +
                            " bytes of torn tail (an unacknowledged write: crash, or a write in "
                            "progress)");
      }
    } else {
      // A sealed segment's extent is pinned by its successor's header.
      const SegmentHeader& next = (*segs)[i + 1].header;
      if (next.prev_valid_length != scanner.valid_length()) {
        return fail(DataLossError(
            Where(seg.number, scanner.valid_length()) + " (entry " + std::to_string(count) +
            "): the sealed segment's records end here, but its successor records " +
            std::to_string(next.prev_valid_length) +
            " valid bytes: a record was damaged, or the segment truncated or replaced"));
      }
      if (next.prev_file_length != *fsize) {
        return fail(DataLossError(
            Where(seg.number, *fsize) + ": the sealed segment is " + std::to_string(*fsize) +
            " bytes long, but its successor records " + std::to_string(next.prev_file_length) +
            ": it was truncated or extended"));
      }
      rep.skipped_torn_bytes += *fsize - scanner.valid_length();
    }
    if (last && scanner.end() == SegmentEnd::kTorn) {
      torn_where = " (the active segment ends in a torn tail at " +
                   Where(seg.number, scanner.valid_length()) + ", where entry " +
                   std::to_string(count) + " would start)";
    }
  }

  rep.entries = count;
  rep.root = range.Root();
  if (rep.checkpoints == 0) {
    return fail(DataLossError("the store has no checkpoint (the first one is written by init)"));
  }
  // The index must cover at least the latest checkpoint: the writer syncs it
  // before writing a checkpoint.
  uint64_t needed = merkle::PostorderNodeCount(rep.latest_checkpoint_size);
  if (node_pos < needed) {
    return fail(DataLossError("tree index ends at node " + std::to_string(node_pos) +
                              ", before the latest checkpoint (size " +
                              std::to_string(rep.latest_checkpoint_size) +
                              ", " + std::to_string(needed) + " nodes): the index was truncated"));
  }
  if (index_ended) {
    rep.notes.push_back("tree index lacks nodes for the newest entries (rebuilt when the writer "
                        "next opens the store)");
  }
  if (count > rep.latest_checkpoint_size) {
    rep.notes.push_back(std::to_string(count - rep.latest_checkpoint_size) +
                        " entries after the latest checkpoint");
  }
  if (saved) {
    if (saved->size > count) {
      return fail(DataLossError("the store has " + std::to_string(count) +
                                " entries but the saved checkpoint has size " +
                                std::to_string(saved->size) +
                                ": entries were removed (the log was truncated or rolled back)" +
                                torn_where));
    }
    if (!saved_found) {
      return fail(DataLossError("the saved checkpoint (size " + std::to_string(saved->size) +
                                ") is not among the store's checkpoints: checkpoints were "
                                "removed" + torn_where));
    }
    rep.saved_checkpoint_size = saved->size;
  }
  return rep;
}

}  // namespace jitgate::store
