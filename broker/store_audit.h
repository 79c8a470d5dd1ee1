// StoreAuditSink: appends the broker's audit events to the signed store
// (PRODUCT.md F6), one JSON entry (EntryType::kAuditEvent) per event.
//
// Emit never blocks on the disk: it sequences the entry with AppendAsync
// (group commit). The daemon calls Flush once per event-loop turn, before it
// answers anyone, so no client learns of a decision whose audit trail is not
// durable. A store failure is sticky: Flush reports it from then on and the
// daemon stops (fail closed).
//
// Not thread-safe: used from the daemon's loop only.
#ifndef JITGATE_BROKER_STORE_AUDIT_H_
#define JITGATE_BROKER_STORE_AUDIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "broker/audit.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "store/store.h"

namespace jitgate::broker {

// The JSON of event, made to fit one store entry: if the created event's
// fields would make it larger than store::kMaxEntryBody (a command of 32 KiB
// full of bytes that JSON escapes), the command is cut and the event says so
// with "command_truncated": true and "command_sha256"; the event's digest
// still binds the exact fields.
std::string AuditEntryBody(const AuditEvent& event);

class StoreAuditSink : public AuditSink {
 public:
  // Hooks for metrics; either may be empty. Called on the caller's thread.
  struct Observers {
    std::function<void(const AuditEvent&)> event;  // every event emitted
    // Every Flush that waited: nanoseconds (of clock's MonotonicNanos) from
    // the first entry appended since the previous Flush until all were
    // durable.
    std::function<void(int64_t nanos)> durable;
  };

  // clock: default RealClock().
  explicit StoreAuditSink(store::Store* store, Observers observers = {}, Clock* clock = nullptr)
      : store_(store),
        observers_(std::move(observers)),
        clock_(clock != nullptr ? clock : RealClock()) {}

  void Emit(const AuditEvent& event) override;
  // Appends any entry (a session event's JSON, a transcript chunk) under
  // the same durability rule: durable at the next Flush.
  void Append(uint8_t type, ByteSpan body);
  // Waits until every event emitted so far is durable. Returns the first
  // store error ever seen.
  Status Flush();

  uint64_t emitted() const { return emitted_; }

 private:
  store::Store* store_;
  Observers observers_;
  Clock* clock_;
  Status error_;
  bool unflushed_ = false;
  int64_t unflushed_since_mono_ = 0;
  uint64_t last_index_ = 0;
  uint64_t emitted_ = 0;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_STORE_AUDIT_H_
