#include "broker/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace jitgate::broker {

namespace {

bool IsName(const std::string& s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Declarations are fixed at build time: a bad one is a bug, found at start.
void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "jitgated: metrics: %s\n", what.c_str());
  std::abort();
}

// HELP text escapes backslash and newline; label values double quotes too.
std::string Escape(const std::string& s, bool quotes) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

const char* TypeName(MetricFamily::Type t) {
  switch (t) {
    case MetricFamily::Type::kCounter:
      return "counter";
    case MetricFamily::Type::kGauge:
      return "gauge";
    case MetricFamily::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// {a="x",b="y"} with an optional extra pair last (a histogram's le), or ""
// without labels.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     const char* extra_name = nullptr, const std::string& extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (out.empty() ? "{" : ",") + names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (extra_name != nullptr) {
    out += (out.empty() ? "{" : ",") + std::string(extra_name) + "=\"" + extra_value + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

std::string EscapeLabelValue(const std::string& v) { return Escape(v, true); }

MetricFamily::MetricFamily(std::mutex* mu, Type type, std::string name, std::string help,
                           std::vector<std::string> label_names, std::vector<double> bounds)
    : mu_(mu),
      type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (label_names_.empty()) Find({});
}

MetricFamily::Series* MetricFamily::Find(const std::vector<std::string>& labels) {
  if (labels.size() != label_names_.size()) return nullptr;
  auto [it, inserted] = series_.try_emplace(labels);
  if (inserted && type_ == Type::kHistogram) it->second.buckets.assign(bounds_.size(), 0);
  return &it->second;
}

void MetricFamily::Add(const std::vector<std::string>& labels, double v) {
  if (type_ == Type::kHistogram || (type_ == Type::kCounter && !(v >= 0))) return;
  std::lock_guard<std::mutex> l(*mu_);
  if (Series* s = Find(labels)) s->value += v;
}

void MetricFamily::Set(const std::vector<std::string>& labels, double v) {
  if (type_ != Type::kGauge) return;
  std::lock_guard<std::mutex> l(*mu_);
  if (Series* s = Find(labels)) s->value = v;
}

void MetricFamily::Observe(const std::vector<std::string>& labels, double v) {
  if (type_ != Type::kHistogram || std::isnan(v)) return;
  std::lock_guard<std::mutex> l(*mu_);
  Series* s = Find(labels);
  if (s == nullptr) return;
  // Buckets are counted apart and summed up when rendered.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  if (i < bounds_.size()) ++s->buckets[i];
  s->value += v;
  ++s->count;
}

void MetricFamily::Remove(const std::vector<std::string>& labels) {
  std::lock_guard<std::mutex> l(*mu_);
  series_.erase(labels);
}

void MetricFamily::Clear() {
  std::lock_guard<std::mutex> l(*mu_);
  series_.clear();
}

void MetricFamily::Render(std::string* out) const {
  *out += "# HELP " + name_ + " " + Escape(help_, false) + "\n";
  *out += "# TYPE " + name_ + " " + TypeName(type_) + "\n";
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::kHistogram) {
      *out += name_ + LabelSet(label_names_, labels) + " " + FormatMetricValue(s.value) + "\n";
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      *out += name_ + "_bucket" + LabelSet(label_names_, labels, "le", FormatMetricValue(bounds_[i])) +
              " " + std::to_string(cumulative) + "\n";
    }
    *out += name_ + "_bucket" + LabelSet(label_names_, labels, "le", "+Inf") + " " +
            std::to_string(s.count) + "\n";
    *out += name_ + "_sum" + LabelSet(label_names_, labels) + " " + FormatMetricValue(s.value) + "\n";
    *out += name_ + "_count" + LabelSet(label_names_, labels) + " " + std::to_string(s.count) + "\n";
  }
}

MetricFamily* MetricsRegistry::Declare(MetricFamily::Type type, std::string name, std::string help,
                                       std::vector<std::string> labels, std::vector<double> bounds) {
  Require(IsName(name, true), "bad metric name '" + name + "'");
  for (const std::string& l : labels) {
    Require(IsName(l, false) && l != "le" && !l.starts_with("__"),
            "bad label name '" + l + "' of " + name);
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    Require(std::isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]),
            "histogram bounds of " + name + " are not finite and ascending");
  }
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& f : families_) Require(f->name_ != name, "metric " + name + " declared twice");
  families_.push_back(std::unique_ptr<MetricFamily>(new MetricFamily(
      &mu_, type, std::move(name), std::move(help), std::move(labels), std::move(bounds))));
  return families_.back().get();
}

MetricFamily* MetricsRegistry::Counter(std::string name, std::string help,
                                       std::vector<std::string> labels) {
  return Declare(MetricFamily::Type::kCounter, std::move(name), std::move(help),
                 std::move(labels), {});
}

MetricFamily* MetricsRegistry::Gauge(std::string name, std::string help,
                                     std::vector<std::string> labels) {
  return Declare(MetricFamily::Type::kGauge, std::move(name), std::move(help), std::move(labels),
                 {});
}

MetricFamily* MetricsRegistry::Histogram(std::string name, std::string help,
                                         std::vector<double> bounds,
                                         std::vector<std::string> labels) {
  return Declare(MetricFamily::Type::kHistogram, std::move(name), std::move(help),
                 std::move(labels), std::move(bounds));
}

void MetricsRegistry::GaugeFunc(std::string name, std::string help, std::function<double()> f) {
  MetricFamily* family = Gauge(std::move(name), std::move(help));
  std::lock_guard<std::mutex> l(mu_);
  funcs_[family] = std::move(f);
}

std::string MetricsRegistry::Render() const {
  // The callbacks run first, outside the lock: they may take other locks.
  std::map<const MetricFamily*, std::function<double()>> funcs;
  {
    std::lock_guard<std::mutex> l(mu_);
    funcs = funcs_;
  }
  std::map<const MetricFamily*, double> values;
  for (const auto& [family, f] : funcs) values[family] = f();
  std::string out;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& f : families_) {
    auto v = values.find(f.get());
    if (v != values.end()) f->series_.begin()->second.value = v->second;
    f->Render(&out);
  }
  return out;
}

}  // namespace jitgate::broker
