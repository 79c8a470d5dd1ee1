// `jitgate status`: GetStatus / StatusReport (docs/protocol.md §4.5).
#include "cli/status_command.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/approver_format.h"
#include "cli/broker_call.h"
#include "cli/command_line.h"
#include "core/config/reader.h"

namespace jitgate::cli {

namespace po = boost::program_options;

namespace {

constexpr char kUsage[] =
    "jitgate status [--json] [--max-checkpoint-age DURATION] [--socket PATH]";

std::string Bytes(uint64_t n) {
  if (n < 1024) return std::to_string(n) + " bytes";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(n) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string Ago(uint64_t now, uint64_t then) {
  return FormatDuration(then >= now ? 0 : int64_t(now - then)) + " ago";
}

class Lines {
 public:
  void Add(const char* mark, const char* label, const std::string& text) {
    char head[32];
    std::snprintf(head, sizeof(head), "%-4s  %-10s  ", mark, label);
    text_ += head + text + "\n";
  }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

}  // namespace

StatusView FormatStatus(const wire::StatusReport& r, int64_t max_checkpoint_age) {
  StatusView v;
  Lines l;
  const uint64_t now = r.now;
  l.Add("ok", "broker",
        EscapeForTerminal(r.version) + ", up " + FormatDuration(int64_t(now - std::min(now, r.started_at))));
  l.Add("ok", "config", EscapeForTerminal(r.config_file) + ", loaded " + Ago(now, r.config_loaded_at));
  l.Add("ok", "requests", std::to_string(r.pending) + " pending");
  l.Add("ok", "sessions", std::to_string(r.sessions_live) + " live");
  l.Add("ok", "store", EscapeForTerminal(r.store_dir) + ": " +
                           Plural(r.store_entries, "entry", "entries") + ", " + Bytes(r.store_bytes));

  std::string cp = "size " + std::to_string(r.checkpoint_size) + ", made " +
                   FormatDuration(int64_t(r.checkpoint_age)) + " ago; ";
  if (r.uncovered_entries == 0) {
    l.Add("ok", "checkpoint", cp + "it covers every entry");
  } else {
    cp += Plural(r.uncovered_entries, "entry", "entries") + " not yet covered, the oldest for " +
          FormatDuration(int64_t(r.uncovered_age));
    if (int64_t(r.uncovered_age) > max_checkpoint_age) {
      l.Add("FAIL", "checkpoint", cp);
      v.problems.push_back("checkpoint: " + Plural(r.uncovered_entries, "entry has", "entries have") +
                           " waited " + FormatDuration(int64_t(r.uncovered_age)) +
                           " for a signed checkpoint (more than " +
                           FormatDuration(max_checkpoint_age) + ")");
    } else {
      l.Add("ok", "checkpoint", cp);
    }
  }

  switch (r.verify) {
    case wire::CheckState::kUnknown:
      l.Add("WARN", "verified", "the first verification pass is still running (" +
                                    Plural(r.verified_entries, "entry", "entries") + " proven so far)");
      break;
    case wire::CheckState::kOk:
      l.Add("ok", "verified", Plural(r.verified_entries, "entry", "entries") + ", last pass " +
                                  Ago(now, r.verified_at));
      break;
    case wire::CheckState::kFailed:
      l.Add("FAIL", "verified", "after " + Plural(r.verified_entries, "entry", "entries") + ": " +
                                    EscapeForTerminal(r.verify_error));
      v.problems.push_back("the store does not verify: " + EscapeForTerminal(r.verify_error));
      break;
  }

  switch (r.ca) {
    case wire::CheckState::kUnknown:
      l.Add("-", "ca key", "no certificate authority configured");
      break;
    case wire::CheckState::kOk:
      l.Add("ok", "ca key", EscapeForTerminal(r.ca_detail));
      break;
    case wire::CheckState::kFailed:
      l.Add("FAIL", "ca key", EscapeForTerminal(r.ca_detail));
      v.problems.push_back("CA key: " + EscapeForTerminal(r.ca_detail));
      break;
  }
  if (r.bastion_listen.empty()) {
    l.Add("-", "bastion", "not configured");
  } else {
    l.Add("ok", "bastion", EscapeForTerminal(r.bastion_listen) + ", " +
                               Plural(r.bastion_sessions, "connection", "connections"));
  }
  if (r.metrics_listen.empty()) {
    l.Add("-", "metrics", "not configured");
  } else {
    l.Add("ok", "metrics", EscapeForTerminal(r.metrics_listen));
  }
  if (r.spools.empty()) l.Add("-", "spool", "no recorder has reported its spool");
  for (const wire::SpoolBacklog& b : r.spools) {
    std::string what = b.sessions == 0 ? "empty"
                                       : Plural(b.sessions, "session", "sessions") + ", " +
                                             Bytes(b.bytes) + " waiting";
    l.Add(b.sessions == 0 ? "ok" : "WARN", "spool",
          EscapeForTerminal(b.host) + ": " + what + ", reported " + Ago(now, b.reported_at));
  }
  v.text = l.Take();
  return v;
}

std::string StatusJson(const wire::StatusReport& r, const StatusView& view) {
  auto state = [](wire::CheckState s) {
    switch (s) {
      case wire::CheckState::kOk:
        return "ok";
      case wire::CheckState::kFailed:
        return "failed";
      case wire::CheckState::kUnknown:
        break;
    }
    return "unknown";
  };
  nlohmann::json spools = nlohmann::json::array();
  for (const wire::SpoolBacklog& b : r.spools) {
    spools.push_back({{"host", b.host},
                      {"sessions", b.sessions},
                      {"bytes", b.bytes},
                      {"reported_at", b.reported_at}});
  }
  nlohmann::json j = {
      {"healthy", view.problems.empty()}, {"problems", view.problems},
      {"version", r.version},             {"now", r.now},
      {"started_at", r.started_at},       {"config_file", r.config_file},
      {"config_loaded_at", r.config_loaded_at},
      {"pending", r.pending},             {"sessions_live", r.sessions_live},
      {"store_dir", r.store_dir},         {"store_entries", r.store_entries},
      {"store_bytes", r.store_bytes},     {"checkpoint_size", r.checkpoint_size},
      {"checkpoint_age", r.checkpoint_age},
      {"uncovered_entries", r.uncovered_entries},
      {"uncovered_age", r.uncovered_age}, {"verify", state(r.verify)},
      {"verified_entries", r.verified_entries},
      {"verified_at", r.verified_at},     {"verify_error", r.verify_error},
      {"ca", state(r.ca)},                {"ca_detail", r.ca_detail},
      {"bastion_listen", r.bastion_listen},
      {"bastion_sessions", r.bastion_sessions},
      {"metrics_listen", r.metrics_listen},
      {"spools", spools}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

int RunStatus(const std::vector<std::string>& args, const ApproverIo& io) {
  po::options_description desc("jitgate status");
  std::string max_age = std::to_string(kDefaultMaxCheckpointAgeSeconds) + "s";
  desc.add_options()("json", "print the report as JSON")(
      "max-checkpoint-age", po::value(&max_age),
      "the longest an entry may wait for a signed checkpoint (default 10s)");
  AddSocketOption(desc);
  po::variables_map vm;
  if (!ParseCommandLine(args, desc, {}, &vm, *io.out, kUsage)) return 0;
  StatusOr<std::chrono::nanoseconds> age = config::ParseDuration(max_age);
  if (!age.ok()) return ErrorLine(*io.err, "--max-checkpoint-age: " + age.status().message(), 2);
  const int64_t max_seconds = std::chrono::duration_cast<std::chrono::seconds>(*age).count();

  const std::string path = SocketPathOf(vm, io.socket_env);
  StatusOr<wire::Client> client = ConnectToBroker(path, io.clock);
  if (!client.ok()) return ErrorLine(*io.err, StatusLine(client.status()), 1);
  StatusOr<Reply<wire::StatusReport>> reply =
      CallBroker<wire::StatusReport>(*client, wire::GetStatus{}, io.clock);
  if (!reply.ok()) return ErrorLine(*io.err, StatusLine(reply.status()), 1);
  if (reply->error) {
    return ErrorLine(*io.err,
                     "broker error (" + std::string(wire::ErrorCodeName(reply->error->code)) +
                         "): " + EscapeForTerminal(reply->error->message),
                     1);
  }
  StatusView view = FormatStatus(*reply->value, max_seconds);
  *io.out << (vm.count("json") ? StatusJson(*reply->value, view) : view.text) << std::flush;
  for (const std::string& p : view.problems) ErrorLine(*io.err, p, 1);
  return view.problems.empty() ? 0 : 1;
}

}  // namespace jitgate::cli
