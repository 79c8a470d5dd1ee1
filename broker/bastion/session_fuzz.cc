// Fuzz target: a bastion session process driven over a socketpair by
// arbitrary client bytes (STYLE.md §21; libssh's ssh_server_fuzzer is the
// model). The input is what a client sends: identification string, key
// exchange, and whatever follows. The session must end -- never crash, hang
// or reach the broker (there is none: the socket path does not exist, so a
// session could not start even if authentication were somehow passed).
//
// Privileges are not dropped (the fuzzer is one process) and the grace alarm
// is off; the peer's end is shut down after the input, so every read ends.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <libssh/libssh.h>

#include "broker/bastion/session.h"
#include "broker/config.h"

namespace {

struct Fixture {
  jitgate::broker::Config config;
  Fixture() {
    char dir[] = "/tmp/bastion_fuzz.XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    std::string key_path = std::string(dir) + "/host_ed25519";
    ssh_key key = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
        ssh_pki_export_privkey_file(key, nullptr, nullptr, nullptr, key_path.c_str()) != SSH_OK) {
      std::abort();
    }
    ssh_key_free(key);
    config.broker.socket = std::string(dir) + "/no-broker.sock";
    jitgate::broker::BastionSettings b;
    b.host_key = key_path;
    b.users["alice"] = {
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPuKuxIbTJyGW4rwRI/dC7L9Z+yH33hBjixcHfTdtrgm alice"};
    b.targets["db1"] = {"127.0.0.1", 1,
                        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPuKuxIbTJyGW4rwRI/dC7L9Z+yH33hBjixcHfTdtrgm"};
    config.bastion = b;
    signal(SIGPIPE, SIG_IGN);
    ssh_set_log_level(SSH_LOG_NONE);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  // The whole input fits the socket buffer for the sizes the fuzzer makes;
  // what does not fit is dropped (the session only reads).
  int buf = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  shutdown(sv[1], SHUT_WR);
  jitgate::bastion::SessionOptions options;
  options.drop_privileges = false;
  options.grace_alarm = false;
  int rc = jitgate::bastion::RunSession(fixture->config, sv[0], options);
  (void)rc;
  close(sv[1]);  // RunSession's libssh session owns and closes sv[0]
  return 0;
}
