#include "recorder/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>

#include "core/base/clock.h"
#include "core/base/status_macros.h"
#include "core/crypto/crypto.h"
#include "core/wire/client.h"
#include "core/wire/deadline.h"
#include "recorder/recording.h"

namespace jitgate::recorder {
namespace {

Status Errno(const std::string& what) { return ErrnoToStatus(errno, what); }

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status SyncDir(const std::string& dir) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return Errno("opening spool directory " + dir);
  if (::fsync(d.get()) != 0) return Errno("syncing spool directory " + dir);
  return OkStatus();
}

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("writing spool file " + path);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return OkStatus();
}

// Reads exactly out.size() bytes at offset; false at end of file first.
StatusOr<bool> PreadAll(int fd, uint64_t offset, std::span<uint8_t> out,
                        const std::string& label) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got,
                        static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("reading spool file " + label);
    }
    if (n == 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

// True if the file holds only zero bytes from offset to size (what a crash
// leaves when the size reached the disk before the data).
StatusOr<bool> ZerosToEnd(int fd, uint64_t offset, uint64_t size,
                          const std::string& label) {
  uint8_t buf[8192];
  while (offset < size) {
    size_t n =
        static_cast<size_t>(std::min<uint64_t>(sizeof(buf), size - offset));
    ASSIGN_OR_RETURN(bool whole,
                     PreadAll(fd, offset, std::span<uint8_t>(buf, n), label));
    if (!whole) return true;  // shrank meanwhile: nothing more to look at
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] != 0) return false;
    }
    offset += n;
  }
  return true;
}

}  // namespace

StatusOr<std::string> MintSessionId() {
  uint8_t raw[kMintedSessionIdLength];
  RETURN_IF_ERROR(crypto::RandomBytes(raw));
  std::string id;
  for (uint8_t b : raw) id.push_back(kSessionIdAlphabet[b & 31]);
  return id;
}

Bytes SpoolFrameBytes(SpoolFrameType type, ByteSpan payload) {
  Bytes out(kSpoolFrameHeaderSize + payload.size());
  uint8_t* p = out.data();
  StoreU32BE(p + 4, static_cast<uint32_t>(payload.size()));
  p[8] = static_cast<uint8_t>(type);
  if (!payload.empty())
    std::memcpy(p + kSpoolFrameHeaderSize, payload.data(), payload.size());
  StoreU32BE(p, crypto::Crc32c(ByteSpan(p + 4, 5 + payload.size())));
  return out;
}

StatusOr<Bytes> SpoolHeaderPayload(uint64_t first_index,
                                   const wire::OpenSession& meta) {
  if (!IsValidSessionId(meta.session)) {
    return InvalidArgumentError("spool header: invalid session id \"" +
                                meta.session + "\"");
  }
  ByteWriter w;
  w.PutU64(first_index);
  Bytes body;
  RETURN_IF_ERROR(wire::EncodeBody(meta, &body));
  w.PutBytes(body);
  if (w.size() > kMaxSpoolPayload)
    return InvalidArgumentError("spool header: too large");
  return w.Release();
}

// SpoolWriter -----------------------------------------------------------------

StatusOr<std::unique_ptr<SpoolWriter>> SpoolWriter::Create(
    const SpoolWriterOptions& options, const wire::OpenSession& meta) {
  ASSIGN_OR_RETURN(Bytes header, SpoolHeaderPayload(0, meta));
  std::string path = options.dir + "/" + meta.session + kSpoolSuffix;
  UniqueFd fd(
      ::open(path.c_str(),
             O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
             options.file_mode));
  if (!fd) return Errno("creating spool file " + path);
  // The mode is what the caller asked for, whatever the umask.
  if (::fchmod(fd.get(), options.file_mode) != 0)
    return Errno("setting the mode of " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return Errno("locking spool file " + path);
  std::unique_ptr<SpoolWriter> w(new SpoolWriter(options, path, std::move(fd)));
  if (w->options_.clock == nullptr) w->options_.clock = RealClock();
  w->session_ = meta.session;
  w->meta_ = meta;
  Bytes start(kSpoolMagic, kSpoolMagic + kSpoolMagicSize);
  Bytes frame = SpoolFrameBytes(SpoolFrameType::kHeader, header);
  start.insert(start.end(), frame.begin(), frame.end());
  Status s = WriteAll(w->fd_.get(), start, path);
  if (s.ok()) s = w->Sync();
  if (s.ok()) s = SyncDir(options.dir);
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  w->size_ = start.size();
  return w;
}

SpoolWriter::~SpoolWriter() = default;  // closing the fd releases the lock

Status SpoolWriter::Append(SpoolFrameType type, ByteSpan payload,
                           uint64_t* offset) {
  if (!fd_)
    return FailedPreconditionError("spool file " + path_ + " was removed");
  if (closed_)
    return FailedPreconditionError("spool file " + path_ +
                                   " already holds the end");
  if (payload.size() > kMaxSpoolPayload) {
    return InvalidArgumentError("spool frame of " +
                                std::to_string(payload.size()) + " bytes");
  }
  Bytes frame = SpoolFrameBytes(type, payload);
  *offset = size_;
  Status s = WriteAll(fd_.get(), frame, path_);
  if (!s.ok()) {
    // A partial frame would be a torn tail in the middle of the file once
    // more frames follow: cut it off (O_APPEND writes after it otherwise).
    if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) closed_ = true;
    return s;
  }
  if (unsynced_ == 0) unsynced_since_ns_ = options_.clock->MonotonicNanos();
  size_ += frame.size();
  unsynced_ += frame.size();
  return OkStatus();
}

StatusOr<uint64_t> SpoolWriter::AppendChunk(ByteSpan chunk) {
  uint64_t offset = 0;
  RETURN_IF_ERROR(Append(SpoolFrameType::kChunk, chunk, &offset));
  RETURN_IF_ERROR(MaybeSync());
  return offset;
}

Status SpoolWriter::AppendClose(const wire::CloseSession& end) {
  Bytes body;
  RETURN_IF_ERROR(wire::EncodeBody(end, &body));
  uint64_t offset = 0;
  RETURN_IF_ERROR(Append(SpoolFrameType::kClose, body, &offset));
  closed_ = true;
  return Sync();
}

Status SpoolWriter::MaybeSync() {
  if (unsynced_ == 0) return OkStatus();
  if (unsynced_ >= options_.sync_bytes ||
      options_.clock->MonotonicNanos() - unsynced_since_ns_ >=
          options_.sync_interval_ms * 1'000'000) {
    return Sync();
  }
  return OkStatus();
}

Status SpoolWriter::Sync() {
  if (!fd_)
    return FailedPreconditionError("spool file " + path_ + " was removed");
  if (::fdatasync(fd_.get()) != 0) return Errno("syncing spool file " + path_);
  unsynced_ = 0;
  return OkStatus();
}

StatusOr<std::vector<uint64_t>> SpoolWriter::Rewrite(
    uint64_t first_index, const std::vector<uint64_t>& keep) {
  if (!fd_)
    return FailedPreconditionError("spool file " + path_ + " was removed");
  ASSIGN_OR_RETURN(Bytes header, SpoolHeaderPayload(first_index, meta_));
  std::string tmp = options_.dir + "/" + session_ + kSpoolTempSuffix;
  ::unlink(tmp.c_str());  // a leftover of a killed recorder of this session
  UniqueFd out(
      ::open(tmp.c_str(),
             O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
             options_.file_mode));
  if (!out) return Errno("creating spool file " + tmp);
  // Locked before it takes the session's name, so that no forwarder ever
  // sees it unlocked while we live.
  if (::fchmod(out.get(), options_.file_mode) != 0 ||
      ::flock(out.get(), LOCK_EX | LOCK_NB) != 0) {
    Status s = Errno("preparing spool file " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  Bytes data(kSpoolMagic, kSpoolMagic + kSpoolMagicSize);
  Bytes frame = SpoolFrameBytes(SpoolFrameType::kHeader, header);
  data.insert(data.end(), frame.begin(), frame.end());
  std::vector<uint64_t> offsets;
  Status s = OkStatus();
  for (uint64_t at : keep) {
    StatusOr<Bytes> chunk = ReadSpoolChunkAt(fd_.get(), at, path_);
    if (!chunk.ok()) {
      s = chunk.status();
      break;
    }
    offsets.push_back(data.size());
    Bytes f = SpoolFrameBytes(SpoolFrameType::kChunk, *chunk);
    data.insert(data.end(), f.begin(), f.end());
  }
  if (s.ok()) s = WriteAll(out.get(), data, tmp);
  if (s.ok() && ::fdatasync(out.get()) != 0)
    s = Errno("syncing spool file " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path_.c_str()) != 0)
    s = Errno("renaming " + tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  fd_ = std::move(out);  // the old file's lock goes with its last fd
  size_ = data.size();
  unsynced_ = 0;
  RETURN_IF_ERROR(SyncDir(options_.dir));
  return offsets;
}

Status SpoolWriter::Remove() {
  if (!fd_) return OkStatus();
  if (::unlink(path_.c_str()) != 0)
    return Errno("removing spool file " + path_);
  fd_.reset();
  return SyncDir(options_.dir);
}

// SpoolReader -----------------------------------------------------------------

Status SpoolReader::Corrupt(uint64_t at, const std::string& what) {
  return DataLossError("spool file " + label_ + ": offset " +
                       std::to_string(at) + ": " + what);
}

StatusOr<std::optional<std::pair<SpoolFrameType, Bytes>>>
SpoolReader::ReadFrame() {
  const uint64_t at = offset_;
  if (at == size_) return std::nullopt;
  auto torn =
      [&]() -> StatusOr<std::optional<std::pair<SpoolFrameType, Bytes>>> {
    torn_ = size_ - at;
    return std::nullopt;
  };
  if (size_ - at < kSpoolFrameHeaderSize) return torn();
  uint8_t head[kSpoolFrameHeaderSize];
  ASSIGN_OR_RETURN(bool whole, PreadAll(fd_, at, head, label_));
  if (!whole) return torn();
  const uint32_t crc = LoadU32BE(head);
  const uint32_t length = LoadU32BE(head + 4);
  const uint8_t type = head[8];
  auto bad = [&](const std::string& what)
      -> StatusOr<std::optional<std::pair<SpoolFrameType, Bytes>>> {
    ASSIGN_OR_RETURN(bool zeros, ZerosToEnd(fd_, at, size_, label_));
    if (zeros) return torn();
    return Corrupt(at, what);
  };
  // The length is checked against the cap before anything is allocated, and
  // against the file before it is believed to be torn.
  if (length > kMaxSpoolPayload) {
    return bad("frame length " + std::to_string(length) +
               " exceeds the cap of " + std::to_string(kMaxSpoolPayload));
  }
  // Cut short by the end of the file: the frame being written when the
  // writer died.
  if (size_ - at - kSpoolFrameHeaderSize < length) return torn();
  Bytes payload(length);
  ASSIGN_OR_RETURN(whole,
                   PreadAll(fd_, at + kSpoolFrameHeaderSize, payload, label_));
  if (!whole) return torn();
  uint32_t actual = crypto::Crc32c(ByteSpan(head + 4, 5));
  actual = crypto::Crc32cExtend(actual, payload);
  if (actual != crc) return bad("checksum mismatch");
  if (type < static_cast<uint8_t>(SpoolFrameType::kHeader) ||
      type > static_cast<uint8_t>(SpoolFrameType::kClose)) {
    return Corrupt(at, "unknown frame type " + std::to_string(type));
  }
  offset_ = at + kSpoolFrameHeaderSize + length;
  return std::make_optional(
      std::make_pair(static_cast<SpoolFrameType>(type), std::move(payload)));
}

StatusOr<std::unique_ptr<SpoolReader>> SpoolReader::Open(int fd,
                                                         std::string label) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("reading spool file " + label);
  std::unique_ptr<SpoolReader> r(
      new SpoolReader(fd, std::move(label), static_cast<uint64_t>(st.st_size)));
  uint8_t magic[kSpoolMagicSize];
  ASSIGN_OR_RETURN(bool whole, PreadAll(fd, 0, magic, r->label_));
  if (!whole || std::memcmp(magic, kSpoolMagic, kSpoolMagicSize) != 0) {
    return r->Corrupt(0, "not a jitgate spool file (bad magic)");
  }
  r->offset_ = kSpoolMagicSize;
  ASSIGN_OR_RETURN(auto frame, r->ReadFrame());
  if (!frame.has_value())
    return r->Corrupt(kSpoolMagicSize, "no header (the file is cut short)");
  if (frame->first != SpoolFrameType::kHeader) {
    return r->Corrupt(kSpoolMagicSize, "the first frame is not the header");
  }
  ByteReader in(ByteSpan(frame->second));
  uint64_t first_index = 0;
  if (!in.GetU64(&first_index))
    return r->Corrupt(kSpoolMagicSize, "header: no first index");
  StatusOr<wire::Message> m = wire::DecodeMessage(
      static_cast<uint8_t>(wire::MessageType::kOpenSession), in.Rest());
  if (!m.ok())
    return r->Corrupt(kSpoolMagicSize, "header: " + m.status().message());
  r->meta_ = std::get<wire::OpenSession>(*m);
  if (!IsValidSessionId(r->meta_.session)) {
    return r->Corrupt(kSpoolMagicSize, "header: invalid session id \"" +
                                           r->meta_.session + "\"");
  }
  r->first_index_ = first_index;
  r->next_index_ = first_index;
  return r;
}

StatusOr<std::optional<SpoolEntry>> SpoolReader::Next() {
  if (!error_.ok()) return error_;
  if (done_) return std::nullopt;
  const uint64_t at = offset_;
  StatusOr<std::optional<std::pair<SpoolFrameType, Bytes>>> frame = ReadFrame();
  Status s = frame.status();
  if (s.ok() && !frame->has_value()) {
    done_ = true;
    return std::nullopt;
  }
  std::optional<SpoolEntry> out;
  if (s.ok() && closed_) s = Corrupt(at, "a frame after the session's end");
  if (s.ok()) {
    auto& [type, payload] = **frame;
    SpoolEntry e;
    e.type = type;
    e.offset = at;
    if (type == SpoolFrameType::kHeader) {
      s = Corrupt(at, "a second header");
    } else if (type == SpoolFrameType::kChunk) {
      StatusOr<ChunkHeader> h = DecodeChunkHeader(payload);
      if (!h.ok()) {
        s = Corrupt(at, "chunk: " + h.status().message());
      } else if (h->session != meta_.session) {
        s = Corrupt(at, "a chunk of session " + h->session +
                            " in the spool of " + meta_.session);
      } else if (h->index != next_index_) {
        s = Corrupt(at, "chunk " + std::to_string(h->index) + " where chunk " +
                            std::to_string(next_index_) + " belongs");
      } else {
        e.index = next_index_++;
        e.chunk = std::move(payload);
        out = std::move(e);
      }
    } else {
      StatusOr<wire::Message> m = wire::DecodeMessage(
          static_cast<uint8_t>(wire::MessageType::kCloseSession), payload);
      if (!m.ok()) {
        s = Corrupt(at, "end: " + m.status().message());
      } else {
        e.close = std::get<wire::CloseSession>(*m);
        closed_ = true;
        out = std::move(e);
      }
    }
  }
  if (!s.ok()) {
    error_ = s;
    return s;
  }
  return out;
}

StatusOr<Bytes> ReadSpoolChunkAt(int fd, uint64_t offset,
                                 const std::string& label) {
  uint8_t head[kSpoolFrameHeaderSize];
  auto corrupt = [&](const std::string& what) {
    return DataLossError("spool file " + label + ": offset " +
                         std::to_string(offset) + ": " + what);
  };
  ASSIGN_OR_RETURN(bool whole, PreadAll(fd, offset, head, label));
  if (!whole) return corrupt("no frame");
  const uint32_t length = LoadU32BE(head + 4);
  if (length > kMaxSpoolPayload) return corrupt("frame length over the cap");
  if (head[8] != static_cast<uint8_t>(SpoolFrameType::kChunk))
    return corrupt("not a chunk frame");
  Bytes payload(length);
  ASSIGN_OR_RETURN(
      whole, PreadAll(fd, offset + kSpoolFrameHeaderSize, payload, label));
  if (!whole) return corrupt("frame cut short");
  uint32_t actual =
      crypto::Crc32cExtend(crypto::Crc32c(ByteSpan(head + 4, 5)), payload);
  if (actual != LoadU32BE(head)) return corrupt("checksum mismatch");
  return payload;
}

StatusOr<SpoolSize> MeasureSpool(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) {
    if (errno == ENOENT) return SpoolSize{};
    return Errno("reading spool directory " + dir);
  }
  SpoolSize size;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    const bool session = EndsWith(name, kSpoolSuffix);
    if (!session && !EndsWith(name, kSpoolTempSuffix)) continue;
    struct stat st;
    if (::fstatat(::dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (!S_ISREG(st.st_mode)) continue;
    size.bytes += static_cast<uint64_t>(st.st_size);
    if (session) ++size.sessions;
  }
  return size;
}

StatusOr<uint64_t> SpoolUsage(const std::string& dir) {
  ASSIGN_OR_RETURN(SpoolSize size, MeasureSpool(dir));
  return size.bytes;
}

Status ReportSpool(const std::string& socket_path, const std::string& client_name,
                   const std::string& host, const std::string& dir, int64_t timeout_ms) {
  ASSIGN_OR_RETURN(SpoolSize size, MeasureSpool(dir));
  const wire::Deadline deadline = wire::Deadline::InMillis(RealClock(), timeout_ms);
  ASSIGN_OR_RETURN(wire::Client client, wire::Client::Connect(socket_path, deadline, client_name));
  ASSIGN_OR_RETURN(wire::Message m,
                   client.Call(wire::SpoolReport{host, size.sessions, size.bytes}, deadline));
  if (std::holds_alternative<wire::SpoolReportAck>(m)) return OkStatus();
  if (auto* e = std::get_if<wire::Error>(&m)) {
    return PermissionDeniedError("the broker refused the spool report: " + e->message);
  }
  return DataLossError("unexpected " + wire::MessageTypeName(wire::TypeOf(m)) + " from the broker");
}

// Forwarding ------------------------------------------------------------------

namespace {

wire::Deadline In(int64_t ms) {
  return wire::Deadline::InMillis(RealClock(), ms);
}

// Opens path and takes its lock without waiting; nullopt if it is locked or
// no longer the file at path (renamed over or removed since we opened it).
StatusOr<std::optional<UniqueFd>> OpenLocked(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return std::optional<UniqueFd>();
    return Errno("opening spool file " + path);
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<UniqueFd>();
    return Errno("locking spool file " + path);
  }
  struct stat held, now;
  if (::fstat(fd.get(), &held) != 0) return Errno("reading spool file " + path);
  if (::stat(path.c_str(), &now) != 0 || now.st_ino != held.st_ino ||
      now.st_dev != held.st_dev) {
    return std::optional<UniqueFd>();
  }
  if (!S_ISREG(held.st_mode))
    return FailedPreconditionError(path + " is not a regular file");
  return std::optional<UniqueFd>(std::move(fd));
}

// Delivers the session in r through c, from the broker's next_index on.
Status Deliver(wire::Client& c, SpoolReader& r, const ForwardOptions& o,
               uint64_t next, const struct stat& st, ForwardResult* out) {
  uint64_t acked = next;
  uint64_t sent_end = next;  // chunks below were sent (or the broker had them)
  auto handle = [&](const wire::Message& m) -> Status {
    if (auto* e = std::get_if<wire::Error>(&m)) {
      return FailedPreconditionError("jitgate broker refused the recording: " +
                                     e->message);
    }
    if (std::holds_alternative<wire::SessionTerminated>(m))
      return OkStatus();  // too late
    auto* ack = std::get_if<wire::SessionAck>(&m);
    if (ack == nullptr || ack->next_index < acked ||
        ack->next_index > sent_end) {
      return DataLossError("jitgate broker answered a spooled chunk with " +
                           wire::MessageTypeName(wire::TypeOf(m)));
    }
    acked = ack->next_index;
    return OkStatus();
  };
  std::optional<wire::CloseSession> end;
  while (true) {
    ASSIGN_OR_RETURN(std::optional<SpoolEntry> e, r.Next());
    if (!e.has_value()) break;
    if (e->type == SpoolFrameType::kClose) {
      end = e->close;
      continue;
    }
    if (e->index < next) continue;  // the broker has it
    while (sent_end - acked >= o.max_unacked) {
      ASSIGN_OR_RETURN(wire::Message m, c.Receive(In(o.timeout_ms)));
      RETURN_IF_ERROR(handle(m));
    }
    RETURN_IF_ERROR(
        c.Send(wire::SessionData{std::move(e->chunk)}, In(o.timeout_ms)));
    ++sent_end;
    ++out->sent;
  }
  if (r.next_index() < next) {
    return DataLossError("jitgate broker has " + std::to_string(next) +
                         " chunks of session " + r.session() +
                         ", the spool only " + std::to_string(r.next_index()));
  }
  while (acked < sent_end) {
    ASSIGN_OR_RETURN(wire::Message m, c.Receive(In(o.timeout_ms)));
    RETURN_IF_ERROR(handle(m));
  }
  out->chunks = r.next_index();
  out->torn_bytes = r.torn_bytes();
  out->had_end = end.has_value();
  if (!end.has_value()) {
    // The recorder died mid-session: what it spooled is the session.
    end.emplace();
    end->end_unix_nanos =
        static_cast<uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000u +
        static_cast<uint64_t>(st.st_mtim.tv_nsec);
    end->end_reason = kEndReasonRecorderLost;
  }
  end->chunks = r.next_index();
  ASSIGN_OR_RETURN(wire::Message m, c.Call(*end, In(o.timeout_ms)));
  while (std::holds_alternative<wire::SessionAck>(m) ||
         std::holds_alternative<wire::SessionTerminated>(m)) {
    RETURN_IF_ERROR(handle(m));
    ASSIGN_OR_RETURN(m, c.Receive(In(o.timeout_ms)));
  }
  if (auto* e = std::get_if<wire::Error>(&m)) {
    return FailedPreconditionError(
        "jitgate broker refused the session's end: " + e->message);
  }
  auto* closed = std::get_if<wire::SessionClosed>(&m);
  if (closed == nullptr) {
    return DataLossError("jitgate broker answered CloseSession with " +
                         wire::MessageTypeName(wire::TypeOf(m)));
  }
  if (closed->chunks != r.next_index()) {
    return DataLossError("jitgate broker recorded " +
                         std::to_string(closed->chunks) + " of " +
                         std::to_string(r.next_index()) + " chunks");
  }
  return OkStatus();
}

}  // namespace

ForwardResult ForwardSpoolFile(const std::string& path,
                               const ForwardOptions& o) {
  ForwardResult out;
  out.path = path;
  auto fail = [&](Status s) {
    out.outcome = ForwardResult::kFailed;
    out.error = std::move(s);
    return out;
  };
  StatusOr<std::optional<UniqueFd>> locked = OpenLocked(path);
  if (!locked.ok()) return fail(locked.status());
  if (!locked->has_value()) {
    out.outcome = ForwardResult::kBusy;
    return out;
  }
  UniqueFd fd = std::move(**locked);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return fail(Errno("reading spool file " + path));
  StatusOr<std::unique_ptr<SpoolReader>> r = SpoolReader::Open(fd.get(), path);
  if (!r.ok()) return fail(r.status());
  out.session = (*r)->session();
  if (o.only_user.has_value() && (*r)->meta().user != *o.only_user) {
    out.outcome = ForwardResult::kSkipped;
    return out;
  }
  StatusOr<wire::Client> c =
      wire::Client::Connect(o.socket_path, In(o.timeout_ms), o.client_name);
  if (!c.ok()) return fail(c.status());
  StatusOr<wire::Message> m = c->Call((*r)->meta(), In(o.timeout_ms));
  if (!m.ok()) return fail(m.status());
  bool ended_before = false;
  if (auto* e = std::get_if<wire::Error>(&*m)) {
    // The broker ended this session earlier: whoever delivered it died
    // before removing the file.
    if (e->code != wire::ErrorCode::kNotPending) {
      return fail(FailedPreconditionError("jitgate broker refused session " +
                                          out.session + ": " + e->message));
    }
    ended_before = true;
  } else {
    auto* opened = std::get_if<wire::SessionOpened>(&*m);
    if (opened == nullptr || opened->session != out.session) {
      return fail(DataLossError("jitgate broker answered OpenSession for " +
                                out.session + " with " +
                                wire::MessageTypeName(wire::TypeOf(*m))));
    }
    if (opened->next_index < (*r)->first_index()) {
      return fail(DataLossError(
          "jitgate broker has " + std::to_string(opened->next_index) +
          " chunks of session " + out.session + ", but the spool starts at " +
          std::to_string((*r)->first_index())));
    }
    if (Status s = Deliver(*c, **r, o, opened->next_index, st, &out); !s.ok())
      return fail(s);
  }
  if (::unlink(path.c_str()) != 0)
    return fail(Errno("removing spool file " + path));
  if (Status s = SyncDir(DirOf(path)); !s.ok()) return fail(s);
  out.outcome = ended_before ? ForwardResult::kAlreadyDelivered
                             : ForwardResult::kDelivered;
  return out;
}

Status ForwardSpool(const ForwardOptions& o,
                    const std::function<void(const ForwardResult&)>& report) {
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(o.dir.c_str()),
                                          &::closedir);
    if (!d) return Errno("reading spool directory " + o.dir);
    while (dirent* e = ::readdir(d.get())) names.push_back(e->d_name);
  }
  std::sort(names.begin(), names.end());
  // A compaction's temp file outlives only a killed recorder; its session
  // file holds everything, so the temp file goes once that is not locked.
  for (const std::string& name : names) {
    if (!EndsWith(name, kSpoolTempSuffix)) continue;
    std::string base =
        name.substr(0, name.size() - std::strlen(kSpoolTempSuffix));
    StatusOr<std::optional<UniqueFd>> l =
        OpenLocked(o.dir + "/" + base + kSpoolSuffix);
    if (l.ok() && l->has_value()) ::unlink((o.dir + "/" + name).c_str());
  }
  // Oldest session first.
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const std::string& name : names) {
    if (!EndsWith(name, kSpoolSuffix)) continue;
    std::string path = o.dir + "/" + name;
    uint64_t start = UINT64_MAX;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd) {
      StatusOr<std::unique_ptr<SpoolReader>> r =
          SpoolReader::Open(fd.get(), path);
      if (r.ok()) start = (*r)->meta().start_unix_nanos;
    }
    order.emplace_back(start, path);
  }
  std::stable_sort(
      order.begin(), order.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [start, path] : order) report(ForwardSpoolFile(path, o));
  return OkStatus();
}

}  // namespace jitgate::recorder
