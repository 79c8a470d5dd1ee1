#include "broker/health.h"

#include <utility>

#include "broker/cert_authority.h"

namespace jitgate::broker {

namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::string Cut(std::string s, size_t cap) {
  if (s.size() > cap) s.resize(cap);
  return s;
}

uint64_t AgeSeconds(int64_t now_mono, int64_t then_mono) {
  return now_mono <= then_mono ? 0 : uint64_t((now_mono - then_mono) / kSecond);
}

}  // namespace

std::unique_ptr<HealthMonitor> HealthMonitor::Start(HealthOptions options,
                                                    note::Verifier log_key) {
  std::unique_ptr<HealthMonitor> m(new HealthMonitor(std::move(options), std::move(log_key)));
  m->thread_ = std::thread([raw = m.get()] { raw->Loop(); });
  return m;
}

HealthMonitor::HealthMonitor(HealthOptions options, note::Verifier log_key)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      verifier_(options_.store->dir(), std::move(log_key)) {}

HealthMonitor::~HealthMonitor() { Stop(); }

void HealthMonitor::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::WaitForPasses(uint64_t n) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return passes_ >= n || stop_; });
}

void HealthMonitor::Loop() {
  while (Pass()) {
    CheckCaKey();
    std::unique_lock<std::mutex> l(mu_);
    ++passes_;
    cv_.notify_all();
    if (cv_.wait_for(l, options_.interval, [this] { return stop_; })) return;
  }
}

bool HealthMonitor::Pass() {
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return false;
    }
    StatusOr<bool> done = verifier_.Advance(options_.step_bytes);
    const uint64_t now = uint64_t(clock_->NowUnixNanos() / kSecond);
    std::lock_guard<std::mutex> l(mu_);
    verified_entries_ = verifier_.verified_entries();
    store_bytes_ = verifier_.bytes();
    if (!done.ok()) {
      if (verify_ != wire::CheckState::kFailed) {
        verify_error_ = done.status().message();
        options_.metrics->CountVerifyError();
      }
      verify_ = wire::CheckState::kFailed;
      verified_at_ = now;
    } else if (*done) {
      verify_ = wire::CheckState::kOk;
      verified_at_ = now;
    }
    options_.metrics->SetStoreHealth(store_bytes_, verified_entries_,
                                     verify_ != wire::CheckState::kFailed);
    if (!done.ok() || *done) return true;
  }
}

void HealthMonitor::CheckCaKey() {
  if (!options_.ca.has_value()) return;
  // What a restart would do: load the file, refusing one others can read.
  StatusOr<std::unique_ptr<CertAuthority>> ca = CertAuthority::Load(*options_.ca);
  wire::CheckState state = wire::CheckState::kOk;
  std::string detail;
  if (!ca.ok()) {
    state = wire::CheckState::kFailed;
    detail = ca.status().message();
  } else if (std::string fp = (*ca)->public_key().Fingerprint(); fp != options_.ca_fingerprint) {
    state = wire::CheckState::kFailed;
    detail = "ca.key " + options_.ca->key + " now holds another key (" + fp +
             ") than the broker loaded (" + options_.ca_fingerprint + ")";
  } else {
    detail = std::string((*ca)->public_key().type_name()) + " " + fp;
  }
  options_.metrics->SetCaKeyOk(state == wire::CheckState::kOk);
  std::lock_guard<std::mutex> l(mu_);
  ca_ = state;
  ca_detail_ = std::move(detail);
}

wire::StatusReport HealthMonitor::Report(const Config& config, const std::string& version,
                                         uint64_t now_unix_seconds, uint64_t pending,
                                         uint64_t sessions_live) {
  CheckCaKey();
  wire::StatusReport r;
  r.version = Cut(version, wire::kMaxLabelField);
  r.now = now_unix_seconds;
  r.started_at = options_.metrics->started_at();
  r.config_file = Cut(config.file, wire::kMaxCwdField);
  r.config_loaded_at = options_.metrics->config_loaded_at();
  r.pending = pending;
  r.sessions_live = sessions_live;
  r.store_dir = Cut(options_.store->dir(), wire::kMaxCwdField);
  r.store_entries = options_.store->durable_size();
  const store::Store::CheckpointState cp = options_.store->checkpoint_state();
  const int64_t mono = clock_->MonotonicNanos();
  r.checkpoint_size = cp.size;
  r.checkpoint_age = AgeSeconds(mono, cp.durable_mono);
  r.uncovered_entries = cp.uncovered;
  r.uncovered_age = cp.uncovered_since_mono < 0 ? 0 : AgeSeconds(mono, cp.uncovered_since_mono);
  {
    std::lock_guard<std::mutex> l(mu_);
    r.store_bytes = store_bytes_;
    r.verify = verify_;
    r.verified_entries = verified_entries_;
    r.verified_at = verified_at_;
    r.verify_error = Cut(verify_error_, wire::kMaxMessageField);
    r.ca = ca_;
    r.ca_detail = Cut(ca_detail_, wire::kMaxMessageField);
  }
  if (config.bastion.has_value()) {
    r.bastion_listen = Cut(config.bastion->listen, wire::kMaxLabelField);
    r.bastion_sessions = options_.metrics->bastion_sessions();
  }
  if (config.metrics.has_value()) r.metrics_listen = Cut(config.metrics->listen, wire::kMaxCwdField);
  r.spools = options_.metrics->spools();
  return r;
}

}  // namespace jitgate::broker
