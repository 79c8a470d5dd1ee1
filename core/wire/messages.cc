#include "core/wire/messages.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace jitgate::wire {
namespace {

// What a string field may contain beyond "no NUL, length <= cap".
enum class StrKind {
  kAny,
  kNonEmpty,
  kId,         // 1..32 of [0-9a-z]
  kIdOrEmpty,  // Decision.id
};

bool IdChars(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); });
}

std::string KindProblem(StrKind kind, std::string_view s) {
  switch (kind) {
    case StrKind::kAny:
      return "";
    case StrKind::kNonEmpty:
      return s.empty() ? "must not be empty" : "";
    case StrKind::kIdOrEmpty:
      if (s.empty()) return "";
      [[fallthrough]];
    case StrKind::kId:
      return IsValidRequestId(s) ? "" : "not a request id (1-32 characters [0-9a-z])";
  }
  return "";
}

// Encoder and Decoder implement the same field vocabulary, so that one
// Fields() function per message describes its layout for both directions and
// the two cannot drift apart. The first failure sticks; later calls are no-ops.
class Encoder {
 public:
  static constexpr bool kDecoding = false;

  void U8(const char*, uint8_t v) { if (ok()) w_.PutU8(v); }
  void U16(const char*, uint16_t v) { if (ok()) w_.PutU16(v); }
  void U32(const char*, uint32_t v) { if (ok()) w_.PutU32(v); }
  void U64(const char*, uint64_t v) { if (ok()) w_.PutU64(v); }
  void Bool(const char*, bool v) { if (ok()) w_.PutU8(v ? 1 : 0); }
  template <typename E>
  void Enum(const char* field, E v, unsigned max) {
    using U = std::underlying_type_t<E>;
    U raw = U(v);
    if (!ok()) return;
    if (raw < 1 || raw > max) return Fail(field, "unknown value " + std::to_string(unsigned(raw)));
    if constexpr (sizeof(U) == 1) w_.PutU8(raw); else w_.PutU16(raw);
  }
  void Flags(const char* field, bool can_prompt) {
    (void)field;
    if (ok()) w_.PutU8(can_prompt ? kFlagCanPrompt : 0);
  }
  void Str(const char* field, const std::string& s, size_t cap, StrKind kind = StrKind::kAny) {
    if (!ok()) return;
    if (s.size() > cap) {
      return Fail(field, std::to_string(s.size()) + " bytes exceeds the cap of " + std::to_string(cap));
    }
    if (s.find('\0') != std::string::npos) return Fail(field, "contains a NUL byte");
    if (std::string p = KindProblem(kind, s); !p.empty()) return Fail(field, p);
    w_.PutU32Prefixed(s);
  }
  // Binary data: NUL allowed, 1..cap bytes.
  void Blob(const char* field, const Bytes& b, size_t cap) {
    if (!ok()) return;
    if (b.empty()) return Fail(field, "must not be empty");
    if (b.size() > cap) {
      return Fail(field, std::to_string(b.size()) + " bytes exceeds the cap of " + std::to_string(cap));
    }
    w_.PutU32Prefixed(ByteSpan(b));
  }
  template <size_t N>
  void Fixed(const char*, const std::array<uint8_t, N>& a) { if (ok()) w_.PutBytes(ByteSpan(a)); }
  template <typename T, typename Each>
  void List(const char* field, const std::vector<T>& v, size_t cap, Each each) {
    if (!ok()) return;
    if (v.size() > cap) {
      return Fail(field, std::to_string(v.size()) + " items exceed the cap of " + std::to_string(cap));
    }
    w_.PutU16(uint16_t(v.size()));
    for (const T& item : v) each(item);
  }
  void Check(bool cond, const char* what) { if (ok() && !cond) status_ = InvalidArgumentError(what); }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  ByteWriter& writer() { return w_; }

 private:
  void Fail(const char* field, const std::string& why) {
    status_ = InvalidArgumentError(std::string("field ") + field + ": " + why);
  }
  ByteWriter w_;
  Status status_;
};

class Decoder {
 public:
  static constexpr bool kDecoding = true;
  explicit Decoder(ByteSpan body) : r_(body) {}

  void U8(const char* field, uint8_t& v) { if (ok() && !r_.GetU8(&v)) Truncated(field); }
  void U16(const char* field, uint16_t& v) { if (ok() && !r_.GetU16(&v)) Truncated(field); }
  void U32(const char* field, uint32_t& v) { if (ok() && !r_.GetU32(&v)) Truncated(field); }
  void U64(const char* field, uint64_t& v) { if (ok() && !r_.GetU64(&v)) Truncated(field); }
  void Bool(const char* field, bool& v) {
    uint8_t raw = 0;
    U8(field, raw);
    if (!ok()) return;
    if (raw > 1) return Fail(field, "bool must be 0 or 1, got " + std::to_string(raw));
    v = raw == 1;
  }
  template <typename E>
  void Enum(const char* field, E& v, unsigned max) {
    using U = std::underlying_type_t<E>;
    U raw = 0;
    if constexpr (sizeof(U) == 1) U8(field, raw); else U16(field, raw);
    if (!ok()) return;
    if (raw < 1 || raw > max) return Fail(field, "unknown value " + std::to_string(unsigned(raw)));
    v = E(raw);
  }
  void Flags(const char* field, bool& can_prompt) {
    uint8_t raw = 0;
    U8(field, raw);
    if (!ok()) return;
    if (raw & ~kKnownSubmitFlags) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "0x%02x", unsigned(raw & ~kKnownSubmitFlags));
      return Fail(field, std::string("reserved bits set (") + buf + ")");
    }
    can_prompt = (raw & kFlagCanPrompt) != 0;
  }
  void Str(const char* field, std::string& s, size_t cap, StrKind kind = StrKind::kAny) {
    if (!ok()) return;
    // Peek at the length to say precisely why it is unacceptable; the
    // GetU32PrefixedString call below re-checks everything before copying.
    ByteReader peek = r_;
    uint32_t len = 0;
    if (!peek.GetU32(&len)) return Truncated(field);
    if (len > cap) {
      return Fail(field, "length " + std::to_string(len) + " exceeds the cap of " + std::to_string(cap));
    }
    if (peek.remaining() < len) return Truncated(field);
    ByteSpan raw;
    if (!peek.GetBytes(len, &raw)) return Truncated(field);
    if (!raw.empty() && std::memchr(raw.data(), 0, raw.size()) != nullptr) return Fail(field, "contains a NUL byte");
    if (!r_.GetU32PrefixedString(&s, cap)) return Truncated(field);
    if (std::string p = KindProblem(kind, s); !p.empty()) return Fail(field, p);
  }
  void Blob(const char* field, Bytes& b, size_t cap) {
    if (!ok()) return;
    uint32_t len = 0;
    if (!r_.GetU32(&len)) return Truncated(field);
    if (len > cap) {
      return Fail(field, "length " + std::to_string(len) + " exceeds the cap of " + std::to_string(cap));
    }
    if (len == 0) return Fail(field, "must not be empty");
    ByteSpan raw;
    if (!r_.GetBytes(len, &raw)) return Truncated(field);
    b.assign(raw.begin(), raw.end());
  }
  template <size_t N>
  void Fixed(const char* field, std::array<uint8_t, N>& a) {
    if (ok() && !r_.CopyBytes(std::span<uint8_t>(a))) Truncated(field);
  }
  template <typename T, typename Each>
  void List(const char* field, std::vector<T>& v, size_t cap, Each each) {
    uint16_t n = 0;
    U16(field, n);
    if (!ok()) return;
    if (n > cap) return Fail(field, std::to_string(n) + " items exceed the cap of " + std::to_string(cap));
    v.clear();
    for (uint16_t i = 0; i < n && ok(); ++i) {
      v.emplace_back();
      each(v.back());
    }
  }
  void Check(bool cond, const char* what) { if (ok() && !cond) status_ = InvalidArgumentError(what); }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const ByteReader& reader() const { return r_; }

 private:
  void Truncated(const char* field) { Fail(field, "truncated"); }
  void Fail(const char* field, const std::string& why) {
    status_ = InvalidArgumentError(std::string("field ") + field + ": " + why);
  }
  ByteReader r_;
  Status status_;
};

bool IsZero(const crypto::Sha256Digest& d) {
  return std::all_of(d.begin(), d.end(), [](uint8_t b) { return b == 0; });
}

// One Fields() per message: the layout of docs/protocol.md §3 and §4, in
// order. M is `const T` when encoding and `T` when decoding.

template <typename IO, typename M>
void RequestFieldsLayout(IO& io, M& f) {
  io.Str("service", f.service, kMaxNameField, StrKind::kNonEmpty);
  io.Str("user", f.user, kMaxNameField, StrKind::kNonEmpty);
  io.Str("target_user", f.target_user, kMaxNameField, StrKind::kNonEmpty);
  io.Str("host", f.host, kMaxNameField, StrKind::kNonEmpty);
  io.Str("remote_addr", f.remote_addr, kMaxAddressField);
  io.Str("tty", f.tty, kMaxNameField);
  io.Str("command", f.command, kMaxCommandField);
  io.Str("cwd", f.cwd, kMaxCwdField);
  io.Str("reason", f.reason, kMaxReasonField);
  io.Str("public_key", f.public_key, kMaxPublicKeyField);
  io.U32("ttl_seconds", f.ttl_seconds);
}

template <typename IO, typename M>
void CertInfoLayout(IO& io, M& c) {
  io.U64("serial", c.serial);
  io.Enum("kind", c.kind, kMaxCertKind);
  io.Str("key_id", c.key_id, kMaxLabelField);
  io.List("principals", c.principals, kMaxCertPrincipals, [&io](auto& p) {
    io.Str("principals", p, kMaxNameField, StrKind::kNonEmpty);
  });
  io.U64("valid_after", c.valid_after);
  io.U64("valid_before", c.valid_before);
  io.Str("fingerprint", c.fingerprint, kMaxLabelField);
  io.Str("request_id", c.request_id, kMaxRequestIdLength, StrKind::kIdOrEmpty);
  io.Str("issued_to", c.issued_to, kMaxLabelField);
  io.U64("issued_at", c.issued_at);
  io.U64("revoked_at", c.revoked_at);
  io.Str("revoked_by", c.revoked_by, kMaxLabelField);
  io.Str("revoke_comment", c.revoke_comment, kMaxCommentField);
  io.Check(c.serial != 0, "field serial: must not be 0");
}

template <typename IO, typename M>
void VoteLayout(IO& io, M& v) {
  io.Enum("verdict", v.verdict, kMaxVerdict);
  io.Str("approver", v.approver, kMaxLabelField, StrKind::kNonEmpty);
  io.U64("at", v.at);
  io.Str("comment", v.comment, kMaxCommentField);
}

template <typename IO, typename M>
void RequestInfoLayout(IO& io, M& m) {
  io.Str("id", m.id, kMaxRequestIdLength, StrKind::kId);
  RequestFieldsLayout(io, m.fields);
  io.Fixed("digest", m.digest);
  io.Enum("state", m.state, kMaxRequestState);
  io.Str("filed_by", m.filed_by, kMaxLabelField);
  io.Str("approvers", m.approvers, kMaxLabelField);
  io.U16("approvals_needed", m.approvals_needed);
  io.U64("created_at", m.created_at);
  io.U64("expires_at", m.expires_at);
  io.List("votes", m.votes, kMaxVotes, [&io](auto& v) { VoteLayout(io, v); });
}

template <typename IO, typename M>
void Layout(IO& io, M& m) {
  using T = std::remove_const_t<M>;
  if constexpr (std::is_same_v<T, Hello>) {
    io.U16("min_version", m.min_version);
    io.U16("max_version", m.max_version);
    io.Str("client", m.client, kMaxLabelField);
    io.Check(m.min_version >= 1 && m.min_version <= m.max_version,
             "versions: need 1 <= min_version <= max_version");
  } else if constexpr (std::is_same_v<T, HelloAck>) {
    io.U16("version", m.version);
    io.Str("server_id", m.server_id, kMaxLabelField);
    io.Check(m.version >= 1, "field version: must be at least 1");
  } else if constexpr (std::is_same_v<T, Error>) {
    io.Enum("code", m.code, kMaxErrorCode);
    io.Str("message", m.message, kMaxMessageField);
  } else if constexpr (std::is_same_v<T, SubmitRequest>) {
    RequestFieldsLayout(io, m.fields);
    io.U32("timeout_seconds", m.timeout_seconds);
    io.Flags("flags", m.can_prompt);
  } else if constexpr (std::is_same_v<T, NeedReason>) {
    io.Bool("required", m.required);
    io.Str("prompt", m.prompt, kMaxPromptField);
  } else if constexpr (std::is_same_v<T, ProvideReason>) {
    io.Str("reason", m.reason, kMaxReasonField);
  } else if constexpr (std::is_same_v<T, RequestAccepted>) {
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kId);
    io.Fixed("resume_token", m.resume_token);
    io.Fixed("digest", m.digest);
    io.Str("approvers", m.approvers, kMaxLabelField);
    io.U32("wait_seconds", m.wait_seconds);
  } else if constexpr (std::is_same_v<T, StatusUpdate>) {
    io.U16("approvals", m.approvals);
    io.U16("approvals_needed", m.approvals_needed);
    io.U32("wait_seconds", m.wait_seconds);
    io.Str("message", m.message, kMaxMessageField);
  } else if constexpr (std::is_same_v<T, Decision>) {
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Fixed("digest", m.digest);
    io.Enum("outcome", m.outcome, kMaxOutcome);
    io.List("decided_by", m.decided_by, kMaxVotes, [&io](auto& name) {
      io.Str("decided_by", name, kMaxLabelField, StrKind::kNonEmpty);
    });
    io.Str("comment", m.comment, kMaxCommentField);
    io.Str("message", m.message, kMaxMessageField);
    io.U64("valid_until", m.valid_until);
    io.Str("certificate", m.certificate, kMaxCertificateField);
    io.Check(!m.id.empty() || IsZero(m.digest), "field digest: must be zero when id is empty");
    io.Check(m.outcome == Outcome::kApproved || m.certificate.empty(),
             "field certificate: must be empty unless approved");
    io.Check(!m.id.empty() || m.outcome == Outcome::kError,
             "field id: may be empty only for outcome error");
    io.Check(m.outcome == Outcome::kApproved || m.valid_until == 0,
             "field valid_until: must be 0 unless approved");
  } else if constexpr (std::is_same_v<T, Resume>) {
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kId);
    io.Fixed("resume_token", m.resume_token);
  } else if constexpr (std::is_same_v<T, Cancel>) {
    // Empty body.
  } else if constexpr (std::is_same_v<T, ListRequests>) {
    io.Enum("filter", m.filter, kMaxListFilter);
    io.U16("limit", m.limit);
  } else if constexpr (std::is_same_v<T, RequestList>) {
    io.Bool("more", m.more);
    io.List("items", m.items, kMaxListItems, [&io](auto& item) { RequestInfoLayout(io, item); });
  } else if constexpr (std::is_same_v<T, GetRequest>) {
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kId);
  } else if constexpr (std::is_same_v<T, RequestInfo>) {
    RequestInfoLayout(io, m);
  } else if constexpr (std::is_same_v<T, Approve> || std::is_same_v<T, Deny>) {
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kId);
    io.Fixed("digest", m.digest);
    io.Str("comment", m.comment, kMaxCommentField);
  } else if constexpr (std::is_same_v<T, Follow>) {
    io.Enum("filter", m.filter, kMaxListFilter);
  } else if constexpr (std::is_same_v<T, ListCerts>) {
    io.Enum("filter", m.filter, kMaxListFilter);
    io.U16("limit", m.limit);
  } else if constexpr (std::is_same_v<T, CertList>) {
    io.Bool("more", m.more);
    io.List("items", m.items, kMaxListItems, [&io](auto& item) { CertInfoLayout(io, item); });
  } else if constexpr (std::is_same_v<T, Revoke>) {
    io.U64("serial", m.serial);
    io.Str("id", m.id, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Str("comment", m.comment, kMaxCommentField);
    io.Check((m.serial != 0) != !m.id.empty(), "fields serial, id: exactly one must be set");
  } else if constexpr (std::is_same_v<T, SignHostKey>) {
    io.Str("public_key", m.public_key, kMaxPublicKeyField, StrKind::kNonEmpty);
    io.List("principals", m.principals, kMaxCertPrincipals, [&io](auto& p) {
      io.Str("principals", p, kMaxNameField, StrKind::kNonEmpty);
    });
    io.U32("validity_seconds", m.validity_seconds);
    io.Check(!m.principals.empty(), "field principals: must not be empty");
  } else if constexpr (std::is_same_v<T, HostCertificate>) {
    io.U64("serial", m.serial);
    io.Str("certificate", m.certificate, kMaxCertificateField, StrKind::kNonEmpty);
  } else if constexpr (std::is_same_v<T, GetCaInfo>) {
    // Empty body.
  } else if constexpr (std::is_same_v<T, OpenSession>) {
    io.Str("session", m.session, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Str("recorder", m.recorder, kMaxNameField, StrKind::kNonEmpty);
    io.Str("request_id", m.request_id, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Str("user", m.user, kMaxNameField, StrKind::kNonEmpty);
    io.Str("remote_addr", m.remote_addr, kMaxAddressField);
    io.Str("host", m.host, kMaxNameField, StrKind::kNonEmpty);
    io.Str("target", m.target, kMaxNameField);
    io.Str("login", m.login, kMaxNameField, StrKind::kNonEmpty);
    io.Str("command", m.command, kMaxCommandField);
    io.Str("term", m.term, kMaxNameField);
    io.U16("cols", m.cols);
    io.U16("rows", m.rows);
    io.U64("start_unix_nanos", m.start_unix_nanos);
    io.U64("cert_serial", m.cert_serial);
  } else if constexpr (std::is_same_v<T, SessionOpened>) {
    io.Str("session", m.session, kMaxRequestIdLength, StrKind::kId);
    io.U64("next_index", m.next_index);
  } else if constexpr (std::is_same_v<T, SessionData>) {
    io.Blob("chunk", m.chunk, kMaxSessionChunk);
  } else if constexpr (std::is_same_v<T, SessionAck>) {
    io.U64("next_index", m.next_index);
  } else if constexpr (std::is_same_v<T, CloseSession>) {
    io.U64("end_unix_nanos", m.end_unix_nanos);
    io.Bool("has_exit_status", m.has_exit_status);
    io.U32("exit_status", m.exit_status);
    io.Str("exit_signal", m.exit_signal, kMaxLabelField);
    io.Str("end_reason", m.end_reason, kMaxLabelField);
    io.U64("chunks", m.chunks);
    io.U64("bytes_in", m.bytes_in);
    io.U64("bytes_out", m.bytes_out);
    io.Check(m.has_exit_status || m.exit_status == 0,
             "field exit_status: must be 0 when has_exit_status is 0");
  } else if constexpr (std::is_same_v<T, SessionClosed>) {
    io.U64("chunks", m.chunks);
  } else if constexpr (std::is_same_v<T, TerminateSession>) {
    io.Str("session", m.session, kMaxRequestIdLength, StrKind::kId);
    io.Str("comment", m.comment, kMaxCommentField);
  } else if constexpr (std::is_same_v<T, SessionTerminateAck>) {
    io.Str("session", m.session, kMaxRequestIdLength, StrKind::kId);
    io.Bool("already_ended", m.already_ended);
  } else if constexpr (std::is_same_v<T, SessionTerminated>) {
    io.Str("by", m.by, kMaxLabelField, StrKind::kNonEmpty);
    io.Str("comment", m.comment, kMaxCommentField);
  } else if constexpr (std::is_same_v<T, BastionEvent>) {
    io.Str("event", m.event, kMaxLabelField, StrKind::kNonEmpty);
    io.Str("user", m.user, kMaxNameField);
    io.Str("remote_addr", m.remote_addr, kMaxAddressField);
    io.Str("ssh_user", m.ssh_user, kMaxNameField);
    io.Str("request_id", m.request_id, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Str("session", m.session, kMaxRequestIdLength, StrKind::kIdOrEmpty);
    io.Str("detail", m.detail, kMaxMessageField);
  } else if constexpr (std::is_same_v<T, BastionEventAck>) {
    // Empty body.
  } else if constexpr (std::is_same_v<T, GetStatus> || std::is_same_v<T, SpoolReportAck>) {
    // Empty body.
  } else if constexpr (std::is_same_v<T, StatusReport>) {
    io.Str("version", m.version, kMaxLabelField);
    io.U64("now", m.now);
    io.U64("started_at", m.started_at);
    io.Str("config_file", m.config_file, kMaxCwdField);
    io.U64("config_loaded_at", m.config_loaded_at);
    io.U64("pending", m.pending);
    io.U64("sessions_live", m.sessions_live);
    io.Str("store_dir", m.store_dir, kMaxCwdField);
    io.U64("store_entries", m.store_entries);
    io.U64("store_bytes", m.store_bytes);
    io.U64("checkpoint_size", m.checkpoint_size);
    io.U64("checkpoint_age", m.checkpoint_age);
    io.U64("uncovered_entries", m.uncovered_entries);
    io.U64("uncovered_age", m.uncovered_age);
    io.Enum("verify", m.verify, kMaxCheckState);
    io.U64("verified_entries", m.verified_entries);
    io.U64("verified_at", m.verified_at);
    io.Str("verify_error", m.verify_error, kMaxMessageField);
    io.Enum("ca", m.ca, kMaxCheckState);
    io.Str("ca_detail", m.ca_detail, kMaxMessageField);
    io.Str("bastion_listen", m.bastion_listen, kMaxLabelField);
    io.U64("bastion_sessions", m.bastion_sessions);
    io.Str("metrics_listen", m.metrics_listen, kMaxCwdField);
    io.List("spools", m.spools, kMaxSpoolHosts, [&io](auto& b) {
      io.Str("spools.host", b.host, kMaxNameField, StrKind::kNonEmpty);
      io.U64("spools.sessions", b.sessions);
      io.U64("spools.bytes", b.bytes);
      io.U64("spools.reported_at", b.reported_at);
    });
  } else if constexpr (std::is_same_v<T, SpoolReport>) {
    io.Str("host", m.host, kMaxNameField, StrKind::kNonEmpty);
    io.U64("sessions", m.sessions);
    io.U64("bytes", m.bytes);
  } else if constexpr (std::is_same_v<T, CaInfo>) {
    io.Str("public_key", m.public_key, kMaxPublicKeyField, StrKind::kNonEmpty);
    io.U32("max_ttl_seconds", m.max_ttl_seconds);
    io.U64("krl_version", m.krl_version);
    io.Str("krl_path", m.krl_path, kMaxCwdField);
  } else {
    static_assert(sizeof(T) == 0, "message without a layout");
  }
}

template <typename T>
StatusOr<Message> DecodeAs(ByteSpan body) {
  Decoder d(body);
  T m;
  Layout(d, m);
  if (!d.ok()) return d.status();
  if (!d.reader().Empty()) {
    return InvalidArgumentError(std::to_string(d.reader().remaining()) + " trailing bytes");
  }
  return Message(std::move(m));
}

}  // namespace

bool IsValidRequestId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxRequestIdLength && IdChars(id);
}

MessageType TypeOf(const Message& m) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::kType; }, m);
}

Status EncodeBody(const Message& m, Bytes* out) {
  Encoder e;
  std::visit([&e](const auto& v) { Layout(e, v); }, m);
  if (!e.ok()) return e.status().WithContext(MessageTypeName(TypeOf(m)));
  if (e.writer().size() > kMaxBodySize) {
    return OutOfRangeError(MessageTypeName(TypeOf(m)) + ": body of " +
                           std::to_string(e.writer().size()) + " bytes exceeds the frame cap of " +
                           std::to_string(kMaxBodySize));
  }
  out->insert(out->end(), e.writer().data().begin(), e.writer().data().end());
  return OkStatus();
}

StatusOr<Message> DecodeMessage(uint8_t type, ByteSpan body) {
  if (!IsKnownMessageType(type)) return InvalidArgumentError(MessageTypeName(type) + ": unknown message type");
  if (body.size() > kMaxBodySize) {
    return InvalidArgumentError(MessageTypeName(type) + ": body of " + std::to_string(body.size()) +
                                " bytes exceeds the frame cap");
  }
  StatusOr<Message> r = [&]() -> StatusOr<Message> {
    switch (MessageType(type)) {
      case MessageType::kHello: return DecodeAs<Hello>(body);
      case MessageType::kHelloAck: return DecodeAs<HelloAck>(body);
      case MessageType::kError: return DecodeAs<Error>(body);
      case MessageType::kSubmitRequest: return DecodeAs<SubmitRequest>(body);
      case MessageType::kNeedReason: return DecodeAs<NeedReason>(body);
      case MessageType::kProvideReason: return DecodeAs<ProvideReason>(body);
      case MessageType::kRequestAccepted: return DecodeAs<RequestAccepted>(body);
      case MessageType::kStatusUpdate: return DecodeAs<StatusUpdate>(body);
      case MessageType::kDecision: return DecodeAs<Decision>(body);
      case MessageType::kResume: return DecodeAs<Resume>(body);
      case MessageType::kCancel: return DecodeAs<Cancel>(body);
      case MessageType::kListRequests: return DecodeAs<ListRequests>(body);
      case MessageType::kRequestList: return DecodeAs<RequestList>(body);
      case MessageType::kGetRequest: return DecodeAs<GetRequest>(body);
      case MessageType::kRequestInfo: return DecodeAs<RequestInfo>(body);
      case MessageType::kApprove: return DecodeAs<Approve>(body);
      case MessageType::kDeny: return DecodeAs<Deny>(body);
      case MessageType::kFollow: return DecodeAs<Follow>(body);
      case MessageType::kListCerts: return DecodeAs<ListCerts>(body);
      case MessageType::kCertList: return DecodeAs<CertList>(body);
      case MessageType::kRevoke: return DecodeAs<Revoke>(body);
      case MessageType::kSignHostKey: return DecodeAs<SignHostKey>(body);
      case MessageType::kHostCertificate: return DecodeAs<HostCertificate>(body);
      case MessageType::kGetCaInfo: return DecodeAs<GetCaInfo>(body);
      case MessageType::kCaInfo: return DecodeAs<CaInfo>(body);
      case MessageType::kOpenSession: return DecodeAs<OpenSession>(body);
      case MessageType::kSessionOpened: return DecodeAs<SessionOpened>(body);
      case MessageType::kSessionData: return DecodeAs<SessionData>(body);
      case MessageType::kSessionAck: return DecodeAs<SessionAck>(body);
      case MessageType::kCloseSession: return DecodeAs<CloseSession>(body);
      case MessageType::kSessionClosed: return DecodeAs<SessionClosed>(body);
      case MessageType::kTerminateSession: return DecodeAs<TerminateSession>(body);
      case MessageType::kSessionTerminateAck: return DecodeAs<SessionTerminateAck>(body);
      case MessageType::kSessionTerminated: return DecodeAs<SessionTerminated>(body);
      case MessageType::kBastionEvent: return DecodeAs<BastionEvent>(body);
      case MessageType::kBastionEventAck: return DecodeAs<BastionEventAck>(body);
      case MessageType::kGetStatus: return DecodeAs<GetStatus>(body);
      case MessageType::kStatusReport: return DecodeAs<StatusReport>(body);
      case MessageType::kSpoolReport: return DecodeAs<SpoolReport>(body);
      case MessageType::kSpoolReportAck: return DecodeAs<SpoolReportAck>(body);
    }
    return InvalidArgumentError("unknown message type");
  }();
  if (!r.ok()) return r.status().WithContext(MessageTypeName(type));
  return r;
}

StatusOr<Bytes> EncodeMessage(const Message& m) {
  Bytes frame(kFrameHeaderSize);
  Status s = EncodeBody(m, &frame);
  if (!s.ok()) return s;
  StoreU32BE(frame.data(), uint32_t(frame.size() - kFrameLengthSize));
  frame[kFrameLengthSize] = uint8_t(TypeOf(m));
  return frame;
}

}  // namespace jitgate::wire
