#include "registry/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>

#include "util/strings.hpp"

namespace deepops {
namespace {

// curl_global_init is not thread-safe; do it once, before any handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool transient(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::string hint_for(CURLcode code) {
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return "the registry's certificate is not trusted: give its CA with --ca-file or "
             "DEEPOPS_CA_FILE";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "check the registry name, DNS, and the https_proxy/no_proxy variables";
    case CURLE_COULDNT_CONNECT:
      return "is the registry up and reachable from this node? check firewalls and proxies";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return "the registry (or a proxy in between) keeps closing the connection; check it, then "
             "retry";
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS handshake failed; if the registry speaks plain HTTP, allow it with the setting "
             "ALLOW_HTTP (deepops.conf; deepops-ctr import --allow-http HOST:PORT)";
    default:
      return {};
  }
}

}  // namespace

std::string HttpResponse::header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  HttpOptions options;
  CURL* curl = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  // Per-request state, reached from curl's C callbacks.
  HttpResponse* response = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  bool sink_aborted = false;
  std::exception_ptr sink_error;  // thrown by the sink; rethrown after curl returns

  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
  }

  static size_t on_header(char* data, size_t size, size_t count, void* self_ptr) {
    auto* self = static_cast<Impl*>(self_ptr);
    std::string line(data, size * count);
    if (line.starts_with("HTTP/")) self->response->headers.clear();  // a new response (redirect)
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      self->response->headers[lowercase(line.substr(0, colon))] = trim(line.substr(colon + 1));
    }
    return size * count;
  }

  static size_t on_body(char* data, size_t size, size_t count, void* self_ptr) {
    auto* self = static_cast<Impl*>(self_ptr);
    size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
    if (self->sink && *self->sink && status >= 200 && status < 300) {
      try {
        if ((*self->sink)(status, data, n)) return n;
      } catch (...) {
        self->sink_error = std::current_exception();  // never unwind through curl's C frames
      }
      self->sink_aborted = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    std::string& body = self->response->body;
    body.append(data, std::min(n, self->max_body - std::min(self->max_body, body.size())));
    return n;
  }
};

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value,
                                                      std::chrono::system_clock::time_point now) {
  std::string v = trim(value);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    // Over a day is as good as forever to a caller, which caps it anyway.
    return std::chrono::seconds(v.size() > 6 ? 86400 : std::stol(v));
  }
  time_t when = curl_getdate(v.c_str(), nullptr);  // RFC 1123 and the older HTTP forms
  if (when < 0) return std::nullopt;
  auto wait =
      std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::from_time_t(when) - now);
  return std::max(wait, std::chrono::seconds(0));
}

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  init_curl_once();
  impl_->options = std::move(options);
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw Error(Errc::internal, "curl_easy_init failed");
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::get(const std::string& url, const std::vector<std::string>& headers,
                             const BodySink& sink, size_t max_body) {
  CURL* c = impl_->curl;
  curl_easy_reset(c);  // keeps the connection cache, drops the last request's options
  HttpResponse response;
  impl_->response = &response;
  impl_->sink = &sink;
  impl_->max_body = max_body;
  impl_->sink_aborted = false;
  impl_->sink_error = nullptr;
  impl_->error[0] = '\0';

  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(list,
                                                                          curl_slist_free_all);

  const HttpOptions& o = impl_->options;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // blobs redirect to storage
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // manifests may come compressed
  curl_easy_setopt(c, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->error);
  if (!o.ca_file.empty()) {
    // With OpenSSL, CAINFO and CAPATH are both consulted: the given CA is
    // trusted in addition to the system store, not instead of it.
    curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Impl::on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, impl_.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Impl::on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, impl_.get());

  CURLcode rc = curl_easy_perform(c);
  impl_->response = nullptr;
  impl_->sink = nullptr;
  if (impl_->sink_error) std::rethrow_exception(impl_->sink_error);
  if (rc == CURLE_WRITE_ERROR && impl_->sink_aborted) {
    throw Error(Errc::internal, "transfer of " + url + " stopped by its consumer");
  }
  if (rc != CURLE_OK) {
    std::string why = impl_->error[0] ? impl_->error : curl_easy_strerror(rc);
    throw NetworkError("GET " + url + ": " + why, hint_for(rc), transient(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective) response.effective_url = effective;
  return response;
}

}  // namespace deepops
