// jitgated: the jitgate broker daemon.
//
//   jitgated --config /etc/jitgate/jitgate.yaml [--foreground] [--check-config]
//
// Reads and validates the configuration, opens (or creates) the signed store
// and the state database, and serves the Unix socket until SIGTERM. With a
// `bastion:` section it also accepts SSH connections and starts one
// `jitgated --bastion-session` process per connection (a hidden option, for
// that use only: docs/bastion.md). Exit status: 0 clean stop or valid
// configuration, 1 runtime failure, 2 usage or configuration error. Every
// failure is one line on stderr.
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>

#include "broker/bastion/listener.h"
#include "broker/bastion/privileges.h"
#include "broker/bastion/session.h"
#include "broker/config.h"
#include "broker/daemon_log.h"
#include "broker/health.h"
#include "broker/metrics_http.h"
#include "broker/server.h"
#include "broker/state_db.h"
#include "core/base/env.h"
#include "store/store.h"

namespace po = boost::program_options;

namespace {

constexpr char kVersion[] = "0.1.0";

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "jitgated: %s\n", message.c_str());
  return code;
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// store.group as a gid (nullopt when unset); an unknown group is an error.
jitgate::StatusOr<std::optional<uint32_t>> StoreGroup(const jitgate::broker::StoreSettings& s) {
  if (s.group.empty()) return std::optional<uint32_t>();
  std::optional<gid_t> gid = jitgate::broker::GidOfGroup(s.group);
  if (!gid.has_value()) return jitgate::FailedPreconditionError("store.group: no group '" + s.group + "'");
  return std::optional<uint32_t>(static_cast<uint32_t>(*gid));
}

// Where the bastion's session processes read their configuration: a copy of
// the bytes the broker validated last, so that a bad edit of the file (which
// a reload refuses) never reaches them.
std::string BastionConfigPath(const jitgate::broker::Config& config) {
  return config.broker.state_dir + "/bastion-config.yaml";
}

int Serve(const jitgate::broker::LoadedConfig& loaded, const std::string& config_path) {
  using namespace jitgate;
  const broker::Config& config = loaded.config;
  // Block the stop signals before any thread exists (the store starts its
  // writer thread), so that every thread inherits the mask and the signals
  // reach only the server's signalfd, never a default action that would kill
  // the process mid-write.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return Fail(1, "cannot block signals");
  const std::string& state_dir = config.broker.state_dir;
  if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(1, "cannot create state directory " + state_dir + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Fail(1, "state directory " + state_dir + " is not a directory");
  }

  // The CA key, before anything else is opened: a key that others can read
  // (or that is missing) stops the broker here, with the reason.
  std::unique_ptr<broker::CertAuthority> ca;
  if (config.ca.has_value()) {
    StatusOr<std::unique_ptr<broker::CertAuthority>> ca_or = broker::CertAuthority::Load(*config.ca);
    if (!ca_or.ok()) return Fail(1, ca_or.status().message());
    ca = std::move(*ca_or);
    std::fprintf(stderr, "jitgated: certificate authority %s %s, KRL %s\n",
                 std::string(ca->public_key().type_name()).c_str(),
                 ca->public_key().Fingerprint().c_str(), config.ca->krl.c_str());
  }

  // The store: created on first start (the key must exist: `jitgate log keygen`).
  StatusOr<std::optional<uint32_t>> group_or = StoreGroup(config.store);
  if (!group_or.ok()) return Fail(1, group_or.status().message());
  const std::optional<uint32_t> store_group = *group_or;
  Env* env = DefaultEnv();
  const std::string& store_dir = config.store.dir;
  if (::stat(store_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Fail(1, "store " + store_dir + ": " + std::strerror(errno));
    Status created = store::CreateStore(env, store_dir, config.store.key, store_group);
    if (!created.ok()) return Fail(1, "creating store " + store_dir + ": " + created.message());
    std::fprintf(stderr, "jitgated: created store %s\n", store_dir.c_str());
  }
  store::StoreOptions so;
  so.key_path = config.store.key;
  so.group = store_group;
  StatusOr<std::unique_ptr<store::Store>> st_or = store::Store::Open(store_dir, so);
  if (!st_or.ok()) return Fail(1, "opening store " + store_dir + ": " + st_or.status().message());
  std::unique_ptr<store::Store> store = std::move(*st_or);

  StatusOr<std::unique_ptr<broker::StateDb>> db = broker::StateDb::Open(state_dir + "/jitgated.db");
  if (!db.ok()) return Fail(1, db.status().message());

  // Set after server.Start(), on this thread, before Run() consults it.
  std::unique_ptr<bastion::Listener> listener;
  // Metrics and health (docs/jitgated.md, "Metrics", "Health"): the store is
  // verified in the background from now on.
  StatusOr<note::Signer> log_key = store::LoadSignerKey(env, config.store.key);
  if (!log_key.ok()) return Fail(1, "store.key: " + log_key.status().message());
  broker::BrokerMetrics metrics(kVersion, uint64_t(::time(nullptr)), ca != nullptr);
  metrics.WatchStore(store.get(), RealClock());
  broker::HealthOptions ho;
  ho.store = store.get();
  ho.metrics = &metrics;
  if (ca != nullptr) {
    ho.ca = *config.ca;
    ho.ca_fingerprint = ca->public_key().Fingerprint();
  }
  std::unique_ptr<broker::HealthMonitor> health =
      broker::HealthMonitor::Start(std::move(ho), log_key->GetVerifier());

  broker::ServerOptions opts;
  opts.server_id = std::string("jitgated ") + kVersion + " " + Hostname();
  opts.metrics = &metrics;
  opts.health = health.get();
  opts.ca = ca.get();
  opts.config_sha256 = loaded.sha256;
  opts.load_config = [config_path]() { return broker::LoadConfigFile(config_path); };
  // The bastion's part of a reload: its session processes read the new
  // configuration from the copy, and the listener takes the new limit.
  // Reloads happen on the server's thread, so `listener` is set by then.
  opts.apply_config = [&listener, env](const broker::LoadedConfig& next) -> Status {
    if (!next.config.bastion.has_value() || listener == nullptr) return OkStatus();
    Status s = env->WriteFileAtomically(BastionConfigPath(next.config), AsBytes(next.text), 0600);
    if (!s.ok()) return Status(s.code(), "saving the bastion's copy: " + s.message());
    listener->SetMaxSessions(static_cast<size_t>(next.config.bastion->max_sessions));
    return OkStatus();
  };
  // A stop ends the bastion's sessions while the loop still serves them, so
  // that each records its end; the listener kills those that do not end.
  opts.on_stopping = [&listener] {
    if (listener != nullptr) listener->BeginStop();
  };
  opts.draining = [&listener] { return listener != nullptr && listener->live_sessions() > 0; };
  opts.is_bastion_session = [&listener](pid_t pid) {
    return listener != nullptr && listener->IsSessionProcess(pid);
  };
  broker::Server server(config, db->get(), store.get(), opts);
  Status s = server.Start();
  if (!s.ok()) return Fail(1, s.message());
  if (config.bastion.has_value()) {
    // The session processes load the copy (an absolute path: they may run
    // elsewhere).
    const std::string copy = BastionConfigPath(config);
    Status saved = env->WriteFileAtomically(copy, AsBytes(loaded.text), 0600);
    if (!saved.ok()) return Fail(1, "saving the bastion's configuration copy: " + saved.message());
    bastion::ListenerOptions lo;
    lo.self_exe = "/proc/self/exe";
    lo.config_path = copy;
    StatusOr<std::unique_ptr<bastion::Listener>> started =
        bastion::Listener::Start(*config.bastion, std::move(lo));
    if (!started.ok()) return Fail(1, started.status().message());
    listener = std::move(*started);
    const std::string& listen = config.bastion->listen;
    std::fprintf(stderr, "jitgated: bastion listening on %s:%u\n",
                 listen.substr(0, listen.rfind(':')).c_str(), listener->port());
  }
  if (listener != nullptr) {
    bastion::Listener* l = listener.get();  // stopped only after the metrics
    metrics.WatchBastion([l] { return l->live_sessions(); });
  }
  std::unique_ptr<broker::MetricsHttpServer> http;
  if (config.metrics.has_value()) {
    StatusOr<std::unique_ptr<broker::MetricsHttpServer>> started = broker::MetricsHttpServer::Start(
        config.metrics->listen, [&metrics] { return metrics.Render(); });
    if (!started.ok()) return Fail(1, started.status().message());
    http = std::move(*started);
    std::fprintf(stderr, "jitgated: metrics on %s (GET /metrics)\n", http->address().c_str());
  }
  broker::NotifyReady("serving on " + config.broker.socket);
  s = server.Run();
  broker::NotifyStopping();
  if (http != nullptr) http->Stop();
  health->Stop();
  if (listener != nullptr) listener->Stop();
  Status closed = store->Close();
  if (!s.ok()) return Fail(1, "stopped: " + s.message());
  if (!closed.ok()) return Fail(1, "closing store: " + closed.message());
  std::fprintf(stderr, "jitgated: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Under the packaged unit jitgated runs as `jitgate` with CAP_SETUID and
  // CAP_SETGID as ambient capabilities, for one purpose only: its bastion
  // session processes (the same binary, exec'd) inherit them and use them
  // to switch to bastion.run_as (bastion/privileges.h). Lower them from the
  // effective set before anything else runs, and before any thread exists
  // (capabilities are per thread), so that neither the broker's own code nor
  // a session process before its switch runs with them in effect. They stay
  // permitted and ambient, so the next exec still gets them.
  if (jitgate::Status s = jitgate::bastion::LowerSwitchCapabilities(); !s.ok()) {
    return Fail(1, s.message());
  }
  po::options_description desc("Usage: jitgated --config FILE [--foreground] [--check-config]");
  desc.add_options()("help,h", "show this help")("version", "print the version")(
      "config,c", po::value<std::string>()->default_value(jitgate::broker::kDefaultConfigPath),
      "configuration file (jitgate.yaml)")("foreground,f",
                                           "stay in the foreground and log to stderr (the only "
                                           "mode: run it under systemd or a supervisor)")(
      "check-config", "validate the configuration and exit (0 valid, 2 invalid)");
  // Not in --help: how the bastion listener starts a session process, with
  // the client connection as fd 3 (bastion/listener.h).
  po::options_description hidden;
  hidden.add_options()("bastion-session", "");
  po::options_description all;
  all.add(desc).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Fail(2, std::string(e.what()) + " (see jitgated --help)");
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "jitgated " << kVersion << "\n";
    return 0;
  }
  const std::string path = vm["config"].as<std::string>();
  jitgate::StatusOr<jitgate::broker::LoadedConfig> loaded = jitgate::broker::LoadConfigFile(path);
  if (!loaded.ok()) return Fail(2, loaded.status().message());
  if (vm.count("bastion-session")) return jitgate::bastion::RunSession(loaded->config, 3);
  if (vm.count("check-config")) {
    jitgate::StatusOr<std::optional<uint32_t>> group = StoreGroup(loaded->config.store);
    if (!group.ok()) return Fail(2, path + ": " + group.status().message());
    std::printf("%s: configuration is valid (%zu policies)\n", path.c_str(),
                loaded->config.policy.rules.size());
    return 0;
  }
  return Serve(*loaded, path);
}
