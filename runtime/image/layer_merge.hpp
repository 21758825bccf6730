#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "image/fs_tree.hpp"

struct archive;

namespace deepops {

class SquashfsWriter;

struct MergeStats {
  uint64_t entries = 0;   // tar entries read
  uint64_t files = 0;     // regular files written
  uint64_t bytes = 0;     // their bytes
  uint64_t shadowed = 0;  // entries hidden by an upper layer
  uint64_t whiteouts = 0;
  uint64_t devices_dropped = 0;
  uint64_t setid_stripped = 0;
  uint64_t xattrs_dropped = 0;  // outside the user. namespace
  uint64_t hardlinks = 0;
};

// Bounds on what one image may unpack to, against decompression bombs (a few
// MB of gzip or zstd that inflate to terabytes, or a sparse file declaring a
// petabyte of holes) and entry floods. Exceeding one is Error(corrupt) naming
// the limit and the setting that raises it.
struct MergeLimits {
  uint64_t max_bytes = uint64_t{256} << 30;  // regular-file bytes, holes included
  uint64_t max_entries = 10'000'000;         // tar entries, all layers
};

// Longest path and name an entry may have: Linux's PATH_MAX and NAME_MAX
// (squashfs itself stores names of at most 256 bytes).
constexpr size_t kMaxEntryPath = 4096;
constexpr size_t kMaxEntryName = 255;

// Merges image layers into one tree, top layer first, writing each file's
// bytes to the squashfs writer as they stream out of the layer. Each layer is
// read once; an entry an upper layer already provided, deleted (whiteout) or
// hid (opaque directory, or an ancestor replaced by a non-directory) is
// skipped without reading its data.
//
// Sanitising, so that an image cannot reach outside itself or carry
// privilege: entries whose path leaves the root ("..") are an error, and so
// is an entry below a symlink of its own layer (extracting it would write
// through the link); device nodes are dropped; setuid/setgid bits are
// cleared; only user.* xattrs are kept. Owners become root (0:0) unless asked
// to keep the image's, see OwnerMapping.
enum class OwnerMapping {
  root,  // every entry 0:0: in an unprivileged container, root is the user
  keep,  // as in the image, for sites whose user namespaces map subuid ranges
};

class LayerMerger {
 public:
  explicit LayerMerger(SquashfsWriter& writer, OwnerMapping owners = OwnerMapping::root,
                       MergeLimits limits = {});

  using Archive = std::shared_ptr<struct archive>;
  using Opener = std::function<Archive()>;

  // Reads every entry of the layer that `open` opens as a libarchive tar
  // reader. It is opened a second time only when a hard link names a file of
  // the same layer that was skipped as shadowed. `layer` names it in errors
  // (e.g. "layer 3/5 sha256:ab12..").
  void merge_layer(const Opener& open, const std::string& layer);

  // After the bottom layer: checks that every hard link found its target.
  void finish();

  const Node& root() const { return root_; }
  const MergeStats& stats() const { return stats_; }

 private:
  struct Provenance {
    int layer;      // index of the providing layer, 0 = top
    bool implicit;  // a parent directory created for a child, not by an entry
  };
  struct Entry;

  void read_entries(struct archive* tar, const std::function<bool(Entry&)>& each);
  void merge_entry(struct archive* tar, Entry& e);
  void recover_lost_links(const Opener& open);
  bool handle_whiteout(const Entry& e);
  bool shadowed(const std::vector<std::string>& parts) const;
  void refuse_write_through_symlink(const Entry& e) const;
  void check_entry(const Entry& e) const;
  Node& parent_dir(const std::vector<std::string>& parts);
  Node* find(const std::vector<std::string>& parts) const;
  void place(Node& parent, const std::string& name, std::unique_ptr<Node> node);
  std::shared_ptr<FileContent> write_data(struct archive* tar, const Entry& e);
  void resolve_waiting_links(const std::string& target, const Node& source);
  bool join_wait_list_of(const Node* waiting_node, std::unique_ptr<Node>& node);
  void apply_pending();

  SquashfsWriter& writer_;
  OwnerMapping owners_;
  MergeLimits limits_;
  Node root_;
  MergeStats stats_;
  int layer_ = -1;
  std::string layer_name_;
  std::unordered_map<const Node*, Provenance> provenance_;
  std::unordered_set<std::string> whited_out_, opaque_;          // from upper layers
  std::vector<std::string> pending_whiteouts_, pending_opaque_;  // this layer's
  // Hard links whose target lies in a lower layer: target path -> the links.
  std::unordered_map<std::string, std::vector<Node*>> waiting_links_;
  // This layer's regular files skipped as shadowed, and links to them.
  std::unordered_set<std::string> skipped_files_;
  std::unordered_map<std::string, std::vector<Node*>> lost_links_;
};

// Splits a tar path into components, dropping "." and empty ones. Throws
// Error(corrupt) if a ".." component would leave the root.
std::vector<std::string> split_layer_path(const std::string& path, const std::string& layer);
std::string join_path(const std::vector<std::string>& parts);

}  // namespace deepops
