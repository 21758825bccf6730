// Image layers are tar streams from registries: the most exposed parser we
// have. The input is one to four layers, top first, separated by the bytes
// "\n=LAYER=\n" (seed inputs are real tars joined that way). Each goes through
// the importer's own path (a file read by LayerStream and libarchive) into
// LayerMerger and a real SquashfsWriter. Anything may be refused with
// deepops::Error; what is accepted must be a tree that stays inside the image
// and carries no privilege.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "image/fs_tree.hpp"
#include "image/layer_merge.hpp"
#include "image/layer_stream.hpp"
#include "image/squashfs_writer.hpp"
#include "util/error.hpp"

namespace {

namespace fs = std::filesystem;
constexpr std::string_view kSeparator = "\n=LAYER=\n";

std::vector<std::string_view> split_layers(std::string_view data) {
  std::vector<std::string_view> layers;
  while (layers.size() < 3) {
    size_t at = data.find(kSeparator);
    if (at == std::string_view::npos) break;
    layers.push_back(data.substr(0, at));
    data.remove_prefix(at + kSeparator.size());
  }
  layers.push_back(data);
  return layers;
}

// What LayerMerger promises of every tree it returns.
void check_tree(const deepops::Node& node, size_t depth) {
  using deepops::NodeType;
  if (depth > deepops::kMaxEntryPath / 2) std::abort();  // deeper than any allowed path
  if (node.type == NodeType::char_device || node.type == NodeType::block_device) std::abort();
  if (node.mode & (S_ISUID | S_ISGID)) std::abort();
  if (node.type == NodeType::regular && !node.content) std::abort();
  for (const auto& [name, xattr] : node.xattrs) {
    if (!name.starts_with("user.")) std::abort();
  }
  for (const auto& [name, child] : node.children) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.size() > deepops::kMaxEntryName) {
      std::abort();
    }
    check_tree(*child, depth + 1);
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "fuzz-layer-merge.XXXXXX").string();
    if (!mkdtemp(pattern.data())) std::abort();
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TempDir dir;
  std::vector<fs::path> files;
  for (auto layer : split_layers({reinterpret_cast<const char*>(data), size})) {
    files.push_back(dir.path / ("layer" + std::to_string(files.size()) + ".tar"));
    std::ofstream(files.back(), std::ios::binary).write(layer.data(), layer.size());
  }
  deepops::SquashfsOptions options;
  options.workers = 1;
  // Small limits: a sparse file may declare terabytes of holes.
  deepops::MergeLimits limits{64 << 20, 100'000};
  try {
    deepops::SquashfsWriter writer(dir.path / "image.sqsh", options);
    deepops::LayerMerger merger(writer, deepops::OwnerMapping::keep, limits);
    for (size_t i = 0; i < files.size(); ++i) {
      std::string name = "layer " + std::to_string(i + 1);
      merger.merge_layer(
          [&] { return deepops::open_layer_tar(files[i], deepops::LayerCompression::none, name); },
          name);
    }
    merger.finish();
    check_tree(merger.root(), 0);
    writer.finish(merger.root());
  } catch (const deepops::Error&) {
  }
  return 0;
}
