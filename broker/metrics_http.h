// MetricsHttpServer: jitgated's Prometheus endpoint (docs/jitgated.md,
// "Metrics"): GET (or HEAD) /metrics answers the text exposition format;
// other paths 404, other methods 405. libmicrohttpd serves it on a thread of
// its own, so a scrape never runs on the event loop.
//
// A slow or hostile local client cannot hurt the broker: at most
// kMaxMetricsConnections at once (more are refused), each closed after
// kMetricsTimeoutSeconds idle, request headers capped by a small memory
// limit, no request body read.
//
// Thread-safe: Start and Stop from the owning thread; render is called on
// libmicrohttpd's thread.
#ifndef JITGATE_BROKER_METRICS_HTTP_H_
#define JITGATE_BROKER_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "core/base/status.h"

struct MHD_Daemon;

namespace jitgate::broker {

inline constexpr unsigned kMaxMetricsConnections = 8;
inline constexpr unsigned kMetricsTimeoutSeconds = 10;
// Mode of a unix: socket: the broker's user and group (a scraper is given
// access by group membership).
inline constexpr unsigned kMetricsSocketMode = 0660;

class MetricsHttpServer {
 public:
  // Binds listen -- "127.0.0.1:PORT", "[::1]:PORT" (port 0: any free
  // port) or "unix:/path" (a stale socket there is replaced; a live one, or
  // anything else, is an error) -- and starts serving render()'s text. Fails
  // with the errno-derived code and a message naming the address.
  static StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                            std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Stops serving, closes the socket and removes a unix: socket's file.
  // Idempotent.
  void Stop();

  // Where it listens: "127.0.0.1:9464" (the bound port) or "unix:/path".
  const std::string& address() const { return address_; }

 private:
  MetricsHttpServer(std::function<std::string()> render) : render_(std::move(render)) {}

  std::function<std::string()> render_;
  std::string address_;
  std::string unix_path_;  // to remove at Stop
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace jitgate::broker

#endif  // JITGATE_BROKER_METRICS_HTTP_H_
