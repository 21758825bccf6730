#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/credentials.hpp"
#include "registry/http.hpp"
#include "registry/image_ref.hpp"
#include "registry/manifest.hpp"
#include "registry/mirrors.hpp"

namespace deepops {

struct RegistryOptions {
  HttpOptions http;
  // Registries (host[:port]) reached over plain HTTP; "*" for all. Never by
  // default: HTTP is only for lab and air-gapped mirrors that ask for it.
  std::vector<std::string> allow_http;
  CredentialFiles credentials;  // none by default: the front end says whose
  int attempts = 5;             // per request, for 5xx, 429 and dropped connections
  // Reach the image through this endpoint (a mirror) instead of its registry.
  std::optional<Endpoint> endpoint;
  std::chrono::milliseconds first_backoff{250};
};

// Receives a blob's bytes, already counted and hashed by the client.
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  virtual void write(const char* data, size_t size) = 0;
  // The server ignored a Range request: drop what was written, start over.
  virtual void restart() = 0;
};

struct ResolvedImage {
  std::string manifest_digest;  // of the platform's image manifest: the cache key
  std::string index_digest;     // of the index it came from, if any
  ImageManifest manifest;
};

// Talks to one repository of one registry (Distribution API v2): resolves
// tags and indexes, and fetches blobs with digest verification, retries and
// Range resume. Authenticates as WWW-Authenticate asks (Bearer token with a
// pull scope, or Basic), with credentials from the Enroot and Docker files;
// tokens live in memory only. Thread-safe: each thread passes its own
// connection, from connect(), to the fetch calls.
class RegistryClient {
 public:
  RegistryClient(RegistryImage image, RegistryOptions options);

  const RegistryImage& image() const { return image_; }
  // A connection with this client's TLS and timeout options: one per thread.
  std::unique_ptr<HttpClient> connect() const {
    return std::make_unique<HttpClient>(options_.http);
  }
  std::string base_url() const;  // scheme://host/v2/[prefix/]repository
  const Endpoint& endpoint() const { return endpoint_; }

  ResolvedImage resolve(HttpClient& http, const Platform& platform);
  // A small blob (the image config), verified, in memory.
  std::string fetch_small_blob(HttpClient& http, const Descriptor& blob);
  // A layer, streamed into sink; verified against blob.digest and blob.size.
  void fetch_blob(HttpClient& http, const Descriptor& blob, BlobSink& sink);

 private:
  struct Fetched {
    std::string digest;
    std::string content_type;
    std::string body;
  };
  Fetched fetch_manifest(HttpClient& http, const std::string& reference);
  // GET with authentication and retries; the sink gets 2xx bodies. A
  // dropped connection is retried here only when `retry_network`: a blob's
  // sink has state, so fetch_blob retries itself, resuming with Range.
  HttpResponse get(HttpClient& http, const std::string& url, std::vector<std::string> headers,
                   const BodySink& sink, bool retry_network = true);
  std::string authorization();  // "" when none is known yet
  void authenticate(HttpClient& http, const HttpResponse& challenge_response, bool retried);
  HttpResponse get_token(HttpClient& http, const std::string& url,
                         const std::vector<std::string>& headers) const;
  [[noreturn]] void fail_http(const std::string& what, const HttpResponse& r) const;
  std::string describe() const;  // "registry/repository" for messages

  RegistryImage image_;
  RegistryOptions options_;
  Endpoint endpoint_;
  std::mutex auth_mutex_;
  std::string auth_header_;  // "Authorization: Bearer ..." or "... Basic ..."
  std::optional<Credential> credential_;
  bool credential_loaded_ = false;
};

}  // namespace deepops
