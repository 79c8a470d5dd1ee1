// HealthMonitor: what jitgated checks about itself in the background, and
// the status report `jitgate status` shows (docs/jitgated.md, "Health").
//
// A thread of its own verifies the store with store::IncrementalVerifier --
// all of it at start, then what was appended since, every `interval` -- so
// the broker knows, rather than assumes, that its store verifies; and checks
// that the CA key file would still load and is the key the broker holds.
// Findings go to BrokerMetrics and into every StatusReport.
//
// Thread-safe. Report and CheckCaKey are meant for the event loop's thread;
// they do not wait for the background thread's work.
#ifndef JITGATE_BROKER_HEALTH_H_
#define JITGATE_BROKER_HEALTH_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "broker/broker_metrics.h"
#include "broker/config.h"
#include "core/base/clock.h"
#include "core/wire/messages.h"
#include "store/incremental_verify.h"
#include "store/note/keys.h"
#include "store/store.h"

namespace jitgate::broker {

struct HealthOptions {
  store::Store* store = nullptr;     // not owned; must outlive the monitor
  BrokerMetrics* metrics = nullptr;  // not owned; must outlive the monitor
  // The CA as configured and the fingerprint of the key the broker loaded;
  // nullopt without a `ca:` section.
  std::optional<CaSettings> ca;
  std::string ca_fingerprint;
  // Time between verification passes (each reads what was appended since the
  // last), and how much one step reads before the thread looks up again.
  std::chrono::nanoseconds interval = std::chrono::seconds(10);
  uint64_t step_bytes = 16u << 20;
  // The store's clock (checkpoint ages are on its MonotonicNanos); default
  // RealClock().
  Clock* clock = nullptr;
};

class HealthMonitor {
 public:
  // Starts the background thread; its first pass verifies the whole store
  // with log_key, the log's verifier key.
  static std::unique_ptr<HealthMonitor> Start(HealthOptions options, note::Verifier log_key);
  ~HealthMonitor();  // Stop()s
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Stops and joins the thread (a pass in progress stops after its current
  // step). Idempotent.
  void Stop();

  // Loads the CA key file as the broker would at start and compares it with
  // the loaded key; records the result (metrics, reports). Nothing without
  // a CA.
  void CheckCaKey();

  // A StatusReport: the event loop passes what only it knows; the rest comes
  // from the store, the last verification pass and the metrics.
  wire::StatusReport Report(const Config& config, const std::string& version,
                            uint64_t now_unix_seconds, uint64_t pending,
                            uint64_t sessions_live);

  // Waits until n verification passes have completed since Start (tests).
  void WaitForPasses(uint64_t n);

 private:
  HealthMonitor(HealthOptions options, note::Verifier log_key);
  void Loop();
  // One verification pass, up to the end of the log; false if stopped.
  bool Pass();

  HealthOptions options_;
  Clock* clock_;
  store::IncrementalVerifier verifier_;  // the thread's only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                // GUARDED_BY(mu_)
  uint64_t passes_ = 0;                              // GUARDED_BY(mu_)
  wire::CheckState verify_ = wire::CheckState::kUnknown;  // GUARDED_BY(mu_)
  std::string verify_error_;                         // GUARDED_BY(mu_)
  uint64_t verified_entries_ = 0;                    // GUARDED_BY(mu_)
  uint64_t verified_at_ = 0;                         // GUARDED_BY(mu_)
  uint64_t store_bytes_ = 0;                         // GUARDED_BY(mu_)
  wire::CheckState ca_ = wire::CheckState::kUnknown;  // GUARDED_BY(mu_)
  std::string ca_detail_;                            // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_HEALTH_H_
