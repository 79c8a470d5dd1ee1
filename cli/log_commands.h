// Subcommands of the jitgate CLI that work on the store.
#ifndef JITGATE_CLI_LOG_COMMANDS_H_
#define JITGATE_CLI_LOG_COMMANDS_H_

#include <string>
#include <vector>

namespace jitgate::cli {

// `jitgate log ARGS...`; returns the process exit code.
int RunLog(const std::vector<std::string>& args);
// `jitgate verify ARGS...`.
int RunVerify(const std::vector<std::string>& args);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_LOG_COMMANDS_H_
