#include "broker/metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "broker/config.h"
#include "core/base/unique_fd.h"
#include "core/base/unix_socket.h"

namespace jitgate::broker {

namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr size_t kConnectionMemory = 16 * 1024;

struct Bound {
  UniqueFd fd;
  std::string address;
};

StatusOr<Bound> BindUnix(const std::string& path) {
  StatusOr<UniqueFd> fd = BindUnixSocket(path, "another process");
  if (!fd.ok()) return fd.status();
  if (::chmod(path.c_str(), kMetricsSocketMode) != 0) return ErrnoToStatus(errno, "chmod " + path);
  return Bound{std::move(*fd), kUnixListenPrefix + path};
}

// Binds "127.0.0.1:PORT" or "[::1]:PORT" (validated by the configuration).
StatusOr<Bound> BindTcp(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgumentError("expected host:port, got " + listen);
  std::string host = listen.substr(0, colon);
  const int port = std::atoi(listen.c_str() + colon + 1);
  const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (v6) host = host.substr(1, host.size() - 2);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(uint16_t(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      return InvalidArgumentError("not an IPv6 address: " + host);
    }
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(uint16_t(port));
    if (::inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      return InvalidArgumentError("not an IPv4 address: " + host);
    }
    len = sizeof(*a);
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoToStatus(errno, "socket");
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return ErrnoToStatus(errno, "bind " + listen);
  }
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoToStatus(errno, "getsockname " + listen);
  }
  const uint16_t bound = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                  : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return Bound{std::move(fd), listen.substr(0, colon) + ":" + std::to_string(bound)};
}

MHD_Result Answer(MHD_Connection* connection, unsigned status, const std::string& body,
                  const char* content_type) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  }
  MHD_Result r = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return r;
}

MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/,
                  size_t* upload_data_size, void** /*con_cls*/) {
  const auto* render = static_cast<const std::function<std::string()>*>(cls);
  const std::string_view m = method;
  if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD) {
    *upload_data_size = 0;  // a body is never read
    return Answer(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n",
                  "text/plain; charset=utf-8");
  }
  if (std::string_view(url) != "/metrics") {
    return Answer(connection, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n",
                  "text/plain; charset=utf-8");
  }
  return Answer(connection, MHD_HTTP_OK, (*render)(), kContentType);
}

}  // namespace

StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> render) {
  const std::string_view unix_prefix = kUnixListenPrefix;
  const bool is_unix = listen.starts_with(unix_prefix);
  StatusOr<Bound> bound = is_unix ? BindUnix(listen.substr(unix_prefix.size())) : BindTcp(listen);
  if (!bound.ok()) return bound.status().WithContext("metrics.listen " + listen);
  if (::listen(bound->fd.get(), 64) != 0) {
    return ErrnoToStatus(errno, "metrics.listen " + listen + ": listen");
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(std::move(render)));
  server->address_ = bound->address;
  if (is_unix) server->unix_path_ = listen.substr(unix_prefix.size());
  server->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, nullptr, nullptr, &Handle,
      &server->render_, MHD_OPTION_LISTEN_SOCKET, bound->fd.get(), MHD_OPTION_CONNECTION_LIMIT,
      kMaxMetricsConnections, MHD_OPTION_CONNECTION_TIMEOUT, kMetricsTimeoutSeconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return InternalError("metrics.listen " + listen + ": libmicrohttpd could not start");
  }
  (void)bound->fd.release();  // the daemon owns it and closes it at stop
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (daemon_ != nullptr) {
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
  }
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
}

}  // namespace jitgate::broker
