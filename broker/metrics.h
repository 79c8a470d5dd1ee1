// Metrics: a small registry of Prometheus counters, gauges and histograms
// with labels, rendered in the text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Families are declared once, at start, and live as long as the registry.
// Series (one per combination of label values) appear at their first update;
// a family without labels has its one series from the start, at zero.
// Rendering is deterministic: families in declaration order, series sorted
// by label values.
//
// Thread-safe the simple way: one mutex guards every value. The broker's
// loop updates, the HTTP thread renders; neither holds it for long.
#ifndef JITGATE_BROKER_METRICS_H_
#define JITGATE_BROKER_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace jitgate::broker {

class MetricsRegistry;

// One metric family: a name, a type, its label names, and its series.
class MetricFamily {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Adds v (>= 0 for a counter) to the series with these label values, one
  // per label name, in order. A wrong number of values is a programming
  // error: the update is dropped.
  void Add(const std::vector<std::string>& labels, double v);
  void Inc(const std::vector<std::string>& labels = {}) { Add(labels, 1); }
  // Gauges only: sets the series' value.
  void Set(const std::vector<std::string>& labels, double v);
  // Histograms only: counts v into its bucket, the sum and the count.
  void Observe(const std::vector<std::string>& labels, double v);
  // Drops one series (a host that no longer reports), or all of them.
  void Remove(const std::vector<std::string>& labels);
  void Clear();

 private:
  friend class MetricsRegistry;
  struct Series {
    double value = 0;                  // counters, gauges; a histogram's sum
    uint64_t count = 0;                // histograms
    std::vector<uint64_t> buckets;     // histograms: per bound, not cumulative
  };
  MetricFamily(std::mutex* mu, Type type, std::string name, std::string help,
               std::vector<std::string> label_names, std::vector<double> bounds);
  // REQUIRES(*mu_); nullptr for a wrong number of label values.
  Series* Find(const std::vector<std::string>& labels);
  void Render(std::string* out) const;  // REQUIRES(*mu_)

  std::mutex* mu_;
  const Type type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms: ascending upper bounds, no +Inf
  std::map<std::vector<std::string>, Series> series_;  // GUARDED_BY(*mu_)
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Declare a family. Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label
  // names [a-zA-Z_][a-zA-Z0-9_]* ("le" is reserved for histograms), and a
  // name may be declared once: anything else is a programming error and
  // aborts. Histogram bounds must be finite and ascending.
  MetricFamily* Counter(std::string name, std::string help, std::vector<std::string> labels = {});
  MetricFamily* Gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  MetricFamily* Histogram(std::string name, std::string help, std::vector<double> bounds,
                          std::vector<std::string> labels = {});
  // A gauge without labels whose value is read from f at each Render(),
  // outside the registry's lock: f must be thread-safe.
  void GaugeFunc(std::string name, std::string help, std::function<double()> f);

  // The text exposition of every family.
  std::string Render() const;

 private:
  MetricFamily* Declare(MetricFamily::Type type, std::string name, std::string help,
                        std::vector<std::string> labels, std::vector<double> bounds);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
  std::map<const MetricFamily*, std::function<double()>> funcs_;
};

// Formats a sample value as the exposition format expects: integers without
// a fraction, others in the shortest form that reads back exactly, "+Inf",
// "-Inf", "NaN".
std::string FormatMetricValue(double v);
// A label value escaped for the exposition format (\\, \", \n).
std::string EscapeLabelValue(const std::string& v);

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_METRICS_H_
