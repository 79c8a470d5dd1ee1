// Evidence bundles: the format (BundleWriter, BundleReader), the offline
// verifier and the exporter from a store. docs/recording-format.md §9 is the
// specification.
#include "cli/bundle.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/crypto/crypto.h"
#include "store/format.h"
#include "store/merkle/proof.h"
#include "store/note/checkpoint.h"
#include "store/note/note.h"
#include "store/reader.h"
#include "store/scanner.h"
#include "store/segments.h"

namespace jitgate::cli {
namespace {

const char* SectionName(BundleSection t) {
  switch (t) {
    case BundleSection::kKey:
      return "KEY";
    case BundleSection::kCheckpoint:
      return "CHECKPOINT";
    case BundleSection::kEntry:
      return "ENTRY";
    case BundleSection::kProof:
      return "PROOF";
  }
  return "?";
}

std::string At(uint64_t offset) { return "bundle offset " + std::to_string(offset); }

std::string Item(uint64_t item, uint64_t log_index) {
  return "item " + std::to_string(item) + " (log entry " + std::to_string(log_index) + ")";
}

// The structural rules of each section body (shared by writer and reader, so
// that the writer never emits what the reader refuses).
Status CheckKey(std::string_view vkey) {
  StatusOr<note::Verifier> v = note::Verifier::Parse(vkey);
  if (!v.ok()) return v.status().WithContext("KEY");
  return OkStatus();
}

Status CheckCheckpoint(std::string_view text) {
  StatusOr<note::Note> n = note::ParseNote(text);
  if (!n.ok()) return n.status().WithContext("CHECKPOINT");
  StatusOr<note::Checkpoint> cp = note::ParseCheckpointBody(n->text);
  if (!cp.ok()) return cp.status().WithContext("CHECKPOINT");
  return OkStatus();
}

Status CheckEntry(ByteSpan entry) {
  StatusOr<store::Entry> e = store::ParseEntry(entry);
  if (!e.ok()) return e.status().WithContext("ENTRY");
  return OkStatus();
}

Status CheckProof(const note::TlogProof& p, std::string_view checkpoint) {
  if (p.extra) return InvalidArgumentError("PROOF has an extra line");
  if (p.checkpoint != checkpoint) {
    return InvalidArgumentError("PROOF carries another checkpoint than the bundle's");
  }
  return OkStatus();
}

// A RandomAccessFile over bytes in memory (ParseBundle, VerifyBundleBytes).
class SpanFile final : public RandomAccessFile {
 public:
  explicit SpanFile(ByteSpan data) : data_(data) {}
  StatusOr<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset >= data_.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), data_.size() - offset);
    std::memcpy(out.data(), data_.data() + offset, n);
    return n;
  }
  StatusOr<uint64_t> Size() const override { return uint64_t(data_.size()); }

 private:
  ByteSpan data_;
};

bool IsAuditEvent(const store::Entry& e) {
  return e.type == uint8_t(store::EntryType::kAuditEvent);
}
bool IsChunk(const store::Entry& e) {
  return e.type == uint8_t(store::EntryType::kTranscriptChunk);
}

enum class EventType { kOther, kStart, kEnd };

// The "type" of an audit event body, without judging the rest of it.
EventType SessionEventType(std::string_view json) {
  // The writer spells the type literally; most audit events are not sessions'.
  if (json.find("session_") == std::string_view::npos) return EventType::kOther;
  const nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return EventType::kOther;
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) return EventType::kOther;
  if (*t == "session_start") return EventType::kStart;
  if (*t == "session_end") return EventType::kEnd;
  return EventType::kOther;
}

// Calls fn(index, entry) for every entry of the store below limit, in order,
// reading the segments sequentially.
Status ForEachStoreEntry(Env* env, const std::string& dir, uint64_t limit,
                         const std::function<Status(uint64_t, ByteSpan)>& fn) {
  ASSIGN_OR_RETURN(std::vector<store::SegmentInfo> segs, store::ListSegments(env, dir));
  uint64_t entry = 0;
  for (const store::SegmentInfo& seg : segs) {
    if (entry >= limit) break;
    if (seg.header.first_entry != entry) {
      return DataLossError(store::Where(seg.number, 0) +
                           ": the header says the segment starts at entry " +
                           std::to_string(seg.header.first_entry) + ", but " +
                           std::to_string(entry) + " entries precede it; run jitgate verify");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(seg.path));
    ASSIGN_OR_RETURN(uint64_t size, file->Size());
    store::SegmentScanner scanner(file.get(), size);
    store::ScannedRecord rec;
    while (entry < limit) {
      ASSIGN_OR_RETURN(bool got, scanner.Next(&rec));
      if (!got) break;
      if (rec.type != store::RecordType::kEntry) continue;
      RETURN_IF_ERROR(fn(entry, rec.payload));
      ++entry;
    }
  }
  if (entry < limit) {
    return DataLossError("the store's segments hold " + std::to_string(entry) +
                         " entries, fewer than its checkpoint's " + std::to_string(limit) +
                         "; run jitgate verify");
  }
  return OkStatus();
}

// Picks a session's entries out of the store's, in log order, as a bundle
// holds them (docs/recording-format.md §9.2): the first session_start, the
// first copy of each chunk, the first session_end. Identical resends are
// skipped; anything out of order or contradictory is kDataLoss naming the
// entry. Each entry taken goes to `emit`.
class SessionEntries {
 public:
  using Emit = std::function<Status(uint64_t index, ByteSpan entry)>;
  SessionEntries(std::string id, Emit emit) : id_(std::move(id)), emit_(std::move(emit)) {}

  // One store entry, in log order.
  Status Take(uint64_t index, ByteSpan raw) {
    StatusOr<store::Entry> e = store::ParseEntry(raw);
    if (!e.ok()) return OkStatus();  // not the session's; jitgate verify reports it
    if (IsAuditEvent(*e)) return TakeEvent(index, raw, *e);
    if (!IsChunk(*e)) return OkStatus();
    StatusOr<recorder::ChunkHeader> h = recorder::DecodeChunkHeader(e->body);
    if (!h.ok() || h->session != id_) return OkStatus();
    const std::string where = Name(index) + ": chunk " + std::to_string(h->index);
    const merkle::Hash body_hash = crypto::Sha256(e->body);
    if (h->index < chunk_hashes_.size()) {
      if (body_hash != chunk_hashes_[h->index]) {
        return DataLossError(where + " differs from its first copy");
      }
      return OkStatus();  // an identical resend
    }
    if (!have_start_) return DataLossError(where + " comes before session_start");
    if (have_end_) return DataLossError(where + " comes after session_end");
    if (h->index != chunk_hashes_.size()) {
      return DataLossError(where + " where chunk " + std::to_string(chunk_hashes_.size()) +
                           " belongs");
    }
    chunk_hashes_.push_back(body_hash);
    return emit_(index, raw);
  }

  // After the last entry of a log of `size` entries.
  Status Finish(uint64_t size) const {
    if (!have_start_) {
      return NotFoundError("session " + id_ + " has no session_start among the " +
                           std::to_string(size) + " entries of the latest checkpoint");
    }
    if (!have_end_) {
      return FailedPreconditionError(
          "session " + id_ + " (from entry " + std::to_string(start_entry_) +
          ") has no session_end among the " + std::to_string(size) +
          " entries of the latest checkpoint; a bundle proves a complete session (if it has "
          "just ended, try again in a moment)");
    }
    return OkStatus();
  }

  uint64_t chunks() const { return chunk_hashes_.size(); }

 private:
  static std::string Name(uint64_t index) { return "entry " + std::to_string(index); }

  Status TakeEvent(uint64_t index, ByteSpan raw, const store::Entry& e) {
    const EventType t = SessionEventType(AsChars(e.body));
    if (t == EventType::kOther) return OkStatus();
    recorder::SessionInfo ev;
    ev.id = id_;  // another session's event does not apply
    if (!recorder::ApplySessionEvent(AsChars(e.body), &ev).ok()) return OkStatus();
    const merkle::Hash body_hash = crypto::Sha256(e.body);
    const std::string where = Name(index) + ": " +
                              (t == EventType::kStart ? "session_start" : "session_end") +
                              " of session " + id_;
    if (t == EventType::kStart) {
      if (have_start_) {
        if (body_hash == start_hash_) return OkStatus();  // a resend
        return DataLossError(where + " differs from the one at " + Name(start_entry_));
      }
      if (!chunk_hashes_.empty() || have_end_) {
        return DataLossError(where + " comes after its chunks or session_end");
      }
      have_start_ = true;
      start_entry_ = index;
      start_hash_ = body_hash;
      return emit_(index, raw);
    }
    if (have_end_) {
      if (body_hash == end_hash_) return OkStatus();  // a resend
      return DataLossError(where + " differs from an earlier one");
    }
    if (!have_start_) return DataLossError(where + " comes before its session_start");
    if (ev.chunks != chunk_hashes_.size()) {
      return DataLossError(where + " counts " + std::to_string(ev.chunks) +
                           " chunks, the store holds " + std::to_string(chunk_hashes_.size()) +
                           " before it");
    }
    have_end_ = true;
    end_hash_ = body_hash;
    return emit_(index, raw);
  }

  std::string id_;
  Emit emit_;
  bool have_start_ = false, have_end_ = false;
  uint64_t start_entry_ = 0;
  // Body hashes of what was taken, to tell a resend from a conflicting copy.
  merkle::Hash start_hash_{}, end_hash_{};
  std::vector<merkle::Hash> chunk_hashes_;  // by chunk index
};

}  // namespace

// --- writing -------------------------------------------------------------------

Status BundleWriter::Section(BundleSection type, ByteSpan body) {
  uint8_t header[kBundleSectionHeaderSize];
  header[0] = uint8_t(type);
  StoreU32BE(header + 1, uint32_t(body.size()));
  RETURN_IF_ERROR(sink_(ByteSpan(header, sizeof(header))));
  RETURN_IF_ERROR(sink_(body));
  bytes_ += sizeof(header) + body.size();
  return OkStatus();
}

Status BundleWriter::Begin(std::string_view vkey, std::string_view checkpoint) {
  if (begun_) return FailedPreconditionError("bundle already begun");
  if (vkey.size() > kMaxBundleKey) return InvalidArgumentError("KEY is over its cap");
  if (checkpoint.size() > kMaxBundleCheckpoint) {
    return InvalidArgumentError("CHECKPOINT is over its cap");
  }
  RETURN_IF_ERROR(CheckKey(vkey));
  RETURN_IF_ERROR(CheckCheckpoint(checkpoint));
  begun_ = true;
  checkpoint_ = std::string(checkpoint);
  RETURN_IF_ERROR(sink_(ByteSpan(kBundleMagic, sizeof(kBundleMagic))));
  bytes_ += sizeof(kBundleMagic);
  RETURN_IF_ERROR(Section(BundleSection::kKey, AsBytes(vkey)));
  return Section(BundleSection::kCheckpoint, AsBytes(checkpoint));
}

Status BundleWriter::Add(ByteSpan entry, const note::TlogProof& proof) {
  if (!begun_) return FailedPreconditionError("bundle not begun");
  if (items_ >= kMaxBundleItems) return InvalidArgumentError("too many entries for one bundle");
  if (entry.size() > kMaxBundleEntry) return InvalidArgumentError("ENTRY is over its cap");
  RETURN_IF_ERROR(CheckEntry(entry));
  RETURN_IF_ERROR(CheckProof(proof, checkpoint_));
  if (proof.path.size() > note::kMaxTlogProofPath) {
    return InvalidArgumentError("PROOF path is too long");
  }
  const std::string text = note::FormatTlogProof(proof);
  if (text.size() > kMaxBundleProof) return InvalidArgumentError("PROOF is over its cap");
  RETURN_IF_ERROR(Section(BundleSection::kEntry, entry));
  RETURN_IF_ERROR(Section(BundleSection::kProof, AsBytes(text)));
  ++items_;
  return OkStatus();
}

StatusOr<Bytes> EncodeBundle(const Bundle& b) {
  if (b.items.empty()) return InvalidArgumentError("a bundle needs at least one entry");
  Bytes out;
  BundleWriter w([&out](ByteSpan data) {
    out.insert(out.end(), data.begin(), data.end());
    return OkStatus();
  });
  RETURN_IF_ERROR(w.Begin(b.vkey, b.checkpoint));
  for (const BundleItem& item : b.items) RETURN_IF_ERROR(w.Add(item.entry, item.proof));
  return out;
}

// --- reading -------------------------------------------------------------------

Status BundleReader::ReadExact(size_t n, uint8_t* out) {
  if (size_ - pos_ < n) {
    return InvalidArgumentError(At(pos_) + ": truncated (" + std::to_string(n) + " bytes wanted, " +
                                std::to_string(size_ - pos_) + " left)");
  }
  size_t done = 0;
  while (done < n) {
    ASSIGN_OR_RETURN(size_t got,
                     file_->Read(pos_ + done, std::span<uint8_t>(out + done, n - done)));
    if (got == 0) return DataLossError(At(pos_ + done) + ": the file ended early while reading");
    done += got;
  }
  pos_ += n;
  return OkStatus();
}

Status BundleReader::ReadSection(BundleSection want, size_t cap, Bytes* body) {
  const uint64_t start = pos_;
  uint8_t header[kBundleSectionHeaderSize];
  RETURN_IF_ERROR(ReadExact(sizeof(header), header));
  ByteReader r(ByteSpan(header, sizeof(header)));
  uint8_t type = 0;
  uint32_t length = 0;
  if (!r.GetU8(&type) || !r.GetU32(&length)) return InternalError("section header");
  if (type != uint8_t(want)) {
    return InvalidArgumentError(At(start) + ": section type " + std::to_string(type) + ", want " +
                                std::to_string(uint8_t(want)) + " (" + SectionName(want) + ")");
  }
  // The cap and what remains are checked before anything is allocated.
  if (length > cap) {
    return InvalidArgumentError(At(start) + ": " + SectionName(want) + " section of " +
                                std::to_string(length) + " bytes, over its " + std::to_string(cap) +
                                "-byte cap");
  }
  if (length > size_ - pos_) {
    return InvalidArgumentError(At(start) + ": " + SectionName(want) + " section of " +
                                std::to_string(length) + " bytes, but only " +
                                std::to_string(size_ - pos_) + " remain");
  }
  body->resize(length);
  return ReadExact(length, body->data());
}

Status BundleReader::ReadHeader() {
  if (header_done_) return FailedPreconditionError("bundle header already read");
  uint8_t magic[sizeof(kBundleMagic)];
  if (size_ < sizeof(magic)) return InvalidArgumentError("not an evidence bundle: too short");
  RETURN_IF_ERROR(ReadExact(sizeof(magic), magic));
  if (std::memcmp(magic, kBundleMagic, 6) != 0) {
    return InvalidArgumentError("not an evidence bundle: bad magic");
  }
  if (std::memcmp(magic, kBundleMagic, sizeof(magic)) != 0) {
    return InvalidArgumentError("evidence bundle version " +
                                std::to_string(magic[6] * 256 + magic[7]) +
                                " is not supported (want 1)");
  }
  Bytes body;
  uint64_t at = pos_;
  RETURN_IF_ERROR(ReadSection(BundleSection::kKey, kMaxBundleKey, &body));
  vkey_.assign(AsChars(body));
  if (Status s = CheckKey(vkey_); !s.ok()) return s.WithContext(At(at));
  at = pos_;
  RETURN_IF_ERROR(ReadSection(BundleSection::kCheckpoint, kMaxBundleCheckpoint, &body));
  checkpoint_.assign(AsChars(body));
  if (Status s = CheckCheckpoint(checkpoint_); !s.ok()) return s.WithContext(At(at));
  header_done_ = true;
  return OkStatus();
}

StatusOr<bool> BundleReader::Next(BundleItem* item) {
  if (!header_done_) return FailedPreconditionError("bundle header not read");
  if (pos_ == size_) {
    if (items_ == 0) return InvalidArgumentError(At(pos_) + ": the bundle holds no entry");
    return false;
  }
  if (items_ >= kMaxBundleItems) {
    return InvalidArgumentError(At(pos_) + ": more than " + std::to_string(kMaxBundleItems) +
                                " entries");
  }
  uint64_t at = pos_;
  RETURN_IF_ERROR(ReadSection(BundleSection::kEntry, kMaxBundleEntry, &item->entry));
  if (Status s = CheckEntry(item->entry); !s.ok()) return s.WithContext(At(at));
  at = pos_;
  Bytes text;
  RETURN_IF_ERROR(ReadSection(BundleSection::kProof, kMaxBundleProof, &text));
  StatusOr<note::TlogProof> proof = note::ParseTlogProof(AsChars(text));
  if (!proof.ok()) return proof.status().WithContext(At(at) + ": PROOF");
  if (Status s = CheckProof(*proof, checkpoint_); !s.ok()) return s.WithContext(At(at));
  item->proof = std::move(proof).value();
  ++items_;
  return true;
}

StatusOr<Bundle> ParseBundle(ByteSpan data) {
  SpanFile file(data);
  BundleReader r(&file, data.size());
  RETURN_IF_ERROR(r.ReadHeader());
  Bundle b;
  b.vkey = r.vkey();
  b.checkpoint = r.checkpoint();
  for (;;) {
    BundleItem item;
    ASSIGN_OR_RETURN(bool more, r.Next(&item));
    if (!more) break;
    b.items.push_back(std::move(item));
  }
  return b;
}

// --- verifying -----------------------------------------------------------------

StatusOr<BundleSummary> VerifyBundle(BundleReader* reader, const note::Verifier& key) {
  RETURN_IF_ERROR(reader->ReadHeader());
  // 1. The key the auditor trusts, and the checkpoint it signed.
  StatusOr<note::Verifier> bundled = note::Verifier::Parse(reader->vkey());
  if (!bundled.ok()) return bundled.status().WithContext("KEY");
  if (!(*bundled == key)) {
    return UnauthenticatedError("the bundle is for the key " + EscapeForTerminal(reader->vkey()) +
                                ", not the given key " + key.Encode());
  }
  StatusOr<note::Checkpoint> cp = note::OpenCheckpoint(reader->checkpoint(), key, key.name());
  if (!cp.ok()) return cp.status().WithContext("checkpoint");

  BundleSummary sum;
  sum.origin = cp->origin;
  sum.checkpoint_size = cp->size;
  sum.root = cp->root;

  // 2 and 3, one item at a time.
  bool have_start = false, have_end = false;
  uint64_t next_chunk = 0;
  int64_t last_time = 0;
  uint64_t prev_index = 0;
  BundleItem item;
  for (uint64_t i = 0;; ++i) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&item));
    if (!more) break;
    const uint64_t index = item.proof.index;
    const std::string where = Item(i, index);
    if (index >= cp->size) {
      return DataLossError(where + ": index is not below the checkpoint's size " +
                           std::to_string(cp->size));
    }
    if (i > 0 && index <= prev_index) {
      return DataLossError(where +
                           ": entries are not in log order (the previous item is log entry " +
                           std::to_string(prev_index) + ")");
    }
    prev_index = index;
    const merkle::Hash leaf = merkle::HashLeaf(item.entry);
    std::vector<Bytes> path;
    path.reserve(item.proof.path.size());
    for (const auto& h : item.proof.path) path.emplace_back(h.begin(), h.end());
    if (Status s = merkle::VerifyInclusion(index, cp->size, leaf, path, cp->root); !s.ok()) {
      return DataLossError(
          where + ": inclusion proof does not verify against the checkpoint: " + s.message());
    }

    // The entry is in the log; now what it says.
    StatusOr<store::Entry> e = store::ParseEntry(item.entry);
    if (!e.ok()) return DataLossError(where + ": " + e.status().message());
    if (have_end) return DataLossError(where + ": an entry after session_end");
    if (!have_start) {
      if (!IsAuditEvent(*e) || SessionEventType(AsChars(e->body)) != EventType::kStart) {
        return DataLossError(where + ": the first entry is not a session_start event");
      }
      if (Status s = recorder::ApplySessionEvent(AsChars(e->body), &sum.session); !s.ok()) {
        return DataLossError(where + ": session_start: " + s.message());
      }
      have_start = true;
      sum.first_entry = index;
      continue;
    }
    const std::string& id = sum.session.id;
    if (IsChunk(*e)) {
      StatusOr<recorder::Chunk> c = recorder::DecodeChunk(e->body);
      if (!c.ok()) return DataLossError(where + ": chunk: " + c.status().message());
      if (c->session != id) {
        return DataLossError(where + ": a chunk of session " + EscapeForTerminal(c->session) +
                             ", not " + id);
      }
      if (c->index != next_chunk) {
        return DataLossError(where + ": chunk " + std::to_string(c->index) + " where chunk " +
                             std::to_string(next_chunk) +
                             " belongs (missing, repeated or reordered chunks)");
      }
      if (c->records.front().time_ns < last_time) {
        return DataLossError(where + ": chunk " + std::to_string(c->index) +
                             " starts before the previous chunk's last record");
      }
      last_time = c->records.back().time_ns;
      ++next_chunk;
      continue;
    }
    if (IsAuditEvent(*e) && SessionEventType(AsChars(e->body)) == EventType::kEnd) {
      recorder::SessionInfo end;
      end.id = id;
      if (Status s = recorder::ApplySessionEvent(AsChars(e->body), &end); !s.ok()) {
        return DataLossError(where + ": session_end: " + s.message());
      }
      if (end.chunks != next_chunk) {
        return DataLossError(where + ": session_end counts " + std::to_string(end.chunks) +
                             " chunks, the bundle holds " + std::to_string(next_chunk));
      }
      if (Status s = recorder::ApplySessionEvent(AsChars(e->body), &sum.session); !s.ok()) {
        return DataLossError(where + ": session_end: " + s.message());
      }
      have_end = true;
      sum.last_entry = index;
      continue;
    }
    return DataLossError(where + ": neither a chunk nor the session_end of session " + id);
  }
  if (!have_end) {
    return DataLossError("the bundle ends without session_end (after " +
                         std::to_string(reader->items()) + " entries)");
  }
  sum.items = reader->items();
  return sum;
}

StatusOr<BundleSummary> VerifyBundleFile(Env* env, const std::string& path,
                                         const note::Verifier& key) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  BundleReader reader(file.get(), size);
  return VerifyBundle(&reader, key);
}

StatusOr<BundleSummary> VerifyBundleBytes(ByteSpan data, const note::Verifier& key) {
  SpanFile file(data);
  BundleReader reader(&file, data.size());
  return VerifyBundle(&reader, key);
}

std::string FormatBundleSummary(const BundleSummary& s) {
  const recorder::SessionInfo& i = s.session;
  std::string end;
  if (!i.exit_signal.empty()) {
    end = "signal " + EscapeForTerminal(i.exit_signal);
  } else if (i.exit_status >= 0) {
    end = "exit " + std::to_string(i.exit_status);
  } else {
    end = "exit status unknown";
  }
  const uint64_t chunks = s.items >= 2 ? s.items - 2 : 0;
  return "session " + EscapeForTerminal(i.id) + " (" + EscapeForTerminal(i.user) + " as " +
         EscapeForTerminal(i.login) + "@" + EscapeForTerminal(i.target) + ", " +
         FormatRfc3339Nanos(i.start_unix_nanos) + ", " + end + "): session_start, " +
         std::to_string(chunks) + (chunks == 1 ? " chunk" : " chunks") +
         " and session_end, log entries " + std::to_string(s.first_entry) + ".." +
         std::to_string(s.last_entry) + ", proven against checkpoint " +
         EscapeForTerminal(s.origin) + " size " + std::to_string(s.checkpoint_size);
}

// --- exporting -----------------------------------------------------------------

StatusOr<BundleExport> WriteSessionBundle(Env* env, const std::string& store_dir,
                                          const std::string& session_id,
                                          const BundleWriter::Sink& sink) {
  ASSIGN_OR_RETURN(std::unique_ptr<store::StoreReader> reader,
                   store::StoreReader::Open(store_dir, env));
  const std::string& checkpoint = reader->latest_checkpoint();
  if (checkpoint.empty()) return FailedPreconditionError("the store has no checkpoint yet");
  StatusOr<note::Verifier> key = note::Verifier::Parse(reader->identity().vkey);
  if (!key.ok()) return key.status().WithContext("the store's key");
  // The store's own key: a bundle is only written against a checkpoint that
  // verifies, and every proof is checked against its root before it is used.
  StatusOr<note::Checkpoint> cp = note::OpenCheckpoint(checkpoint, *key, reader->identity().origin);
  if (!cp.ok()) return cp.status().WithContext("the store's latest checkpoint");
  const uint64_t size = cp->size;

  BundleWriter writer(sink);
  RETURN_IF_ERROR(writer.Begin(reader->identity().vkey, checkpoint));
  BundleExport out;
  out.vkey = reader->identity().vkey;
  out.checkpoint_size = size;

  auto add = [&](uint64_t index, ByteSpan entry) -> Status {
    ASSIGN_OR_RETURN(std::vector<merkle::Hash> path, reader->InclusionProof(index, size));
    const merkle::Hash leaf = merkle::HashLeaf(entry);
    Status check = merkle::VerifyInclusion(index, size, leaf, merkle::ProofBytes(path), cp->root);
    if (!check.ok()) {
      return DataLossError("the tree index produced a proof for entry " + std::to_string(index) +
                           " that does not verify (" + check.message() + "); run jitgate verify");
    }
    note::TlogProof proof;
    proof.index = index;
    proof.path.assign(path.begin(), path.end());
    proof.checkpoint = checkpoint;
    return writer.Add(entry, proof);
  };

  SessionEntries entries(session_id, add);
  Status scanned = ForEachStoreEntry(
      env, store_dir, size, [&](uint64_t index, ByteSpan raw) { return entries.Take(index, raw); });
  if (!scanned.ok()) return scanned.WithContext("session " + session_id);
  RETURN_IF_ERROR(entries.Finish(size));
  out.items = writer.items();
  out.chunks = entries.chunks();
  out.bytes = writer.bytes();
  return out;
}

}  // namespace jitgate::cli
