#include "registry/registry_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry/www_authenticate.hpp"
#include "util/digest.hpp"

namespace deepops {
namespace {

constexpr size_t kMaxManifest = 4 << 20;
constexpr size_t kMaxSmallBlob = 16 << 20;

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string url_escape(const std::string& s) {
  std::unique_ptr<char, decltype(&curl_free)> e(
      curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size())), curl_free);
  return e ? e.get() : s;
}

bool retryable_status(long status) { return status == 429 || status >= 500; }

// A rate-limiting or overloaded registry's Retry-After is honoured up to this.
constexpr std::chrono::seconds kMaxRetryAfter{30};

void backoff(const RegistryOptions& o, int attempt, const HttpResponse* r) {
  std::chrono::milliseconds wait = o.first_backoff * (1 << std::min(attempt, 6));
  if (r) {
    // Retry-After, in seconds or as an HTTP-date; a longer one than the cap
    // still waits the cap rather than falling back to the short backoff.
    if (auto after =
            parse_retry_after(r->header("retry-after"), std::chrono::system_clock::now())) {
      wait = std::max<std::chrono::milliseconds>(wait, std::min(*after, kMaxRetryAfter));
    }
  }
  std::this_thread::sleep_for(wait);
}

// The registry's own explanation, from its JSON error body, if any.
std::string registry_message(const HttpResponse& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      return ": " + e["message"].get<std::string>();
    }
  }
  return {};
}

std::string credentials_hint(const std::string& registry, const CredentialFiles& files) {
  std::string hint = "add a line to " + files.enroot_netrc.string() + ": machine " + registry +
                     " login <user> password <password>";
  if (registry == "nvcr.io")
    hint += " (for nvcr.io the login is $oauthtoken and the password your NGC API key)";
  return hint;
}

}  // namespace

RegistryClient::RegistryClient(RegistryImage image, RegistryOptions options)
    : image_(std::move(image)), options_(std::move(options)) {
  if (options_.endpoint) {
    endpoint_ = *options_.endpoint;
    return;
  }
  const auto& allowed = options_.allow_http;
  bool http = std::find(allowed.begin(), allowed.end(), "*") != allowed.end() ||
              std::find(allowed.begin(), allowed.end(), image_.registry) != allowed.end();
  endpoint_ = Endpoint{http ? "http" : "https", image_.registry, ""};
}

// host[/prefix]/repository: what a user would type to reach it again.
std::string RegistryClient::describe() const {
  return endpoint_.host + (endpoint_.prefix.empty() ? "" : "/" + endpoint_.prefix) + "/" +
         image_.repository;
}

std::string RegistryClient::base_url() const {
  return endpoint_.scheme + "://" + endpoint_.host + "/v2/" +
         (endpoint_.prefix.empty() ? "" : endpoint_.prefix + "/") + image_.repository;
}

std::string RegistryClient::authorization() {
  std::lock_guard lock(auth_mutex_);
  return auth_header_;
}

// The token service fails like the registry does (overload, rate limits,
// resets): retried the same way before the answer counts.
HttpResponse RegistryClient::get_token(HttpClient& http, const std::string& url,
                                       const std::vector<std::string>& headers) const {
  for (int attempt = 0;; ++attempt) {
    try {
      HttpResponse t = http.get(url, headers, nullptr, 1 << 20);
      if (!retryable_status(t.status) || attempt + 1 >= options_.attempts) return t;
      backoff(options_, attempt, &t);
    } catch (const NetworkError& e) {
      if (!e.transient() || attempt + 1 >= options_.attempts) throw;
      backoff(options_, attempt, nullptr);
    }
  }
}

void RegistryClient::authenticate(HttpClient& http, const HttpResponse& r, bool retried) {
  std::lock_guard lock(auth_mutex_);
  if (!credential_loaded_) {
    credential_ = lookup_credential(options_.credentials, endpoint_.host, image_.user);
    credential_loaded_ = true;
  }
  if (retried) {
    if (credential_) {
      throw Error(
          Errc::auth,
          endpoint_.host + " rejected the credentials from " + credential_->source + " for " +
              describe(),
          "check the login and password there; the account may lack access to this repository");
    }
    throw Error(Errc::auth, endpoint_.host + " requires credentials for " + describe(),
                credentials_hint(endpoint_.host, options_.credentials));
  }
  auto challenges = parse_www_authenticate(r.header("www-authenticate"));
  auto pick = [&](const char* scheme) {
    return std::find_if(challenges.begin(), challenges.end(),
                        [&](const AuthChallenge& c) { return c.scheme == scheme; });
  };
  std::string basic = credential_
                          ? "Authorization: Basic " +
                                base64_encode(credential_->login + ":" + credential_->password)
                          : "";
  if (auto bearer = pick("bearer"); bearer != challenges.end()) {
    std::string realm = bearer->param("realm");
    if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
      throw Error(Errc::auth,
                  endpoint_.host + " sent a token realm that is not a URL: '" + realm + "'");
    }
    std::string scope = bearer->param("scope");
    if (scope.empty()) {
      scope = "repository:" + (endpoint_.prefix.empty() ? "" : endpoint_.prefix + "/") +
              image_.repository + ":pull";
    }
    std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&") +
                      "service=" + url_escape(bearer->param("service")) +
                      "&scope=" + url_escape(scope);
    std::vector<std::string> headers;
    if (!basic.empty()) headers.push_back(basic);
    HttpResponse t = get_token(http, url, headers);
    if (t.status == 401 || t.status == 403) {
      throw Error(
          Errc::auth,
          "the token service of " + endpoint_.host + " refused " +
              (credential_ ? "the credentials from " + credential_->source : "anonymous access") +
              " for " + describe(),
          credential_ ? "check the login and password there"
                      : credentials_hint(endpoint_.host, options_.credentials));
    }
    auto j = nlohmann::json::parse(t.body, nullptr, false);
    std::string token;
    if (t.status == 200 && j.is_object()) {
      for (const char* key : {"token", "access_token"}) {
        if (j.contains(key) && j[key].is_string()) token = j[key].get<std::string>();
        if (!token.empty()) break;
      }
    }
    if (token.empty()) {
      throw Error(Errc::auth, "the token service of " + endpoint_.host + " answered " +
                                  std::to_string(t.status) + " without a token");
    }
    auth_header_ = "Authorization: Bearer " + token;
    return;
  }
  if (pick("basic") != challenges.end()) {
    if (basic.empty()) {
      throw Error(Errc::auth, endpoint_.host + " requires credentials for " + describe(),
                  credentials_hint(endpoint_.host, options_.credentials));
    }
    auth_header_ = basic;
    return;
  }
  throw Error(Errc::auth, endpoint_.host +
                              " answered 401 without a usable WWW-Authenticate challenge ('" +
                              r.header("www-authenticate") + "')");
}

HttpResponse RegistryClient::get(HttpClient& http, const std::string& url,
                                 std::vector<std::string> headers, const BodySink& sink,
                                 bool retry_network) {
  bool authenticated_once = false;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> h = headers;
    if (std::string auth = authorization(); !auth.empty()) h.push_back(auth);
    HttpResponse r;
    try {
      r = http.get(url, h, sink, kMaxManifest);
    } catch (const NetworkError& e) {
      if (!retry_network || !e.transient() || attempt + 1 >= options_.attempts) throw;
      backoff(options_, attempt, nullptr);
      continue;
    }
    if (r.status == 401) {
      authenticate(http, r, authenticated_once);
      authenticated_once = true;
      continue;
    }
    if (retryable_status(r.status) && attempt + 1 < options_.attempts) {
      backoff(options_, attempt, &r);
      continue;
    }
    return r;
  }
}

void RegistryClient::fail_http(const std::string& what, const HttpResponse& r) const {
  std::string where = what + " of " + image_.canonical();
  std::string reason = registry_message(r);
  switch (r.status) {
    case 404:
      throw Error(Errc::not_found, where + " not found on " + endpoint_.host + reason,
                  "check the image name and tag; `skopeo list-tags docker://" + describe() +
                      "` lists the tags");
    case 403:
      throw Error(Errc::permission_denied, endpoint_.host + " denied access to " + where + reason,
                  "the account in your credentials may lack access to this repository");
    case 429:
      throw Error(Errc::busy, endpoint_.host + " is rate-limiting pulls of " + where + reason,
                  "log in (credentials raise the limit) or configure a registry mirror");
    case 400:
      // A server that speaks only HTTPS answers a plain HTTP request with a
      // bare 400 (no registry error body). Only ALLOW_HTTP sends HTTP to a
      // registry; a mirror's http:// is the admin's own choice.
      if (endpoint_.scheme == "http" && !options_.endpoint && reason.empty()) {
        throw Error(Errc::invalid_argument,
                    endpoint_.host + " answered HTTP 400 for " + where + " over plain HTTP",
                    "if " + endpoint_.host +
                        " serves HTTPS, take it out of ALLOW_HTTP (--allow-http, "
                        "DEEPOPS_ALLOW_HTTP; ENROOT_ALLOW_HTTP means every registry)");
      }
      [[fallthrough]];
    default:
      throw Error(
          r.status >= 500 ? Errc::network : Errc::corrupt,
          endpoint_.host + " answered HTTP " + std::to_string(r.status) + " for " + where + reason,
          r.status >= 500 ? "the registry is failing; retry later" : "");
  }
}

RegistryClient::Fetched RegistryClient::fetch_manifest(HttpClient& http,
                                                       const std::string& reference) {
  std::string url = base_url() + "/manifests/" + reference;
  HttpResponse r = get(http, url, {media_type::accept_header()}, nullptr);
  if (r.status != 200) fail_http("manifest " + reference, r);
  if (r.body.size() >= kMaxManifest) {
    throw Error(Errc::corrupt, "the manifest of " + image_.canonical() + " is larger than 4 MiB");
  }
  std::string digest = sha256_digest(r.body);
  if (is_sha256_digest(reference) && digest != reference) {
    throw Error(Errc::corrupt,
                "manifest " + reference + " of " + describe() + " has digest " + digest,
                "the registry or a proxy altered it; nothing was imported");
  }
  return {digest, r.header("content-type"), std::move(r.body)};
}

ResolvedImage RegistryClient::resolve(HttpClient& http, const Platform& platform) {
  Fetched top = fetch_manifest(http, image_.manifest_reference());
  auto parsed = parse_manifest(top.body, top.content_type);
  if (auto* manifest = std::get_if<ImageManifest>(&parsed))
    return {top.digest, "", std::move(*manifest)};
  const Descriptor& chosen = select_platform(std::get<ImageIndex>(parsed), platform);
  Fetched inner = fetch_manifest(http, chosen.digest);
  auto inner_parsed = parse_manifest(inner.body, inner.content_type);
  auto* manifest = std::get_if<ImageManifest>(&inner_parsed);
  if (!manifest)
    throw Error(Errc::corrupt, "the index of " + image_.canonical() + " points to another index");
  return {inner.digest, top.digest, std::move(*manifest)};
}

std::string RegistryClient::fetch_small_blob(HttpClient& http, const Descriptor& blob) {
  if (blob.size > static_cast<int64_t>(kMaxSmallBlob)) {
    throw Error(Errc::corrupt,
                "the config blob of " + image_.canonical() + " is larger than 16 MiB");
  }
  struct StringSink : BlobSink {
    std::string data;
    void write(const char* d, size_t n) override { data.append(d, n); }
    void restart() override { data.clear(); }
  } sink;
  fetch_blob(http, blob, sink);
  return std::move(sink.data);
}

void RegistryClient::fetch_blob(HttpClient& http, const Descriptor& blob, BlobSink& sink) {
  std::string url = base_url() + "/blobs/" + blob.digest;
  auto hasher = std::make_unique<Sha256>();
  int64_t received = 0;
  std::string last_network_error;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> headers;
    if (received > 0) headers.push_back("Range: bytes=" + std::to_string(received) + "-");
    bool first_chunk = true;
    BodySink body = [&](long status, const char* data, size_t n) {
      if (first_chunk && received > 0 && status != 206) {  // Range ignored: start over
        hasher = std::make_unique<Sha256>();
        received = 0;
        sink.restart();
      }
      first_chunk = false;
      if (received + static_cast<int64_t>(n) > blob.size) {
        throw Error(Errc::corrupt,
                    "blob " + blob.digest + " of " + describe() + " is larger than the " +
                        std::to_string(blob.size) + " bytes its manifest says",
                    "the registry or a proxy is serving a different blob; nothing was imported");
      }
      hasher->update(data, n);
      sink.write(data, n);
      received += static_cast<int64_t>(n);
      return true;
    };
    HttpResponse r;
    bool network_failed = false;
    try {
      r = get(http, url, headers, body, /*retry_network=*/false);
    } catch (const NetworkError& e) {
      if (!e.transient()) throw;
      network_failed = true;
      last_network_error = e.what();
    }
    if (!network_failed && r.status == 416) {  // our Range is past the end: start over
      hasher = std::make_unique<Sha256>();
      received = 0;
      sink.restart();
    } else if (!network_failed && r.status != 200 && r.status != 206) {
      fail_http("blob " + blob.digest, r);
    } else if (received == blob.size) {
      break;
    }
    if (attempt + 1 >= options_.attempts) break;
    backoff(options_, attempt, nullptr);
  }
  if (received != blob.size) {
    throw Error(
        Errc::network,
        "blob " + blob.digest + " of " + describe() + " is truncated: got " +
            std::to_string(received) + " of " + std::to_string(blob.size) + " bytes in " +
            std::to_string(options_.attempts) + " attempts" +
            (last_network_error.empty() ? "" : " (last: " + last_network_error + ")"),
        "the connection to the registry keeps dropping; check proxies and the network, then retry");
  }
  if (std::string got = hasher->finish(); got != blob.digest) {
    throw Error(Errc::corrupt, "blob " + blob.digest + " of " + describe() + " has digest " + got,
                "the registry or a proxy altered it; nothing was imported");
  }
}

}  // namespace deepops
