#include "image/image_origin.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

class RegistrySource : public ImageOrigin {
 public:
  RegistrySource(const RegistryImage& image, const RegistryOptions& options)
      : client_(image, options) {}
  std::string reference() const override { return client_.image().canonical(); }
  std::string served_by() const override {
    const Endpoint& e = client_.endpoint();
    return e.host == client_.image().registry && e.prefix.empty() ? e.host : e.url();
  }
  ResolvedImage resolve(const Platform& platform) override {
    return client_.resolve(*connection(), platform);
  }
  std::string fetch_small_blob(const Descriptor& blob) override {
    return client_.fetch_small_blob(*connection(), blob);
  }
  void fetch_blob(const Descriptor& blob, BlobSink& sink) override {
    auto http = client_.connect();  // this thread's own
    client_.fetch_blob(*http, blob, sink);
  }

 private:
  // The connection of the calling thread for small requests: kept, so that
  // resolve and the config share keep-alive and the auth token's connection.
  HttpClient* connection() {
    if (!main_) main_ = client_.connect();
    return main_.get();
  }
  RegistryClient client_;
  std::unique_ptr<HttpClient> main_;
};

// Mirrors first, then (where allowed) the registry itself.
class MirroredOrigin : public ImageOrigin {
 public:
  MirroredOrigin(std::vector<std::unique_ptr<RegistrySource>> candidates, bool last_is_origin,
                 std::function<void(const std::string&)> warn)
      : candidates_(std::move(candidates)),
        last_is_origin_(last_is_origin),
        warn_(std::move(warn)) {}
  std::string reference() const override { return candidates_.front()->reference(); }
  std::string served_by() const override { return chosen()->served_by(); }
  ResolvedImage resolve(const Platform& platform) override {
    std::string tried;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      bool is_mirror = !(last_is_origin_ && i + 1 == candidates_.size());
      try {
        ResolvedImage r = candidates_[i]->resolve(platform);
        chosen_ = candidates_[i].get();
        return r;
      } catch (const Error& e) {
        if (!is_mirror) throw;  // the registry's own error, unchanged
        tried += (tried.empty() ? "" : ", ") + candidates_[i]->served_by();
        if (warn_)
          warn_("mirror " + candidates_[i]->served_by() + " did not serve " + reference() + ": " +
                e.describe());
        if (i + 1 == candidates_.size()) {
          throw Error(
              e.code(),
              "no mirror served " + reference() + " (tried " + tried + "; last: " + e.what() + ")",
              "the mirror rule forbids falling back to the registry; fix the mirrors or allow "
              "fallback");
        }
      }
    }
    throw Error(Errc::internal, "no endpoint to resolve " + reference() + " from");
  }
  std::string fetch_small_blob(const Descriptor& blob) override {
    return chosen()->fetch_small_blob(blob);
  }
  void fetch_blob(const Descriptor& blob, BlobSink& sink) override {
    chosen()->fetch_blob(blob, sink);
  }

 private:
  RegistrySource* chosen() const {
    if (!chosen_) throw Error(Errc::internal, "resolve() must come first");
    return chosen_;
  }
  std::vector<std::unique_ptr<RegistrySource>> candidates_;
  bool last_is_origin_;
  std::function<void(const std::string&)> warn_;
  RegistrySource* chosen_ = nullptr;
};

class OciLayoutSource : public ImageOrigin {
 public:
  OciLayoutSource(fs::path dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {
    if (!fs::is_regular_file(dir_ / "oci-layout") || !fs::is_regular_file(dir_ / "index.json")) {
      throw Error(
          Errc::not_found,
          "'" + dir_.string() + "' is not an OCI image layout (no oci-layout or index.json)",
          "create one with: skopeo copy docker://IMAGE oci:" + dir_.string() + ":TAG");
    }
  }
  std::string reference() const override {
    return "oci:" + fs::absolute(dir_).string() + (tag_.empty() ? "" : ":" + tag_);
  }
  std::string served_by() const override { return "oci:" + fs::absolute(dir_).string(); }

  ResolvedImage resolve(const Platform& platform) override {
    const Descriptor top = pick();
    std::string body = read_blob(top);
    auto parsed = parse_manifest(body, top.media_type);
    if (auto* m = std::get_if<ImageManifest>(&parsed)) return {top.digest, "", std::move(*m)};
    const Descriptor& chosen = select_platform(std::get<ImageIndex>(parsed), platform);
    auto inner = parse_manifest(read_blob(chosen), chosen.media_type);
    auto* m = std::get_if<ImageManifest>(&inner);
    if (!m) throw Error(Errc::corrupt, reference() + ": an index points to another index");
    return {chosen.digest, top.digest, std::move(*m)};
  }

  std::string fetch_small_blob(const Descriptor& blob) override { return read_blob(blob); }

  void fetch_blob(const Descriptor& blob, BlobSink& sink) override {
    fs::path path = blob_path(blob);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) missing(blob, errno);
    std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
    Sha256 hash;
    std::string buf(1 << 20, '\0');
    int64_t total = 0;
    while (true) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) missing(blob, errno);
      if (n == 0) break;
      total += n;
      if (total > blob.size) break;
      hash.update(buf.data(), static_cast<size_t>(n));
      sink.write(buf.data(), static_cast<size_t>(n));
    }
    verify(blob, total, hash.finish());
  }

 private:
  // The index entry named tag_ (by its ref.name annotation), or the only one.
  Descriptor pick() const {
    std::string text = read_file(dir_ / "index.json", 4 << 20);
    auto parsed = parse_manifest(text, media_type::kOciIndex);
    if (!std::holds_alternative<ImageIndex>(parsed)) {
      throw Error(Errc::corrupt, (dir_ / "index.json").string() + " is a manifest, not an index",
                  "an OCI layout's index.json lists its images; rewrite the layout with skopeo "
                  "copy ... oci:DIR:TAG");
    }
    auto index = std::get<ImageIndex>(std::move(parsed));
    auto json = nlohmann::json::parse(text);  // valid: parse_manifest accepted it
    std::string names;
    for (size_t i = 0; i < index.manifests.size(); ++i) {
      const auto& entry = json["manifests"][i];
      std::string name;
      if (entry.contains("annotations") && entry["annotations"].is_object()) {
        auto it = entry["annotations"].find("org.opencontainers.image.ref.name");
        if (it != entry["annotations"].end() && it->is_string()) name = it->get<std::string>();
      }
      names += (names.empty() ? "" : ", ") +
               (name.empty() ? index.manifests[i].digest.substr(0, 19) : name);
      if (!tag_.empty() && name == tag_) return index.manifests[i];
    }
    if (tag_.empty() && index.manifests.size() == 1) return index.manifests[0];
    throw Error(Errc::not_found,
                "no image " + (tag_.empty() ? std::string("chosen") : "'" + tag_ + "'") + " in " +
                    dir_.string() + " (it has: " + names + ")",
                "name one as oci:" + dir_.string() + ":TAG");
  }
  fs::path blob_path(const Descriptor& d) const {
    return dir_ / "blobs" / "sha256" / d.digest.substr(7);
  }
  [[noreturn]] void missing(const Descriptor& d, int err) const {
    throw Error(Errc::not_found, reference() + ": blob " + d.digest + ": " + std::strerror(err),
                "the layout is incomplete; copy it again");
  }
  void verify(const Descriptor& d, int64_t size, const std::string& digest) const {
    if (size != d.size || digest != d.digest) {
      throw Error(Errc::corrupt,
                  reference() + ": blob " + d.digest + " does not match its descriptor",
                  "the layout is damaged; copy it again");
    }
  }
  std::string read_blob(const Descriptor& d) const {
    if (d.size > (16 << 20))
      throw Error(Errc::corrupt, reference() + ": " + d.digest + " is too large for a manifest");
    std::string body = read_file(blob_path(d), static_cast<size_t>(d.size) + 1);
    verify(d, static_cast<int64_t>(body.size()), sha256_digest(body));
    return body;
  }
  static std::string read_file(const fs::path& p, size_t limit) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error(Errc::not_found, "cannot read " + p.string());
    std::string data(limit, '\0');
    in.read(data.data(), static_cast<std::streamsize>(limit));
    data.resize(static_cast<size_t>(in.gcount()));
    return data;
  }

  fs::path dir_;
  std::string tag_;
};

}  // namespace

std::unique_ptr<ImageOrigin> registry_origin(const RegistryImage& image,
                                             const RegistryOptions& options,
                                             const MirrorConfig& mirrors,
                                             std::function<void(const std::string&)> warn) {
  const MirrorRule* rule = mirrors.rule_for(image.registry);
  if (!rule || rule->endpoints.empty()) return std::make_unique<RegistrySource>(image, options);
  std::vector<std::unique_ptr<RegistrySource>> candidates;
  for (const auto& endpoint : rule->endpoints) {
    RegistryOptions o = options;
    o.endpoint = endpoint;
    candidates.push_back(std::make_unique<RegistrySource>(image, o));
  }
  if (rule->fallback) candidates.push_back(std::make_unique<RegistrySource>(image, options));
  return std::make_unique<MirroredOrigin>(std::move(candidates), rule->fallback, std::move(warn));
}

std::unique_ptr<ImageOrigin> oci_layout_origin(const fs::path& dir, const std::string& tag) {
  return std::make_unique<OciLayoutSource>(dir, tag);
}

}  // namespace deepops
