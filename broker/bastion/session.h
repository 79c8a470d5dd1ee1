// The bastion's per-connection session process (PRODUCT.md F3,
// docs/bastion.md).
//
// jitgated accepts a TCP connection and starts `jitgated --bastion-session`
// with the socket as fd 3 (bastion/listener.h). That fresh process holds no
// CA or log key: it reads its host key, drops to bastion.run_as, then speaks
// SSH to the client with libssh:
//
//   publickey auth (the person's own key or a certificate from a trusted CA)
//   -> keyboard-interactive rounds that file the approval request with the
//      broker (service "bastion") and show its status live
//   -> upstream libssh client to the target as LOGIN with a fresh Ed25519 key
//      and the certificate the broker issued with the approval, host key
//      checked against the pinned key
//   -> relay of the session channel (pty, shell, exec, env, window changes,
//      signals, EOF, exit status) with flow control, every byte recorded
//      through RecordingClient; the session ends at the approval's end, on
//      `jitgate terminate`, or when either side closes.
#ifndef JITGATE_BROKER_BASTION_SESSION_H_
#define JITGATE_BROKER_BASTION_SESSION_H_

#include "broker/config.h"

namespace jitgate::bastion {

struct SessionOptions {
  // Switch to bastion.run_as (bastion/privileges.h) before the handshake. Off only in
  // the fuzz target, which runs the session in its own process.
  bool drop_privileges = true;
  // Arm SIGALRM for bastion.login_grace (sshd's LoginGraceTime).
  bool grace_alarm = true;
};

// Serves one client connection (client_fd, a connected stream socket) to its
// end. Returns the process exit status (0 after a session, 1 on failure).
int RunSession(const broker::Config& config, int client_fd, const SessionOptions& options = {});

}  // namespace jitgate::bastion

#endif  // JITGATE_BROKER_BASTION_SESSION_H_
