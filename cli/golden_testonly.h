// Test-only: golden files under cli/testdata (header-only, tests only).
#ifndef JITGATE_CLI_GOLDEN_TESTONLY_H_
#define JITGATE_CLI_GOLDEN_TESTONLY_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace jitgate::cli::testonly {

// The contents of dir/name; with JITGATE_UPDATE_GOLDEN=1 in the environment
// the file is first rewritten with got (review the diff before committing).
inline std::string ReadGolden(const std::string& dir, const std::string& name,
                              const std::string& got) {
  const std::string path = dir + "/" + name;
  if (const char* update = std::getenv("JITGATE_UPDATE_GOLDEN"); update && update[0] == '1') {
    std::ofstream(path, std::ios::binary) << got;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(missing golden file " + path + ")";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace jitgate::cli::testonly

#endif  // JITGATE_CLI_GOLDEN_TESTONLY_H_
