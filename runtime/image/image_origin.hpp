#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "registry/manifest.hpp"
#include "registry/mirrors.hpp"
#include "registry/registry_client.hpp"

namespace deepops {

// Where an import reads an image from: a registry, or an offline copy for
// air-gapped sites. Every blob is verified against its digest and size, from
// any source.
class ImageOrigin {
 public:
  virtual ~ImageOrigin() = default;
  virtual std::string reference() const = 0;  // recorded in the cache and shown in `list`
  virtual std::string served_by() const = 0;  // the registry, mirror or path it came from
  virtual ResolvedImage resolve(const Platform& platform) = 0;
  virtual std::string fetch_small_blob(const Descriptor& blob) = 0;
  // Called from several threads at once.
  virtual void fetch_blob(const Descriptor& blob, BlobSink& sink) = 0;
};

// A registry, through RegistryClient (one connection per call, so the calls
// of different threads do not share one). With mirrors configured for its
// registry, they are tried first, in order, then the registry itself unless
// the rule forbids it; the endpoint that resolves the image serves its blobs
// and is what served_by() names. `warn` hears why a mirror was passed over.
std::unique_ptr<ImageOrigin> registry_origin(
    const RegistryImage& image, const RegistryOptions& options, const MirrorConfig& mirrors = {},
    std::function<void(const std::string&)> warn = nullptr);

// An OCI image layout folder (as `skopeo copy ... oci:DIR:TAG` writes), with
// the image chosen by its org.opencontainers.image.ref.name annotation, or
// the only image when `tag` is empty.
std::unique_ptr<ImageOrigin> oci_layout_origin(const std::filesystem::path& dir,
                                               const std::string& tag);

}  // namespace deepops
