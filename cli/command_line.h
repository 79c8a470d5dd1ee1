// What every jitgate subcommand does with its command line: one error line
// with an exit code, Boost.Program_options parsing with --help, the broker
// socket option (--socket, then $JITGATE_SOCKET, then the default).
#ifndef JITGATE_CLI_COMMAND_LINE_H_
#define JITGATE_CLI_COMMAND_LINE_H_

#include <boost/program_options.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace jitgate::cli {

// Writes "jitgate: message" as one line on err; returns code.
int ErrorLine(std::ostream& err, const std::string& message, int code);

// Adds --socket PATH to desc.
void AddSocketOption(boost::program_options::options_description& desc);

// Adds --help, parses args into *vm. On --help prints "usage: USAGE" and the
// options to out and returns false. Throws po::error on bad options.
bool ParseCommandLine(const std::vector<std::string>& args,
                      boost::program_options::options_description& desc,
                      const boost::program_options::positional_options_description& pos,
                      boost::program_options::variables_map* vm, std::ostream& out,
                      const std::string& usage);

// The broker socket: --socket if given, else env_value ($JITGATE_SOCKET) if
// set and not empty, else the default.
std::string SocketPathOf(const boost::program_options::variables_map& vm, const char* env_value);

}  // namespace jitgate::cli

#endif  // JITGATE_CLI_COMMAND_LINE_H_
