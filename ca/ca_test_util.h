// Helpers for the ca/ tests: testdata paths, files, and running ssh-keygen.
// Test-only.
#ifndef JITGATE_CA_CA_TEST_UTIL_H_
#define JITGATE_CA_CA_TEST_UTIL_H_

#include <string>
#include <vector>

namespace jitgate::ca::testing {

// $JITGATE_TESTDATA/openssh/<rel>.
std::string OpensshTestdata(const std::string& rel);
// The whole file; aborts the test binary if it cannot be read.
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& data, int mode = 0644);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs argv (no shell) with TZ=UTC, capturing stdout and stderr.
CommandResult Run(const std::vector<std::string>& argv);
// True if /usr/bin/ssh-keygen exists.
bool HaveSshKeygen();

}  // namespace jitgate::ca::testing

#endif  // JITGATE_CA_CA_TEST_UTIL_H_
