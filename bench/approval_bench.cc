// approval_bench: the live-approval targets of PRODUCT.md / issue #4.
//
//   1. Decision -> PAM module returns, with W clients already waiting
//      (W = 1, 1,000, 10,000): the real jitgated (a child process with a
//      scratch store and database) holds W waiting requests filed over the
//      socket; then, one at a time, a real pam_acct_mgmt() through
//      pam_jitgate.so (Linux-PAM, pam_start_confdir) files a request, an
//      approver connection sees it (Follow) and approves it, and we time
//      from sending Approve to pam_acct_mgmt() returning. p50/p99 against
//      the 5 ms target; broker RSS against 200 MB. Baseline in the same run:
//      the same PAM call on a stack of pam_permit.so, and one request/reply
//      round trip over the broker's socket (Hello) -- the floor of any
//      answer a waiting client can get.
//   2. Requests/second through an auto-approve policy, end to end over the
//      socket (connect, Hello, SubmitRequest, Decision), C client threads.
//      Baseline: connect + Hello alone, same threads -- the socket and loop
//      cost without filing, auditing and persisting a request.
//   3. Certificate requests (PRODUCT.md F4) through an auto-approve policy
//      with the broker's CA (Ed25519): in process, as 2 but each request
//      carries a public key and its Decision a signed certificate (serial
//      counter, certificate record, 4 audit entries); and the real
//      `jitgate request` program, one process per certificate (key
//      generation, request, key and certificate files written), C at a time.
//      Baselines: section 2's plain requests, and starting `jitgate help`.
//
// Usage: approval_bench [--waiters=1,1000,10000] [--samples=200]
//                       [--seconds=5] [--clients=8] [--cli-clients=2]
#include <security/pam_appl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "ca/sshkey.h"
#include "core/base/env.h"
#include "core/wire/client.h"
#include "core/wire/framing.h"
#include "core/wire/messages.h"
#include "store/note/keys.h"
#include "store/store.h"
#include "tests/testing/temp_dir.h"

namespace jitgate::bench {
namespace {

using wire::Deadline;

Deadline Soon(int64_t ms = 30'000) { return Deadline::InMillis(RealClock(), ms); }

// The broker under test, in a scratch directory.
class Broker {
 public:
  explicit Broker(const std::string& policies, bool with_ca = false) {
    std::string ca;
    if (with_ca) {
      ca::PrivateKey key = Unwrap(ca::PrivateKey::Generate(ca::KeyType::kEd25519), "ca key");
      CheckOk(ca::WritePrivateKeyFile(dir_.Join("ca"), key, "bench ca"), "write ca key");
      ca = "ca:\n  key: " + dir_.Join("ca") + "\n  max_ttl: 1h\n";
    }
    auto signer = note::Signer::FromSeed("bench.jitgate/log", crypto::Sha256(AsBytes("bench")));
    CheckOk(signer.status(), "key");
    CheckOk(DefaultEnv()->WriteFileAtomically(dir_.Join("log.key"),
                                              signer->EncodeSignerKey().span(), 0600),
            "write key");
    socket_ = dir_.Join("jitgated.sock");
    std::ofstream(dir_.Join("jitgate.yaml"))
        << "broker:\n  socket: " << socket_ << "\n  state_dir: " << dir_.path()
        << "\n  submitters: [root]\nstore:\n  dir: " << dir_.Join("store")
        << "\n  key: " << dir_.Join("log.key") << "\n"
        << ca << policies;
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      ::execl(JITGATED_PATH, "jitgated", "--config", dir_.Join("jitgate.yaml").c_str(),
              "--foreground", nullptr);
      _exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (wire::Client::Connect(socket_, Soon(1000), "bench").ok()) return;
      usleep(10'000);
    }
    std::fprintf(stderr, "approval_bench: jitgated did not start\n");
    std::exit(1);
  }
  ~Broker() {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_.path(); }
  int64_t RssKiB() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
    }
    return -1;
  }

 private:
  testing::TempDir dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

// A raw waiting client: a socket that has sent Hello and SubmitRequest and
// holds its RequestAccepted, nothing more -- a login waiting in sshd costs
// the broker exactly this.
int FileWaiting(const std::string& path, int n) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  while (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EAGAIN) {
      std::perror("connect");
      std::exit(1);
    }
    usleep(1000);
  }
  wire::RequestFields f;
  f.service = "sshd";
  f.user = "filler" + std::to_string(n);
  f.target_user = f.user;
  f.host = "db1";
  Bytes out = Unwrap(wire::EncodeMessage(wire::Hello{1, 1, "bench"}), "hello");
  Bytes sub = Unwrap(wire::EncodeMessage(wire::SubmitRequest{f, 3600, false}), "submit");
  out.insert(out.end(), sub.begin(), sub.end());
  CheckOk(wire::WriteFull(fd, out, Soon()), "write");
  return fd;
}

// Reads frames from fd until a RequestAccepted arrived.
void AwaitAccepted(int fd) {
  wire::FrameReader r;
  int got = 0;
  while (got < 2) {
    auto res = Unwrap(r.ReadFrom(fd), "read");
    if (res == wire::FrameReader::ReadResult::kEof) {
      std::fprintf(stderr, "approval_bench: broker closed a waiting client\n");
      std::exit(1);
    }
    if (r.HasFrame()) {
      wire::Frame fr = r.TakeFrame();
      ++got;
      if (got == 2 && fr.type != uint8_t(wire::MessageType::kRequestAccepted)) {
        std::fprintf(stderr, "approval_bench: waiting client got type %d\n", fr.type);
        std::exit(1);
      }
    }
  }
}

int Conv(int n, const pam_message** msg, pam_response** resp, void*) {
  auto* r = static_cast<pam_response*>(calloc(static_cast<size_t>(n), sizeof(pam_response)));
  if (r == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON || msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
      r[i].resp = strdup("");
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

// One pam_acct_mgmt() on service `service` in confdir; returns its result.
int PamAccount(const std::string& confdir, const char* service, const char* user) {
  pam_conv conv{Conv, nullptr};
  pam_handle_t* h = nullptr;
  int rc = pam_start_confdir(service, user, &conv, confdir.c_str(), &h);
  if (rc != PAM_SUCCESS) return rc;
  pam_set_item(h, PAM_RHOST, "127.0.0.1");
  pam_set_item(h, PAM_TTY, "ssh");
  rc = pam_acct_mgmt(h, 0);
  pam_end(h, rc);
  return rc;
}

struct Percentiles {
  double p50, p99, max;
};
Percentiles Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  return {at(0.50), at(0.99), v.back()};
}

// The floor of a durable answer: one small write + fdatasync in dir (the
// broker syncs its store and database before it answers).
Percentiles FsyncBaseline(const std::string& dir, int samples) {
  std::string path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("fsync probe");
    std::exit(1);
  }
  std::vector<double> v;
  char buf[128] = {};
  for (int i = 0; i < samples; ++i) {
    if (::write(fd, buf, sizeof(buf)) != ssize_t(sizeof(buf))) std::exit(1);
    double t0 = Now();
    ::fdatasync(fd);
    v.push_back(Now() - t0);
  }
  ::close(fd);
  ::unlink(path.c_str());
  return Summarize(v);
}

void DecisionLatency(const std::vector<int>& waiter_counts, int samples) {
  std::printf("\n== decision -> pam_acct_mgmt() returns (target p99 < 5 ms, broker RSS < 200 MB)\n");
  testing::TempDir conf;
  std::ofstream(conf.Join("jitgate-bench"))
      << "account required " << PAM_JITGATE_SO << " socket=SOCKET timeout=120\n";
  std::ofstream(conf.Join("permit-bench")) << "account required pam_permit.so\n";

  // Baseline 1: the same PAM call through pam_permit.so.
  std::vector<double> permit;
  for (int i = 0; i < samples; ++i) {
    double t0 = Now();
    if (PamAccount(conf.path(), "permit-bench", "alice") != PAM_SUCCESS) {
      std::fprintf(stderr, "approval_bench: pam_permit failed\n");
      std::exit(1);
    }
    permit.push_back(Now() - t0);
  }
  Percentiles pp = Summarize(permit);
  std::printf("baseline pam_permit.so account call: p50 %.3f ms  p99 %.3f ms\n", pp.p50 * 1e3,
              pp.p99 * 1e3);

  for (int waiters : waiter_counts) {
    Broker broker("approvers:\n  oncall: [root]\npolicies:\n"
                  "  - name: prod\n    approvers: [oncall]\n    reason: none\n    timeout: 1h\n");
    std::ofstream(conf.Join("jitgate-bench"))
        << "account required " << PAM_JITGATE_SO << " socket=" << broker.socket()
        << " timeout=120\n";
    double t0 = Now();
    std::vector<int> fds;
    fds.reserve(size_t(waiters));
    for (int i = 0; i < waiters; ++i) fds.push_back(FileWaiting(broker.socket(), i));
    for (int fd : fds) AwaitAccepted(fd);
    double fill = Now() - t0;

    // Baseline 2: one request/reply round trip through the loop (a lookup
    // of an id that does not exist), with the waiters held.
    std::vector<double> rtt;
    wire::Client ping = Unwrap(wire::Client::Connect(broker.socket(), Soon(), "bench"), "ping");
    for (int i = 0; i < samples; ++i) {
      double a = Now();
      Unwrap(ping.Call(wire::GetRequest{"zzzzzzzz"}, Soon()), "get");
      rtt.push_back(Now() - a);
    }

    wire::Client approver = Unwrap(wire::Client::Connect(broker.socket(), Soon(), "bench"), "approver");
    Unwrap(approver.Call(wire::Follow{wire::ListFilter::kPending}, Soon()), "follow");
    std::vector<double> lat;
    for (int i = 0; i < samples; ++i) {
      std::atomic<double> returned{0};
      std::atomic<int> rc{-1};
      std::thread pam([&] {
        rc = PamAccount(conf.path(), "jitgate-bench", "alice");
        returned = Now();
      });
      wire::Message m = Unwrap(approver.Receive(Soon()), "follow push");
      auto* info = std::get_if<wire::RequestInfo>(&m);
      if (info == nullptr || info->fields.user != "alice") {
        std::fprintf(stderr, "approval_bench: unexpected push\n");
        std::exit(1);
      }
      // Approve on a second connection: the follower stays a follower.
      wire::Client voter = Unwrap(wire::Client::Connect(broker.socket(), Soon(), "bench"), "voter");
      double sent = Now();
      wire::Message reply = Unwrap(voter.Call(wire::Approve{info->id, info->digest, ""}, Soon()), "approve");
      pam.join();
      if (rc != PAM_SUCCESS || !std::holds_alternative<wire::RequestInfo>(reply)) {
        std::fprintf(stderr, "approval_bench: approved login was refused (pam rc %d)\n", rc.load());
        std::exit(1);
      }
      lat.push_back(returned - sent);
    }
    Percentiles r = Summarize(rtt);
    Percentiles p = Summarize(lat);
    Percentiles f = FsyncBaseline(broker.dir(), samples);
    int64_t rss = broker.RssKiB();
    std::printf("%6d waiting (filled in %.2f s): decision->return p50 %.3f ms  p99 %.3f ms  max %.3f ms"
                " | p99/target %.2f | broker RSS %.1f MB (%.2f of 200 MB)\n"
                "       baselines: socket round trip p50 %.3f p99 %.3f ms; fdatasync in the state dir"
                " p50 %.3f p99 %.3f ms (decision p50 / fsync p50 %.2f)\n",
                waiters, fill, p.p50 * 1e3, p.p99 * 1e3, p.max * 1e3, p.p99 * 1e3 / 5.0,
                double(rss) / 1024.0, double(rss) / 1024.0 / 200.0, r.p50 * 1e3, r.p99 * 1e3,
                f.p50 * 1e3, f.p99 * 1e3, p.p50 / f.p50);
    std::fflush(stdout);
    for (int fd : fds) ::close(fd);
  }
}

// C threads, each filing requests back to back for `seconds`; certificate
// requests (a public key from keys, round robin) if keys is not empty.
double Throughput(const std::string& socket, int clients, double seconds, bool submit,
                  const std::vector<std::string>& keys = {}) {
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      uint64_t n = 0;
      while (!stop) {
        wire::Client c = Unwrap(wire::Client::Connect(socket, Soon(), "bench"), "connect");
        if (submit) {
          wire::RequestFields f;
          f.service = "sshd";
          f.user = "user" + std::to_string(t);
          f.target_user = f.user;
          f.host = "dev-" + std::to_string(n);
          if (!keys.empty()) {
            f.service = "ssh-cert";
            f.public_key = keys[(n * clients + t) % keys.size()];
          }
          wire::Message m = Unwrap(c.Call(wire::SubmitRequest{f, 0, false}, Soon()), "submit");
          auto* d = std::get_if<wire::Decision>(&m);
          if (d == nullptr || d->outcome != wire::Outcome::kApproved ||
              d->certificate.empty() != keys.empty()) {
            std::fprintf(stderr, "approval_bench: auto-approve did not approve%s\n",
                         keys.empty() ? "" : " with a certificate");
            std::exit(1);
          }
        }
        ++n;
        ++done;
      }
    });
  }
  double t0 = Now();
  while (Now() - t0 < seconds) usleep(20'000);
  stop = true;
  for (auto& th : threads) th.join();
  return double(done) / (Now() - t0);
}

// C processes at a time, each running argv_of(i) to completion, back to back
// for `seconds`; returns completed runs per second. Every run must exit 0.
template <typename ArgvOf>
double ProcessRate(int clients, double seconds, ArgvOf argv_of) {
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t n = 0; !stop; ++n) {
        std::vector<std::string> args = argv_of(t, n);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_t pid = ::fork();
        if (pid == 0) {
          int null = ::open("/dev/null", O_RDWR);
          ::dup2(null, 0);
          ::dup2(null, 1);
          ::dup2(null, 2);
          ::execv(argv[0], argv.data());
          _exit(127);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
          std::fprintf(stderr, "approval_bench: %s %s failed (status %d)\n", args[0].c_str(),
                       args.size() > 1 ? args[1].c_str() : "", st);
          std::exit(1);
        }
        ++done;
      }
    });
  }
  double t0 = Now();
  while (Now() - t0 < seconds) usleep(20'000);
  stop = true;
  for (auto& th : threads) th.join();
  return double(done) / (Now() - t0);
}

void CertificateRequests(int clients, int cli_clients, double seconds, double plain_rps) {
  std::printf("\n== certificate requests through an auto-approve policy (Ed25519 CA)\n");
  Broker broker("policies:\n  - name: dev\n    approve: auto\n    reason: none\n    ttl: 10m\n",
                /*with_ca=*/true);
  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) {
    keys.push_back(Unwrap(ca::PrivateKey::Generate(ca::KeyType::kEd25519), "key").public_key().ToLine());
  }
  double cert_rps = Throughput(broker.socket(), clients, seconds, true, keys);
  std::printf("in process, %d client threads: %.0f certificates/s (%.2f of plain auto-approved "
              "requests, %.0f/s)\n",
              clients, cert_rps, cert_rps / plain_rps, plain_rps);
  testing::TempDir out;
  const std::string cli = JITGATE_PATH;
  double help_rate = ProcessRate(cli_clients, seconds, [&](int, uint64_t) {
    return std::vector<std::string>{cli, "help"};
  });
  double cli_rate = ProcessRate(cli_clients, seconds, [&](int t, uint64_t n) {
    return std::vector<std::string>{cli, "request", "--host", "dev-1", "--login", "deploy",
                                    "--out", out.Join("k" + std::to_string(t) + "-" + std::to_string(n)),
                                    "--socket", broker.socket()};
  });
  std::printf("`jitgate request`, one process per certificate, %d at a time: %.0f round trips/s "
              "(baseline: starting `jitgate help` %.0f/s; %.2f of it)\n",
              cli_clients, cli_rate, help_rate, cli_rate / help_rate);
}

}  // namespace
}  // namespace jitgate::bench

int main(int argc, char** argv) {
  using namespace jitgate::bench;
  Flags flags(argc, argv,
              {{"waiters", "1,1000,10000"}, {"samples", "200"}, {"seconds", "5"}, {"clients", "8"},
               {"cli-clients", "2"}});
  std::vector<int> waiters;
  std::stringstream ws(flags.Str("waiters"));
  for (std::string item; std::getline(ws, item, ',');) waiters.push_back(std::atoi(item.c_str()));
  int samples = static_cast<int>(flags.Int("samples"));
  double seconds = static_cast<double>(flags.Int("seconds"));
  int clients = static_cast<int>(flags.Int("clients"));

  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::printf("approval_bench: load %s\n", LoadAverage().c_str());
  DecisionLatency(waiters, samples);

  std::printf("\n== requests/second through an auto-approve policy, %d client threads\n", clients);
  Broker broker("policies:\n  - name: dev\n    approve: auto\n    reason: none\n");
  double hello = Throughput(broker.socket(), clients, seconds, false);
  double auto_rps = Throughput(broker.socket(), clients, seconds, true);
  std::printf("baseline connect+Hello: %.0f/s | auto-approved requests: %.0f/s (%.2f of baseline;"
              " each is 3 audit entries fsync'd in the store + 1 SQLite commit, shared per loop turn)\n",
              hello, auto_rps, auto_rps / hello);
  CertificateRequests(clients, static_cast<int>(flags.Int("cli-clients")), seconds, auto_rps);
  return 0;
}
