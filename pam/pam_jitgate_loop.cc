// pam_jitgate_loop: runs pam_start_confdir / pam_authenticate / pam_acct_mgmt
// / pam_end N times against an auto-approving fake broker, for valgrind
// (PRODUCT.md: "valgrind-clean across thousands of calls"). Each handle loads
// and unloads the module, so leaks in the module, in its use of libpam and in
// load/unload all add up. Even iterations run auth then account (account
// reuses auth's approval through pam_set_data); odd ones run account alone
// (a request of its own). Exits non-zero on any unexpected PAM result.
//
//   valgrind --leak-check=full --errors-for-leak-kinds=definite
//   --error-exitcode=1
//       ./pam_jitgate_loop 10000 [MODULE.so]
#include <dlfcn.h>
#include <security/pam_appl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "tests/testing/fake_broker.h"

namespace {

// Answers info and error messages; there are no prompts with auto-approval.
int Conversation(int n, const struct pam_message** msg,
                 struct pam_response** resp, void*) {
  auto* r =
      static_cast<pam_response*>(std::calloc(size_t(n), sizeof(pam_response)));
  if (r == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON ||
        msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
      r[i].resp = strdup("");
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1000;
  std::string module = argc > 2 ? argv[2] : PAM_JITGATE_SO;
  jitgate::testing::FakeBroker broker(
      jitgate::testing::FakeBroker::AutoApprove());
  std::string confdir = broker.dir();
  {
    std::ofstream f(confdir + "/jitgate-loop");
    std::string line =
        module + " socket=" + broker.socket_path() + " timeout=10";
    f << "auth required " << line << "\naccount required " << line << "\n";
  }
  // Every 10th handle loads the module afresh (catching leaks per load, such
  // as a leaked singleton); in between, the driver holds a reference so that
  // libpam's dlclose keeps it mapped, which spares valgrind re-reading its
  // debug information and re-translating its code on every iteration.
  void* pin = nullptr;
  pam_conv conv{Conversation, nullptr};
  for (long i = 0; i < iterations; ++i) {
    if (i % 10 == 0 && pin != nullptr) {
      dlclose(pin);
      pin = nullptr;
    } else if (i % 10 == 1) {
      pin = dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (pin == nullptr) {
        std::fprintf(stderr, "dlopen %s: %s\n", module.c_str(), dlerror());
        return 1;
      }
    }
    pam_handle_t* pamh = nullptr;
    int rc = pam_start_confdir("jitgate-loop", "alice", &conv, confdir.c_str(),
                               &pamh);
    if (rc != PAM_SUCCESS) {
      std::fprintf(stderr, "iteration %ld: pam_start_confdir: %d\n", i, rc);
      return 1;
    }
    (void)pam_set_item(pamh, PAM_RHOST, "10.0.0.7");
    if (i % 2 == 0 && (rc = pam_authenticate(pamh, 0)) != PAM_SUCCESS) {
      std::fprintf(stderr, "iteration %ld: pam_authenticate: %s\n", i,
                   pam_strerror(pamh, rc));
      return 1;
    }
    if ((rc = pam_acct_mgmt(pamh, 0)) != PAM_SUCCESS) {
      std::fprintf(stderr, "iteration %ld: pam_acct_mgmt: %s\n", i,
                   pam_strerror(pamh, rc));
      return 1;
    }
    const char* id = pam_getenv(pamh, "JITGATE_REQUEST_ID");
    if (id == nullptr || std::strlen(id) != 8) {
      std::fprintf(stderr, "iteration %ld: JITGATE_REQUEST_ID not set\n", i);
      return 1;
    }
    pam_end(pamh, PAM_SUCCESS);
  }
  if (pin != nullptr) dlclose(pin);
  std::printf("%ld iterations, %d requests, all approved\n", iterations,
              broker.connections());
  return 0;
}
