// Server: jitgated's event loop. One thread, one epoll set: the listening
// Unix socket, every client connection, a signalfd and an eventfd for stop
// requests. No thread per waiting client: a waiting login costs one socket
// and a few hundred bytes, so 10,000 waiters are ordinary.
//
// Each turn of the loop reads whatever arrived, applies it to the RequestBook
// (which emits audit events into the store), saves the requests it changed
// into the StateDb, then -- before a single reply leaves -- waits until the
// turn's audit events are durable in the store and commits the database.
// Replies of one turn share one fsync of each (group commit), and no client
// is ever told of a decision that a crash could take back.
//
// Protocol: docs/protocol.md. Identity is the kernel's (SO_PEERCRED), names
// come from NSS.
#ifndef JITGATE_BROKER_SERVER_H_
#define JITGATE_BROKER_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/cert_authority.h"
#include "broker/config.h"
#include "broker/daemon_log.h"
#include "broker/lifecycle.h"
#include "broker/peer_process.h"
#include "broker/state_db.h"
#include "broker/store_audit.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/base/unique_fd.h"
#include "core/wire/framing.h"
#include "core/wire/messages.h"
#include "core/wire/protocol_state.h"
#include "recorder/recording.h"
#include "store/store.h"

namespace jitgate::broker {

class BrokerMetrics;
class HealthMonitor;

struct ServerOptions {
  Clock* clock = nullptr;  // default RealClock()
  std::string server_id;   // HelloAck.server_id
  // Requests pending at once before SubmitRequest is answered `busy`.
  size_t max_pending = 50'000;
  // Connections at once; more are accepted and closed at once.
  size_t max_connections = 60'000;
  // After a restart, pending requests wait this long for their filer to
  // Resume before they are cancelled (docs/protocol.md §5.3).
  int64_t resume_grace_nanos = int64_t{wire::kResumeGraceSeconds} * 1'000'000'000;
  // A connection whose unsent output exceeds this is closed (a follower that
  // stopped reading).
  size_t max_output_bytes = 4u << 20;
  // Finished requests stay in memory (for `jitgate requests --all`) this
  // long after they finished, and at most this many.
  int64_t keep_finished_nanos = int64_t{3600} * 1'000'000'000;
  size_t keep_finished_max = 10'000;
  // Print one line per request event to stderr.
  bool log_events = true;
  // Metrics and health (not owned; may be null): counted by the loop, and
  // what GetStatus reports (docs/jitgated.md, "Health").
  BrokerMetrics* metrics = nullptr;
  HealthMonitor* health = nullptr;
  // The certificate authority (not owned); null when the configuration has
  // no `ca:` section, and requests with a public key are then refused.
  CertAuthority* ca = nullptr;
  // True when pid (a peer's SO_PEERCRED pid) is a live bastion session
  // process (bastion::Listener::IsSessionProcess); empty = no bastion. Asked
  // at each message, never cached: such a peer may file service "bastion"
  // requests and record "bastion" sessions for any user, and nothing else.
  std::function<bool(pid_t)> is_bastion_session;
  // A stop (SIGTERM, SIGINT, Stop()) first calls on_stopping, then goes on
  // serving while draining() is true, for at most drain_nanos, so that
  // what ends on it (the bastion's sessions) can still record its end.
  // Either may be empty: no drain.
  std::function<void()> on_stopping;
  std::function<bool()> draining;
  int64_t drain_nanos = int64_t{15} * 1'000'000'000;
  // Describes the sudo process that opens a broker-named sudo session, so
  // that after a restart its session can stop waiting once it is gone
  // (peer_process.h); empty = DescribePeerProcess. Tests describe a process
  // of their own choosing.
  std::function<PeerProcess(pid_t)> describe_peer;
  // How often a restored sudo session that waits for its sudo process looks
  // whether that process still runs.
  int64_t peer_check_interval_nanos = int64_t{10} * 1'000'000'000;
  // Reload (SIGHUP, `systemctl reload`): load_config reads and validates the
  // configuration file again; empty = SIGHUP only logs that there is nothing
  // to reload. A new configuration that fails validation or CheckReloadable
  // (config.h) is refused and the running one stays.
  std::function<StatusOr<LoadedConfig>()> load_config;
  // Called with a configuration that passed those checks, before the server
  // switches to it, so that the caller applies its own part (the bastion); an
  // error refuses the reload. May be empty.
  std::function<Status(const LoadedConfig&)> apply_config;
  // The SHA-256 (hex) of the configuration file the server starts with; when
  // set, Start() records a `config` audit event (event `loaded`) with it.
  std::string config_sha256;
};

// The gid of the group called name (NSS, getgrnam_r), or nullopt if there is
// none or the lookup failed.
std::optional<gid_t> GidOfGroup(const std::string& name);

class Server {
 public:
  // config, db and store must outlive the server.
  Server(const Config& config, StateDb* db, store::Store* store, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the saved requests, creates the socket (config.broker.socket; its
  // directory is created 0755 if missing; a stale socket is replaced, a live
  // one is an error) and the epoll set. SIGTERM, SIGINT and SIGHUP are
  // blocked in the calling thread and read from a signalfd by Run.
  Status Start();

  // Serves until SIGTERM/SIGINT or Stop(). Returns OK on a requested stop;
  // an error if the store or the database failed (the broker then stops:
  // fail closed). Connections are closed without cancelling their requests,
  // so that clients resume after a restart.
  Status Run();

  // Asks Run to return. Thread- and async-signal-safe.
  void Stop();

  // The configuration in force (changes on a successful reload). For the
  // server's own thread.
  const Config& config() const { return config_; }

 private:
  struct Conn;
  struct LiveSession;

  // Event loop pieces.
  void Accept();
  void OnReadable(Conn& c);
  void OnWritable(Conn& c);
  void HandleFrame(Conn& c, wire::Frame frame);
  void HandleMessage(Conn& c, wire::Message m);
  Status EndTurn();
  void RunTimers();
  int NextTimeoutMs();

  // Handlers.
  void OnHello(Conn& c, const wire::Hello& m);
  void OnSubmit(Conn& c, wire::SubmitRequest m);
  void OnProvideReason(Conn& c, const wire::ProvideReason& m);
  void OnResume(Conn& c, const wire::Resume& m);
  void OnCancel(Conn& c);
  void OnList(Conn& c, const wire::ListRequests& m);
  void OnGet(Conn& c, const wire::GetRequest& m);
  void OnVote(Conn& c, bool approve, const std::string& id, const crypto::Sha256Digest& digest,
              const std::string& comment);
  void OnFollow(Conn& c, const wire::Follow& m);
  void OnListCerts(Conn& c, const wire::ListCerts& m);
  void OnRevoke(Conn& c, const wire::Revoke& m);
  void OnSignHostKey(Conn& c, const wire::SignHostKey& m);
  void OnGetCaInfo(Conn& c);
  void OnOpenSession(Conn& c, const wire::OpenSession& m);
  void OnSessionData(Conn& c, const wire::SessionData& m);
  void OnCloseSession(Conn& c, const wire::CloseSession& m);
  // Ends a live session: audit event, SessionTerminated to its recorder.
  void OnTerminateSession(Conn& c, const wire::TerminateSession& m);
  void OnBastionEvent(Conn& c, const wire::BastionEvent& m);
  // `jitgate status` (anyone), and recorders' spool reports (as OpenSession).
  void OnGetStatus(Conn& c);
  void OnSpoolReport(Conn& c, const wire::SpoolReport& m);
  // Root, or an approver of the request the session runs under.
  bool MayTerminate(const Conn& c, const recorder::SessionInfo& session) const;
  // Loads the sessions a previous run left open (recorders may resume them).
  Status RestoreSessions();
  // Appends live's session_end (its info filled in) to the store and marks
  // it ended in the database, in this turn's transaction.
  Status WriteSessionEnd(const std::string& id, LiveSession& live);
  // Ends the broker-named sessions whose recorder went away and did not
  // resume within broker.recorder_resume_grace: session_end "recorder
  // lost" (as `jitgate-rec --forward-spool` closes a dead recorder's spool).
  void EndLostSessions(int64_t now);
  // Moves the awaited sessions whose sudo process is gone to
  // unresumed_sessions_, every peer_check_interval_nanos.
  void CheckAwaitedSessions(int64_t now);
  // When a session without its recorder is ended as lost: its
  // lost_unix_nanos plus the grace now configured (a reload applies to it).
  int64_t LostDeadline(const LiveSession& live) const;
  // broker.recorder_resume_grace for a log line ("60s").
  std::string RecorderGraceText() const;
  // Saves the sessions changed this turn and queues the acknowledgements;
  // called by EndTurn inside the turn's transaction.
  Status SaveSessions();
  // Queues the turn's SessionAcks and SessionTerminated pushes; called by
  // EndTurn once what they announce is durable.
  void SendSessionAcks();

  // Certificates. IssueFor signs the certificate of approved request r (in
  // this turn's database transaction, with its audit event); WriteKrl
  // rewrites the KRL from the database.
  StatusOr<std::string> IssueFor(const Request& r, std::vector<std::string> decided_by,
                                 uint64_t* valid_before);
  Status WriteKrl();
  bool CertVisible(const Conn& c, const CertRecord& cert) const;
  bool IsHostSigner(const Conn& c) const;
  // The peer is listed in broker.submitters (may file and record for others).
  bool IsSubmitter(const Conn& c) const;
  void EmitCertEvent(AuditEventType type, const CertRecord& rec, const std::string& actor,
                     const std::string& comment);

  // Files the request and answers the filer (RequestAccepted or Decision).
  void CreateAndAnswer(Conn& c, wire::RequestFields fields, Decision decision,
                       uint32_t timeout_seconds);
  // Tells the filer of request id (if connected) what changed.
  void NotifyFiler(const std::string& id);
  // Sends the final Decision for r to c, consuming an approval, and closes c
  // after the write.
  void Deliver(Conn& c, const std::string& id);
  void NotifyFollowers(const std::string& id, bool created);

  // Output.
  void Send(Conn& c, const wire::Message& m);
  void SendError(Conn& c, wire::ErrorCode code, std::string message);
  void CloseConn(int fd, bool cancel_request);
  void Flush(Conn& c);

  // Helpers.
  void Touch(const std::string& id);
  bool Visible(const Conn& c, const Request& r) const;
  wire::RequestInfo InfoOf(const Request& r) const;
  wire::RequestList ListFor(const Conn& c, wire::ListFilter filter, uint16_t limit) const;
  std::string NameOfUid(uid_t uid);
  std::optional<uid_t> UidOfName(const std::string& name);
  std::vector<std::string> GroupsOf(const std::string& user);
  int64_t Now() { return clock_->NowUnixNanos(); }
  void Log(const std::string& line, const LogFields& fields = {});
  // SIGHUP: loads the configuration again and switches to it, or refuses it;
  // either way an audit event and a log line.
  void Reload();
  void EmitConfigEvent(const std::string& event, const std::string& file,
                       const std::string& sha256, const std::string& comment);
  void PruneFinished();

  Config config_;  // replaced as a whole on reload
  StateDb* db_;
  store::Store* store_;
  ServerOptions options_;
  Clock* clock_;
  StoreAuditSink sink_;
  RequestBook book_;
  Status id_error_;  // an error of the id source (database lookups)

  UniqueFd epoll_;
  UniqueFd listen_;
  UniqueFd signal_fd_;
  UniqueFd stop_fd_;
  bool stopping_ = false;
  Status fatal_;

  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::map<std::string, int> filer_;  // request id -> fd of its waiting client
  std::map<std::string, crypto::Sha256Digest> token_hash_;  // request id -> SHA-256(token)
  std::map<std::string, int64_t> unattached_;  // restored pending id -> grace deadline
  std::set<int> followers_;
  std::set<std::string> touched_;  // request ids changed this turn
  std::set<int> to_flush_;         // connections with output this turn
  std::map<uid_t, std::string> uid_names_;
  int64_t next_prune_ = 0;
  uint64_t krl_version_ = 0;  // of the KRL last written

  // Recorded sessions that have not ended (docs/protocol.md §4.4).
  struct LiveSession {
    recorder::SessionInfo info;
    std::string start_json;
    uint64_t next_index = 0;  // chunks appended to the store so far
    int fd = -1;              // the recording connection, -1 if none
    pid_t opener_pid = 0;     // the bastion session process that opened it, else 0
    // The broker named the session (OpenSession without an id): its recorder
    // has no spool, so nothing but that recorder can deliver the rest, and a
    // recorder that does not resume is lost (EndLostSessions). A spooling
    // recorder names its own session; its spool may still deliver the rest.
    bool broker_named = false;
    // When the recording connection went away (or the broker started, for a
    // restored session): the session_end time if its recorder is lost.
    int64_t lost_unix_nanos = 0;
    // Set by TerminateSession: told to the recorder, and again to a
    // recorder that resumes the session.
    std::optional<wire::SessionTerminated> terminated;
    // EncodePeerProcess of the sudo process that opened a broker-named sudo
    // session; empty for other sessions and if unknown (saved before schema
    // 5, or another pid namespace).
    std::string recorder_process;
  };
  std::map<std::string, LiveSession> sessions_;
  // Broker-named sessions without a connection: ended as "recorder lost" at
  // LostDeadline unless a recorder resumes them first.
  std::set<std::string> unresumed_sessions_;
  // Restored sudo sessions that wait for their sudo process (it may be
  // quiet for hours) as long as it runs: looked at every
  // peer_check_interval_nanos, and moved to unresumed_sessions_ (the grace,
  // from then) once it is gone.
  std::set<std::string> awaited_sessions_;
  int64_t next_peer_check_ = 0;
  std::set<std::string> sessions_touched_;
  std::set<int> ack_due_;  // recording connections owed a SessionAck this turn
  std::set<int> terminate_due_;  // recording connections to tell SessionTerminated
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_SERVER_H_
