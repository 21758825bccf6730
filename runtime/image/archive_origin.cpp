// oci-archive: and docker-archive: sources, and docker-archive streams
// (`docker save` through a pipe). The archive is unpacked (blobs only: regular
// files and folders, nothing that could leave the folder) into a scratch
// folder; a docker-archive is then rewritten as an OCI layout, and
// either is read as one, with every blob verified like any other.
#include "image/archive_origin.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "image/layer_merge.hpp"
#include "image/layer_stream.hpp"
#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void bad_archive(const fs::path& file, const std::string& what) {
  throw Error(Errc::corrupt, file.string() + ": " + what,
              "check that the file is a complete image archive");
}

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

// A stream as libarchive reads it: its callback may not throw (libarchive is
// C), so an error is kept here and rethrown once libarchive has returned.
struct StreamSource {
  const StreamReader* read = nullptr;
  std::vector<char> buffer = std::vector<char>(1 << 20);
  std::exception_ptr error;
};

la_ssize_t read_stream(archive* a, void* data, const void** block) {
  auto* s = static_cast<StreamSource*>(data);
  try {
    *block = s->buffer.data();
    return static_cast<la_ssize_t>((*s->read)(s->buffer.data(), s->buffer.size()));
  } catch (...) {
    s->error = std::current_exception();
    archive_set_error(a, EIO, "the stream failed");
    return -1;
  }
}

// Opens `in` on a file, or on a stream when `stream` is set.
void open_source(archive* in, const fs::path& file, StreamSource* stream) {
  int rc = stream ? archive_read_open(in, stream, nullptr, read_stream, nullptr)
                  : archive_read_open_filename(in, file.c_str(), 1 << 20);
  // A file that cannot be opened may be missing; a stream that cannot is no tar.
  if (rc != ARCHIVE_OK && stream) bad_archive(file, "not a tar archive: " + archive_error(in));
  if (rc != ARCHIVE_OK) {
    throw Error(Errc::not_found, "cannot read " + file.string() + ": " + archive_error(in));
  }
}

// `file` names the source in messages; with `stream` set, it is read from there.
void unpack(const fs::path& file, const fs::path& dest, StreamSource* stream = nullptr) {
  ArchivePtr in(archive_read_new(), archive_read_free);
  ArchivePtr out(archive_write_disk_new(), archive_write_free);
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  archive_read_support_filter_gzip(in.get());
  // Entry paths are checked and made relative to dest below; these guard the rest.
  archive_write_disk_set_options(out.get(),
                                 ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  open_source(in.get(), file, stream);
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK) {
    auto type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR)
      continue;  // an image archive holds nothing else we need
    // split_layer_path rejects ".." and drops a leading "/": nothing lands outside dest.
    auto parts = split_layer_path(archive_entry_pathname(entry), file.string());
    if (parts.empty()) continue;
    std::string path = dest.string() + join_path(parts);
    archive_entry_set_pathname(entry, path.c_str());
    archive_entry_set_perm(entry, type == AE_IFDIR ? 0700 : 0600);
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) {
      bad_archive(file, std::string("unsafe or unwritable entry: ") + archive_error(out.get()));
    }
    const void* block;
    size_t size;
    la_int64_t offset;
    while ((rc = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK) {
        bad_archive(file, std::string("cannot unpack: ") + archive_error(out.get()));
      }
    }
    if (rc != ARCHIVE_EOF) bad_archive(file, std::string("truncated: ") + archive_error(in.get()));
  }
  if (rc != ARCHIVE_EOF)
    bad_archive(file, std::string("not a tar archive: ") + archive_error(in.get()));
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string file_digest(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  Sha256 h;
  std::string buf(1 << 20, '\0');
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.finish();
}

// Moves a file into the layout's blob store and describes it.
nlohmann::json add_blob(const fs::path& layout, const fs::path& file,
                        const std::string& media_type) {
  std::string digest = file_digest(file);
  fs::path blob = layout / "blobs" / "sha256" / digest.substr(7);
  std::error_code ec;
  fs::create_hard_link(file, blob, ec);  // the same content may appear twice
  return {{"mediaType", media_type}, {"digest", digest}, {"size", fs::file_size(file)}};
}

// docker save's layout (manifest.json naming a config and layer tars) as an
// OCI layout with one image, tagged with the archive's first RepoTag or "latest".
std::string docker_to_oci(const fs::path& file, const fs::path& dir) {
  auto manifest = nlohmann::json::parse(read_text(dir / "manifest.json"), nullptr, false);
  if (!manifest.is_array() || manifest.empty() || !manifest[0].is_object()) {
    bad_archive(file, "no manifest.json listing an image (is it a docker-archive?)");
  }
  const auto& image = manifest[0];
  if (!image.contains("Config") || !image["Config"].is_string() || !image.contains("Layers") ||
      !image["Layers"].is_array()) {
    bad_archive(file, "manifest.json lacks Config or Layers");
  }
  auto inside = [&](const std::string& rel) {
    if (rel.find("..") != std::string::npos) bad_archive(file, "manifest.json names '" + rel + "'");
    return dir / rel;
  };
  fs::path layout = dir / "oci";
  fs::create_directories(layout / "blobs" / "sha256");
  nlohmann::json oci{{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"}};
  oci["config"] = add_blob(layout, inside(image["Config"].get<std::string>()),
                           "application/vnd.oci.image.config.v1+json");
  oci["layers"] = nlohmann::json::array();
  for (const auto& layer : image["Layers"]) {
    if (!layer.is_string()) bad_archive(file, "a layer in manifest.json is not a path");
    oci["layers"].push_back(add_blob(layout, inside(layer.get<std::string>()),
                                     "application/vnd.oci.image.layer.v1.tar"));
  }
  std::string body = oci.dump();
  std::string digest = sha256_digest(body);
  std::ofstream(layout / "blobs" / "sha256" / digest.substr(7), std::ios::binary) << body;
  std::string tag = "latest";
  if (image.contains("RepoTags") && image["RepoTags"].is_array() && !image["RepoTags"].empty() &&
      image["RepoTags"][0].is_string()) {
    tag = image["RepoTags"][0].get<std::string>();
  }
  nlohmann::json index{{"schemaVersion", 2},
                       {"manifests",
                        {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                          {"digest", digest},
                          {"size", body.size()},
                          {"annotations", {{"org.opencontainers.image.ref.name", tag}}}}}}};
  std::ofstream(layout / "index.json") << index.dump();
  std::ofstream(layout / "oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  return tag;
}

// Owns the unpacked folder; reads through a layout origin.
class ArchiveOrigin : public ImageOrigin {
 public:
  ArchiveOrigin(std::string reference, fs::path dir, std::unique_ptr<ImageOrigin> inner)
      : reference_(std::move(reference)), dir_(std::move(dir)), inner_(std::move(inner)) {}
  ~ArchiveOrigin() override {
    inner_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ArchiveOrigin(const ArchiveOrigin&) = delete;
  ArchiveOrigin& operator=(const ArchiveOrigin&) = delete;
  std::string reference() const override { return reference_; }
  std::string served_by() const override { return reference_; }
  ResolvedImage resolve(const Platform& p) override { return inner_->resolve(p); }
  std::string fetch_small_blob(const Descriptor& b) override { return inner_->fetch_small_blob(b); }
  void fetch_blob(const Descriptor& b, BlobSink& s) override { inner_->fetch_blob(b, s); }

 private:
  std::string reference_;
  fs::path dir_;
  std::unique_ptr<ImageOrigin> inner_;
};

// Unpacks `file` (or `stream`) into a fresh folder under scratch_parent and
// reads it as a layout; the folder goes with the origin, or at once on error.
std::unique_ptr<ImageOrigin> unpacked_origin(bool docker, const std::string& reference,
                                             const fs::path& file, const std::string& tag,
                                             const fs::path& scratch_parent, StreamSource* stream) {
  fs::create_directories(scratch_parent);
  fs::path dir = scratch_parent / ("archive." + std::to_string(::getpid()) + "." +
                                   sha256_digest(reference).substr(7, 12));
  fs::remove_all(dir);
  fs::create_directories(dir);
  try {
    unpack(file, dir, stream);
    std::unique_ptr<ImageOrigin> inner;
    if (docker) {
      std::string found = docker_to_oci(file, dir);
      inner = oci_layout_origin(dir / "oci", tag.empty() ? found : tag);
    } else {
      inner = oci_layout_origin(dir, tag);
    }
    return std::make_unique<ArchiveOrigin>(reference, dir, std::move(inner));
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    throw;
  }
}

}  // namespace

std::unique_ptr<ImageOrigin> archive_origin(bool docker, const fs::path& file,
                                            const std::string& tag,
                                            const fs::path& scratch_parent) {
  std::string reference = (docker ? "docker-archive:" : "oci-archive:") +
                          fs::absolute(file).string() + (tag.empty() ? "" : ":" + tag);
  return unpacked_origin(docker, reference, file, tag, scratch_parent, nullptr);
}

std::unique_ptr<ImageOrigin> docker_archive_stream_origin(const std::string& reference,
                                                          const StreamReader& read,
                                                          const fs::path& scratch_parent) {
  StreamSource stream;
  stream.read = &read;
  try {
    return unpacked_origin(true, reference, reference, "", scratch_parent, &stream);
  } catch (...) {
    // The stream's own failure says more than libarchive's "the stream failed".
    if (stream.error) std::rethrow_exception(stream.error);
    throw;
  }
}

}  // namespace deepops
