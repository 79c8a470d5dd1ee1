#include "broker/broker_metrics.h"

#include <algorithm>
#include <utility>

namespace jitgate::broker {

namespace {

constexpr double kNanosPerSecond = 1e9;

double Seconds(int64_t nanos) { return nanos <= 0 ? 0 : double(nanos) / kNanosPerSecond; }

// How a transition shows in jitgate_requests_total; "" for events that are
// not a request's transition.
std::string OutcomeOf(const AuditEvent& e) {
  const bool by_broker = e.actor == kBrokerActor;
  switch (e.type) {
    case AuditEventType::kApproved:
      return by_broker ? "auto_approved" : "approved";
    case AuditEventType::kDenied:
      return by_broker ? "policy_denied" : "denied";
    case AuditEventType::kExpired:
    case AuditEventType::kCancelled:
    case AuditEventType::kUsed:
      return std::string(AuditEventTypeName(e.type));
    default:
      return "";
  }
}

}  // namespace

BrokerMetrics::BrokerMetrics(const std::string& version, uint64_t started_unix_seconds,
                             bool has_ca)
    : started_at_(started_unix_seconds), config_loaded_at_(started_unix_seconds) {
  MetricsRegistry& r = registry_;
  r.Gauge("jitgate_build_info", "The running jitgated's version (always 1).", {"version"})
      ->Set({version}, 1);
  r.Gauge("jitgate_start_time_seconds", "When jitgated started, in Unix seconds.")
      ->Set({}, double(started_unix_seconds));
  requests_ = r.Counter("jitgate_requests_total",
                        "Access requests' transitions by service and outcome: approved, "
                        "auto_approved, denied, policy_denied, expired, cancelled, used.",
                        {"service", "outcome"});
  pending_ = r.Gauge("jitgate_requests_pending", "Requests waiting for a decision now.");
  decision_seconds_ =
      r.Histogram("jitgate_decision_seconds",
                  "Time from a request's creation to an approver's approval or denial.",
                  {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600});
  sessions_live_ = r.Gauge("jitgate_sessions_live", "Recorded sessions not yet ended.");
  sessions_total_ = r.Counter("jitgate_sessions_total",
                              "Recorded sessions opened since the start, by recorder.",
                              {"recorder"});
  store_bytes_ = r.Gauge("jitgate_store_bytes",
                         "Bytes of the store's segment files (at the last verification pass).");
  append_seconds_ = r.Histogram(
      "jitgate_store_append_seconds",
      "Time from handing a loop turn's entries to the store until they were durable.",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  verified_entries_ = r.Gauge("jitgate_store_verified_entries",
                              "Entries covered by the latest checkpoint that the broker's own "
                              "verification of its store proved.");
  verify_ok_ = r.Gauge("jitgate_store_verify_ok",
                       "1 while the store verifies, 0 once a problem was found.");
  verify_ok_->Set({}, 1);
  verify_errors_ = r.Counter("jitgate_store_verify_errors_total",
                             "Problems the broker's verification of its store found.");
  if (has_ca) {
    ca_key_ok_ = r.Gauge("jitgate_ca_key_ok",
                         "1 while the CA key file is present, private and the key the broker "
                         "loaded; 0 otherwise.");
    ca_key_ok_->Set({}, 1);
  }
  spool_bytes_ = r.Gauge("jitgate_spool_backlog_bytes",
                         "Bytes waiting in a recorder host's spool, as it last reported.",
                         {"host"});
  spool_sessions_ = r.Gauge("jitgate_spool_backlog_sessions",
                            "Sessions waiting in a recorder host's spool, as it last reported.",
                            {"host"});
  spool_reported_ = r.Gauge("jitgate_spool_report_time_seconds",
                            "When a recorder host last reported its spool, in Unix seconds.",
                            {"host"});
  certificates_ = r.Counter("jitgate_certificates_issued_total",
                            "SSH certificates the CA issued since the start, by type.", {"type"});
  reloads_ = r.Counter("jitgate_config_reloads_total",
                       "Configuration reloads, by result: applied or refused.", {"result"});
}

void BrokerMetrics::WatchStore(store::Store* store, Clock* clock) {
  registry_.GaugeFunc("jitgate_store_entries", "Entries durable in the store.",
                      [store] { return double(store->durable_size()); });
  registry_.GaugeFunc("jitgate_checkpoint_size", "The size of the latest durable checkpoint.",
                      [store] { return double(store->checkpoint_state().size); });
  registry_.GaugeFunc("jitgate_checkpoint_age_seconds",
                      "Seconds since the latest checkpoint became durable (grows while idle).",
                      [store, clock] {
                        return Seconds(clock->MonotonicNanos() -
                                       store->checkpoint_state().durable_mono);
                      });
  registry_.GaugeFunc(
      "jitgate_checkpoint_lag_seconds",
      "Age of the oldest entry that no durable checkpoint covers yet; 0 when all are covered.",
      [store, clock] {
        int64_t since = store->checkpoint_state().uncovered_since_mono;
        return since < 0 ? 0.0 : Seconds(clock->MonotonicNanos() - since);
      });
}

void BrokerMetrics::WatchBastion(std::function<size_t()> live_sessions) {
  {
    std::lock_guard<std::mutex> l(mu_);
    bastion_ = std::move(live_sessions);
  }
  registry_.GaugeFunc("jitgate_bastion_sessions_live",
                      "Bastion connections being served now (logins and sessions).",
                      [this] { return double(bastion_sessions()); });
}

size_t BrokerMetrics::bastion_sessions() const {
  std::function<size_t()> f;
  {
    std::lock_guard<std::mutex> l(mu_);
    f = bastion_;
  }
  return f ? f() : 0;
}

void BrokerMetrics::OnAuditEvent(const AuditEvent& e, const Request* r) {
  if (e.type == AuditEventType::kCertIssued && e.cert.has_value()) {
    certificates_->Inc({e.cert->kind});
    return;
  }
  std::string outcome = OutcomeOf(e);
  if (outcome.empty() || r == nullptr) return;
  requests_->Inc({r->fields.service, outcome});
  if ((outcome == "approved" || outcome == "denied") && e.time_unix_nanos >= r->created_unix_nanos) {
    decision_seconds_->Observe({}, Seconds(e.time_unix_nanos - r->created_unix_nanos));
  }
}

void BrokerMetrics::OnSessionOpened(const std::string& recorder) {
  sessions_total_->Inc({recorder});
}

void BrokerMetrics::SetLoop(uint64_t pending, uint64_t sessions_live) {
  pending_->Set({}, double(pending));
  sessions_live_->Set({}, double(sessions_live));
}

void BrokerMetrics::ObserveStoreAppend(int64_t nanos) { append_seconds_->Observe({}, Seconds(nanos)); }

void BrokerMetrics::SetStoreHealth(uint64_t bytes, uint64_t verified_entries, bool verify_ok) {
  store_bytes_->Set({}, double(bytes));
  verified_entries_->Set({}, double(verified_entries));
  verify_ok_->Set({}, verify_ok ? 1 : 0);
}

void BrokerMetrics::CountVerifyError() { verify_errors_->Inc(); }

void BrokerMetrics::SetCaKeyOk(bool ok) {
  if (ca_key_ok_ != nullptr) ca_key_ok_->Set({}, ok ? 1 : 0);
}

void BrokerMetrics::OnConfigReload(bool applied, uint64_t now_unix_seconds) {
  reloads_->Inc({applied ? "applied" : "refused"});
  if (!applied) return;
  std::lock_guard<std::mutex> l(mu_);
  config_loaded_at_ = now_unix_seconds;
}

uint64_t BrokerMetrics::config_loaded_at() const {
  std::lock_guard<std::mutex> l(mu_);
  return config_loaded_at_;
}

void BrokerMetrics::SetSpool(const std::string& host, uint64_t sessions, uint64_t bytes,
                             uint64_t now_unix_seconds) {
  std::string dropped;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!spools_.contains(host) && spools_.size() >= kMaxSpoolReports) {
      auto oldest = std::min_element(spools_.begin(), spools_.end(), [](const auto& a, const auto& b) {
        return a.second.reported_at < b.second.reported_at;
      });
      dropped = oldest->first;
      spools_.erase(oldest);
    }
    spools_[host] = wire::SpoolBacklog{host, sessions, bytes, now_unix_seconds};
  }
  for (MetricFamily* f : {spool_bytes_, spool_sessions_, spool_reported_}) {
    if (!dropped.empty()) f->Remove({dropped});
  }
  spool_bytes_->Set({host}, double(bytes));
  spool_sessions_->Set({host}, double(sessions));
  spool_reported_->Set({host}, double(now_unix_seconds));
}

std::vector<wire::SpoolBacklog> BrokerMetrics::spools() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<wire::SpoolBacklog> out;
  for (const auto& [host, b] : spools_) out.push_back(b);
  return out;
}

StoreAuditSink::Observers MetricsObservers(BrokerMetrics* metrics, const RequestBook* book) {
  StoreAuditSink::Observers o;
  if (metrics == nullptr) return o;
  o.event = [metrics, book](const AuditEvent& e) {
    metrics->OnAuditEvent(e, e.request_id.empty() ? nullptr : book->Get(e.request_id));
  };
  o.durable = [metrics](int64_t nanos) { metrics->ObserveStoreAppend(nanos); };
  return o;
}

}  // namespace jitgate::broker
