#include "cli/command_line.h"

#include <optional>

#include "cli/approver_format.h"

namespace jitgate::cli {

namespace po = boost::program_options;

int ErrorLine(std::ostream& err, const std::string& message, int code) {
  err << "jitgate: " << message << "\n" << std::flush;
  return code;
}

void AddSocketOption(po::options_description& desc) {
  desc.add_options()("socket", po::value<std::string>(),
                     "broker socket (default: $JITGATE_SOCKET, else /run/jitgate/jitgated.sock)");
}

bool ParseCommandLine(const std::vector<std::string>& args, po::options_description& desc,
                      const po::positional_options_description& pos, po::variables_map* vm,
                      std::ostream& out, const std::string& usage) {
  desc.add_options()("help,h", "show this help");
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), *vm);
  if (vm->count("help")) {
    out << "usage: " << usage << "\n" << desc;
    return false;
  }
  po::notify(*vm);
  return true;
}

std::string SocketPathOf(const po::variables_map& vm, const char* env_value) {
  std::optional<std::string> flag;
  if (vm.count("socket")) flag = vm["socket"].as<std::string>();
  return ResolveSocketPath(flag, env_value);
}

}  // namespace jitgate::cli
