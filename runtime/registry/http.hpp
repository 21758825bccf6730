#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace deepops {

struct HttpOptions {
  std::string ca_file;  // trusted in addition to the system CAs
  std::chrono::seconds connect_timeout{20};
  // A transfer slower than 1 KiB/s for this long counts as stalled.
  std::chrono::seconds stall_timeout{60};
  std::string user_agent = "deepops-ctr/0.1";
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased; last value wins
  std::string body;                            // when no body sink was given
  std::string effective_url;

  std::string header(const std::string& lowercase_name) const;
};

// The wait a Retry-After header value asks for (RFC 9110 10.2.3): a number
// of seconds, or an HTTP-date (a date in the past: zero). nullopt when the
// value is empty or neither.
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value,
                                                      std::chrono::system_clock::time_point now);

// Receives a 2xx body's bytes as they arrive, with the status (200 or 206
// matters when resuming). Returning false aborts the transfer; an exception
// it throws aborts the transfer and comes out of HttpClient::get.
using BodySink = std::function<bool(long status, const char* data, size_t size)>;

// A libcurl easy handle: one connection (kept alive, HTTP/2 where offered)
// reused across requests. Not thread-safe: one per thread. Proxies come from
// the usual environment variables (https_proxy, no_proxy, ...), as libcurl
// reads them. Network failures throw deepops::Error(Errc::network) naming
// the URL and curl's reason; HTTP error statuses are returned, not thrown.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET url. With a sink, a 2xx body streams into it; other bodies are kept
  // in HttpResponse::body (up to max_body bytes) for error messages.
  HttpResponse get(const std::string& url, const std::vector<std::string>& headers,
                   const BodySink& sink = nullptr, size_t max_body = 4 << 20);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A failed transfer. transient(): worth retrying (timeouts, resets, refused
// connections), as opposed to a TLS or name failure that will not fix itself.
class NetworkError : public Error {
 public:
  NetworkError(const std::string& message, std::string hint, bool transient)
      : Error(Errc::network, message, std::move(hint)), transient_(transient) {}
  bool transient() const noexcept { return transient_; }

 private:
  bool transient_;
};

}  // namespace deepops
