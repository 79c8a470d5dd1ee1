#include "broker/server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "broker/broker_metrics.h"
#include "broker/health.h"
#include "core/base/status_macros.h"
#include "core/base/text.h"
#include "core/base/unix_socket.h"
#include "core/crypto/crypto.h"

namespace jitgate::broker {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int kMaxEvents = 256;
// epoll_wait never sleeps longer than this, so a wall-clock step is noticed.
constexpr int kMaxSleepMs = 10'000;
constexpr int kDrainPollMs = 50;  // how often a draining stop looks whether it is done
constexpr int64_t kPruneInterval = 60 * kSecond;

std::string Errno() { return std::strerror(errno); }


uint64_t Seconds(int64_t unix_nanos) {
  return unix_nanos <= 0 ? 0 : static_cast<uint64_t>(unix_nanos / kSecond);
}

uint32_t SecondsLeft(int64_t deadline, int64_t now) {
  if (deadline <= now) return 0;
  int64_t s = (deadline - now + kSecond - 1) / kSecond;
  return s > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(s);
}

std::string Cut(std::string s, size_t cap) {
  if (s.size() > cap) s.resize(cap);
  return s;
}

// "2 of oncall, security", "policy:dev", "nobody (denied by policy)".
// The journal fields of a log line about request r (daemon_log.h).
LogFields FieldsOf(const Request& r, std::string_view decision) {
  return LogFields{.request = r.id,
                   .user = r.fields.user,
                   .service = r.fields.service,
                   .decision = decision};
}

std::string ApproversLabel(const Decision& d) {
  switch (d.outcome) {
    case Outcome::kApproval: {
      std::string groups;
      for (const std::string& g : d.approver_groups) groups += (groups.empty() ? "" : ", ") + g;
      return Cut(std::to_string(d.quorum) + " of " + groups, wire::kMaxLabelField);
    }
    case Outcome::kAutoApprove:
      return Cut("policy:" + d.policy, wire::kMaxLabelField);
    case Outcome::kDeny:
      break;
  }
  return "nobody (denied by policy)";
}

wire::RequestState WireState(RequestState s) {
  switch (s) {
    case RequestState::kPending:
      return wire::RequestState::kPending;
    case RequestState::kApproved:
      return wire::RequestState::kApproved;
    case RequestState::kDenied:
      return wire::RequestState::kDenied;
    case RequestState::kExpired:
      return wire::RequestState::kExpired;
    case RequestState::kCancelled:
      return wire::RequestState::kCancelled;
    case RequestState::kUsed:
      return wire::RequestState::kUsed;
  }
  return wire::RequestState::kDenied;
}

bool IsFinal(RequestState s) {
  return s != RequestState::kPending && s != RequestState::kApproved;
}

// The protocol error code for a RequestBook lookup failure.
wire::ErrorCode LookupError(const Status& s) {
  if (s.code() == StatusCode::kNotFound) return wire::ErrorCode::kNotFound;
  if (s.message().find("matches") != std::string::npos) return wire::ErrorCode::kAmbiguous;
  return wire::ErrorCode::kNotFound;
}

}  // namespace

// One client connection.
struct Server::Conn {
  UniqueFd fd;
  Caller peer;
  std::string peer_label;  // "uid 0 (root) pid 4242"
  wire::FrameReader reader;
  wire::ProtocolState state;
  Bytes out;
  size_t out_sent = 0;
  bool epollout = false;
  bool close_after_write = false;
  // Requester role.
  std::string request_id;  // set while this connection is the filer
  std::optional<wire::SubmitRequest> awaiting_reason;
  Decision awaiting_decision;
  // Recorder role.
  std::string session_id;
  // Approver role.
  bool following = false;
  wire::ListFilter follow_filter = wire::ListFilter::kPending;
};

Server::Server(const Config& config, StateDb* db, store::Store* store, ServerOptions options)
    : config_(config),
      db_(db),
      store_(store),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      sink_(store, MetricsObservers(options_.metrics, &book_), clock_),
      book_(&sink_, [this]() -> StatusOr<std::string> {
        // Ids are never reused: a fresh id must be new to the whole history
        // in the database, not just to the requests in memory.
        for (int attempt = 0; attempt < 16; ++attempt) {
          ASSIGN_OR_RETURN(std::string id, RandomRequestId());
          StatusOr<bool> used = db_->Exists(id);
          if (!used.ok()) {
            id_error_ = used.status();
            return used.status();
          }
          if (!*used) return id;
        }
        return InternalError("could not draw an unused request id");
      }) {}

Server::~Server() = default;


void Server::Log(const std::string& line, const LogFields& fields) {
  if (options_.log_events) DaemonLog(line, fields);
}

void Server::EmitConfigEvent(const std::string& event, const std::string& file,
                             const std::string& sha256, const std::string& comment) {
  AuditEvent e;
  e.type = AuditEventType::kConfig;
  e.actor = std::string(kBrokerActor);
  e.comment = comment;
  e.time_unix_nanos = Now();
  e.config = ConfigAudit{event, file, sha256};
  sink_.Emit(e);
}

void Server::Reload() {
  if (!options_.load_config) {
    Log("SIGHUP: this broker was started without a configuration file to reload");
    return;
  }
  NotifyReloading();
  StatusOr<LoadedConfig> next = options_.load_config();
  Status s = next.ok() ? CheckReloadable(config_, next->config) : next.status();
  if (s.ok() && options_.apply_config) s = options_.apply_config(*next);
  if (!s.ok()) {
    Log("configuration reload refused, the running configuration stays: " + s.message(),
        LogFields{.decision = "reload_refused", .warning = true});
    EmitConfigEvent("reload_refused", config_.file, next.ok() ? next->sha256 : "", s.message());
    if (options_.metrics != nullptr) options_.metrics->OnConfigReload(false, Seconds(Now()));
    NotifyReady("serving; last reload refused: " + s.message());
    return;
  }
  config_ = std::move(next->config);
  if (options_.ca != nullptr && config_.ca.has_value()) options_.ca->UpdateSettings(*config_.ca);
  EmitConfigEvent("reloaded", config_.file, next->sha256, "");
  if (options_.metrics != nullptr) options_.metrics->OnConfigReload(true, Seconds(Now()));
  Log("configuration reloaded from " + config_.file + " (sha256 " + next->sha256.substr(0, 16) +
          "): " + std::to_string(config_.policy.rules.size()) + " policies; waiting requests keep "
          "the policy they were filed under",
      LogFields{.decision = "reloaded"});
  NotifyReady("serving; configuration reloaded");
}

Status Server::Start() {
  // Many waiting clients need many descriptors.
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }

  // Requests saved by the previous run.
  int64_t now = Now();
  ASSIGN_OR_RETURN(std::vector<SavedRequest> active, db_->LoadActive());
  ASSIGN_OR_RETURN(std::vector<SavedRequest> recent,
                   db_->LoadRecentFinished(static_cast<int>(options_.keep_finished_max)));
  for (SavedRequest& s : active) {
    std::string id = s.request.id;
    bool pending = s.request.state == RequestState::kPending;
    if (s.token_hash.has_value()) token_hash_[id] = *s.token_hash;
    RETURN_IF_ERROR(book_.Restore(std::move(s.request)));
    if (pending) unattached_[id] = now + options_.resume_grace_nanos;
  }
  for (SavedRequest& s : recent) {
    if (!book_.Restore(std::move(s.request)).ok()) continue;
  }
  if (!active.empty()) {
    Log("restored " + std::to_string(active.size()) +
        " pending or approved requests; waiting clients have " +
        FormatSeconds((options_.resume_grace_nanos + kSecond - 1) / kSecond) + " to resume");
  }

  RETURN_IF_ERROR(RestoreSessions());

  // The KRL exists before the first login is checked against it (sshd
  // refuses every certificate if its RevokedKeys file is missing).
  if (options_.ca != nullptr) {
    RETURN_IF_ERROR(WriteKrl());
    RETURN_IF_ERROR(db_->Commit());
  }

  // The socket: directory owned by us, 0755, so nobody else can swap it.
  const std::string& path = config_.broker.socket;
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "creating socket directory " + dir);
  }
  ASSIGN_OR_RETURN(listen_, BindUnixSocket(path, "another jitgated"));
  // Every local user may connect; what each may do is decided per operation
  // by SO_PEERCRED (docs/protocol.md §1).
  if (::chmod(path.c_str(), 0666) != 0) return ErrnoToStatus(errno, "chmod " + path);
  if (::listen(listen_.get(), 4096) != 0) return ErrnoToStatus(errno, "listen " + path);

  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return ErrnoToStatus(errno, "epoll_create1");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return InternalError("sigprocmask");
  signal_fd_ = UniqueFd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return ErrnoToStatus(errno, "signalfd");
  stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) return ErrnoToStatus(errno, "eventfd");
  for (int fd : {listen_.get(), signal_fd_.get(), stop_fd_.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return ErrnoToStatus(errno, "epoll_ctl");
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  next_prune_ = Now() + kPruneInterval;
  if (!options_.config_sha256.empty()) {
    EmitConfigEvent("loaded", config_.file, options_.config_sha256, "");
  }
  Log("listening on " + path);
  return OkStatus();
}

void Server::Stop() {
  uint64_t one = 1;
  if (stop_fd_) (void)!::write(stop_fd_.get(), &one, sizeof(one));
}

int Server::NextTimeoutMs() {
  int64_t now = Now();
  std::optional<int64_t> next = book_.NextDeadline();
  for (const auto& [id, at] : unattached_) {
    if (!next.has_value() || at < *next) next = at;
  }
  for (const std::string& id : unresumed_sessions_) {
    auto live = sessions_.find(id);
    if (live == sessions_.end()) continue;  // dropped from the set by EndLostSessions
    int64_t at = LostDeadline(live->second);
    if (!next.has_value() || at < *next) next = at;
  }
  if (!awaited_sessions_.empty() && (!next.has_value() || next_peer_check_ < *next)) {
    next = next_peer_check_;
  }
  if (!next.has_value() || *next > next_prune_) next = next_prune_;
  int64_t ms = (*next - now + 999'999) / 1'000'000;
  if (ms < 0) ms = 0;
  return static_cast<int>(std::min<int64_t>(ms, kMaxSleepMs));
}

Status Server::Run() {
  std::vector<epoll_event> events(kMaxEvents);
  // Set when a stop begins its drain (ServerOptions::on_stopping).
  std::optional<std::chrono::steady_clock::time_point> drain_until;
  while (true) {
    int timeout_ms = NextTimeoutMs();
    if (stopping_) {
      if (!drain_until.has_value()) {
        if (!options_.on_stopping || !options_.draining) break;
        options_.on_stopping();
        drain_until = std::chrono::steady_clock::now() +
                      std::chrono::nanoseconds(options_.drain_nanos);
      }
      if (!options_.draining() || std::chrono::steady_clock::now() >= *drain_until) break;
      timeout_ms = std::min(timeout_ms, kDrainPollMs);
    }
    int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) return ErrnoToStatus(errno, "epoll_wait");
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_.get()) {
        Accept();
      } else if (fd == signal_fd_.get()) {
        signalfd_siginfo si;
        while (::read(fd, &si, sizeof(si)) == sizeof(si)) {
          if (si.ssi_signo == SIGHUP) {
            Reload();
          } else {
            Log(std::string("stopping on ") + (si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT"));
            stopping_ = true;
          }
        }
      } else if (fd == stop_fd_.get()) {
        uint64_t v;
        (void)!::read(fd, &v, sizeof(v));
        stopping_ = true;
      } else {
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = *it->second;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) OnReadable(c);
        it = conns_.find(fd);  // OnReadable may have closed it
        if (it != conns_.end() && (events[i].events & EPOLLOUT)) OnWritable(*it->second);
      }
    }
    RunTimers();
    Status s = EndTurn();
    if (!s.ok()) {
      fatal_ = s;
      break;
    }
  }
  // Stop: close every connection without cancelling (clients resume after a
  // restart), then leave the store and database consistent.
  std::vector<int> fds;
  for (const auto& [fd, c] : conns_) fds.push_back(fd);
  for (int fd : fds) CloseConn(fd, /*cancel_request=*/false);
  Status s = EndTurn();
  if (fatal_.ok() && !s.ok()) fatal_ = s;
  if (listen_) {
    ::unlink(config_.broker.socket.c_str());
    listen_.reset();
  }
  return fatal_;
}

Status Server::EndTurn() {
  if (!id_error_.ok()) return id_error_;
  // Every request changed this turn goes into the database, in the same turn.
  for (const std::string& id : touched_) {
    const Request* r = book_.Get(id);
    if (r == nullptr) continue;
    SavedRequest saved{*r, std::nullopt};
    auto t = token_hash_.find(id);
    if (t != token_hash_.end()) saved.token_hash = t->second;
    Status s = db_->Save(saved);
    if (!s.ok()) {
      db_->Rollback();
      return s;
    }
  }
  touched_.clear();
  if (Status s = SaveSessions(); !s.ok()) {
    db_->Rollback();
    return s;
  }
  // Durable before anyone hears of it. The store's writer thread has been
  // syncing this turn's audit events since they were appended; the database
  // commit (its own fsync) runs meanwhile, so a turn costs one fsync of
  // latency, not two. After a crash between the two, the store may hold an
  // event the database lacks or the reverse, but no client was told of it.
  RETURN_IF_ERROR(db_->Commit());
  RETURN_IF_ERROR(sink_.Flush());
  SendSessionAcks();  // only now: what they acknowledge is durable
  if (options_.metrics != nullptr) options_.metrics->SetLoop(book_.pending(), sessions_.size());
  std::set<int> flush;
  flush.swap(to_flush_);
  for (int fd : flush) {
    auto it = conns_.find(fd);
    if (it != conns_.end()) Flush(*it->second);
  }
  return OkStatus();
}

void Server::RunTimers() {
  int64_t now = Now();
  for (const std::string& id : book_.Expire(now)) {
    Touch(id);
    const Request* r = book_.Get(id);
    if (r != nullptr) Log("request " + id + " expired: " + r->closed_comment, FieldsOf(*r, "expired"));
    NotifyFiler(id);
    NotifyFollowers(id, false);
  }
  for (auto it = unattached_.begin(); it != unattached_.end();) {
    const Request* r = book_.Get(it->first);
    if (r == nullptr || r->state != RequestState::kPending || filer_.contains(it->first)) {
      it = unattached_.erase(it);
      continue;
    }
    if (it->second > now) {
      ++it;
      continue;
    }
    std::string id = it->first;
    it = unattached_.erase(it);
    if (book_.Cancel(id, kBrokerActor, "the waiting client did not resume after a broker restart",
                     now)
            .ok()) {
      Touch(id);
      Log("request " + id + " cancelled: its client did not resume after the restart",
          LogFields{.request = id, .decision = "cancelled"});
      NotifyFollowers(id, false);
    }
  }
  CheckAwaitedSessions(now);
  EndLostSessions(now);
  if (now >= next_prune_) {
    PruneFinished();
    uid_names_.clear();
    next_prune_ = now + kPruneInterval;
  }
}

void Server::PruneFinished() {
  int64_t now = Now();
  std::vector<std::pair<int64_t, std::string>> finished;
  book_.ForEach([&](const Request& r) {
    if (!IsFinal(r.state)) return;
    int64_t end = std::max({r.decided_unix_nanos, r.used_unix_nanos, r.created_unix_nanos});
    finished.push_back({end, r.id});
  });
  std::sort(finished.begin(), finished.end());
  size_t excess =
      finished.size() > options_.keep_finished_max ? finished.size() - options_.keep_finished_max : 0;
  for (size_t i = 0; i < finished.size(); ++i) {
    if (i < excess || finished[i].first + options_.keep_finished_nanos < now) {
      if (book_.Forget(finished[i].second).ok()) token_hash_.erase(finished[i].second);
    }
  }
}

void Server::Touch(const std::string& id) { touched_.insert(id); }

// --- connections -------------------------------------------------------------

void Server::Accept() {
  while (true) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) Log("accept: " + Errno());
      return;
    }
    UniqueFd owned(fd);
    if (conns_.size() >= options_.max_connections) {
      Log("too many connections (" + std::to_string(conns_.size()) + "); refusing one");
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      Log("SO_PEERCRED: " + Errno());
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->peer.uid = cred.uid;
    c->peer.gid = cred.gid;
    c->peer.pid = cred.pid;
    c->peer.user = NameOfUid(cred.uid);
    c->peer_label = Cut("uid " + std::to_string(cred.uid) + " (" + c->peer.user + ") pid " +
                            std::to_string(cred.pid),
                        wire::kMaxLabelField);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      Log("epoll_ctl: " + Errno());
      continue;
    }
    c->fd = std::move(owned);
    conns_.emplace(fd, std::move(c));
  }
}

void Server::OnReadable(Conn& c) {
  int fd = c.fd.get();
  // Bounded work per turn so one busy client cannot starve the rest.
  for (int frames = 0; frames < 16; ++frames) {
    StatusOr<wire::FrameReader::ReadResult> r = c.reader.ReadFrom(fd);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kInvalidArgument) {
        SendError(c, wire::ErrorCode::kMalformed, r.status().message());
        c.close_after_write = true;
        Flush(c);
      } else {
        CloseConn(fd, true);
      }
      return;
    }
    if (*r == wire::FrameReader::ReadResult::kWouldBlock) return;
    if (*r == wire::FrameReader::ReadResult::kEof) {
      CloseConn(fd, true);
      return;
    }
    if (c.reader.HasFrame()) {
      HandleFrame(c, c.reader.TakeFrame());
      if (!conns_.contains(fd) || c.close_after_write) return;
    }
  }
}

void Server::HandleFrame(Conn& c, wire::Frame frame) {
  StatusOr<wire::Message> m = wire::DecodeMessage(frame.type, frame.body);
  if (!m.ok()) {
    SendError(c, wire::ErrorCode::kMalformed, m.status().message());
    c.close_after_write = true;
    return;
  }
  Status s = c.state.OnClientMessage(*m);
  if (!s.ok()) {
    SendError(c, wire::ErrorCode::kUnexpectedMessage, s.message());
    c.close_after_write = true;
    return;
  }
  HandleMessage(c, std::move(*m));
}

void Server::HandleMessage(Conn& c, wire::Message m) {
  if (auto* hello = std::get_if<wire::Hello>(&m)) return OnHello(c, *hello);
  if (auto* submit = std::get_if<wire::SubmitRequest>(&m)) return OnSubmit(c, std::move(*submit));
  if (auto* reason = std::get_if<wire::ProvideReason>(&m)) return OnProvideReason(c, *reason);
  if (auto* resume = std::get_if<wire::Resume>(&m)) return OnResume(c, *resume);
  if (std::holds_alternative<wire::Cancel>(m)) return OnCancel(c);
  if (auto* list = std::get_if<wire::ListRequests>(&m)) return OnList(c, *list);
  if (auto* get = std::get_if<wire::GetRequest>(&m)) return OnGet(c, *get);
  if (auto* a = std::get_if<wire::Approve>(&m)) return OnVote(c, true, a->id, a->digest, a->comment);
  if (auto* d = std::get_if<wire::Deny>(&m)) return OnVote(c, false, d->id, d->digest, d->comment);
  if (auto* f = std::get_if<wire::Follow>(&m)) return OnFollow(c, *f);
  if (auto* l = std::get_if<wire::ListCerts>(&m)) return OnListCerts(c, *l);
  if (auto* r = std::get_if<wire::Revoke>(&m)) return OnRevoke(c, *r);
  if (auto* h = std::get_if<wire::SignHostKey>(&m)) return OnSignHostKey(c, *h);
  if (std::holds_alternative<wire::GetCaInfo>(m)) return OnGetCaInfo(c);
  if (auto* o = std::get_if<wire::OpenSession>(&m)) return OnOpenSession(c, *o);
  if (auto* d = std::get_if<wire::SessionData>(&m)) return OnSessionData(c, *d);
  if (auto* cs = std::get_if<wire::CloseSession>(&m)) return OnCloseSession(c, *cs);
  if (auto* t = std::get_if<wire::TerminateSession>(&m)) return OnTerminateSession(c, *t);
  if (auto* b = std::get_if<wire::BastionEvent>(&m)) return OnBastionEvent(c, *b);
  if (std::holds_alternative<wire::GetStatus>(m)) return OnGetStatus(c);
  if (auto* r = std::get_if<wire::SpoolReport>(&m)) return OnSpoolReport(c, *r);
  // Server-to-client types were already refused by the state machine.
  SendError(c, wire::ErrorCode::kUnexpectedMessage, "unexpected message");
  c.close_after_write = true;
}

void Server::OnWritable(Conn& c) { Flush(c); }

void Server::Send(Conn& c, const wire::Message& m) {
  StatusOr<Bytes> frame = wire::EncodeMessage(m);
  Status tracked = frame.ok() ? c.state.OnServerMessage(m) : frame.status();
  if (!tracked.ok()) {
    // A message we cannot encode or may not send is a broker bug; the client
    // must not be left hanging: end the connection (it fails closed).
    Log("internal error answering " + c.peer_label + ": " + tracked.message());
    c.close_after_write = true;
    to_flush_.insert(c.fd.get());
    return;
  }
  if (c.out.size() - c.out_sent + frame->size() > options_.max_output_bytes) {
    Log("closing " + c.peer_label + ": it does not read its replies");
    c.close_after_write = true;
    c.out.clear();
    c.out_sent = 0;
    to_flush_.insert(c.fd.get());
    return;
  }
  c.out.insert(c.out.end(), frame->begin(), frame->end());
  to_flush_.insert(c.fd.get());
}

void Server::SendError(Conn& c, wire::ErrorCode code, std::string message) {
  wire::Error e;
  e.code = code;
  e.message = Cut(std::move(message), wire::kMaxMessageField);
  Send(c, e);
  // Fatal errors, and every error to a requester, end the connection.
  if (wire::IsFatalError(code) || c.state.state() == wire::ConnState::kDone) {
    c.close_after_write = true;
  }
}

void Server::Flush(Conn& c) {
  int fd = c.fd.get();
  while (c.out_sent < c.out.size()) {
    ssize_t n = ::send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.epollout) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.fd = fd;
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
        c.epollout = true;
      }
      return;
    }
    if (n <= 0) {
      CloseConn(fd, true);
      return;
    }
    c.out_sent += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out_sent = 0;
  if (c.epollout) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    c.epollout = false;
  }
  if (c.close_after_write) CloseConn(fd, false);
}

void Server::CloseConn(int fd, bool cancel_request) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  followers_.erase(fd);
  to_flush_.erase(fd);
  ack_due_.erase(fd);
  if (!c->session_id.empty()) {
    // The recorder went away without CloseSession: the session stays open
    // and may be resumed (a spooling recorder spools meanwhile). One without
    // a spool resumes at once or never: after the grace it is lost. Not when
    // we close it ourselves on shutdown: the next start gives the grace.
    auto live = sessions_.find(c->session_id);
    if (live != sessions_.end() && live->second.fd == fd) {
      live->second.fd = -1;
      if (live->second.broker_named && !stopping_) {
        live->second.lost_unix_nanos = Now();
        unresumed_sessions_.insert(c->session_id);
      }
    }
  }
  if (!c->request_id.empty()) {
    const std::string id = c->request_id;
    auto f = filer_.find(id);
    if (f != filer_.end() && f->second == fd) {
      filer_.erase(f);
      const Request* r = book_.Get(id);
      // The waiting client went away (sshd's LoginGraceTime, Ctrl-C): the
      // request is withdrawn. Not when we close it ourselves on shutdown.
      if (cancel_request && !stopping_ && r != nullptr && r->state == RequestState::kPending) {
        if (book_.Cancel(id, kBrokerActor, "the waiting client went away", Now()).ok()) {
          Touch(id);
          Log("request " + id + " cancelled: its client went away",
              LogFields{.request = id, .decision = "cancelled"});
          NotifyFollowers(id, false);
        }
      }
    }
  }
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  // c->fd closes here.
}

// --- names -------------------------------------------------------------------

std::string Server::NameOfUid(uid_t uid) {
  auto it = uid_names_.find(uid);
  if (it != uid_names_.end()) return it->second;
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  std::string name;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr) {
    name = pw.pw_name;
  } else {
    name = "uid:" + std::to_string(uid);  // no name: never matches a user name in policy
  }
  uid_names_[uid] = name;
  return name;
}

std::optional<uid_t> Server::UidOfName(const std::string& name) {
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr) {
    return pw.pw_uid;
  }
  return std::nullopt;
}

std::vector<std::string> Server::GroupsOf(const std::string& user) {
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return {};
  }
  int n = 64;
  std::vector<gid_t> gids(static_cast<size_t>(n));
  if (::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n) < 0) {
    gids.resize(static_cast<size_t>(n));
    if (::getgrouplist(user.c_str(), pw.pw_gid, gids.data(), &n) < 0) return {};
  }
  gids.resize(static_cast<size_t>(n));
  std::vector<std::string> names;
  for (gid_t g : gids) {
    group gr;
    group* gres = nullptr;
    std::vector<char> gbuf(16384);
    if (::getgrgid_r(g, &gr, gbuf.data(), gbuf.size(), &gres) == 0 && gres != nullptr) {
      names.push_back(gr.gr_name);
    }
  }
  return names;
}

// --- views -------------------------------------------------------------------

bool Server::Visible(const Conn& c, const Request& r) const {
  if (c.peer.uid == 0) return true;
  if (r.fields.user == c.peer.user) return true;
  return std::binary_search(r.decision.approvers.begin(), r.decision.approvers.end(), c.peer.user);
}

wire::RequestInfo Server::InfoOf(const Request& r) const {
  wire::RequestInfo info;
  info.id = r.id;
  info.fields = r.fields;
  info.digest = r.digest;
  info.state = WireState(r.state);
  info.filed_by = Cut("uid " + std::to_string(r.caller.uid) + " (" + r.caller.user + ") pid " +
                          std::to_string(r.caller.pid),
                      wire::kMaxLabelField);
  info.approvers = ApproversLabel(r.decision);
  info.approvals_needed = r.decision.outcome == Outcome::kApproval
                              ? static_cast<uint16_t>(std::max(r.decision.quorum, 1))
                              : 0;
  info.created_at = Seconds(r.created_unix_nanos);
  info.expires_at = Seconds(r.state == RequestState::kApproved ? r.valid_until_unix_nanos
                                                               : r.deadline_unix_nanos);
  for (const Approval& a : r.approvals) {
    if (info.votes.size() >= wire::kMaxVotes) break;
    info.votes.push_back({wire::Verdict::kApprove, Cut(a.approver, wire::kMaxLabelField),
                          Seconds(a.time_unix_nanos), Cut(a.comment, wire::kMaxCommentField)});
  }
  if (r.state == RequestState::kDenied && r.closed_by != kBrokerActor &&
      info.votes.size() < wire::kMaxVotes) {
    info.votes.push_back({wire::Verdict::kDeny, Cut(r.closed_by, wire::kMaxLabelField),
                          Seconds(r.decided_unix_nanos),
                          Cut(r.closed_comment, wire::kMaxCommentField)});
  }
  return info;
}

wire::RequestList Server::ListFor(const Conn& c, wire::ListFilter filter, uint16_t limit) const {
  if (limit == 0) limit = wire::kDefaultListLimit;
  if (limit > wire::kMaxListItems) limit = wire::kMaxListItems;
  // Pointers, not copies: with 10,000 waiting requests a listing must not
  // copy them all inside the loop's turn.
  std::vector<const Request*> all;
  book_.ForEach([&](const Request& r) {
    if (filter == wire::ListFilter::kAll || r.state == RequestState::kPending) all.push_back(&r);
  });
  std::sort(all.begin(), all.end(), [](const Request* a, const Request* b) {
    return a->created_unix_nanos != b->created_unix_nanos
               ? a->created_unix_nanos > b->created_unix_nanos
               : a->id > b->id;
  });
  wire::RequestList list;
  size_t bytes = 64;  // frame header, flag, count, slack
  for (const Request* p : all) {
    const Request& r = *p;
    if (!Visible(c, r)) continue;
    if (list.items.size() >= limit) {
      list.more = true;
      break;
    }
    wire::RequestInfo info = InfoOf(r);
    Bytes body;
    if (!wire::EncodeBody(info, &body).ok()) continue;
    if (bytes + body.size() > wire::kMaxBodySize) {
      list.more = true;
      break;
    }
    bytes += body.size();
    list.items.push_back(std::move(info));
  }
  return list;
}

// --- handlers ----------------------------------------------------------------

void Server::OnHello(Conn& c, const wire::Hello& m) {
  if (m.min_version > wire::kProtocolVersion || m.max_version < wire::kProtocolVersion) {
    SendError(c, wire::ErrorCode::kUnsupportedVersion,
              "this broker speaks protocol version " + std::to_string(wire::kProtocolVersion));
    return;
  }
  wire::HelloAck ack;
  ack.version = wire::kProtocolVersion;
  ack.server_id = Cut(options_.server_id, wire::kMaxLabelField);
  Send(c, ack);
}

void Server::OnSubmit(Conn& c, wire::SubmitRequest m) {
  const wire::RequestFields& f = m.fields;
  if (f.service.empty() || f.user.empty() || f.target_user.empty() || f.host.empty()) {
    SendError(c, wire::ErrorCode::kInvalidRequest,
              "a request must name the service, user, target user and host");
    return;
  }
  // Who may file for whom: a user for themselves, a configured submitter
  // (sshd and sudo run the PAM module as root) for anyone, a bastion session
  // process (asked now, by pid: listener.h) for anyone, but only service
  // "bastion". Nobody else files "bastion": policy matches on the service, so
  // it must say who really asked.
  const bool bastion_peer = options_.is_bastion_session && options_.is_bastion_session(c.peer.pid);
  if (f.service == "bastion" && !bastion_peer) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              "service 'bastion' requests come only from the bastion");
    return;
  }
  if (bastion_peer && f.service != "bastion") {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " is a bastion session and files only service 'bastion' requests");
    return;
  }
  bool submitter = bastion_peer || IsSubmitter(c);
  if (!submitter) {
    std::optional<uid_t> uid = UidOfName(f.user);
    if (!uid.has_value() || *uid != c.peer.uid) {
      SendError(c, wire::ErrorCode::kPermissionDenied,
                c.peer_label + " may not file requests for user '" + f.user +
                    "' (only for itself; submitters: broker.submitters)");
      return;
    }
  }
  if (!f.public_key.empty()) {
    // A certificate request (jitgate request, or the bastion's upstream
    // key): refuse what could never be signed now, not after an approver has
    // said yes. Other services never get a certificate, so a key there would
    // have an approver sign something they did not mean to.
    if (f.service != "ssh-cert" && f.service != "bastion") {
      SendError(c, wire::ErrorCode::kInvalidRequest,
                "only ssh-cert and bastion requests carry a public key");
      return;
    }
    if (options_.ca == nullptr) {
      SendError(c, wire::ErrorCode::kNoCa,
                "this broker has no certificate authority (no 'ca:' section in its configuration)");
      return;
    }
    StatusOr<ca::PublicKey> key = CertAuthority::CheckSubjectKey(f.public_key);
    Status addr = CertAuthority::CheckSourceAddress(f.remote_addr);
    if (!key.ok() || !addr.ok()) {
      SendError(c, wire::ErrorCode::kInvalidRequest,
                !key.ok() ? key.status().message() : addr.message());
      return;
    }
  }
  size_t active = book_.active();
  if (active >= options_.max_pending) {
    SendError(c, wire::ErrorCode::kBusy,
              "too many requests waiting (" + std::to_string(active) + "); try again later");
    return;
  }
  Decision d = Evaluate(config_.policy, f, GroupsOf(f.user));
  bool wants_reason = f.reason.empty() && d.outcome != Outcome::kDeny &&
                      (d.reason == ReasonMode::kRequired ||
                       (d.reason == ReasonMode::kOptional && d.outcome == Outcome::kApproval));
  if (wants_reason && m.can_prompt) {
    wire::NeedReason ask;
    ask.required = d.reason == ReasonMode::kRequired;
    ask.prompt = Cut("Reason for " + f.service + " as " + f.target_user + " on " + f.host +
                         (ask.required ? ": " : " (optional): "),
                     wire::kMaxPromptField);
    c.awaiting_reason = std::move(m);
    c.awaiting_decision = std::move(d);
    Send(c, ask);
    return;
  }
  if (wants_reason && d.reason == ReasonMode::kRequired) {
    // No request is filed, so the answer has no id: outcome error.
    wire::Decision no;
    no.outcome = wire::Outcome::kError;
    no.message = Cut("access denied: policy '" + d.policy +
                         "' requires a reason and this client cannot ask for one; give a reason",
                     wire::kMaxMessageField);
    Log("refused a request of " + f.user + " for " + f.service + " on " + f.host +
            ": reason required, none given",
        LogFields{.user = f.user, .service = f.service, .decision = "refused"});
    Send(c, no);
    c.close_after_write = true;
    return;
  }
  uint32_t timeout = m.timeout_seconds;
  CreateAndAnswer(c, m.fields, std::move(d), timeout);
}

void Server::OnProvideReason(Conn& c, const wire::ProvideReason& m) {
  if (!c.awaiting_reason.has_value()) {
    SendError(c, wire::ErrorCode::kUnexpectedMessage, "no reason was asked for");
    return;
  }
  wire::SubmitRequest submit = std::move(*c.awaiting_reason);
  c.awaiting_reason.reset();
  Decision d = std::move(c.awaiting_decision);
  submit.fields.reason = m.reason;
  if (m.reason.empty() && d.reason == ReasonMode::kRequired) {
    wire::Decision no;
    no.outcome = wire::Outcome::kError;  // no request filed: no id
    no.message = Cut("access denied: policy '" + d.policy + "' requires a reason; none given",
                     wire::kMaxMessageField);
    Send(c, no);
    c.close_after_write = true;
    return;
  }
  CreateAndAnswer(c, std::move(submit.fields), std::move(d), submit.timeout_seconds);
}

void Server::CreateAndAnswer(Conn& c, wire::RequestFields fields, Decision decision,
                             uint32_t timeout_seconds) {
  if (timeout_seconds > 0 && decision.outcome == Outcome::kApproval) {
    auto client = std::chrono::seconds(timeout_seconds);
    if (client < decision.timeout) decision.timeout = client;
  }
  int64_t now = Now();
  StatusOr<Request> created = book_.Create(fields, c.peer, decision, now);
  if (!created.ok()) {
    if (!id_error_.ok()) {
      SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
      return;
    }
    SendError(c, wire::ErrorCode::kInvalidRequest, created.status().message());
    return;
  }
  const std::string id = created->id;
  Touch(id);
  Log("request " + id + " from " + c.peer_label + ": " + fields.service + " " + fields.user +
      " -> " + fields.target_user + "@" + fields.host +
      (fields.command.empty() ? "" : " `" + Cut(fields.command, 200) + "`") + " [policy " +
      (decision.policy.empty() ? "none" : decision.policy) + ": " + ApproversLabel(decision) +
          "] " + std::string(RequestStateName(created->state)),
      FieldsOf(*created, created->state == RequestState::kPending
                             ? std::string_view("pending")
                             : RequestStateName(created->state)));
  if (created->state != RequestState::kPending) {
    NotifyFollowers(id, true);
    Deliver(c, id);
    return;
  }
  wire::ResumeToken token{};
  if (!crypto::RandomBytes(token).ok()) {
    (void)book_.Cancel(id, kBrokerActor, "no randomness for a resume token", now);
    SendError(c, wire::ErrorCode::kInternal, "broker could not make a resume token");
    return;
  }
  token_hash_[id] = crypto::Sha256(ByteSpan(token));
  c.request_id = id;
  filer_[id] = c.fd.get();
  wire::RequestAccepted acc;
  acc.id = id;
  acc.resume_token = token;
  acc.digest = created->digest;
  acc.approvers = ApproversLabel(created->decision);
  acc.wait_seconds = SecondsLeft(created->deadline_unix_nanos, now);
  crypto::Cleanse(token.data(), token.size());
  Send(c, acc);
  NotifyFollowers(id, true);
}

void Server::Deliver(Conn& c, const std::string& id) {
  int64_t now = Now();
  const Request* r = book_.Get(id);
  if (r == nullptr) {
    SendError(c, wire::ErrorCode::kNotFound, "no request " + id);
    return;
  }
  wire::Decision d;
  d.id = r->id;
  d.digest = r->digest;
  if (r->state == RequestState::kApproved) {
    // A certificate request gets its certificate with the approval, signed
    // now, before the approval is consumed: if signing fails the request
    // stays approved and the client hears why.
    if (!r->fields.public_key.empty()) {
      std::vector<std::string> by;
      for (const Approval& a : r->approvals) by.push_back(a.approver);
      if (by.empty()) by.push_back("policy:" + r->decision.policy);
      uint64_t valid_before = 0;
      StatusOr<std::string> cert = IssueFor(*r, std::move(by), &valid_before);
      if (!cert.ok()) {
        Log("request " + id + ": certificate not issued: " + cert.status().message());
        SendError(c, cert.status().code() == StatusCode::kInternal ? wire::ErrorCode::kInternal
                                                                   : wire::ErrorCode::kInvalidRequest,
                  "request " + id + " was approved but no certificate could be issued: " +
                      cert.status().message());
        return;
      }
      d.certificate = std::move(*cert);
      d.valid_until = valid_before;
    }
    // Delivering the approval to its filer consumes it: one use only.
    StatusOr<Request> used = book_.MarkUsed(id, r->digest, now);
    Touch(id);
    r = book_.Get(id);
    if (used.ok()) {
      d.outcome = wire::Outcome::kApproved;
      for (const Approval& a : r->approvals) {
        if (d.decided_by.size() < wire::kMaxVotes) d.decided_by.push_back(Cut(a.approver, 256));
      }
      if (d.decided_by.empty()) d.decided_by.push_back(Cut("policy:" + r->decision.policy, 256));
      d.comment = r->approvals.empty() ? "" : Cut(r->approvals.back().comment, 512);
      if (d.certificate.empty()) d.valid_until = Seconds(r->valid_until_unix_nanos);
      std::string by;
      for (const std::string& n : d.decided_by) by += (by.empty() ? "" : ", ") + n;
      d.message = Cut("request " + id + " approved by " + by +
                          (d.comment.empty() ? "" : ": " + d.comment),
                      wire::kMaxMessageField);
      Log("request " + id + " used by " + c.peer_label, FieldsOf(*r, "used"));
      NotifyFollowers(id, false);
    }
  }
  if (r->state == RequestState::kDenied) {
    d.outcome = wire::Outcome::kDenied;
    d.decided_by.push_back(Cut(r->closed_by == kBrokerActor ? "policy:" + r->decision.policy
                                                              : r->closed_by,
                               256));
    d.comment = Cut(r->closed_comment, wire::kMaxCommentField);
    d.message = Cut(r->closed_by == kBrokerActor
                        ? "request " + id + " denied: " + r->closed_comment
                        : "request " + id + " denied by " + r->closed_by +
                              (r->closed_comment.empty() ? "" : ": " + r->closed_comment),
                    wire::kMaxMessageField);
  } else if (r->state == RequestState::kExpired) {
    d.outcome = wire::Outcome::kExpired;
    d.message = Cut("request " + id + " expired: " + r->closed_comment, wire::kMaxMessageField);
  } else if (r->state == RequestState::kCancelled) {
    d.outcome = wire::Outcome::kCancelled;
    d.message = Cut("request " + id + " cancelled: " + r->closed_comment, wire::kMaxMessageField);
  } else if (r->state == RequestState::kPending) {
    return;  // nothing final to say yet
  } else if (d.outcome != wire::Outcome::kApproved) {
    // kUsed by someone else, or an approval that expired as it was delivered.
    SendError(c, wire::ErrorCode::kNotFound, "no usable decision for request " + id);
    return;
  }
  if (c.request_id == id) {
    auto f = filer_.find(id);
    if (f != filer_.end() && f->second == c.fd.get()) filer_.erase(f);
    c.request_id.clear();
  }
  Send(c, d);
  c.close_after_write = true;
}

void Server::NotifyFiler(const std::string& id) {
  auto f = filer_.find(id);
  if (f == filer_.end()) return;
  auto it = conns_.find(f->second);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  const Request* r = book_.Get(id);
  if (r == nullptr) return;
  if (r->state == RequestState::kPending) {
    wire::StatusUpdate u;
    u.approvals = static_cast<uint16_t>(r->approvals.size());
    u.approvals_needed = static_cast<uint16_t>(std::max(r->decision.quorum, 1));
    u.wait_seconds = SecondsLeft(r->deadline_unix_nanos, Now());
    std::string by;
    for (const Approval& a : r->approvals) by += (by.empty() ? "" : ", ") + a.approver;
    u.message = Cut("approved by " + by + " (" + std::to_string(u.approvals) + " of " +
                        std::to_string(u.approvals_needed) + "); waiting for more",
                    wire::kMaxMessageField);
    Send(c, u);
    return;
  }
  Deliver(c, id);
}

void Server::NotifyFollowers(const std::string& id, bool created) {
  if (followers_.empty()) return;
  const Request* r = book_.Get(id);
  if (r == nullptr) return;
  wire::RequestInfo info = InfoOf(*r);
  for (int fd : std::vector<int>(followers_.begin(), followers_.end())) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (!Visible(c, *r)) continue;
    if (c.follow_filter == wire::ListFilter::kPending &&
        !(created && r->state == RequestState::kPending)) {
      continue;
    }
    Send(c, info);
  }
}

void Server::OnResume(Conn& c, const wire::Resume& m) {
  const Request* r = book_.Get(m.id);
  auto t = token_hash_.find(m.id);
  crypto::Sha256Digest presented = crypto::Sha256(ByteSpan(m.resume_token));
  // One answer for every failure, so tokens and ids cannot be probed.
  if (r == nullptr || t == token_hash_.end() ||
      !crypto::ConstantTimeEquals(ByteSpan(presented), ByteSpan(t->second)) ||
      r->state == RequestState::kUsed) {
    SendError(c, wire::ErrorCode::kNotFound, "no request " + m.id + " to resume");
    return;
  }
  unattached_.erase(m.id);
  // The new connection becomes the only filer; an older one is dropped
  // without cancelling.
  auto f = filer_.find(m.id);
  if (f != filer_.end() && f->second != c.fd.get()) {
    int old = f->second;
    filer_.erase(f);
    auto it = conns_.find(old);
    if (it != conns_.end()) {
      it->second->request_id.clear();
      CloseConn(old, false);
    }
  }
  if (r->state != RequestState::kPending) {
    Log("request " + m.id + " resumed by " + c.peer_label + " (already " +
        std::string(RequestStateName(r->state)) + ")");
    Deliver(c, m.id);
    return;
  }
  c.request_id = m.id;
  filer_[m.id] = c.fd.get();
  wire::RequestAccepted acc;
  acc.id = m.id;
  acc.resume_token = m.resume_token;
  acc.digest = r->digest;
  acc.approvers = ApproversLabel(r->decision);
  acc.wait_seconds = SecondsLeft(r->deadline_unix_nanos, Now());
  Log("request " + m.id + " resumed by " + c.peer_label);
  Send(c, acc);
  if (!r->approvals.empty()) NotifyFiler(m.id);
}

void Server::OnCancel(Conn& c) {
  if (c.state.state() == wire::ConnState::kDone) return;  // crossed the Decision
  if (c.awaiting_reason.has_value()) {
    // No request exists yet: nothing to record.
    c.awaiting_reason.reset();
    wire::Decision d;
    d.outcome = wire::Outcome::kError;  // no request filed: no id
    d.message = "cancelled before the request was filed";
    Send(c, d);
    c.close_after_write = true;
    return;
  }
  const std::string id = c.request_id;
  if (!id.empty() &&
      book_.Cancel(id, c.peer.user, "cancelled by the requester", Now()).ok()) {
    Touch(id);
    Log("request " + id + " cancelled by " + c.peer_label,
        LogFields{.request = id, .decision = "cancelled", .actor = c.peer.user});
    NotifyFollowers(id, false);
  }
  if (!id.empty()) {
    Deliver(c, id);
  } else {
    SendError(c, wire::ErrorCode::kNotFound, "no request to cancel");
  }
}

void Server::OnList(Conn& c, const wire::ListRequests& m) {
  Send(c, ListFor(c, m.filter, m.limit));
}

void Server::OnGet(Conn& c, const wire::GetRequest& m) {
  StatusOr<Request> r = book_.Find(m.id);
  if (!r.ok()) {
    SendError(c, LookupError(r.status()), r.status().message());
    return;
  }
  if (!Visible(c, *r)) {
    SendError(c, wire::ErrorCode::kNotFound, "no request " + m.id);
    return;
  }
  Send(c, InfoOf(*r));
}

void Server::OnVote(Conn& c, bool approve, const std::string& id_or_prefix,
                    const crypto::Sha256Digest& digest, const std::string& comment) {
  int64_t now = Now();
  StatusOr<Request> found = book_.Find(id_or_prefix);
  if (!found.ok()) {
    SendError(c, LookupError(found.status()), found.status().message());
    return;
  }
  const Request& r = *found;
  const std::string& who = c.peer.user;
  // Precise answers first; RequestBook checks all of it again.
  if (!Visible(c, r)) {
    SendError(c, wire::ErrorCode::kNotFound, "no request " + id_or_prefix);
    return;
  }
  if (r.state != RequestState::kPending) {
    SendError(c, wire::ErrorCode::kNotPending,
              "request " + r.id + " is " + std::string(RequestStateName(r.state)) +
                  ", not pending");
    return;
  }
  if (!crypto::ConstantTimeEquals(ByteSpan(digest), ByteSpan(r.digest))) {
    SendError(c, wire::ErrorCode::kDigestMismatch,
              "request " + r.id + " is not the request you were shown (digest mismatch)");
    return;
  }
  if (approve && (who == r.fields.user || who == r.fields.target_user)) {
    SendError(c, wire::ErrorCode::kSelfApproval,
              who + " cannot approve request " + r.id + ": it is their own");
    return;
  }
  if (approve) {
    for (const Approval& a : r.approvals) {
      if (a.approver == who) {
        SendError(c, wire::ErrorCode::kDuplicateVote,
                  who + " has already approved request " + r.id);
        return;
      }
    }
  }
  StatusOr<Request> after = approve ? book_.Approve(r.id, who, digest, comment, now)
                                    : book_.Deny(r.id, who, digest, comment, now);
  if (!after.ok()) {
    wire::ErrorCode code = wire::ErrorCode::kNotPending;
    switch (after.status().code()) {
      case StatusCode::kPermissionDenied:
        code = wire::ErrorCode::kPermissionDenied;
        break;
      case StatusCode::kAlreadyExists:
        code = wire::ErrorCode::kDuplicateVote;
        break;
      case StatusCode::kNotFound:
        code = wire::ErrorCode::kNotFound;
        break;
      default:
        break;
    }
    Touch(r.id);  // a lazy expiry may have changed it
    SendError(c, code, after.status().message());
    return;
  }
  Touch(r.id);
  LogFields fields = FieldsOf(*after, RequestStateName(after->state));
  if (after->state == RequestState::kPending) fields.decision = "vote";
  fields.actor = who;
  Log("request " + r.id + (approve ? " approved by " : " denied by ") + who +
          (comment.empty() ? "" : " (" + Cut(comment, 200) + ")") + " -> " +
          std::string(RequestStateName(after->state)),
      fields);
  Send(c, InfoOf(*after));
  NotifyFiler(r.id);
  NotifyFollowers(r.id, false);
}

void Server::OnFollow(Conn& c, const wire::Follow& m) {
  c.following = true;
  c.follow_filter = m.filter;
  followers_.insert(c.fd.get());
  Send(c, ListFor(c, m.filter, 0));
}

// Certificates ------------------------------------------------------------

namespace {

std::vector<std::string> OptionStrings(const std::vector<ca::CertOption>& opts) {
  std::vector<std::string> out;
  for (const ca::CertOption& o : opts) {
    StatusOr<std::string> v = o.Value();
    out.push_back(o.data.empty() ? o.name : o.name + "=" + (v.ok() ? *v : HexEncode(ByteSpan(o.data))));
  }
  return out;
}

const Rule* FindRule(const Policy& policy, const std::string& name) {
  for (const Rule& r : policy.rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

}  // namespace

bool Server::IsSubmitter(const Conn& c) const {
  const std::vector<std::string>& s = config_.broker.submitters;
  return std::find(s.begin(), s.end(), c.peer.user) != s.end();
}

bool Server::IsHostSigner(const Conn& c) const {
  if (c.peer.uid == 0) return true;
  if (options_.ca == nullptr) return false;
  const auto& signers = options_.ca->settings().host_signers;
  return std::find(signers.begin(), signers.end(), c.peer.user) != signers.end();
}

bool Server::CertVisible(const Conn& c, const CertRecord& cert) const {
  if (IsHostSigner(c)) return true;
  if (cert.info.kind == wire::CertKind::kUser && cert.info.issued_to == c.peer.user) return true;
  const Rule* rule = FindRule(config_.policy, cert.policy);
  if (rule == nullptr) return false;
  for (const std::string& g : rule->approver_groups) {
    auto it = config_.policy.approver_groups.find(g);
    if (it != config_.policy.approver_groups.end() &&
        std::find(it->second.begin(), it->second.end(), c.peer.user) != it->second.end()) {
      return true;
    }
  }
  return false;
}

void Server::EmitCertEvent(AuditEventType type, const CertRecord& rec, const std::string& actor,
                           const std::string& comment) {
  AuditEvent e;
  e.type = type;
  e.request_id = rec.info.request_id;
  e.actor = actor;
  e.comment = comment;
  e.time_unix_nanos = Now();
  if (const Request* r = rec.info.request_id.empty() ? nullptr : book_.Get(rec.info.request_id)) {
    e.fields_digest = r->digest;
  }
  e.policy = rec.policy;
  CertAudit a;
  a.serial = rec.info.serial;
  a.kind = rec.info.kind == wire::CertKind::kHost ? "host" : "user";
  a.key_id = rec.info.key_id;
  a.principals = rec.info.principals;
  a.valid_after = rec.info.valid_after;
  a.valid_before = rec.info.valid_before;
  a.fingerprint = rec.info.fingerprint;
  if (options_.ca != nullptr) a.ca_fingerprint = options_.ca->public_key().Fingerprint();
  if (StatusOr<ca::Certificate> cert = ca::Certificate::FromLine(rec.certificate); cert.ok()) {
    a.critical_options = OptionStrings(cert->fields().critical_options);
    a.extensions = OptionStrings(cert->fields().extensions);
  }
  e.cert = std::move(a);
  sink_.Emit(e);
}

StatusOr<std::string> Server::IssueFor(const Request& r, std::vector<std::string> decided_by,
                                       uint64_t* valid_before) {
  if (options_.ca == nullptr) {
    return FailedPreconditionError("this broker has no certificate authority");
  }
  const Rule* rule = FindRule(config_.policy, r.decision.policy);
  if (rule == nullptr) {
    return FailedPreconditionError("policy '" + r.decision.policy + "' is no longer configured");
  }
  StatusOr<uint64_t> serial = db_->NextSerial();
  if (!serial.ok()) {
    if (fatal_.ok()) fatal_ = serial.status();
    return InternalError("broker state database failed");
  }
  UserCertRequest u;
  u.request_id = r.id;
  u.approvers = std::move(decided_by);
  u.fields = r.fields;
  u.policy_ttl = r.decision.ttl;
  u.cert_policy = &rule->cert;
  u.serial = *serial;
  u.now = Seconds(Now());
  StatusOr<ca::Certificate> cert = options_.ca->IssueUser(u);
  if (!cert.ok()) return cert.status();
  CertRecord rec;
  rec.info.serial = *serial;
  rec.info.kind = wire::CertKind::kUser;
  rec.info.key_id = Cut(cert->fields().key_id, wire::kMaxLabelField);
  rec.info.principals = cert->fields().principals;
  rec.info.valid_after = cert->fields().valid_after;
  rec.info.valid_before = cert->fields().valid_before;
  rec.info.fingerprint = cert->key().Fingerprint();
  rec.info.request_id = r.id;
  rec.info.issued_to = Cut(r.fields.user, wire::kMaxLabelField);
  rec.info.issued_at = u.now;
  rec.policy = r.decision.policy;
  rec.certificate = cert->ToLine();
  if (rec.certificate.size() > wire::kMaxCertificateField) {
    return FailedPreconditionError("the certificate is too large to send");
  }
  if (Status s = db_->SaveCert(rec); !s.ok()) {
    if (fatal_.ok()) fatal_ = s;
    return InternalError("broker state database failed");
  }
  EmitCertEvent(AuditEventType::kCertIssued, rec, kBrokerActor, "");
  Log("certificate serial " + std::to_string(rec.info.serial) + " for request " + r.id + " (" +
      rec.info.key_id + ", principal " + r.fields.target_user + ", valid " +
      ca::FormatValidity(rec.info.valid_after, rec.info.valid_before) + ")");
  *valid_before = rec.info.valid_before;
  return rec.certificate;
}

Status Server::WriteKrl() {
  if (options_.ca == nullptr) return OkStatus();
  ASSIGN_OR_RETURN(std::vector<uint64_t> serials, db_->RevokedSerials());
  ASSIGN_OR_RETURN(uint64_t version, db_->NextKrlVersion());
  RETURN_IF_ERROR(options_.ca->WriteKrl(serials, version, Seconds(Now())));
  krl_version_ = version;
  return OkStatus();
}

void Server::OnListCerts(Conn& c, const wire::ListCerts& m) {
  if (options_.ca == nullptr) {
    SendError(c, wire::ErrorCode::kNoCa, "this broker has no certificate authority");
    return;
  }
  uint16_t limit = m.limit == 0 ? wire::kDefaultListLimit : m.limit;
  limit = std::min<uint16_t>(limit, wire::kMaxListItems);
  // Read more than the limit: some rows may not be visible to this peer.
  StatusOr<std::vector<CertRecord>> rows =
      db_->ListCerts(m.filter == wire::kValidCerts, Seconds(Now()), 10'000);
  if (!rows.ok()) {
    Log("listing certificates: " + rows.status().message());
    SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
    return;
  }
  wire::CertList list;
  size_t size = 16;
  for (CertRecord& rec : *rows) {
    if (!CertVisible(c, rec)) continue;
    Bytes one;
    wire::CertList probe{false, {rec.info}};
    size_t item = 0;
    if (wire::EncodeBody(probe, &one).ok()) item = one.size() - 3;
    if (list.items.size() >= limit || size + item > wire::kMaxBodySize) {
      list.more = true;
      break;
    }
    size += item;
    list.items.push_back(std::move(rec.info));
  }
  Send(c, list);
}

void Server::OnRevoke(Conn& c, const wire::Revoke& m) {
  if (options_.ca == nullptr) {
    SendError(c, wire::ErrorCode::kNoCa, "this broker has no certificate authority");
    return;
  }
  std::vector<CertRecord> found;
  if (m.serial != 0) {
    StatusOr<std::optional<CertRecord>> rec = db_->GetCert(m.serial);
    if (!rec.ok()) {
      SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
      return;
    }
    if (!rec->has_value() || !CertVisible(c, **rec)) {
      SendError(c, wire::ErrorCode::kNotFound, "no certificate with serial " + std::to_string(m.serial));
      return;
    }
    found.push_back(std::move(**rec));
  } else {
    // A request id or unique prefix, as for approve and deny.
    std::string id = m.id;
    if (id.size() < wire::kMinRequestIdPrefix) {
      SendError(c, wire::ErrorCode::kNotFound, "request id prefix \"" + id + "\" is too short");
      return;
    }
    StatusOr<Request> r = book_.Find(id);
    if (!r.ok() && r.status().code() == StatusCode::kInvalidArgument) {
      SendError(c, wire::ErrorCode::kAmbiguous, r.status().message());
      return;
    }
    std::string full = r.ok() ? r->id : id;
    StatusOr<std::vector<CertRecord>> recs = db_->CertsOfRequest(full);
    if (!recs.ok()) {
      SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
      return;
    }
    for (CertRecord& rec : *recs) {
      if (CertVisible(c, rec)) found.push_back(std::move(rec));
    }
    if (found.empty()) {
      SendError(c, wire::ErrorCode::kNotFound, "no certificate was issued for request \"" + id + "\"");
      return;
    }
  }
  uint64_t now = Seconds(Now());
  bool changed = false;
  for (CertRecord& rec : found) {
    if (rec.info.revoked_at != 0) continue;  // revoked before: say so, change nothing
    rec.info.revoked_at = now;
    rec.info.revoked_by = Cut(c.peer.user, wire::kMaxLabelField);
    rec.info.revoke_comment = Cut(m.comment, wire::kMaxCommentField);
    if (Status s = db_->SaveCert(rec); !s.ok()) {
      if (fatal_.ok()) fatal_ = s;
      SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
      return;
    }
    EmitCertEvent(AuditEventType::kCertRevoked, rec, c.peer.user, m.comment);
    Log("certificate serial " + std::to_string(rec.info.serial) + " revoked by " + c.peer_label +
        (m.comment.empty() ? "" : ": " + Cut(m.comment, 200)));
    changed = true;
  }
  // The KRL is on disk before anyone is told the certificate is revoked.
  if (changed) {
    if (Status s = WriteKrl(); !s.ok()) {
      Log("revocation not published: " + s.message());
      if (fatal_.ok()) fatal_ = s;
      SendError(c, wire::ErrorCode::kInternal, "broker could not write the KRL: " + s.message());
      return;
    }
  }
  wire::CertList list;
  for (CertRecord& rec : found) {
    if (list.items.size() >= wire::kMaxListItems) {
      list.more = true;
      break;
    }
    list.items.push_back(std::move(rec.info));
  }
  Send(c, list);
}

void Server::OnSignHostKey(Conn& c, const wire::SignHostKey& m) {
  if (options_.ca == nullptr) {
    SendError(c, wire::ErrorCode::kNoCa, "this broker has no certificate authority");
    return;
  }
  if (!IsHostSigner(c)) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " may not have host keys signed (ca.host_signers)");
    return;
  }
  StatusOr<ca::PublicKey> key = CertAuthority::CheckSubjectKey(m.public_key);
  if (!key.ok()) {
    SendError(c, wire::ErrorCode::kInvalidRequest, key.status().message());
    return;
  }
  for (const std::string& p : m.principals) {
    if (p.find_first_of(", \t*?") != std::string::npos) {
      SendError(c, wire::ErrorCode::kInvalidRequest,
                "host name \"" + Cut(p, 64) + "\" may not contain commas, blanks or wildcards");
      return;
    }
  }
  StatusOr<uint64_t> serial = db_->NextSerial();
  if (!serial.ok()) {
    if (fatal_.ok()) fatal_ = serial.status();
    SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
    return;
  }
  uint64_t now = Seconds(Now());
  StatusOr<ca::Certificate> cert = options_.ca->IssueHost(
      *key, m.principals, std::chrono::seconds(m.validity_seconds), *serial, now);
  if (!cert.ok()) {
    SendError(c, wire::ErrorCode::kInvalidRequest, cert.status().message());
    return;
  }
  CertRecord rec;
  rec.info.serial = *serial;
  rec.info.kind = wire::CertKind::kHost;
  rec.info.key_id = Cut(cert->fields().key_id, wire::kMaxLabelField);
  rec.info.principals = m.principals;
  rec.info.valid_after = cert->fields().valid_after;
  rec.info.valid_before = cert->fields().valid_before;
  rec.info.fingerprint = key->Fingerprint();
  rec.info.issued_to = Cut(c.peer.user, wire::kMaxLabelField);
  rec.info.issued_at = now;
  rec.certificate = cert->ToLine();
  if (Status s = db_->SaveCert(rec); !s.ok()) {
    if (fatal_.ok()) fatal_ = s;
    SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
    return;
  }
  EmitCertEvent(AuditEventType::kCertIssued, rec, c.peer.user, "");
  Log("host certificate serial " + std::to_string(*serial) + " for " + rec.info.principals.front() +
      " signed for " + c.peer_label);
  Send(c, wire::HostCertificate{*serial, rec.certificate});
}

void Server::OnGetCaInfo(Conn& c) {
  if (options_.ca == nullptr) {
    SendError(c, wire::ErrorCode::kNoCa,
              "this broker has no certificate authority (no 'ca:' section in its configuration)");
    return;
  }
  wire::CaInfo info;
  info.public_key = options_.ca->public_key().ToLine();
  info.max_ttl_seconds = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.ca->settings().max_ttl).count());
  info.krl_version = krl_version_;
  info.krl_path = Cut(options_.ca->settings().krl, wire::kMaxCwdField);
  Send(c, info);
}

// Session recording -------------------------------------------------------

std::optional<gid_t> GidOfGroup(const std::string& name) {
  group gr;
  group* result = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return std::nullopt;
  }
  return gr.gr_gid;
}

namespace {

StatusOr<std::string> RandomSessionId() {
  // 12 characters of [0-9a-z] (60 bits): distinct from request ids (8).
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  uint8_t raw[12];
  RETURN_IF_ERROR(crypto::RandomBytes(raw));
  std::string id;
  for (uint8_t b : raw) id.push_back(kAlphabet[b & 31]);
  return id;
}

}  // namespace

Status Server::RestoreSessions() {
  ASSIGN_OR_RETURN(std::vector<StateDb::SavedSession> open, db_->LoadOpenSessions());
  for (StateDb::SavedSession& s : open) {
    LiveSession live;
    if (Status st = recorder::ApplySessionEvent(s.start_json, &live.info); !st.ok()) {
      return DataLossError("state database: session " + s.id + ": " + st.message());
    }
    live.start_json = std::move(s.start_json);
    live.next_index = s.next_index;
    live.broker_named = s.broker_named;
    live.recorder_process = std::move(s.recorder_process);
    // Nothing is connected yet: its recorder has the grace from now. A sudo
    // session waits as long as its sudo process runs: a sudo started before
    // an upgrade runs the older plugin it loaded, which resumes only at the
    // session's next I/O (an idle `sudo -i` may take hours). Once that
    // process is gone (now or later: CheckAwaitedSessions), it has the grace
    // too; one whose process is unknown waits (a sudo plugin that dies
    // while the broker runs is still ended after the grace).
    if (live.broker_named) {
      live.lost_unix_nanos = Now();
      if (live.info.recorder != "sudo") {
        unresumed_sessions_.insert(s.id);
      } else if (!live.recorder_process.empty()) {
        awaited_sessions_.insert(s.id);
      }
    }
    sessions_[s.id] = std::move(live);
  }
  CheckAwaitedSessions(Now());
  if (!open.empty()) {
    Log("restored " + std::to_string(open.size()) + " open recorded sessions; recorders may "
        "resume (those without a spool within " + RecorderGraceText() + ")");
  }
  return OkStatus();
}

Status Server::WriteSessionEnd(const std::string& id, LiveSession& live) {
  std::string end_json = recorder::SessionEndJson(live.info);
  sink_.Append(static_cast<uint8_t>(store::EntryType::kAuditEvent), AsBytes(end_json));
  return db_->SaveSession(
      {id, live.start_json, live.next_index, true, live.broker_named, live.recorder_process});
}

int64_t Server::LostDeadline(const LiveSession& live) const {
  return live.lost_unix_nanos + config_.broker.recorder_resume_grace.count();
}

std::string Server::RecorderGraceText() const {
  return FormatSeconds((config_.broker.recorder_resume_grace.count() + kSecond - 1) / kSecond);
}

void Server::CheckAwaitedSessions(int64_t now) {
  if (awaited_sessions_.empty() || now < next_peer_check_) return;
  next_peer_check_ = now + options_.peer_check_interval_nanos;
  for (auto it = awaited_sessions_.begin(); it != awaited_sessions_.end();) {
    auto live = sessions_.find(*it);
    if (live == sessions_.end() || live->second.fd >= 0) {  // ended, or resumed
      it = awaited_sessions_.erase(it);
      continue;
    }
    std::optional<PeerProcess> p = DecodePeerProcess(live->second.recorder_process);
    if (p.has_value() && !PeerProcessGone(*p)) {
      ++it;
      continue;
    }
    // Nothing can resume it now: the grace, from now, as for any recorder
    // that went away.
    live->second.lost_unix_nanos = now;
    unresumed_sessions_.insert(*it);
    Log("session " + *it + " of " + live->second.info.user + ": its sudo process" +
            (p.has_value() ? " (pid " + std::to_string(p->pid) + ")" : std::string()) +
            " is gone; ended as recorder lost unless resumed within " + RecorderGraceText(),
        LogFields{.user = live->second.info.user, .session = *it});
    it = awaited_sessions_.erase(it);
  }
}

void Server::EndLostSessions(int64_t now) {
  for (auto it = unresumed_sessions_.begin(); it != unresumed_sessions_.end();) {
    auto live = sessions_.find(*it);
    if (live == sessions_.end() || live->second.fd >= 0) {  // ended, or resumed
      it = unresumed_sessions_.erase(it);
      continue;
    }
    if (LostDeadline(live->second) > now) {
      ++it;
      continue;
    }
    const std::string id = *it;
    it = unresumed_sessions_.erase(it);
    // What the recorder delivered is the session, ended as a spool of a
    // killed recorder is (ForwardSpoolFile): same reason, no exit status.
    recorder::SessionInfo& info = live->second.info;
    info.ended = true;
    info.end_unix_nanos = live->second.lost_unix_nanos;
    info.exit_status = -1;
    info.end_reason = recorder::kEndReasonRecorderLost;
    info.chunks = live->second.next_index;
    if (Status s = WriteSessionEnd(id, live->second); !s.ok()) {
      if (fatal_.ok()) fatal_ = s;
      return;
    }
    Log("session " + id + " of " + info.user + " ended: recorder lost (its recorder, without a "
        "spool, went away and did not resume within " + RecorderGraceText() + "), " +
            std::to_string(live->second.next_index) + " chunks",
        LogFields{.user = info.user, .decision = "recorder lost", .session = id, .warning = true});
    sessions_touched_.erase(id);
    sessions_.erase(live);
  }
}

Status Server::SaveSessions() {
  for (const std::string& id : sessions_touched_) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;  // ended: saved when it ended
    // Every turn that stored chunks comes here: a saved session only needs
    // its next_index, the first turn inserts it.
    ASSIGN_OR_RETURN(bool saved, db_->SaveSessionProgress(id, it->second.next_index));
    if (saved) continue;
    RETURN_IF_ERROR(db_->SaveSession({id, it->second.start_json, it->second.next_index, false,
                                      it->second.broker_named, it->second.recorder_process}));
  }
  sessions_touched_.clear();
  return OkStatus();
}

void Server::SendSessionAcks() {
  std::set<int> due;
  due.swap(ack_due_);
  for (int fd : due) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    auto live = sessions_.find(c.session_id);
    if (live == sessions_.end()) continue;
    Send(c, wire::SessionAck{live->second.next_index});
  }
  std::set<int> tell;
  tell.swap(terminate_due_);
  for (int fd : tell) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    // The fd may have been reused, or the recorder replaced, this turn.
    auto live = sessions_.find(c.session_id);
    if (live == sessions_.end() || live->second.fd != fd || !live->second.terminated) continue;
    Send(c, *live->second.terminated);
  }
}

void Server::OnOpenSession(Conn& c, const wire::OpenSession& m) {
  // A bastion session process (asked now, by pid: listener.h) records
  // "bastion" sessions for anyone and nothing else, and only it records them:
  // the recorder name tells auditors which program captured the bytes.
  const bool bastion_peer = options_.is_bastion_session && options_.is_bastion_session(c.peer.pid);
  std::string recorder = m.recorder;
  if (!m.session.empty()) {
    auto it = sessions_.find(m.session);
    if (it != sessions_.end()) recorder = it->second.info.recorder;  // a resume
  }
  if (bastion_peer != (recorder == "bastion")) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              bastion_peer ? c.peer_label + " is a bastion session and records only 'bastion' sessions"
                           : std::string("'bastion' sessions are recorded only by the bastion"));
    return;
  }
  // Other recorders run as root or as a configured submitter; a user's own
  // processes cannot write or resume recordings.
  bool submitter = bastion_peer || c.peer.uid == 0 || IsSubmitter(c);
  // A setgid recorder (broker.recorder_group) records its own user's
  // sessions only: the user cannot reach its connection, and cannot file a
  // recording in anyone else's name.
  bool own_recorder = false;
  if (!submitter && !config_.broker.recorder_group.empty()) {
    std::optional<gid_t> gid = GidOfGroup(config_.broker.recorder_group);
    own_recorder = gid.has_value() && c.peer.gid == *gid && m.user == c.peer.user;
  }
  if (!submitter && !own_recorder) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " may not record " +
                  (config_.broker.recorder_group.empty()
                       ? std::string("sessions (only root and broker.submitters)")
                       : "this session (root, broker.submitters, or a broker.recorder_group "
                         "process for its own user)"));
    return;
  }
  std::string id;
  if (!m.session.empty()) {
    auto it = sessions_.find(m.session);
    if (it == sessions_.end()) {
      // Not open: a recorder that spools opens its session under an id it
      // minted, since it may have run the session while we were away
      // (docs/protocol.md §4.4). Only in the minted format, never for a
      // bastion (it resumes only what it opened), and never an id already
      // used: an ended session is final (not_pending), and its recorder or
      // forwarder then knows the whole session is here.
      if (bastion_peer || !recorder::IsMintedSessionId(m.session)) {
        SendError(c, wire::ErrorCode::kNotFound, "no open session " + m.session);
        return;
      }
      StatusOr<bool> used = db_->SessionExists(m.session);
      if (!used.ok()) {
        if (fatal_.ok()) fatal_ = used.status();
        SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
        return;
      }
      if (*used) {
        SendError(c, wire::ErrorCode::kNotPending, "session " + m.session + " has already ended");
        return;
      }
      id = m.session;
    } else {
      // A recorder-group process resumes its own user's sessions only.
      if (own_recorder && it->second.info.user != c.peer.user) {
        SendError(c, wire::ErrorCode::kPermissionDenied,
                  c.peer_label + " may resume only its own user's recordings");
        return;
      }
      LiveSession& live = it->second;
      // Each bastion session process handles one person's network bytes: it
      // may resume its own recording, never another's.
      if (bastion_peer && live.opener_pid != c.peer.pid) {
        SendError(c, wire::ErrorCode::kPermissionDenied,
                  c.peer_label + " may resume only the recording it opened");
        return;
      }
      if (live.fd >= 0 && live.fd != c.fd.get()) {
        // A recorder that reconnected replaces its stale connection.
        auto old = conns_.find(live.fd);
        if (old != conns_.end()) old->second->session_id.clear();
        if (old != conns_.end()) old->second->close_after_write = true;
        if (old != conns_.end()) to_flush_.insert(live.fd);
      }
      live.fd = c.fd.get();
      unresumed_sessions_.erase(m.session);
      awaited_sessions_.erase(m.session);
      c.session_id = m.session;
      Log("session " + m.session + " resumed by " + c.peer_label + " at chunk " +
          std::to_string(live.next_index));
      Send(c, wire::SessionOpened{m.session, live.next_index});
      if (live.terminated) Send(c, *live.terminated);  // it was terminated meanwhile
      return;
    }
  }
  for (int attempt = 0; attempt < 16 && id.empty(); ++attempt) {
    StatusOr<std::string> candidate = RandomSessionId();
    if (!candidate.ok()) break;
    StatusOr<bool> used = db_->SessionExists(*candidate);
    if (!used.ok()) {
      if (fatal_.ok()) fatal_ = used.status();
      break;
    }
    if (!*used && !sessions_.contains(*candidate)) id = *candidate;
  }
  if (id.empty()) {
    SendError(c, wire::ErrorCode::kInternal, "broker could not make a session id");
    return;
  }
  LiveSession live;
  recorder::SessionInfo& info = live.info;
  info.id = id;
  info.recorder = m.recorder;
  info.request_id = m.request_id;
  info.user = m.user;
  info.remote_addr = m.remote_addr;
  info.host = m.host;
  info.target = m.target.empty() ? m.host : m.target;
  info.login = m.login;
  info.cert_serial = m.cert_serial;
  info.command = m.command;
  info.term = m.term;
  info.cols = m.cols;
  info.rows = m.rows;
  info.start_unix_nanos = m.start_unix_nanos != 0 ? static_cast<int64_t>(m.start_unix_nanos) : Now();
  if (!m.request_id.empty()) {
    if (const Request* r = book_.Get(m.request_id)) {
      for (const Approval& a : r->approvals) info.approvers.push_back(a.approver);
      if (info.approvers.empty() && r->decision.outcome == Outcome::kAutoApprove) {
        info.approvers.push_back("policy:" + r->decision.policy);
      }
    }
  }
  live.start_json = recorder::SessionStartJson(info);
  // A 32 KiB command of control characters escapes to more than an entry
  // holds: cut the command (the one large field) until the event fits.
  while (live.start_json.size() > store::kMaxEntryBody && !info.command.empty()) {
    info.command.resize(info.command.size() / 2);
    live.start_json = recorder::SessionStartJson(info);
  }
  live.fd = c.fd.get();
  live.broker_named = m.session.empty();
  // Only a sudo session waits for its recorder after a restart
  // (RestoreSessions): only its recorder is described.
  if (live.broker_named && m.recorder == "sudo") {
    live.recorder_process = EncodePeerProcess(
        options_.describe_peer ? options_.describe_peer(c.peer.pid) : DescribePeerProcess(c.peer.pid));
  }
  if (bastion_peer) live.opener_pid = c.peer.pid;
  sink_.Append(static_cast<uint8_t>(store::EntryType::kAuditEvent), AsBytes(live.start_json));
  c.session_id = id;
  sessions_touched_.insert(id);
  Log("session " + id + " opened by " + c.peer_label + ": " + m.recorder + " " + m.user + " -> " +
      m.login + "@" + info.target + (m.request_id.empty() ? "" : " (request " + m.request_id + ")"));
  sessions_[id] = std::move(live);
  if (options_.metrics != nullptr) options_.metrics->OnSessionOpened(m.recorder);
  Send(c, wire::SessionOpened{id, 0});
}

void Server::OnSessionData(Conn& c, const wire::SessionData& m) {
  auto it = sessions_.find(c.session_id);
  if (it == sessions_.end()) {
    SendError(c, wire::ErrorCode::kUnexpectedMessage, "no open session on this connection");
    return;
  }
  LiveSession& live = it->second;
  // Checked as strictly as a reader will decode it, but the records are not
  // built: the body is stored as it came.
  StatusOr<recorder::ChunkHeader> chunk = recorder::ValidateChunk(m.chunk);
  if (!chunk.ok()) {
    SendError(c, wire::ErrorCode::kMalformed, "transcript chunk: " + chunk.status().message());
    return;
  }
  if (chunk->session != c.session_id) {
    SendError(c, wire::ErrorCode::kMalformed,
              "transcript chunk of session " + chunk->session + " sent for " + c.session_id);
    return;
  }
  if (chunk->index < live.next_index) {
    // A resend after a reconnect: already durable; acknowledge again.
    ack_due_.insert(c.fd.get());
    return;
  }
  if (chunk->index > live.next_index) {
    SendError(c, wire::ErrorCode::kMalformed,
              "transcript chunk " + std::to_string(chunk->index) + " out of order: expected " +
                  std::to_string(live.next_index));
    return;
  }
  sink_.Append(static_cast<uint8_t>(store::EntryType::kTranscriptChunk), m.chunk);
  ++live.next_index;
  sessions_touched_.insert(c.session_id);
  ack_due_.insert(c.fd.get());
}

void Server::OnCloseSession(Conn& c, const wire::CloseSession& m) {
  auto it = sessions_.find(c.session_id);
  if (it == sessions_.end()) {
    SendError(c, wire::ErrorCode::kUnexpectedMessage, "no open session on this connection");
    return;
  }
  LiveSession& live = it->second;
  recorder::SessionInfo& info = live.info;
  info.ended = true;
  info.end_unix_nanos = m.end_unix_nanos != 0 ? static_cast<int64_t>(m.end_unix_nanos) : Now();
  info.exit_status = m.has_exit_status ? static_cast<int>(m.exit_status) : -1;
  info.exit_signal = m.exit_signal;
  info.end_reason = m.end_reason.empty() ? "closed" : m.end_reason;
  info.chunks = live.next_index;
  if (m.chunks != live.next_index) {
    info.end_reason += " (the recorder sent " + std::to_string(m.chunks) + " chunks, " +
                       std::to_string(live.next_index) + " recorded)";
  }
  info.bytes_in = m.bytes_in;
  info.bytes_out = m.bytes_out;
  if (Status s = WriteSessionEnd(info.id, live); !s.ok()) {
    if (fatal_.ok()) fatal_ = s;
    SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
    return;
  }
  Log("session " + info.id + " ended: " + info.end_reason +
      (m.has_exit_status ? ", exit " + std::to_string(m.exit_status) : "") + ", " +
      std::to_string(live.next_index) + " chunks");
  const uint64_t chunks = live.next_index;
  sessions_touched_.erase(info.id);
  sessions_.erase(it);
  ack_due_.erase(c.fd.get());
  c.session_id.clear();
  Send(c, wire::SessionClosed{chunks});
  c.close_after_write = true;
}

bool Server::MayTerminate(const Conn& c, const recorder::SessionInfo& session) const {
  if (c.peer.uid == 0) return true;
  // The approvers the request's policy named when it was filed; without the
  // request (none, or forgotten after keep_finished) nobody but root.
  const Request* r = session.request_id.empty() ? nullptr : book_.Get(session.request_id);
  if (r == nullptr) return false;
  return std::binary_search(r->decision.approvers.begin(), r->decision.approvers.end(),
                            c.peer.user);
}

void Server::OnTerminateSession(Conn& c, const wire::TerminateSession& m) {
  const std::string& sel = m.session;
  if (sel.size() < wire::kMinRequestIdPrefix) {
    SendError(c, wire::ErrorCode::kNotFound,
              "session id prefix \"" + sel + "\" is too short (at least " +
                  std::to_string(wire::kMinRequestIdPrefix) + " characters)");
    return;
  }
  // Every session the prefix names, live or ended: a prefix must be unique
  // among all of them, as `jitgate replay` requires, so that it never ends
  // another session than the one the approver had in mind.
  std::set<std::string> matches;
  for (auto it = sessions_.lower_bound(sel);
       it != sessions_.end() && it->first.compare(0, sel.size(), sel) == 0; ++it) {
    matches.insert(it->first);
  }
  std::map<std::string, StateDb::SavedSession> stored;
  if (!(matches.size() == 1 && *matches.begin() == sel)) {
    StatusOr<std::vector<StateDb::SavedSession>> rows = db_->FindSessions(sel, 8);
    if (!rows.ok()) {
      Log("looking up session " + sel + ": " + rows.status().message());
      SendError(c, wire::ErrorCode::kInternal, "broker state database failed");
      return;
    }
    for (StateDb::SavedSession& row : *rows) {
      matches.insert(row.id);
      stored.emplace(row.id, std::move(row));
    }
  }
  if (matches.empty()) {
    SendError(c, wire::ErrorCode::kNotFound, "no live session " + sel);
    return;
  }
  if (matches.size() > 1) {
    SendError(c, wire::ErrorCode::kAmbiguous,
              "session id prefix \"" + sel + "\" matches " + std::to_string(matches.size()) +
                  (matches.size() >= 8 ? " or more" : "") + " sessions");
    return;
  }
  const std::string id = *matches.begin();
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    // Ended already: nothing to do, but only tell those who could have
    // ended it.
    recorder::SessionInfo info;
    const StateDb::SavedSession& row = stored.at(id);
    if (Status st = recorder::ApplySessionEvent(row.start_json, &info); !st.ok()) {
      Log("session " + id + " in the state database: " + st.message());
    }
    if (!MayTerminate(c, info)) {
      SendError(c, wire::ErrorCode::kPermissionDenied,
                c.peer_label + " may not terminate session " + id +
                    " (only root and the approvers of its request)");
      return;
    }
    Send(c, wire::SessionTerminateAck{id, true});
    return;
  }
  LiveSession& live = it->second;
  if (!MayTerminate(c, live.info)) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " may not terminate session " + id +
                  (live.info.request_id.empty() || book_.Get(live.info.request_id) == nullptr
                       ? " (only root: the broker knows no request it runs under)"
                       : " (only root and the approvers of request " + live.info.request_id +
                             ")"));
    return;
  }
  if (live.terminated) {
    // Terminated before; its recorder is ending it. Nothing new to record.
    Send(c, wire::SessionTerminateAck{id, false});
    return;
  }
  live.terminated = wire::SessionTerminated{Cut(c.peer.user, wire::kMaxLabelField),
                                            Cut(m.comment, wire::kMaxCommentField)};
  AuditEvent e;
  e.type = AuditEventType::kSessionTerminated;
  e.request_id = live.info.request_id;
  e.actor = c.peer.user;
  e.comment = m.comment;
  e.time_unix_nanos = Now();
  e.session = id;
  if (const Request* r = e.request_id.empty() ? nullptr : book_.Get(e.request_id)) {
    e.fields_digest = r->digest;
    e.policy = r->decision.policy;
  }
  sink_.Emit(e);
  // Told only after the event is durable (SendSessionAcks, end of turn).
  if (live.fd >= 0) terminate_due_.insert(live.fd);
  Log("session " + id + " terminated by " + c.peer_label +
      (m.comment.empty() ? "" : ": " + Cut(m.comment, 200)) +
      (live.fd >= 0 ? "" : " (its recorder is not connected; told when it resumes)"));
  Send(c, wire::SessionTerminateAck{id, false});
}

void Server::OnBastionEvent(Conn& c, const wire::BastionEvent& m) {
  // Only the bastion's session processes speak for the bastion (asked now,
  // by pid: listener.h), so nobody else can put words in its mouth.
  if (!options_.is_bastion_session || !options_.is_bastion_session(c.peer.pid)) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " is not a bastion session: only the bastion reports bastion events");
    return;
  }
  static constexpr std::string_view kEvents[] = {"login_refused", "forward_opened",
                                                 "forward_refused", "forward_closed",
                                                 "agent_forwarded"};
  if (std::find(std::begin(kEvents), std::end(kEvents), m.event) == std::end(kEvents)) {
    SendError(c, wire::ErrorCode::kInvalidRequest, "unknown bastion event '" + Cut(m.event, 64) + "'");
    return;
  }
  AuditEvent e;
  e.type = AuditEventType::kBastion;
  e.request_id = m.request_id;
  e.actor = m.user;
  e.comment = m.detail;
  e.time_unix_nanos = Now();
  e.session = m.session;
  e.bastion = BastionAudit{m.event, m.remote_addr, m.ssh_user};
  if (const Request* r = e.request_id.empty() ? nullptr : book_.Get(e.request_id)) {
    e.fields_digest = r->digest;
    e.policy = r->decision.policy;
  }
  sink_.Emit(e);
  Log("bastion " + m.event + ": " + (m.user.empty() ? std::string("-") : m.user) + " from " +
      m.remote_addr + " as " + Cut(m.ssh_user, 80) + ": " + Cut(m.detail, 200));
  Send(c, wire::BastionEventAck{});
}

// Health ------------------------------------------------------------------

void Server::OnGetStatus(Conn& c) {
  // Anyone may ask: counts, paths and health, nothing of a request's or a
  // session's content.
  if (options_.health == nullptr) {
    SendError(c, wire::ErrorCode::kInvalidRequest, "this broker keeps no health state");
    return;
  }
  Send(c, options_.health->Report(config_, options_.server_id, Seconds(Now()), book_.pending(),
                                  sessions_.size()));
}

void Server::OnSpoolReport(Conn& c, const wire::SpoolReport& m) {
  // Who may record may say how much waits to be recorded.
  const std::string& group = config_.broker.recorder_group;
  std::optional<gid_t> gid = group.empty() ? std::nullopt : GidOfGroup(group);
  if (c.peer.uid != 0 && !IsSubmitter(c) && !(gid.has_value() && c.peer.gid == *gid)) {
    SendError(c, wire::ErrorCode::kPermissionDenied,
              c.peer_label + " may not report a spool (root, broker.submitters and "
                             "broker.recorder_group only)");
    return;
  }
  if (options_.metrics != nullptr) {
    options_.metrics->SetSpool(m.host, m.sessions, m.bytes, Seconds(Now()));
  }
  Send(c, wire::SpoolReportAck{});
}

}  // namespace jitgate::broker
