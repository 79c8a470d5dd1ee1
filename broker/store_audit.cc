#include "broker/store_audit.h"

#include <nlohmann/json.hpp>

#include "core/base/bytes.h"
#include "core/crypto/crypto.h"
#include "store/store_format.h"

namespace jitgate::broker {

std::string AuditEntryBody(const AuditEvent& event) {
  std::string json = AuditEventToJson(event);
  if (json.size() <= store::kMaxEntryBody || !event.fields.has_value()) return json;
  // Only a created event carries the large fields; cut the command (the one
  // field that can be 32 KiB) until the entry fits, and say so.
  AuditEvent cut = event;
  const std::string& command = event.fields->command;
  size_t keep = command.size();
  while (json.size() > store::kMaxEntryBody && keep > 0) {
    keep /= 2;
    cut.fields->command = command.substr(0, keep);
    json = AuditEventToJson(cut);
  }
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return json;
  j["command_truncated"] = true;
  j["command_sha256"] = HexEncode(crypto::Sha256(AsBytes(command)));
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void StoreAuditSink::Emit(const AuditEvent& event) {
  ++emitted_;
  if (observers_.event) observers_.event(event);
  if (!error_.ok()) return;
  std::string body = AuditEntryBody(event);
  Append(static_cast<uint8_t>(store::EntryType::kAuditEvent), AsBytes(body));
}

void StoreAuditSink::Append(uint8_t type, ByteSpan body) {
  if (!error_.ok()) return;
  StatusOr<uint64_t> index = store_->AppendAsync(type, body);
  if (!index.ok()) {
    error_ = Status(index.status().code(),
                    "appending audit event to the store: " + index.status().message());
    return;
  }
  last_index_ = *index;
  if (!unflushed_) unflushed_since_mono_ = clock_->MonotonicNanos();
  unflushed_ = true;
}

Status StoreAuditSink::Flush() {
  if (!error_.ok()) return error_;
  if (!unflushed_) return OkStatus();
  Status s = store_->WaitDurable(last_index_);
  if (!s.ok()) {
    error_ = Status(s.code(), "audit events not durable in the store: " + s.message());
    return error_;
  }
  unflushed_ = false;
  if (observers_.durable) observers_.durable(clock_->MonotonicNanos() - unflushed_since_mono_);
  return OkStatus();
}

}  // namespace jitgate::broker
