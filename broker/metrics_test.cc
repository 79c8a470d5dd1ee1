#include "broker/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "broker/broker_metrics.h"

namespace jitgate::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, RendersTheTextFormatExactly) {
  MetricsRegistry r;
  MetricFamily* requests =
      r.Counter("jitgate_requests_total", "Requests by outcome.", {"service", "outcome"});
  MetricFamily* pending = r.Gauge("jitgate_requests_pending", "Waiting now.");
  MetricFamily* seconds = r.Histogram("jitgate_decision_seconds", "Time to decide.", {1, 2.5, 60});
  requests->Inc({"sshd", "approved"});
  requests->Add({"sshd", "approved"}, 2);
  requests->Inc({"sudo", "denied"});
  requests->Add({"sudo", "denied"}, -1);  // counters never go down
  pending->Set({}, 7);
  seconds->Observe({}, 0.5);
  seconds->Observe({}, 2.5);  // the bound is inclusive
  seconds->Observe({}, 90);
  EXPECT_EQ(r.Render(),
            "# HELP jitgate_requests_total Requests by outcome.\n"
            "# TYPE jitgate_requests_total counter\n"
            "jitgate_requests_total{service=\"sshd\",outcome=\"approved\"} 3\n"
            "jitgate_requests_total{service=\"sudo\",outcome=\"denied\"} 1\n"
            "# HELP jitgate_requests_pending Waiting now.\n"
            "# TYPE jitgate_requests_pending gauge\n"
            "jitgate_requests_pending 7\n"
            "# HELP jitgate_decision_seconds Time to decide.\n"
            "# TYPE jitgate_decision_seconds histogram\n"
            "jitgate_decision_seconds_bucket{le=\"1\"} 1\n"
            "jitgate_decision_seconds_bucket{le=\"2.5\"} 2\n"
            "jitgate_decision_seconds_bucket{le=\"60\"} 2\n"
            "jitgate_decision_seconds_bucket{le=\"+Inf\"} 3\n"
            "jitgate_decision_seconds_sum 93\n"
            "jitgate_decision_seconds_count 3\n");
}

TEST(MetricsTest, LabelledHistogramsAndEscaping) {
  MetricsRegistry r;
  MetricFamily* h = r.Histogram("x_seconds", "Help with \\ and\nnewline.", {0.25}, {"host"});
  h->Observe({"a\"b\\c\nd"}, 0.125);
  r.Gauge("y", "Unset labelled gauge.", {"host"});
  EXPECT_EQ(r.Render(),
            "# HELP x_seconds Help with \\\\ and\\nnewline.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{host=\"a\\\"b\\\\c\\nd\",le=\"0.25\"} 1\n"
            "x_seconds_bucket{host=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n"
            "x_seconds_sum{host=\"a\\\"b\\\\c\\nd\"} 0.125\n"
            "x_seconds_count{host=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# HELP y Unset labelled gauge.\n"
            "# TYPE y gauge\n");
}

TEST(MetricsTest, WrongLabelCountsAndTypesChangeNothing) {
  MetricsRegistry r;
  MetricFamily* c = r.Counter("c_total", "C.", {"a"});
  MetricFamily* g = r.Gauge("g", "G.");
  c->Inc({});
  c->Inc({"x", "y"});
  c->Set({"x"}, 5);        // not a gauge
  c->Observe({"x"}, 1);    // not a histogram
  g->Observe({}, 1);
  g->Add({}, -2);          // gauges may go down
  EXPECT_EQ(r.Render(),
            "# HELP c_total C.\n# TYPE c_total counter\n"
            "# HELP g G.\n# TYPE g gauge\ng -2\n");
  c->Inc({"x"});
  c->Remove({"x"});
  g->Clear();
  EXPECT_EQ(r.Render(), "# HELP c_total C.\n# TYPE c_total counter\n# HELP g G.\n# TYPE g gauge\n");
}

TEST(MetricsTest, GaugeFuncsAreReadAtRender) {
  MetricsRegistry r;
  double v = 1.5;
  r.GaugeFunc("f", "F.", [&v] { return v; });
  EXPECT_THAT(r.Render(), HasSubstr("\nf 1.5\n"));
  v = 3;
  EXPECT_THAT(r.Render(), HasSubstr("\nf 3\n"));
}

TEST(MetricsTest, ValuesAreFormattedForPrometheus) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsDeathTest, BadDeclarationsAbort) {
  EXPECT_DEATH(MetricsRegistry().Counter("9lives", "x"), "bad metric name '9lives'");
  EXPECT_DEATH(MetricsRegistry().Histogram("h", "x", {1}, {"le"}), "bad label name 'le' of h");
  EXPECT_DEATH(MetricsRegistry().Histogram("h", "x", {2, 1}), "not finite and ascending");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.Gauge("g", "x");
        r.Counter("g", "y");
      },
      "metric g declared twice");
}

Request RequestAt(const std::string& service, int64_t created) {
  Request r;
  r.id = "7f3a9c02";
  r.fields.service = service;
  r.created_unix_nanos = created;
  return r;
}

AuditEvent Event(AuditEventType type, const std::string& actor, int64_t at) {
  AuditEvent e;
  e.type = type;
  e.request_id = "7f3a9c02";
  e.actor = actor;
  e.time_unix_nanos = at;
  return e;
}

TEST(BrokerMetricsTest, AuditEventsBecomeRequestAndCertificateCounts) {
  BrokerMetrics m("0.1.0", 1767225600, /*has_ca=*/true);
  const int64_t s = 1'000'000'000;
  Request sshd = RequestAt("sshd", 100 * s);
  m.OnAuditEvent(Event(AuditEventType::kCreated, "alice", 100 * s), &sshd);
  m.OnAuditEvent(Event(AuditEventType::kVote, "bob", 101 * s), &sshd);
  m.OnAuditEvent(Event(AuditEventType::kApproved, "carol", 112 * s), &sshd);
  m.OnAuditEvent(Event(AuditEventType::kUsed, "alice", 113 * s), &sshd);
  Request sudo = RequestAt("sudo", 200 * s);
  m.OnAuditEvent(Event(AuditEventType::kApproved, kBrokerActor, 200 * s), &sudo);
  m.OnAuditEvent(Event(AuditEventType::kDenied, kBrokerActor, 200 * s), &sudo);
  m.OnAuditEvent(Event(AuditEventType::kDenied, "bob", 203 * s), &sudo);
  m.OnAuditEvent(Event(AuditEventType::kExpired, kBrokerActor, 500 * s), nullptr);  // forgotten
  AuditEvent cert = Event(AuditEventType::kCertIssued, kBrokerActor, 113 * s);
  cert.cert = CertAudit{};
  cert.cert->kind = "user";
  m.OnAuditEvent(cert, &sshd);
  m.OnSessionOpened("jitgate-rec");
  m.SetLoop(4, 2);
  m.SetSpool("db1", 2, 4096, 1767229000);
  const std::string text = m.Render();
  for (const char* line :
       {"jitgate_build_info{version=\"0.1.0\"} 1\n", "jitgate_start_time_seconds 1767225600\n",
        "jitgate_requests_total{service=\"sshd\",outcome=\"approved\"} 1\n",
        "jitgate_requests_total{service=\"sshd\",outcome=\"used\"} 1\n",
        "jitgate_requests_total{service=\"sudo\",outcome=\"auto_approved\"} 1\n",
        "jitgate_requests_total{service=\"sudo\",outcome=\"denied\"} 1\n",
        "jitgate_requests_total{service=\"sudo\",outcome=\"policy_denied\"} 1\n",
        "jitgate_decision_seconds_bucket{le=\"5\"} 1\n",   // sudo: 3 s
        "jitgate_decision_seconds_bucket{le=\"15\"} 2\n",  // sshd: 12 s
        "jitgate_decision_seconds_sum 15\n", "jitgate_decision_seconds_count 2\n",
        "jitgate_certificates_issued_total{type=\"user\"} 1\n",
        "jitgate_sessions_total{recorder=\"jitgate-rec\"} 1\n", "jitgate_requests_pending 4\n",
        "jitgate_sessions_live 2\n", "jitgate_ca_key_ok 1\n", "jitgate_store_verify_ok 1\n",
        "jitgate_spool_backlog_bytes{host=\"db1\"} 4096\n",
        "jitgate_spool_backlog_sessions{host=\"db1\"} 2\n",
        "jitgate_spool_report_time_seconds{host=\"db1\"} 1767229000\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_THAT(text, Not(HasSubstr("outcome=\"expired\"")));
  EXPECT_THAT(text, Not(HasSubstr("outcome=\"created\"")));
}

TEST(BrokerMetricsTest, SpoolReportsAreKeptPerHostAndCapped) {
  BrokerMetrics m("0.1.0", 0, /*has_ca=*/false);
  for (size_t i = 0; i < kMaxSpoolReports; ++i) m.SetSpool("h" + std::to_string(i), 1, 1, 1000 + i);
  m.SetSpool("h0", 3, 30, 5000);  // an update, not a new host
  m.SetSpool("new", 1, 1, 6000);  // drops the oldest report: h1's
  std::vector<wire::SpoolBacklog> spools = m.spools();
  EXPECT_EQ(spools.size(), kMaxSpoolReports);
  EXPECT_EQ(spools.front(), (wire::SpoolBacklog{"h0", 3, 30, 5000}));
  const std::string text = m.Render();
  EXPECT_THAT(text, Not(HasSubstr("host=\"h1\"")));
  EXPECT_THAT(text, HasSubstr("jitgate_spool_backlog_bytes{host=\"new\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("jitgate_ca_key_ok")));
  m.OnConfigReload(false, 7000);
  EXPECT_EQ(m.config_loaded_at(), 0u);
  m.OnConfigReload(true, 8000);
  EXPECT_EQ(m.config_loaded_at(), 8000u);
  EXPECT_THAT(m.Render(), HasSubstr("jitgate_config_reloads_total{result=\"applied\"} 1\n"
                                    "jitgate_config_reloads_total{result=\"refused\"} 1\n"));
}

}  // namespace
}  // namespace jitgate::broker
