// The bastion's session process; see session.h and docs/bastion.md.
//
// Shape of libssh's examples/ssh_server.c: callback structs for the server
// and channel side, one ssh_event polling the client session, the upstream
// session and the recording connection. Approval goes through keyboard-
// interactive rounds answered from the message callback (libssh 0.10 has no
// kbd-int server callback): each round shows the next status line, so the
// OpenSSH client prints "waiting for approval" live.
#include "broker/bastion/session.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/bastion/privileges.h"
#include "ca/cert.h"
#include "ca/sshkey.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/base/status_macros.h"
#include "core/wire/client.h"
#include "core/wire/messages.h"
#include "core/wire/requester.h"
#include "recorder/recording.h"
#include "recorder/recording_client.h"

namespace jitgate::bastion {
namespace {

using recorder::Record;
using recorder::RecordingClient;
using recorder::Stream;

constexpr int kStatusRoundMs = 5000;  // a "still waiting" line at least this often
constexpr int kFirstAnswerMs = 30'000;  // the broker's first answer, inside publickey auth
constexpr long kUpstreamTimeoutSeconds = 10;  // connecting to the target (libssh)
constexpr int kPollMs = 50;           // relay loop tick
constexpr int64_t kFlushIntervalMs = 100;
constexpr int kCloseWaitSeconds = 15;  // for the client to answer our channel close
constexpr size_t kPumpBuffer = 32 * 1024;
constexpr size_t kMaxForwards = 64;         // forwarded connections at once
constexpr int kMaxAuditedRefusals = 16;     // refused forwards audited per connection
constexpr int64_t kAuditTimeoutMs = 5000;   // one bastion event to the broker
constexpr size_t kMaxRefusedKeys = 4;       // offered keys named in login_refused

void Log(const std::string& line) {
  std::fprintf(stderr, "jitgated[bastion %d]: %s\n", static_cast<int>(getpid()), line.c_str());
}

int64_t UnixNanos() { return RealClock()->NowUnixNanos(); }

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof(buf));
    }
  }
  return buf;
}

// "type base64" of a libssh key (public part or certificate).
std::optional<std::string> KeyLineOf(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) return std::nullopt;
  const char* type = ssh_key_type_to_char(ssh_key_type(key));
  std::string line = std::string(type != nullptr ? type : "unknown") + " " + b64;
  ssh_string_free_char(b64);
  return line;
}

// sshd's LoginGraceTime: the process ends if authentication takes longer.
// Set by SIGTERM (the broker is stopping): the session ends in its loop,
// tells the client and records its end while the broker still serves it.
volatile sig_atomic_t g_stop_requested = 0;

extern "C" void OnStopSignal(int) { g_stop_requested = 1; }

extern "C" void OnGraceAlarm(int) {
  static const char kMsg[] = "jitgated[bastion]: login grace time over before authentication\n";
  ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  (void)ignored;
  _exit(1);
}

// Approval runs wire::RunRequest (connect, submit, reason, wait, resume) on a
// thread of its own and hands what the person should see to the libssh
// thread, which shows it one keyboard-interactive round at a time.
class Approval : public wire::RequesterUi {
 public:
  enum class Kind { kLine, kAskReason, kDone };
  struct Event {
    Kind kind = Kind::kLine;
    std::string text;
  };

  ~Approval() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      reason_.emplace(std::nullopt);
    }
    cv_.notify_all();
    // RunRequest may wait minutes for a decision: do not wait for it. The
    // process is about to end; the broker cancels the request when the
    // connection closes.
    if (thread_.joinable()) thread_.detach();
  }

  void Start(wire::RequestFields fields, wire::RequesterOptions options) {
    thread_ = std::thread([this, fields = std::move(fields), options = std::move(options)]() {
      wire::RequesterResult r = wire::RunRequest(fields, options, this);
      std::lock_guard<std::mutex> l(mu_);
      result_.emplace(std::move(r));
      events_.push_back({Kind::kDone, ""});
      cv_.notify_all();
    });
  }

  // The next event, waiting up to ms.
  std::optional<Event> Next(int ms) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(ms), [this] { return !events_.empty(); });
    if (events_.empty()) return std::nullopt;
    Event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

  void AnswerReason(std::optional<std::string> reason) {
    {
      std::lock_guard<std::mutex> l(mu_);
      reason_.emplace(std::move(reason));
    }
    cv_.notify_all();
  }

  // Valid after a kDone event.
  const wire::RequesterResult& result() {
    std::lock_guard<std::mutex> l(mu_);
    return *result_;
  }

  // wire::RequesterUi, on the approval thread.
  std::optional<std::string> AskReason(const wire::NeedReason& ask) override {
    // An optional reason is not worth a prompt that clients without a
    // terminal cannot answer: file the request without one.
    if (!ask.required) return std::string();
    std::unique_lock<std::mutex> l(mu_);
    reason_.reset();
    events_.push_back({Kind::kAskReason, ask.prompt});
    cv_.notify_all();
    cv_.wait(l, [this] { return reason_.has_value(); });
    std::optional<std::string> r = *reason_;
    reason_.reset();
    return r;
  }
  void OnAccepted(const wire::RequestAccepted& a) override {
    Push("jitgate: request " + a.id + " is waiting for approval by " + a.approvers + " (up to " +
         std::to_string(a.wait_seconds) + " s)");
  }
  void OnStatus(const wire::StatusUpdate& u) override {
    if (!u.message.empty()) Push("jitgate: " + u.message);
  }
  void OnReconnecting(const Status& why) override {
    Push("jitgate: lost the broker (" + why.message() + "); reconnecting");
  }

 private:
  void Push(std::string line) {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back({Kind::kLine, std::move(line)});
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::optional<std::optional<std::string>> reason_;
  std::optional<wire::RequesterResult> result_;
  std::thread thread_;
};

class Session;

// A forwarded connection (docs/bastion.md, "Forwarding"): one channel on each
// side, relayed like the session channel (never more than the other side's
// window at a time), not part of the transcript; its opening and closing are
// audit events. A channel the target opens (a connection to a remote
// forward, an agent request) is accepted at once and its client side opened
// from the relay loop; until then its data waits in libssh.
struct Forward {
  enum Side { kClient = 0, kUpstream = 1 };
  Session* session = nullptr;
  std::string kind;  // "direct-tcpip", "forwarded-tcpip", "auth-agent"
  std::string what;  // endpoints, for the log and the audit trail
  // forwarded-tcpip: what the client side is opened with.
  std::string open_host;
  int open_port = 0;
  std::string orig_host;
  int orig_port = 0;
  ssh_channel ch[2] = {nullptr, nullptr};
  ssh_channel_callbacks_struct cb[2]{};
  bool held[2] = {false, false};  // data from side i that libssh holds for us
  bool eof[2] = {false, false};
  bool eof_sent[2] = {false, false};  // side i's EOF passed on
  bool closed[2] = {false, false};
  uint64_t bytes[2] = {0, 0};  // from side i to the other
};

// One client connection, from key exchange to the end of its session. The
// members are public: the libssh callbacks below are its only users.
class Session {
 public:
  Session(const broker::Config& config, int fd, const SessionOptions& options)
      : config_(config),
        settings_(*config.bastion),
        options_(options),
        fd_(fd),
        remote_addr_(PeerAddress(fd)) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int Run();

  enum class AuthState { kStart, kFailing };

  // Setup.
  Status LoadHostKey();
  // Authentication.
  int OnAuthPubkey(const char* user, ssh_key key, char state);
  int OnMessage(ssh_message m);
  void SendInfo(ssh_message m, const std::string& text);
  void Fail(ssh_message m, const std::string& text);
  std::optional<std::string> PersonOfKey(ssh_key key);
  Status StartApproval();
  std::optional<std::string> Conclude();
  Status ConnectUpstream(const wire::Decision& d);
  // Audit trail (docs/bastion.md, "Audit events"): one bastion event,
  // durable in the store when this returns OK.
  Status Audit(const std::string& event, const std::string& detail);
  void AuditRefusedLogin();
  // Forwarding.
  int OnClientMessage(ssh_message m);
  int OnDirectTcpip(ssh_message m);
  int OnGlobalRequest(ssh_message m);
  int OnUpstreamMessage(ssh_message m);
  ssh_channel OnUpstreamAgentOpen();
  void OnAgentRequest();
  void RefuseForward(const std::string& what, const std::string& why);
  void SetForwardCallbacks(Forward* f, int side);
  int OnForwardData(Forward* f, int side, const void* data, uint32_t len);
  void OpenPendingForwards();
  void PumpForwards();
  void EndForward(Forward* f);
  int64_t GraceSeconds() const {
    return std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(settings_.login_grace).count());
  }
  // Channels.
  ssh_channel OnChannelOpen();
  int OnPty(const char* term, int cols, int rows);
  int OnStart(const std::string& command, const char* subsystem);
  int OnEnv(const char* name, const char* value);
  void OnWindowChange(int cols, int rows);
  int OnClientData(const void* data, uint32_t len);
  int OnUpstreamData(const void* data, uint32_t len, int is_stderr);
  Status OpenRecording(const std::string& command);
  void RecordData(Stream stream, const void* data, size_t len);
  // Relay.
  int Relay();
  void Pump();
  void Finish(const std::string& reason, const std::string& message);
  void TellClient(const std::string& text);
  int64_t SinceStart() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now() - start_)
        .count();
  }

  const broker::Config& config_;
  const broker::BastionSettings& settings_;
  const SessionOptions options_;
  int fd_;
  std::string remote_addr_;

  ssh_bind bind_ = nullptr;
  ssh_session client_ = nullptr;
  ssh_session up_ = nullptr;
  ssh_key up_key_ = nullptr;
  ssh_key up_cert_ = nullptr;
  ssh_event event_ = nullptr;
  ssh_server_callbacks_struct server_cb_{};
  ssh_channel_callbacks_struct client_chan_cb_{};
  ssh_channel_callbacks_struct up_chan_cb_{};

  // Authentication.
  std::string ssh_user_;  // "LOGIN@TARGET" as authenticated by public key
  std::string person_;
  std::string login_;
  std::string target_name_;
  const broker::BastionTarget* target_ = nullptr;
  std::string auth_error_;  // shown in the first kbd-int round, then fail
  AuthState auth_ = AuthState::kStart;
  bool reason_asked_ = false;
  bool authenticated_ = false;
  bool auth_failed_ = false;
  std::unique_ptr<Approval> approval_;
  std::deque<Approval::Event> pending_;  // events to show before asking for more
  int64_t approval_started_ = 0;
  std::string request_id_;
  std::string approved_by_;
  uint64_t cert_serial_ = 0;
  uint64_t valid_until_ = 0;  // Unix seconds: the session ends then
  // Why the login was refused (the first reason), and the keys offered that
  // named nobody: one login_refused event when the connection ends unused.
  std::string refusal_;
  std::vector<std::string> refused_keys_;

  // Channels.
  ssh_channel cchan_ = nullptr;  // client side
  ssh_channel uchan_ = nullptr;  // upstream side
  std::string term_;
  int cols_ = 0;
  int rows_ = 0;
  bool started_ = false;  // shell/exec/subsystem running upstream
  // Data libssh holds back for us (the callback took less than it was
  // given): client input, upstream stdout and stderr.
  bool client_held_ = false;
  bool up_held_[2] = {false, false};
  bool client_eof_ = false;
  bool client_eof_sent_ = false;
  bool client_closed_ = false;
  bool up_eof_ = false;
  bool up_eof_sent_ = false;
  bool up_closed_ = false;
  bool has_exit_status_ = false;
  int exit_status_ = 0;
  std::string exit_signal_;
  bool exit_core_ = false;
  std::string exit_errmsg_;

  // Forwarding: what the certificate the policy issued permits (its
  // permit-port-forwarding and permit-agent-forwarding extensions).
  bool allow_port_forwarding_ = false;
  bool allow_agent_forwarding_ = false;
  bool agent_forwarded_ = false;  // requested upstream and audited
  int refusals_audited_ = 0;
  std::vector<std::unique_ptr<Forward>> forwards_;
  ssh_callbacks_struct up_cb_{};

  // Recording.
  std::unique_ptr<RecordingClient> rec_;
  int rec_fd_ = -1;  // the recording connection's fd in event_, or -1
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_flush_ = start_;
  bool dirty_ = false;
  Status rec_error_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  bool finished_ = false;
  std::string end_reason_ = "closed";
};

Session* Of(void* u) { return static_cast<Session*>(u); }

Session::~Session() {
  approval_.reset();
  for (auto& f : forwards_) {
    for (int side = 0; side < 2; ++side) {
      if (f->ch[side] != nullptr) {
        ssh_remove_channel_callbacks(f->ch[side], &f->cb[side]);
        ssh_channel_free(f->ch[side]);
      }
    }
  }
  forwards_.clear();
  if (event_ != nullptr) {
    // Sessions must leave the event before it is freed: their sockets point
    // at its poll context.
    if (client_ != nullptr) ssh_event_remove_session(event_, client_);
    if (up_ != nullptr) ssh_event_remove_session(event_, up_);
    if (rec_fd_ >= 0) ssh_event_remove_fd(event_, rec_fd_);
    ssh_event_free(event_);
  }
  if (up_ != nullptr) {
    ssh_disconnect(up_);
    ssh_free(up_);
  }
  if (client_ != nullptr) {
    ssh_disconnect(client_);
    ssh_free(client_);
  }
  if (bind_ != nullptr) ssh_bind_free(bind_);
  if (up_cert_ != nullptr) ssh_key_free(up_cert_);
  if (up_key_ != nullptr) ssh_key_free(up_key_);
}

Status Session::LoadHostKey() {
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(settings_.host_key.c_str(), nullptr, nullptr, nullptr, &key) !=
      SSH_OK) {
    return FailedPreconditionError("cannot read the bastion host key " + settings_.host_key);
  }
  bind_ = ssh_bind_new();
  if (bind_ == nullptr) {
    ssh_key_free(key);
    return InternalError("ssh_bind_new failed");
  }
  bool no = false;
  ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);
  // The bind takes ownership of the key.
  if (ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
    ssh_key_free(key);
    return InternalError("cannot use the bastion host key: " + std::string(ssh_get_error(bind_)));
  }
  return OkStatus();
}

std::optional<std::string> Session::PersonOfKey(ssh_key key) {
  std::optional<std::string> line = KeyLineOf(key);
  if (!line.has_value()) return std::nullopt;
  if (line->find("-cert-v01@openssh.com ") != std::string::npos) {
    // A certificate: signed by a trusted CA, valid now, user type, one
    // principal that names the person.
    StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(*line);
    if (!cert.ok()) return std::nullopt;
    bool trusted = false;
    for (const std::string& ca_line : settings_.user_ca_keys) {
      StatusOr<ca::PublicKey> ca_key = ca::PublicKey::FromLine(ca_line);
      if (ca_key.ok() && *ca_key == cert->signature_key()) trusted = true;
    }
    const ca::CertificateFields& f = cert->fields();
    uint64_t now = static_cast<uint64_t>(UnixNanos() / 1'000'000'000);
    if (!trusted || f.type != ca::CertType::kUser || f.principals.size() != 1 ||
        !cert->VerifySignature().ok() || !cert->CheckValidAt(now).ok() ||
        !cert->CheckCriticalOptions().ok()) {
      return std::nullopt;
    }
    return f.principals[0];
  }
  StatusOr<ca::PublicKey> offered = ca::PublicKey::FromLine(*line);
  if (!offered.ok()) return std::nullopt;
  for (const auto& [name, keys] : settings_.users) {
    for (const std::string& k : keys) {
      StatusOr<ca::PublicKey> known = ca::PublicKey::FromLine(k);
      if (known.ok() && *known == *offered) return name;
    }
  }
  return std::nullopt;
}

int Session::OnAuthPubkey(const char* user, ssh_key key, char state) {
  std::optional<std::string> person = PersonOfKey(key);
  if (!person.has_value()) {
    if (ssh_user_.empty() && user != nullptr) ssh_user_ = std::string(user).substr(0, 256);
    if (refused_keys_.size() < kMaxRefusedKeys) {
      StatusOr<ca::PublicKey> k = ca::PublicKey::FromLine(KeyLineOf(key).value_or(""));
      std::string fp = k.ok() ? std::string(k->type_name()) + " " + k->Fingerprint()
                              : std::string("an unreadable key");
      if (std::find(refused_keys_.begin(), refused_keys_.end(), fp) == refused_keys_.end()) {
        refused_keys_.push_back(fp);
      }
    }
    if (state == SSH_PUBLICKEY_STATE_VALID) {
      Log("refused key " + KeyLineOf(key).value_or("?").substr(0, 80) + " from " + remote_addr_ +
          " for '" + user + "': not a bastion user's key");
    }
    return SSH_AUTH_DENIED;
  }
  if (state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;  // PK_OK
  if (state != SSH_PUBLICKEY_STATE_VALID) return SSH_AUTH_DENIED;
  ssh_user_ = user;
  person_ = *person;
  size_t at = ssh_user_.rfind('@');
  auth_error_.clear();
  if (at == std::string::npos || at == 0 || at + 1 == ssh_user_.size()) {
    auth_error_ = "jitgate: log in as LOGIN@TARGET (for example: ssh -p PORT root@db1@BASTION)";
  } else {
    login_ = ssh_user_.substr(0, at);
    target_name_ = ssh_user_.substr(at + 1);
    auto it = settings_.targets.find(target_name_);
    if (it == settings_.targets.end()) {
      std::string known;
      for (const auto& [name, t] : settings_.targets) known += (known.empty() ? "" : ", ") + name;
      auth_error_ = "jitgate: unknown target '" + target_name_.substr(0, 64) + "' (targets: " +
                    (known.empty() ? "none" : known) + ")";
    } else {
      target_ = &it->second;
    }
  }
  Log(person_ + " from " + remote_addr_ + " authenticated by public key for " + ssh_user_);
  if (auth_error_.empty() && approval_ == nullptr) {
    if (Status s = StartApproval(); !s.ok()) {
      auth_error_ = "jitgate: " + s.message();
    } else {
      // The broker's first answer comes at once: a decision (a policy that
      // approves or denies by itself), "waiting for approvers", or a reason
      // to ask for. A decision completes the login here, so that clients
      // that do not do keyboard-interactive (BatchMode, scripts) work;
      // anything else, and a refusal to explain, goes on in
      // keyboard-interactive rounds.
      std::optional<Approval::Event> e = approval_->Next(kFirstAnswerMs);
      if (e.has_value() && e->kind == Approval::Kind::kDone) {
        std::optional<std::string> refused = Conclude();
        if (!refused.has_value()) return SSH_AUTH_SUCCESS;
        auth_error_ = *refused;
      } else if (e.has_value()) {
        pending_.push_back(std::move(*e));
      }
    }
  }
  ssh_set_auth_methods(client_, SSH_AUTH_METHOD_INTERACTIVE);
  return SSH_AUTH_PARTIAL;
}

// The approval's final answer: nullopt when the login may go on (the
// upstream connection is up), else the line that says why not.
std::optional<std::string> Session::Conclude() {
  // Whatever happens next is bounded by the grace time again.
  if (options_.grace_alarm) alarm(static_cast<unsigned>(GraceSeconds()));
  const wire::RequesterResult& r = approval_->result();
  if (!r.ok()) return "jitgate: access denied: " + r.status().message();
  if (!wire::Granted(r)) {
    return "jitgate: " + (r->message.empty() ? std::string("access denied") : r->message);
  }
  request_id_ = r->id;
  for (const std::string& a : r->decided_by) approved_by_ += (approved_by_.empty() ? "" : ", ") + a;
  valid_until_ = r->valid_until;
  if (r->certificate.empty()) return "jitgate: the broker issued no certificate for request " + r->id;
  if (Status s = ConnectUpstream(*r); !s.ok()) return "jitgate: " + s.message();
  Log("request " + request_id_ + " approved by " + approved_by_ + ": " + person_ + " from " +
      remote_addr_ + " connected to " + target_name_ + " as " + login_ + " (certificate serial " +
      std::to_string(cert_serial_) + ")");
  authenticated_ = true;
  return std::nullopt;
}

void Session::SendInfo(ssh_message m, const std::string& text) {
  ssh_message_auth_interactive_request(m, "", text.c_str(), 0, nullptr, nullptr);
}

// Shows text, then fails the authentication on the client's answer.
void Session::Fail(ssh_message m, const std::string& text) {
  if (refusal_.empty()) refusal_ = text;
  Log("login of " + person_ + " from " + remote_addr_ + " as " + ssh_user_ +
      " refused: " + text);
  auth_ = AuthState::kFailing;
  SendInfo(m, text);
}

Status Session::StartApproval() {
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &up_key_) != SSH_OK) {
    return InternalError("cannot generate the upstream key");
  }
  std::optional<std::string> pub = KeyLineOf(up_key_);
  if (!pub.has_value()) return InternalError("cannot export the upstream key");
  wire::RequestFields f;
  f.service = "bastion";
  f.user = person_;
  f.target_user = login_;
  f.host = target_name_;
  f.remote_addr = remote_addr_;
  f.public_key = *pub;
  wire::RequesterOptions o;
  o.socket_path = config_.broker.socket;
  o.client_name = "jitgate-bastion";
  o.timeout_ms = int64_t{24} * 3600 * 1000;  // the policy's timeout governs
  o.can_prompt = true;
  approval_ = std::make_unique<Approval>();
  approval_started_ = UnixNanos();
  // The wait for approvers is bounded by the policy's timeout, not by the
  // grace time (Conclude sets the alarm again).
  alarm(0);
  approval_->Start(std::move(f), std::move(o));
  return OkStatus();
}

Status Session::ConnectUpstream(const wire::Decision& d) {
  const broker::BastionTarget& t = *target_;
  up_ = ssh_new();
  if (up_ == nullptr) return InternalError("ssh_new failed");
  bool no = false;
  // For the TCP connection and then for each wait in the key exchange and
  // authentication.
  long timeout = kUpstreamTimeoutSeconds;
  unsigned int port = static_cast<unsigned int>(t.port);
  int strict = 0;
  StatusOr<ca::PublicKey> pinned = ca::PublicKey::FromLine(t.host_key);
  if (!pinned.ok()) {
    return FailedPreconditionError("target " + target_name_ + ": bad host_key in the configuration");
  }
  std::string algs(pinned->type_name());
  if (algs == "ssh-rsa") algs = "rsa-sha2-512,rsa-sha2-256";
  ssh_options_set(up_, SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_options_set(up_, SSH_OPTIONS_HOST, t.address.c_str());
  ssh_options_set(up_, SSH_OPTIONS_PORT, &port);
  ssh_options_set(up_, SSH_OPTIONS_USER, login_.c_str());
  ssh_options_set(up_, SSH_OPTIONS_TIMEOUT, &timeout);
  ssh_options_set(up_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ssh_options_set(up_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  ssh_options_set(up_, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
  ssh_options_set(up_, SSH_OPTIONS_HOSTKEYS, algs.c_str());
  std::string where = target_name_ + " (" + t.address + ":" + std::to_string(t.port) + ")";
  if (ssh_connect(up_) != SSH_OK) {
    return UnavailableError("cannot connect to target " + where + ": " + ssh_get_error(up_));
  }
  ssh_key offered = nullptr;
  if (ssh_get_server_publickey(up_, &offered) != SSH_OK) {
    return UnavailableError("target " + where + " sent no host key");
  }
  std::optional<std::string> offered_line = KeyLineOf(offered);
  ssh_key_free(offered);
  StatusOr<ca::PublicKey> got =
      ca::PublicKey::FromLine(offered_line.value_or(""));
  if (!got.ok() || !(*got == *pinned)) {
    return PermissionDeniedError("host key of target " + where +
                                 " does not match the pinned key (offered " +
                                 (got.ok() ? got->Fingerprint() : std::string("an unreadable key")) +
                                 ", expected " + pinned->Fingerprint() + ")");
  }
  // The certificate the broker issued with the approval, on our fresh key:
  // "type base64" (checked by FromLine), handed to libssh as base64.
  StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(d.certificate);
  if (!cert.ok()) return InternalError("the broker sent an unreadable certificate");
  cert_serial_ = cert->fields().serial;
  for (const ca::CertOption& ext : cert->fields().extensions) {
    if (ext.name == "permit-port-forwarding") allow_port_forwarding_ = true;
    if (ext.name == "permit-agent-forwarding") allow_agent_forwarding_ = true;
  }
  std::string b64 = d.certificate.substr(d.certificate.find(' ') + 1);
  b64 = b64.substr(0, b64.find(' '));
  std::string type(cert->type_name());
  if (ssh_pki_import_cert_base64(b64.c_str(), ssh_key_type_from_name(type.c_str()), &up_cert_) !=
          SSH_OK ||
      ssh_pki_copy_cert_to_privkey(up_cert_, up_key_) != SSH_OK) {
    return InternalError("cannot use the certificate the broker issued");
  }
  if (ssh_userauth_try_publickey(up_, nullptr, up_cert_) != SSH_AUTH_SUCCESS ||
      ssh_userauth_publickey(up_, nullptr, up_key_) != SSH_AUTH_SUCCESS) {
    return PermissionDeniedError("target " + where + " refused the certificate for " + login_ +
                                 " (does it trust the jitgate CA: TrustedUserCAKeys?)");
  }
  // Channels the target opens toward us: connections to a remote forward
  // (message callback) and agent requests (callback); anything else is
  // refused by libssh's default answer.
  up_cb_ = {};
  up_cb_.userdata = this;
  up_cb_.channel_open_request_auth_agent_function = [](ssh_session, void* u) {
    return Of(u)->OnUpstreamAgentOpen();
  };
  ssh_callbacks_init(&up_cb_);
  ssh_set_callbacks(up_, &up_cb_);
  ssh_set_message_callback(
      up_, [](ssh_session, ssh_message m, void* u) { return Of(u)->OnUpstreamMessage(m); }, this);
  return OkStatus();
}

// Keyboard-interactive rounds. Every round shows one line (the request's
// status, "still waiting", the reason prompt, or why access is refused); the
// OpenSSH client answers zero-prompt rounds at once, so the person sees the
// lines as they come.
int Session::OnMessage(ssh_message m) {
  if (ssh_message_type(m) != SSH_REQUEST_AUTH) return OnClientMessage(m);
  if (ssh_message_subtype(m) != SSH_AUTH_METHOD_INTERACTIVE || person_.empty()) {
    return 1;  // default: failure
  }
  // A response (INFO_RESPONSE) carries no user name; a new attempt must be
  // for the LOGIN@TARGET the public key was accepted for. Every round must
  // stay inside one attempt: the OpenSSH client makes only
  // NumberOfPasswordPrompts (3) keyboard-interactive attempts.
  bool response = ssh_message_auth_kbdint_is_response(m) != 0;
  const char* user = ssh_message_auth_user(m);
  if (!response && ssh_user_ != (user != nullptr ? user : "")) return 1;
  if (auth_ == AuthState::kFailing) {
    if (response) {
      auth_failed_ = true;
      return 1;
    }
    SendInfo(m, "jitgate: access refused");
    return 0;
  }
  if (!auth_error_.empty()) {
    Fail(m, auth_error_);
    return 0;
  }
  if (approval_ == nullptr) return 1;
  if (response && reason_asked_) {
    reason_asked_ = false;
    std::optional<std::string> reason;
    if (ssh_userauth_kbdint_getnanswers(client_) >= 1) {
      const char* a = ssh_userauth_kbdint_getanswer(client_, 0);
      if (a != nullptr) reason = std::string(a).substr(0, wire::kMaxReasonField);
    }
    approval_->AnswerReason(std::move(reason));
  }
  std::optional<Approval::Event> e;
  if (!pending_.empty()) {
    e = std::move(pending_.front());
    pending_.pop_front();
  } else {
    e = approval_->Next(kStatusRoundMs);
  }
  if (!e.has_value()) {
    int64_t waited = (UnixNanos() - approval_started_) / 1'000'000'000;
    SendInfo(m, "jitgate: still waiting for approval (" + std::to_string(waited) + " s)");
    return 0;
  }
  if (e->kind == Approval::Kind::kLine) {
    SendInfo(m, e->text);
    return 0;
  }
  if (e->kind == Approval::Kind::kAskReason) {
    reason_asked_ = true;
    const char* prompts[] = {e->text.c_str()};
    char echo[] = {1};
    ssh_message_auth_interactive_request(m, "", "", 1, prompts, echo);
    return 0;
  }
  if (std::optional<std::string> refused = Conclude(); refused.has_value()) {
    Fail(m, *refused);
    return 0;
  }
  ssh_message_auth_reply_success(m, 0);
  return 0;
}

// --- Channels ---------------------------------------------------------------

void SetChannelCallbacks(Session* s);

ssh_channel Session::OnChannelOpen() {
  // One session channel per connection (what ssh opens); a second one
  // (connection multiplexing) is refused.
  if (cchan_ != nullptr || up_ == nullptr) return nullptr;
  uchan_ = ssh_channel_new(up_);
  if (uchan_ == nullptr || ssh_channel_open_session(uchan_) != SSH_OK) {
    Log("cannot open a session channel on " + target_name_ + ": " + ssh_get_error(up_));
    if (uchan_ != nullptr) ssh_channel_free(uchan_);
    uchan_ = nullptr;
    return nullptr;
  }
  cchan_ = ssh_channel_new(client_);
  if (cchan_ == nullptr) return nullptr;
  SetChannelCallbacks(this);
  return cchan_;
}

int Session::OnPty(const char* term, int cols, int rows) {
  if (started_ || uchan_ == nullptr) return -1;
  term_ = term != nullptr ? std::string(term).substr(0, 64) : "";
  cols_ = std::clamp(cols, 0, 65535);
  rows_ = std::clamp(rows, 0, 65535);
  if (ssh_channel_request_pty_size(uchan_, term_.empty() ? "xterm" : term_.c_str(), cols_, rows_) !=
      SSH_OK) {
    return -1;
  }
  return 0;
}

int Session::OnEnv(const char* name, const char* value) {
  if (started_ || uchan_ == nullptr || name == nullptr || value == nullptr) return -1;
  for (const std::string& pattern : settings_.accept_env) {
    if (fnmatch(pattern.c_str(), name, 0) == 0) {
      return ssh_channel_request_env(uchan_, name, value) == SSH_OK ? 0 : -1;
    }
  }
  return -1;
}

Status Session::OpenRecording(const std::string& command) {
  wire::OpenSession meta;
  meta.recorder = "bastion";
  meta.request_id = request_id_;
  meta.user = person_;
  meta.remote_addr = remote_addr_;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) meta.host = host;
  meta.target = target_name_;
  meta.login = login_;
  meta.command = command.substr(0, wire::kMaxCommandField);
  meta.term = term_;
  meta.cols = static_cast<uint16_t>(cols_);
  meta.rows = static_cast<uint16_t>(rows_);
  meta.start_unix_nanos = static_cast<uint64_t>(UnixNanos());
  meta.cert_serial = cert_serial_;
  recorder::RecordingClientOptions o;
  o.socket_path = config_.broker.socket;
  o.client_name = "jitgate-bastion";
  start_ = std::chrono::steady_clock::now();
  last_flush_ = start_;
  ASSIGN_OR_RETURN(rec_, RecordingClient::Open(o, meta));
  Log("session " + rec_->session_id() + " recording " + person_ + " on " + target_name_ + " as " +
      login_);
  return OkStatus();
}

int Session::OnStart(const std::string& command, const char* subsystem) {
  if (started_ || uchan_ == nullptr) return -1;
  std::string shown = subsystem != nullptr ? std::string("subsystem:") + subsystem : command;
  // Fail closed: no recording, no session.
  if (Status s = OpenRecording(shown); !s.ok()) {
    Log("session refused: cannot record it: " + s.message());
    rec_error_ = s;
    return -1;
  }
  int rc;
  if (subsystem != nullptr) {
    rc = ssh_channel_request_subsystem(uchan_, subsystem);
  } else if (command.empty()) {
    rc = ssh_channel_request_shell(uchan_);
  } else {
    rc = ssh_channel_request_exec(uchan_, command.c_str());
  }
  if (rc != SSH_OK) {
    Finish("refused by target", "");
    return -1;
  }
  started_ = true;
  return 0;
}

void Session::OnWindowChange(int cols, int rows) {
  cols_ = std::clamp(cols, 0, 65535);
  rows_ = std::clamp(rows, 0, 65535);
  if (uchan_ != nullptr) ssh_channel_change_pty_size(uchan_, cols_, rows_);
  if (rec_ != nullptr && rec_error_.ok()) {
    Record r;
    r.stream = Stream::kResize;
    r.time_ns = SinceStart();
    r.cols = static_cast<uint16_t>(cols_);
    r.rows = static_cast<uint16_t>(rows_);
    rec_error_ = rec_->Add(std::move(r));
    dirty_ = true;
  }
}

void Session::RecordData(Stream stream, const void* data, size_t len) {
  if (len == 0) return;
  if (stream == Stream::kInput) {
    bytes_in_ += len;
  } else {
    bytes_out_ += len;
  }
  if (rec_ == nullptr || !rec_error_.ok()) return;
  Record r;
  r.stream = stream;
  r.time_ns = SinceStart();
  const uint8_t* p = static_cast<const uint8_t*>(data);
  r.data.assign(p, p + len);
  rec_error_ = rec_->Add(std::move(r));
  dirty_ = true;
}

// Data from the client: forwarded as far as the upstream window allows;
// libssh keeps the rest (and stops growing the client's window) until Pump
// moves it. Nothing is forwarded that is not recorded first.
int Session::OnClientData(const void* data, uint32_t len) {
  int w = 0;
  if (uchan_ != nullptr && !up_closed_ && started_ && !finished_) {
    uint32_t n = std::min(len, ssh_channel_window_size(uchan_));
    if (n > 0) {
      RecordData(Stream::kInput, data, n);
      if (rec_error_.ok()) w = std::max(0, ssh_channel_write(uchan_, data, n));
    }
  }
  client_held_ = static_cast<uint32_t>(w) < len;
  return w;
}

int Session::OnUpstreamData(const void* data, uint32_t len, int is_stderr) {
  int w = 0;
  if (cchan_ != nullptr && !client_closed_ && !finished_) {
    uint32_t n = std::min(len, ssh_channel_window_size(cchan_));
    if (n > 0) {
      RecordData(is_stderr != 0 ? Stream::kError : Stream::kOutput, data, n);
      if (rec_error_.ok()) {
        w = std::max(0, is_stderr ? ssh_channel_write_stderr(cchan_, data, n)
                                  : ssh_channel_write(cchan_, data, n));
      }
    }
  }
  up_held_[is_stderr != 0 ? 1 : 0] = static_cast<uint32_t>(w) < len;
  return w;
}

void SetChannelCallbacks(Session* s) {
  ssh_channel_callbacks_struct& c = s->client_chan_cb_;
  c = {};
  c.userdata = s;
  c.channel_pty_request_function = [](ssh_session, ssh_channel, const char* term, int w, int h,
                                      int, int, void* u) { return Of(u)->OnPty(term, w, h); };
  c.channel_shell_request_function = [](ssh_session, ssh_channel, void* u) {
    return Of(u)->OnStart("", nullptr);
  };
  c.channel_exec_request_function = [](ssh_session, ssh_channel, const char* cmd, void* u) {
    return Of(u)->OnStart(cmd != nullptr ? cmd : "", nullptr);
  };
  c.channel_subsystem_request_function = [](ssh_session, ssh_channel, const char* sub, void* u) {
    return sub != nullptr ? Of(u)->OnStart("", sub) : -1;
  };
  c.channel_env_request_function = [](ssh_session, ssh_channel, const char* n, const char* v,
                                      void* u) { return Of(u)->OnEnv(n, v); };
  c.channel_pty_window_change_function = [](ssh_session, ssh_channel, int w, int h, int, int,
                                            void* u) {
    Of(u)->OnWindowChange(w, h);
    return 0;
  };
  c.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int,
                               void* u) { return Of(u)->OnClientData(data, len); };
  c.channel_eof_function = [](ssh_session, ssh_channel, void* u) { Of(u)->client_eof_ = true; };
  c.channel_close_function = [](ssh_session, ssh_channel, void* u) {
    Of(u)->client_closed_ = true;
  };
  c.channel_auth_agent_req_function = [](ssh_session, ssh_channel, void* u) {
    Of(u)->OnAgentRequest();
  };
  c.channel_signal_function = [](ssh_session, ssh_channel, const char* sig, void* u) {
    Session* self = Of(u);
    if (self->uchan_ != nullptr && sig != nullptr) {
      ssh_channel_request_send_signal(self->uchan_, sig);
    }
  };
  ssh_callbacks_init(&c);
  ssh_set_channel_callbacks(s->cchan_, &c);

  ssh_channel_callbacks_struct& up = s->up_chan_cb_;
  up = {};
  up.userdata = s;
  up.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                void* u) { return Of(u)->OnUpstreamData(data, len, is_stderr); };
  up.channel_eof_function = [](ssh_session, ssh_channel, void* u) { Of(u)->up_eof_ = true; };
  up.channel_close_function = [](ssh_session, ssh_channel, void* u) { Of(u)->up_closed_ = true; };
  up.channel_exit_status_function = [](ssh_session, ssh_channel, int status, void* u) {
    Of(u)->has_exit_status_ = true;
    Of(u)->exit_status_ = status;
  };
  up.channel_exit_signal_function = [](ssh_session, ssh_channel, const char* sig, int core,
                                       const char* errmsg, const char*, void* u) {
    Session* self = Of(u);
    self->exit_signal_ = sig != nullptr ? std::string(sig).substr(0, 32) : "";
    self->exit_core_ = core != 0;
    self->exit_errmsg_ = errmsg != nullptr ? std::string(errmsg).substr(0, 256) : "";
  };
  ssh_callbacks_init(&up);
  ssh_set_channel_callbacks(s->uchan_, &up);
}

// --- Audit events -------------------------------------------------------------

Status Session::Audit(const std::string& event, const std::string& detail) {
  auto in = [](int64_t ms) { return wire::Deadline::InMillis(RealClock(), ms); };
  wire::BastionEvent e;
  e.event = event;
  e.user = person_;
  e.remote_addr = remote_addr_;
  e.ssh_user = ssh_user_.substr(0, wire::kMaxNameField);
  e.request_id = request_id_;
  e.session = rec_ != nullptr ? rec_->session_id() : "";
  e.detail = detail.substr(0, wire::kMaxMessageField);
  ASSIGN_OR_RETURN(wire::Client c,
                   wire::Client::Connect(config_.broker.socket, in(kAuditTimeoutMs),
                                         "jitgate-bastion"));
  ASSIGN_OR_RETURN(wire::Message answer, c.Call(e, in(kAuditTimeoutMs)));
  if (const auto* err = std::get_if<wire::Error>(&answer)) {
    return FailedPreconditionError("the broker refused the audit event: " + err->message);
  }
  if (!std::holds_alternative<wire::BastionEventAck>(answer)) {
    return DataLossError("the broker answered the audit event with something else");
  }
  return OkStatus();
}

// A connection that ends without a login says why once: the first refusal
// shown to the person, or the keys it offered that name nobody. Connections
// that offered nothing (port scanners) leave no event.
void Session::AuditRefusedLogin() {
  std::string why = !refusal_.empty() ? refusal_ : auth_error_;
  if (refusal_.empty() && !auth_error_.empty()) {
    // Fail() never showed it: a client without keyboard-interactive
    // (BatchMode, scripts) saw only "Permission denied". The log says why.
    Log("login of " + person_ + " from " + remote_addr_ + " as " + ssh_user_ + " refused: " +
        auth_error_ + " (not shown: the client did not go on to keyboard-interactive)");
  }
  if (why.empty() && !refused_keys_.empty()) {
    why = "offered ";
    for (size_t i = 0; i < refused_keys_.size(); ++i) {
      why += (i > 0 ? ", " : "") + refused_keys_[i];
    }
    why += ": not a bastion user's key";
  }
  if (why.empty()) return;
  if (Status s = Audit("login_refused", why); !s.ok()) {
    Log("login_refused not audited: " + s.message());
  }
}

// --- Forwarding ---------------------------------------------------------------

int Session::OnClientMessage(ssh_message m) {
  if (ssh_message_type(m) == SSH_REQUEST_CHANNEL_OPEN &&
      ssh_message_subtype(m) == SSH_CHANNEL_DIRECT_TCPIP) {
    return OnDirectTcpip(m);
  }
  if (ssh_message_type(m) == SSH_REQUEST_GLOBAL) return OnGlobalRequest(m);
  if (ssh_message_type(m) == SSH_REQUEST_CHANNEL_OPEN && authenticated_) {
    // x11 and anything else a client may try.
    RefuseForward("a channel of another type", "the bastion relays only session, "
                                                "direct-tcpip and agent channels");
  }
  return 1;  // libssh's default answer: refused
}

void Session::RefuseForward(const std::string& what, const std::string& why) {
  Log("refused " + what + " for " + person_ + " from " + remote_addr_ + ": " + why);
  if (refusals_audited_ >= kMaxAuditedRefusals) return;
  ++refusals_audited_;
  if (Status s = Audit("forward_refused", what + ": " + why); !s.ok()) {
    Log("forward_refused not audited: " + s.message());
  }
}

int Session::OnDirectTcpip(ssh_message m) {
  const char* host = ssh_message_channel_request_open_destination(m);
  const char* orig = ssh_message_channel_request_open_originator(m);
  int port = ssh_message_channel_request_open_destination_port(m);
  int oport = ssh_message_channel_request_open_originator_port(m);
  std::string what = "direct-tcpip to " + std::string(host != nullptr ? host : "?").substr(0, 256) +
                     ":" + std::to_string(port) + " from " +
                     std::string(orig != nullptr ? orig : "?").substr(0, 64) + ":" +
                     std::to_string(oport);
  if (!authenticated_) return 1;
  if (!allow_port_forwarding_) {
    RefuseForward(what, "not permitted by the policy (its certificate has no "
                        "permit-port-forwarding)");
    return 1;
  }
  if (!started_ || finished_ || rec_ == nullptr) {
    RefuseForward(what, "no recorded session is running (forwards are relayed only alongside a "
                        "shell or command: ssh -N and -W are not supported)");
    return 1;
  }
  if (forwards_.size() >= kMaxForwards) {
    RefuseForward(what, "too many forwarded connections (" + std::to_string(kMaxForwards) + ")");
    return 1;
  }
  if (host == nullptr || orig == nullptr || port <= 0 || port > 65535) return 1;
  ssh_channel u = ssh_channel_new(up_);
  if (u == nullptr) return 1;
  if (ssh_channel_open_forward(u, host, port, orig, oport) != SSH_OK) {
    RefuseForward(what, std::string("the target refused it: ") + ssh_get_error(up_));
    ssh_channel_free(u);
    return 1;
  }
  // Fail closed: a forward the audit trail does not know of does not open.
  if (Status s = Audit("forward_opened", what); !s.ok()) {
    Log("refused " + what + ": cannot audit it: " + s.message());
    ssh_channel_close(u);
    ssh_channel_free(u);
    return 1;
  }
  ssh_channel c = ssh_message_channel_request_open_reply_accept(m);
  if (c == nullptr) {
    ssh_channel_close(u);
    ssh_channel_free(u);
    return 0;
  }
  auto f = std::make_unique<Forward>();
  f->session = this;
  f->kind = "direct-tcpip";
  f->what = what;
  f->ch[Forward::kClient] = c;
  f->ch[Forward::kUpstream] = u;
  SetForwardCallbacks(f.get(), Forward::kClient);
  SetForwardCallbacks(f.get(), Forward::kUpstream);
  Log(person_ + " opened " + what + " on " + target_name_);
  forwards_.push_back(std::move(f));
  return 0;
}

// Remote forwards (ssh -R): the target listens, and connections to it come
// back as channels the target opens (OnUpstreamMessage).
int Session::OnGlobalRequest(ssh_message m) {
  int sub = ssh_message_subtype(m);
  if (sub != SSH_GLOBAL_REQUEST_TCPIP_FORWARD && sub != SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD) {
    return 1;
  }
  const char* addr = ssh_message_global_request_address(m);
  int port = ssh_message_global_request_port(m);
  std::string a = std::string(addr != nullptr ? addr : "").substr(0, 256);
  std::string what = "tcpip-forward on the target's " + (a.empty() ? "*" : a) + ":" +
                     std::to_string(port);
  if (!authenticated_ || up_ == nullptr || port < 0 || port > 65535) return 1;
  if (sub == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD) {
    if (!allow_port_forwarding_) return 1;
    if (ssh_channel_cancel_forward(up_, a.c_str(), port) != SSH_OK) return 1;
    ssh_message_global_request_reply_success(m, 0);
    return 0;
  }
  if (!allow_port_forwarding_) {
    RefuseForward(what, "not permitted by the policy (its certificate has no "
                        "permit-port-forwarding)");
    return 1;
  }
  int bound = 0;
  if (ssh_channel_listen_forward(up_, a.c_str(), port, &bound) != SSH_OK) {
    RefuseForward(what, std::string("the target refused it: ") + ssh_get_error(up_));
    return 1;
  }
  if (port == 0) what += " (bound " + std::to_string(bound) + ")";
  if (Status s = Audit("forward_opened", what); !s.ok()) {
    Log("refused " + what + ": cannot audit it: " + s.message());
    ssh_channel_cancel_forward(up_, a.c_str(), port == 0 ? bound : port);
    return 1;
  }
  Log(person_ + " opened " + what + " on " + target_name_);
  ssh_message_global_request_reply_success(m, static_cast<uint16_t>(bound));
  return 0;
}

int Session::OnUpstreamMessage(ssh_message m) {
  if (ssh_message_type(m) != SSH_REQUEST_CHANNEL_OPEN ||
      ssh_message_subtype(m) != SSH_CHANNEL_FORWARDED_TCPIP || !allow_port_forwarding_ ||
      finished_ || forwards_.size() >= kMaxForwards) {
    return 1;
  }
  const char* host = ssh_message_channel_request_open_destination(m);
  const char* orig = ssh_message_channel_request_open_originator(m);
  if (host == nullptr || orig == nullptr) return 1;
  ssh_channel u = ssh_message_channel_request_open_reply_accept(m);
  if (u == nullptr) return 0;
  auto f = std::make_unique<Forward>();
  f->session = this;
  f->kind = "forwarded-tcpip";
  f->open_host = std::string(host).substr(0, 256);
  f->open_port = ssh_message_channel_request_open_destination_port(m);
  f->orig_host = std::string(orig).substr(0, 64);
  f->orig_port = ssh_message_channel_request_open_originator_port(m);
  f->what = "forwarded-tcpip from " + f->orig_host + ":" + std::to_string(f->orig_port) +
            " to the target's " + f->open_host + ":" + std::to_string(f->open_port);
  f->ch[Forward::kUpstream] = u;
  SetForwardCallbacks(f.get(), Forward::kUpstream);
  forwards_.push_back(std::move(f));
  return 0;
}

ssh_channel Session::OnUpstreamAgentOpen() {
  if (!agent_forwarded_ || finished_ || forwards_.size() >= kMaxForwards) return nullptr;
  ssh_channel u = ssh_channel_new(up_);
  if (u == nullptr) return nullptr;
  auto f = std::make_unique<Forward>();
  f->session = this;
  f->kind = "auth-agent";
  f->what = "agent request from " + target_name_;
  f->ch[Forward::kUpstream] = u;
  SetForwardCallbacks(f.get(), Forward::kUpstream);
  forwards_.push_back(std::move(f));
  return u;
}

// The client asked for agent forwarding on its session channel (OpenSSH
// sends it before the shell starts, and wants no answer).
void Session::OnAgentRequest() {
  if (agent_forwarded_ || started_ || uchan_ == nullptr) return;
  if (!allow_agent_forwarding_) {
    RefuseForward("agent forwarding", "not permitted by the policy (its certificate has no "
                                      "permit-agent-forwarding)");
    return;
  }
  if (Status s = Audit("agent_forwarded", "agent forwarding to " + target_name_ + " as " + login_);
      !s.ok()) {
    Log("refused agent forwarding: cannot audit it: " + s.message());
    return;
  }
  if (ssh_channel_request_auth_agent(uchan_) != SSH_OK) {
    Log("the target refused agent forwarding: " + std::string(ssh_get_error(up_)));
    return;
  }
  agent_forwarded_ = true;
}

// The callbacks of one side of a forward (kSide: Forward::kClient or
// kUpstream); userdata is the Forward.
template <int kSide>
void SetSideCallbacks(ssh_channel_callbacks_struct* c) {
  c->channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int,
                                void* u) {
    Forward* fw = static_cast<Forward*>(u);
    return fw->session->OnForwardData(fw, kSide, data, len);
  };
  c->channel_eof_function = [](ssh_session, ssh_channel, void* u) {
    static_cast<Forward*>(u)->eof[kSide] = true;
  };
  c->channel_close_function = [](ssh_session, ssh_channel, void* u) {
    static_cast<Forward*>(u)->closed[kSide] = true;
  };
}

void Session::SetForwardCallbacks(Forward* f, int side) {
  ssh_channel_callbacks_struct& c = f->cb[side];
  c = {};
  c.userdata = f;
  if (side == Forward::kClient) {
    SetSideCallbacks<Forward::kClient>(&c);
  } else {
    SetSideCallbacks<Forward::kUpstream>(&c);
  }
  ssh_callbacks_init(&c);
  ssh_set_channel_callbacks(f->ch[side], &c);
}

int Session::OnForwardData(Forward* f, int side, const void* data, uint32_t len) {
  ssh_channel to = f->ch[1 - side];
  if (f->closed[1 - side]) return static_cast<int>(len);  // nobody left to take it
  int w = 0;
  if (to != nullptr && !finished_) {
    uint32_t n = std::min(len, ssh_channel_window_size(to));
    if (n > 0) w = std::max(0, ssh_channel_write(to, data, n));
  }
  f->bytes[side] += static_cast<uint64_t>(w);
  f->held[side] = static_cast<uint32_t>(w) < len;
  return w;
}

// Channels the target opened wait for their client side: open it now (this
// waits for the client's answer, like opening a session channel upstream).
void Session::OpenPendingForwards() {
  for (auto& f : forwards_) {
    if (f->ch[Forward::kClient] != nullptr || f->closed[Forward::kUpstream] || finished_) continue;
    ssh_channel c = ssh_channel_new(client_);
    int rc = SSH_ERROR;
    if (c != nullptr && f->kind == "auth-agent") {
      rc = ssh_channel_open_auth_agent(c);
    } else if (c != nullptr && started_ && rec_ != nullptr) {
      if (Status s = Audit("forward_opened", f->what); !s.ok()) {
        Log("refused " + f->what + ": cannot audit it: " + s.message());
      } else {
        rc = ssh_channel_open_reverse_forward(c, f->open_host.c_str(), f->open_port,
                                              f->orig_host.c_str(), f->orig_port);
      }
    }
    if (rc != SSH_OK) {
      if (c != nullptr) ssh_channel_free(c);
      if (f->kind != "auth-agent") Log("cannot open " + f->what + " toward the client");
      f->closed[Forward::kClient] = true;  // EndForward closes the target's side
      continue;
    }
    f->ch[Forward::kClient] = c;
    SetForwardCallbacks(f.get(), Forward::kClient);
    f->held[Forward::kUpstream] = true;  // what arrived meanwhile
  }
}

void Session::PumpForwards() {
  uint8_t buf[kPumpBuffer];
  for (auto& f : forwards_) {
    for (int side = 0; side < 2; ++side) {
      ssh_channel from = f->ch[side];
      ssh_channel to = f->ch[1 - side];
      while (f->held[side] && from != nullptr && to != nullptr && !f->closed[1 - side] &&
             !finished_) {
        uint32_t win = ssh_channel_window_size(to);
        if (win == 0) break;
        if (ssh_channel_poll(from, 0) <= 0) {
          f->held[side] = false;
          break;
        }
        int n = ssh_channel_read_nonblocking(from, buf, std::min<uint32_t>(win, sizeof(buf)), 0);
        if (n <= 0) break;
        ssh_channel_write(to, buf, static_cast<uint32_t>(n));
        f->bytes[side] += static_cast<uint64_t>(n);
      }
      // EOF follows the data before it.
      if (f->eof[side] && !f->held[side] && !f->eof_sent[side] && to != nullptr &&
          !f->closed[1 - side]) {
        ssh_channel_send_eof(to);
        f->eof_sent[side] = true;
      }
    }
  }
  // A side that closed ends its forward once its data has gone.
  for (size_t i = 0; i < forwards_.size();) {
    Forward* f = forwards_[i].get();
    bool over = (f->closed[0] && !f->held[0]) || (f->closed[1] && !f->held[1]);
    if (!over) {
      ++i;
      continue;
    }
    EndForward(f);
    forwards_.erase(forwards_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

// Closes both sides and frees them; port forwards that were opened leave a
// forward_closed event with their byte counts.
void Session::EndForward(Forward* f) {
  bool opened = f->ch[Forward::kClient] != nullptr && f->ch[Forward::kUpstream] != nullptr;
  for (int side = 0; side < 2; ++side) {
    ssh_channel ch = f->ch[side];
    if (ch == nullptr) continue;
    ssh_remove_channel_callbacks(ch, &f->cb[side]);
    if (!f->closed[side] && ssh_channel_is_open(ch)) ssh_channel_close(ch);
    ssh_channel_free(ch);
    f->ch[side] = nullptr;
  }
  if (opened && f->kind != "auth-agent") {
    std::string detail = f->what + ": " + std::to_string(f->bytes[Forward::kClient]) +
                         " bytes from the client, " + std::to_string(f->bytes[Forward::kUpstream]) +
                         " bytes from the target";
    Log(person_ + " closed " + detail);
    if (Status s = Audit("forward_closed", detail); !s.ok()) {
      Log("forward_closed not audited: " + s.message());
    }
  }
}

// --- Relay ------------------------------------------------------------------

// Moves data libssh holds back (because the other side's window was full)
// once the window has room again. Only streams that hold data back are
// looked at: ssh_channel_poll on an empty buffer polls the socket, which on
// every turn of the relay loop would cost more than the data.
void Session::Pump() {
  uint8_t buf[kPumpBuffer];
  for (int is_stderr = 0; is_stderr <= 1; ++is_stderr) {
    while (up_held_[is_stderr] && !finished_ && uchan_ != nullptr && cchan_ != nullptr &&
           !client_closed_ && rec_error_.ok()) {
      uint32_t win = ssh_channel_window_size(cchan_);
      if (win == 0) break;
      if (ssh_channel_poll(uchan_, is_stderr) <= 0) {
        up_held_[is_stderr] = false;
        break;
      }
      int n = ssh_channel_read_nonblocking(uchan_, buf, std::min<uint32_t>(win, sizeof(buf)),
                                           is_stderr);
      if (n <= 0) break;
      RecordData(is_stderr != 0 ? Stream::kError : Stream::kOutput, buf, static_cast<size_t>(n));
      if (is_stderr) {
        ssh_channel_write_stderr(cchan_, buf, static_cast<uint32_t>(n));
      } else {
        ssh_channel_write(cchan_, buf, static_cast<uint32_t>(n));
      }
    }
  }
  while (client_held_ && !finished_ && uchan_ != nullptr && cchan_ != nullptr && !up_closed_ &&
         started_ && rec_error_.ok()) {
    uint32_t win = ssh_channel_window_size(uchan_);
    if (win == 0) break;
    if (ssh_channel_poll(cchan_, 0) <= 0) {
      client_held_ = false;
      break;
    }
    int n = ssh_channel_read_nonblocking(cchan_, buf, std::min<uint32_t>(win, sizeof(buf)), 0);
    if (n <= 0) break;
    RecordData(Stream::kInput, buf, static_cast<size_t>(n));
    ssh_channel_write(uchan_, buf, static_cast<uint32_t>(n));
  }
}

void Session::TellClient(const std::string& text) {
  std::string line = "\r\njitgate: " + text + "\r\n";
  RecordData(Stream::kOutput, line.data(), line.size());
  if (cchan_ != nullptr && !client_closed_) {
    ssh_channel_write_stderr(cchan_, line.data(), static_cast<uint32_t>(line.size()));
  }
}

// Ends the session: tells the client why (if message), closes both sides.
void Session::Finish(const std::string& reason, const std::string& message) {
  if (finished_) return;
  finished_ = true;
  end_reason_ = reason;
  if (!message.empty()) TellClient(message);
  Log("session " + (rec_ != nullptr ? rec_->session_id() : std::string("-")) + " of " + person_ +
      " on " + target_name_ + " ends: " + reason);
}

int Session::Relay() {
  event_ = ssh_event_new();
  if (event_ == nullptr || ssh_event_add_session(event_, client_) != SSH_OK ||
      ssh_event_add_session(event_, up_) != SSH_OK) {
    Log("cannot poll the sessions");
    return 1;
  }
  while (true) {
    // The recording connection's fd, polled for acknowledgements; a new one
    // after RecordingClient reconnected.
    if (rec_ != nullptr && rec_->fd() != rec_fd_) {
      if (rec_fd_ >= 0) ssh_event_remove_fd(event_, rec_fd_);
      rec_fd_ = rec_->fd();
      if (rec_fd_ >= 0) {
        ssh_event_add_fd(
            event_, rec_fd_, POLLIN,
            [](socket_t, int, void* u) {
              Session* s = Of(u);
              if (s->rec_ != nullptr && s->rec_error_.ok()) s->rec_error_ = s->rec_->Poll();
              return 0;
            },
            this);
      }
    }
    int rc = ssh_event_dopoll(event_, kPollMs);
    if (rc == SSH_ERROR) {
      if (!ssh_is_connected(client_)) client_closed_ = true;
      if (!ssh_is_connected(up_) && !up_closed_) {
        up_closed_ = true;
        Finish("target connection lost", "the connection to " + target_name_ + " was lost (" +
                                             ssh_get_error(up_) + ")");
      }
    }
    Pump();
    if (!forwards_.empty()) {
      OpenPendingForwards();
      PumpForwards();
    }
    auto now = std::chrono::steady_clock::now();
    if (!rec_error_.ok()) {
      Finish("recording failed", "recording failed (" + rec_error_.message() +
                                     "); the session is closed");
    }
    if (rec_ != nullptr && rec_error_.ok() && dirty_ &&
        now - last_flush_ >= std::chrono::milliseconds(kFlushIntervalMs)) {
      rec_error_ = rec_->Flush();
      dirty_ = false;
      last_flush_ = now;
    }
    if (rec_ != nullptr && rec_->terminated_by().has_value()) {
      std::string comment = rec_->terminate_comment();
      Finish("terminated", "session terminated by " + *rec_->terminated_by() +
                               (comment.empty() ? "" : ": " + comment));
    }
    if (g_stop_requested) {
      Finish("bastion stopped", "the bastion is stopping; the session is closed");
    }
    if (valid_until_ != 0 && static_cast<uint64_t>(UnixNanos() / 1'000'000'000) >= valid_until_) {
      Finish("expired", "the approval of request " + request_id_ +
                            " has expired; the session is closed");
    }
    // Forward EOF once everything before it has been forwarded.
    if (client_eof_ && !client_eof_sent_ && uchan_ != nullptr && !client_held_) {
      ssh_channel_send_eof(uchan_);
      client_eof_sent_ = true;
    }
    bool up_drained = uchan_ == nullptr || (!up_held_[0] && !up_held_[1]);
    if (up_eof_ && !up_eof_sent_ && up_drained && cchan_ != nullptr && !client_closed_) {
      ssh_channel_send_eof(cchan_);
      up_eof_sent_ = true;
    }
    if (finished_ || client_closed_ || (up_closed_ && up_drained) ||
        (cchan_ == nullptr && !ssh_is_connected(client_))) {
      break;
    }
  }
  // Forwards end with the session.
  for (auto& f : forwards_) EndForward(f.get());
  forwards_.clear();
  // The end of the session goes into the store first (what the auditor sees
  // when the client has returned is complete), then the client hears it.
  int rc = 0;
  if (rec_ != nullptr) {
    wire::CloseSession end;
    end.end_unix_nanos = static_cast<uint64_t>(UnixNanos());
    if (!finished_) end_reason_ = client_closed_ && !up_closed_ ? "client closed" : "closed";
    end.end_reason = end_reason_;
    if (has_exit_status_) {
      end.has_exit_status = true;
      end.exit_status = static_cast<uint32_t>(exit_status_);
    }
    end.exit_signal = exit_signal_;
    end.bytes_in = bytes_in_;
    end.bytes_out = bytes_out_;
    Status closed = rec_error_.ok() ? rec_->Close(end) : rec_error_;
    if (!closed.ok()) {
      Log("session " + rec_->session_id() + ": end not recorded: " + closed.message());
      rc = 1;
    } else {
      Log("session " + rec_->session_id() + " recorded (" + std::to_string(bytes_in_) +
          " bytes in, " + std::to_string(bytes_out_) + " bytes out, " + end_reason_ + ")");
    }
  }
  // Exit status to the client, then the channels.
  if (cchan_ != nullptr && !client_closed_ && ssh_is_connected(client_)) {
    if (!finished_) {
      if (has_exit_status_) {
        ssh_channel_request_send_exit_status(cchan_, exit_status_);
      } else if (!exit_signal_.empty()) {
        ssh_channel_request_send_exit_signal(cchan_, exit_signal_.c_str(), exit_core_ ? 1 : 0,
                                             exit_errmsg_.c_str(), "");
      }
    }
    if (!up_eof_sent_) ssh_channel_send_eof(cchan_);
    ssh_channel_close(cchan_);
  }
  if (uchan_ != nullptr && !up_closed_ && ssh_is_connected(up_)) ssh_channel_close(uchan_);
  // Everything queued for the client leaves before the connection goes
  // (bounded: at most a window's worth is queued), then the client has a
  // moment to answer the close.
  if (ssh_is_connected(client_)) ssh_blocking_flush(client_, 60'000);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(kCloseWaitSeconds);
  while (cchan_ != nullptr && ssh_is_connected(client_) && !client_closed_ &&
         std::chrono::steady_clock::now() < give_up) {
    ssh_event_dopoll(event_, 50);
  }
  return rc;
}

int Session::Run() {
  if (Status s = LoadHostKey(); !s.ok()) {
    Log(s.message());
    return 1;
  }
  if (options_.drop_privileges) {
    StatusOr<SessionIdentity> who = DropPrivileges(settings_.run_as);
    if (!who.ok()) {
      Log(who.status().message());
      return 1;
    }
    if (*who == SessionIdentity::kUnchanged) {
      Log("runs as the broker's own user (uid " + std::to_string(geteuid()) +
          "), not bastion.run_as " + settings_.run_as +
          ": no privilege to switch (neither root nor CAP_SETUID and CAP_SETGID)");
    }
  }
  signal(SIGPIPE, SIG_IGN);
  {
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;  // no SA_RESTART: a poll returns at once
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
  }
  if (options_.grace_alarm) {
    signal(SIGALRM, OnGraceAlarm);
    alarm(static_cast<unsigned>(GraceSeconds()));
  }
  client_ = ssh_new();
  if (client_ == nullptr || ssh_bind_accept_fd(bind_, client_, fd_) != SSH_OK) {
    Log("cannot accept the connection from " + remote_addr_ + ": " + ssh_get_error(bind_));
    return 1;
  }
  server_cb_ = {};
  server_cb_.userdata = this;
  server_cb_.auth_pubkey_function = [](ssh_session, const char* user, ssh_key_struct* key,
                                       char state, void* u) {
    return Of(u)->OnAuthPubkey(user, key, state);
  };
  server_cb_.channel_open_request_session_function = [](ssh_session, void* u) {
    return Of(u)->OnChannelOpen();
  };
  ssh_callbacks_init(&server_cb_);
  ssh_set_server_callbacks(client_, &server_cb_);
  ssh_set_message_callback(
      client_, [](ssh_session, ssh_message m, void* u) { return Of(u)->OnMessage(m); }, this);
  ssh_set_auth_methods(client_, SSH_AUTH_METHOD_PUBLICKEY);
  if (ssh_handle_key_exchange(client_) != SSH_OK) {
    Log("key exchange with " + remote_addr_ + " failed: " + ssh_get_error(client_));
    return 1;
  }
  // Authentication, then wait for the session channel and its start.
  ssh_event ev = ssh_event_new();
  ssh_event_add_session(ev, client_);
  int waited_ms = 0;
  while (!auth_failed_ && ssh_is_connected(client_) && !g_stop_requested) {
    if (ssh_event_dopoll(ev, 100) == SSH_ERROR) break;
    if (authenticated_ && started_) break;
    if (!rec_error_.ok()) break;
    if (authenticated_) {
      waited_ms += 100;
      // The client has 60 s after authentication to start a session.
      if (waited_ms > 60'000) break;
    }
  }
  ssh_event_remove_session(ev, client_);
  ssh_event_free(ev);
  alarm(0);
  if (!authenticated_) AuditRefusedLogin();
  if (!authenticated_ || !started_) {
    if (!rec_error_.ok() && cchan_ != nullptr) {
      std::string line = "jitgate: session not started: it cannot be recorded (" +
                         rec_error_.message() + ")\r\n";
      ssh_channel_write_stderr(cchan_, line.data(), static_cast<uint32_t>(line.size()));
      ssh_channel_send_eof(cchan_);
      ssh_channel_close(cchan_);
      ssh_blocking_flush(client_, 2000);
    }
    return 1;
  }
  return Relay();
}

}  // namespace

int RunSession(const broker::Config& config, int client_fd, const SessionOptions& options) {
  // jitgated starts us through /proc/self/exe: name the process for ps/top.
  prctl(PR_SET_NAME, "jitgate-bastion", 0, 0, 0);
  if (!config.bastion.has_value()) {
    Log("no bastion section in the configuration");
    return 1;
  }
  Session session(config, client_fd, options);
  return session.Run();
}

}  // namespace jitgate::bastion
