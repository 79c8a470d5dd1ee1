// BrokerMetrics: jitgated's metrics (docs/jitgated.md, "Metrics") and the
// few facts about itself that only it can report: recorders' spool reports,
// when its configuration was loaded.
//
// Every method is thread-safe: the event loop counts, the health monitor
// sets what it checked, the HTTP thread renders, other threads report.
#ifndef JITGATE_BROKER_BROKER_METRICS_H_
#define JITGATE_BROKER_BROKER_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "broker/audit.h"
#include "broker/lifecycle.h"
#include "broker/metrics.h"
#include "broker/store_audit.h"
#include "core/wire/messages.h"
#include "store/store.h"

namespace jitgate::broker {

// The spool reports kept, by host; the oldest report goes beyond this.
inline constexpr size_t kMaxSpoolReports = wire::kMaxSpoolHosts;

class BrokerMetrics {
 public:
  // version: "0.1.0"; started_unix_seconds: the broker's start. has_ca:
  // whether jitgate_ca_key_ok is reported at all.
  BrokerMetrics(const std::string& version, uint64_t started_unix_seconds, bool has_ca);
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  // The exposition text (GET /metrics).
  std::string Render() const { return registry_.Render(); }

  // What the store and the bastion report, read at each Render (both are
  // thread-safe); store must outlive this object. Call once, before serving.
  void WatchStore(store::Store* store, Clock* clock);
  void WatchBastion(std::function<size_t()> live_sessions);
  size_t bastion_sessions() const;

  // Counts one audit event about request r (nullptr if the broker does not
  // hold it): decisions by service and outcome, the time to a human
  // decision, certificates issued.
  void OnAuditEvent(const AuditEvent& e, const Request* r);
  void OnSessionOpened(const std::string& recorder);
  // The event loop's state at the end of a turn.
  void SetLoop(uint64_t pending, uint64_t sessions_live);
  // Audit events and entries handed to the store became durable after this.
  void ObserveStoreAppend(int64_t nanos);
  // The health monitor's findings.
  void SetStoreHealth(uint64_t bytes, uint64_t verified_entries, bool verify_ok);
  void CountVerifyError();
  void SetCaKeyOk(bool ok);

  // A configuration reload (SIGHUP): applied, or refused. `now` is when.
  void OnConfigReload(bool applied, uint64_t now_unix_seconds);
  uint64_t config_loaded_at() const;
  uint64_t started_at() const { return started_at_; }

  // A recorder's SpoolReport for host, received at now.
  void SetSpool(const std::string& host, uint64_t sessions, uint64_t bytes,
                uint64_t now_unix_seconds);
  // The spool reports kept, by host.
  std::vector<wire::SpoolBacklog> spools() const;

 private:
  const uint64_t started_at_;
  MetricsRegistry registry_;
  MetricFamily* requests_;
  MetricFamily* pending_;
  MetricFamily* decision_seconds_;
  MetricFamily* sessions_live_;
  MetricFamily* sessions_total_;
  MetricFamily* store_bytes_;
  MetricFamily* append_seconds_;
  MetricFamily* verified_entries_;
  MetricFamily* verify_ok_;
  MetricFamily* verify_errors_;
  MetricFamily* ca_key_ok_ = nullptr;
  MetricFamily* spool_bytes_;
  MetricFamily* spool_sessions_;
  MetricFamily* spool_reported_;
  MetricFamily* certificates_;
  MetricFamily* reloads_;

  mutable std::mutex mu_;
  std::function<size_t()> bastion_;                    // GUARDED_BY(mu_)
  uint64_t config_loaded_at_;                          // GUARDED_BY(mu_)
  std::map<std::string, wire::SpoolBacklog> spools_;  // GUARDED_BY(mu_)
};

// The StoreAuditSink observers that feed metrics (nothing when metrics is
// null). book must outlive the sink; it is only read when events arrive.
StoreAuditSink::Observers MetricsObservers(BrokerMetrics* metrics, const RequestBook* book);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_BROKER_METRICS_H_
