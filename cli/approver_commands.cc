// `jitgate requests|show|approve|deny|terminate`: the approver's side of the
// broker protocol (docs/protocol.md §5.2, §4.4).
#include "cli/approver_commands.h"

#include <boost/program_options.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cli/approver_format.h"
#include "cli/broker_call.h"
#include "cli/command_line.h"
#include "core/wire/client.h"

namespace jitgate::cli {

namespace po = boost::program_options;

namespace {

// --follow waits for pushes indefinitely; the deadline only bounds one wait.
constexpr int64_t kFollowWaitMs = int64_t(365) * 24 * 3600 * 1000;

uint64_t NowSeconds(Clock* clock) { return uint64_t(clock->NowUnixNanos() / 1'000'000'000); }

int Fail(const ApproverIo& io, const std::string& message) { return ErrorLine(*io.err, message, 1); }

int UsageError(const ApproverIo& io, const std::string& message) {
  return ErrorLine(*io.err, message, 2);
}

bool Parse(const std::vector<std::string>& args, po::options_description& desc,
           const po::positional_options_description& pos, po::variables_map* vm,
           const ApproverIo& io, const char* usage) {
  AddSocketOption(desc);
  return ParseCommandLine(args, desc, pos, vm, *io.out, usage);
}

std::string SocketPath(const po::variables_map& vm, const ApproverIo& io) {
  return SocketPathOf(vm, io.socket_env);
}

StatusOr<wire::Client> Connect(const std::string& path, const ApproverIo& io) {
  return ConnectToBroker(path, io.clock);
}

template <typename T>
StatusOr<Reply<T>> Call(wire::Client& client, const wire::Message& m, const ApproverIo& io) {
  return CallBroker<T>(client, m, io.clock);
}

// Reads the id positional argument in the wire's alphabet.
std::optional<std::string> IdArgument(const po::variables_map& vm, const ApproverIo& io,
                                      int* exit_code) {
  if (!vm.count("id")) {
    *exit_code = UsageError(io, "missing request ID");
    return std::nullopt;
  }
  const std::string& typed = vm["id"].as<std::string>();
  std::optional<std::string> id = NormalizeIdSelector(typed);
  if (!id.has_value()) {
    *exit_code = UsageError(io, "'" + EscapeForTerminal(typed) +
                                    "' is not a request id (4 to 32 characters of 0-9 and a-z)");
  }
  return id;
}

bool ConfirmOnTty(const std::string& question) {
  FILE* tty = std::fopen("/dev/tty", "r+e");
  if (tty == nullptr) return false;
  std::fputs(question.c_str(), tty);
  std::fflush(tty);
  char line[64];
  bool yes = false;
  if (std::fgets(line, sizeof(line), tty) != nullptr) {
    std::string answer;
    for (char* p = line; *p != '\0' && *p != '\n'; ++p) {
      answer += char(std::tolower(static_cast<unsigned char>(*p)));
    }
    yes = answer == "y" || answer == "yes";
  }
  std::fclose(tty);
  return yes;
}

int Vote(const std::vector<std::string>& args, const ApproverIo& io, bool approve) {
  const char* name = approve ? "approve" : "deny";
  po::options_description desc(std::string("jitgate ") + name);
  std::string comment;
  desc.add_options()("id", po::value<std::string>(), "request id or a unique prefix (>= 4 chars)")(
      "comment", po::value(&comment), "comment recorded with your vote");
  if (approve) desc.add_options()("yes,y", "approve without asking for confirmation");
  po::positional_options_description pos;
  pos.add("id", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             approve ? "jitgate approve ID [--comment TEXT] [--yes] [--socket PATH]"
                     : "jitgate deny ID [--comment TEXT] [--socket PATH]")) {
    return 0;
  }
  int code = 0;
  std::optional<std::string> id = IdArgument(vm, io, &code);
  if (!id.has_value()) return code;
  if (comment.size() > wire::kMaxCommentField) {
    return UsageError(io, "--comment is " + std::to_string(comment.size()) +
                              " bytes; the limit is " + std::to_string(wire::kMaxCommentField));
  }
  if (comment.find('\0') != std::string::npos) return UsageError(io, "--comment contains a NUL");

  StatusOr<wire::Client> client = Connect(SocketPath(vm, io), io);
  if (!client.ok()) return Fail(io, client.status().message());

  // Fetch and show exactly what the vote will be bound to.
  StatusOr<Reply<wire::RequestInfo>> got =
      Call<wire::RequestInfo>(*client, wire::GetRequest{*id}, io);
  if (!got.ok()) return Fail(io, got.status().message());
  ApproverAction action = approve ? ApproverAction::kApprove : ApproverAction::kDeny;
  if (got->error) return Fail(io, DescribeBrokerError(*got->error, action, *id));
  const wire::RequestInfo& shown = *got->value;
  const std::string rid = EscapeForTerminal(shown.id);
  *io.out << FormatRequestDetail(shown, NowSeconds(io.clock)) << std::flush;
  if (shown.state != wire::RequestState::kPending) {
    return Fail(io, "request " + rid + " is " + std::string(wire::RequestStateName(shown.state)) +
                        ", not pending; nothing to " + name);
  }
  if (approve && !vm.count("yes")) {
    std::string question = "Approve request " + rid + " (" + EscapeForTerminal(shown.fields.user) +
                           " \u2192 " + EscapeForTerminal(shown.fields.target_user) + "@" +
                           EscapeForTerminal(shown.fields.host) + ")? [y/N] ";
    bool yes = io.confirm ? io.confirm(question) : ConfirmOnTty(question);
    if (!yes) {
      return Fail(io, "request " + rid +
                          " not approved (no confirmation; use --yes when there is no terminal)");
    }
  }

  wire::Message vote;
  if (approve) {
    vote = wire::Approve{shown.id, shown.digest, comment};
  } else {
    vote = wire::Deny{shown.id, shown.digest, comment};
  }
  StatusOr<Reply<wire::RequestInfo>> after = Call<wire::RequestInfo>(*client, vote, io);
  if (!after.ok()) {
    return Fail(io, after.status().message() + " (your vote on " + rid + " may not be recorded)");
  }
  if (after->error) return Fail(io, DescribeBrokerError(*after->error, action, shown.id));
  const wire::RequestInfo& now = *after->value;
  std::string progress = std::to_string(CountApprovals(now)) + " of " +
                         std::to_string(now.approvals_needed) + " approvals";
  if (approve) {
    if (now.state == wire::RequestState::kPending) {
      *io.out << "recorded your approval of request " << rid << " (" << progress
              << "); it still waits for more approvers\n";
    } else {
      *io.out << "approved request " << rid << " (" << progress << "; now "
              << wire::RequestStateName(now.state) << ")\n";
    }
  } else {
    *io.out << "denied request " << rid << " (now " << wire::RequestStateName(now.state) << ")\n";
  }
  return 0;
}

}  // namespace

ApproverIo DefaultApproverIo() {
  return ApproverIo{&std::cout, &std::cerr, RealClock(), std::getenv("JITGATE_SOCKET"), nullptr};
}

int RunRequests(const std::vector<std::string>& args, const ApproverIo& io) {
  po::options_description desc("jitgate requests");
  unsigned limit = 0;
  desc.add_options()("pending", "only pending requests (the default)")(
      "all", "every request, the most recent first")(
      "follow,f", "print the list, then each new request or change as it happens")(
      "json", "one JSON document (with --follow: one JSON object per line)")(
      "limit", po::value(&limit), "at most N requests (default: the broker's, 100)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (!Parse(
          args, desc, pos, &vm, io,
          "jitgate requests [--pending|--all] [--follow] [--json] [--limit N] [--socket PATH]")) {
    return 0;
  }
  if (vm.count("pending") && vm.count("all")) {
    return UsageError(io, "--pending and --all cannot be used together");
  }
  if (limit > 65535) return UsageError(io, "--limit must be at most 65535");
  bool follow = vm.count("follow") > 0;
  if (follow && vm.count("limit")) return UsageError(io, "--limit cannot be used with --follow");
  bool json = vm.count("json") > 0;
  wire::ListFilter filter = vm.count("all") ? wire::ListFilter::kAll : wire::ListFilter::kPending;

  StatusOr<wire::Client> client = Connect(SocketPath(vm, io), io);
  if (!client.ok()) return Fail(io, client.status().message());
  ApproverAction action = follow ? ApproverAction::kFollow : ApproverAction::kList;
  wire::Message ask;
  if (follow) {
    ask = wire::Follow{filter};
  } else {
    ask = wire::ListRequests{filter, uint16_t(limit)};
  }
  StatusOr<Reply<wire::RequestList>> list = Call<wire::RequestList>(*client, ask, io);
  if (!list.ok()) return Fail(io, list.status().message());
  if (list->error) return Fail(io, DescribeBrokerError(*list->error, action, ""));

  uint64_t now = NowSeconds(io.clock);
  if (json && !follow) {
    nlohmann::json items = nlohmann::json::array();
    for (const wire::RequestInfo& r : list->value->items) items.push_back(RequestToJson(r));
    *io.out << DumpJson({{"requests", std::move(items)}, {"more", list->value->more}}) << "\n";
    return 0;
  }
  for (const wire::RequestInfo& r : list->value->items) {
    *io.out << (json ? DumpJson(RequestToJson(r)) : FormatRequestLine(r, now)) << "\n";
  }
  if (!json) {
    if (list->value->items.empty() && !follow) {
      *io.out << (filter == wire::ListFilter::kPending ? "no pending requests\n" : "no requests\n");
    }
    if (list->value->more) *io.out << "(more requests not shown; see --limit)\n";
  }
  *io.out << std::flush;
  if (!follow) return 0;

  // Until interrupted: the broker pushes a RequestInfo for each event.
  for (;;) {
    StatusOr<wire::Message> m = client->Receive(wire::Deadline::InMillis(io.clock, kFollowWaitMs));
    if (!m.ok()) return Fail(io, m.status().message());
    if (const wire::RequestInfo* r = std::get_if<wire::RequestInfo>(&*m)) {
      *io.out << (json ? DumpJson(RequestToJson(*r)) : FormatRequestLine(*r, NowSeconds(io.clock)))
              << std::endl;
    } else if (const wire::Error* e = std::get_if<wire::Error>(&*m)) {
      return Fail(io, DescribeBrokerError(*e, action, ""));
    } else {
      return Fail(io, "unexpected " + wire::MessageTypeName(wire::TypeOf(*m)) + " from the broker");
    }
  }
}

int RunShow(const std::vector<std::string>& args, const ApproverIo& io) {
  po::options_description desc("jitgate show");
  desc.add_options()("id", po::value<std::string>(), "request id or a unique prefix (>= 4 chars)")(
      "json", "print the request as one JSON object");
  po::positional_options_description pos;
  pos.add("id", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io, "jitgate show ID [--json] [--socket PATH]")) return 0;
  int code = 0;
  std::optional<std::string> id = IdArgument(vm, io, &code);
  if (!id.has_value()) return code;
  StatusOr<wire::Client> client = Connect(SocketPath(vm, io), io);
  if (!client.ok()) return Fail(io, client.status().message());
  StatusOr<Reply<wire::RequestInfo>> got =
      Call<wire::RequestInfo>(*client, wire::GetRequest{*id}, io);
  if (!got.ok()) return Fail(io, got.status().message());
  if (got->error) return Fail(io, DescribeBrokerError(*got->error, ApproverAction::kShow, *id));
  if (vm.count("json")) {
    *io.out << DumpJson(RequestToJson(*got->value)) << "\n";
  } else {
    *io.out << FormatRequestDetail(*got->value, NowSeconds(io.clock));
  }
  return 0;
}

int RunApprove(const std::vector<std::string>& args, const ApproverIo& io) {
  return Vote(args, io, /*approve=*/true);
}

int RunDeny(const std::vector<std::string>& args, const ApproverIo& io) {
  return Vote(args, io, /*approve=*/false);
}

int RunTerminate(const std::vector<std::string>& args, const ApproverIo& io) {
  po::options_description desc("jitgate terminate");
  std::string comment;
  desc.add_options()("session", po::value<std::string>(),
                     "session id or a unique prefix (>= 4 chars), as `jitgate sessions` shows")(
      "comment", po::value(&comment), "why; recorded and shown to the session's user");
  po::positional_options_description pos;
  pos.add("session", 1);
  po::variables_map vm;
  if (!Parse(args, desc, pos, &vm, io,
             "jitgate terminate SESSION [--comment TEXT] [--socket PATH]")) {
    return 0;
  }
  if (!vm.count("session")) return UsageError(io, "missing SESSION");
  const std::string& typed = vm["session"].as<std::string>();
  // Session ids share the request ids' alphabet.
  std::optional<std::string> session = NormalizeIdSelector(typed);
  if (!session.has_value()) {
    return UsageError(io, "'" + EscapeForTerminal(typed) +
                              "' is not a session id (4 to 32 characters of 0-9 and a-z)");
  }
  if (comment.size() > wire::kMaxCommentField) {
    return UsageError(io, "--comment is " + std::to_string(comment.size()) +
                              " bytes; the limit is " + std::to_string(wire::kMaxCommentField));
  }
  if (comment.find('\0') != std::string::npos) return UsageError(io, "--comment contains a NUL");

  StatusOr<wire::Client> client = Connect(SocketPath(vm, io), io);
  if (!client.ok()) return Fail(io, StatusLine(client.status()));
  StatusOr<Reply<wire::SessionTerminateAck>> reply =
      Call<wire::SessionTerminateAck>(*client, wire::TerminateSession{*session, comment}, io);
  const std::string sid = EscapeForTerminal(*session);
  if (!reply.ok()) {
    return Fail(io, StatusLine(reply.status()) + " (session " + sid + " may not be terminated)");
  }
  if (reply->error) {
    const wire::Error& e = *reply->error;
    switch (e.code) {
      case wire::ErrorCode::kNotFound:
        return Fail(io, "no live session " + sid);
      case wire::ErrorCode::kAmbiguous:
        return Fail(io, sid + " matches several sessions; type more of its id");
      case wire::ErrorCode::kPermissionDenied:
        return Fail(io, "you may not terminate session " + sid +
                            ": only root and the approvers of the request it runs under may");
      default:
        return Fail(io, "broker error (" + std::string(wire::ErrorCodeName(e.code)) +
                            "): " + EscapeForTerminal(e.message));
    }
  }
  const std::string full = EscapeForTerminal(reply->value->session);
  if (reply->value->already_ended) {
    *io.out << "session " << full << " had already ended\n";
  } else {
    *io.out << "session " << full << " terminated\n";
  }
  return 0;
}

}  // namespace jitgate::cli
