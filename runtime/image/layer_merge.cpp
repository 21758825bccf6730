#include "image/layer_merge.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "image/layer_stream.hpp"
#include "image/squashfs_writer.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

NodeType node_type(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return NodeType::directory;
    case S_IFLNK:
      return NodeType::symlink;
    case S_IFIFO:
      return NodeType::fifo;
    case S_IFSOCK:
      return NodeType::socket;
    case S_IFCHR:
      return NodeType::char_device;
    case S_IFBLK:
      return NodeType::block_device;
    default:
      return NodeType::regular;
  }
}

const char* entry_path(archive_entry* entry) {
  // UTF-8 as stored (PAX paths are UTF-8), not converted to the locale, so
  // non-ASCII names survive a "C" locale.
  const char* utf8 = archive_entry_pathname_utf8(entry);
  return utf8 ? utf8 : archive_entry_pathname(entry);
}

[[noreturn]] void bad_layer(const std::string& layer, const std::string& what) {
  throw Error(Errc::corrupt, layer + ": " + what,
              "the image is malformed or malicious; nothing was imported");
}

std::string bytes_text(uint64_t n) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + " " + units[u];
}

[[noreturn]] void over_limit(const std::string& layer, const std::string& what,
                             const char* setting) {
  throw Error(Errc::corrupt, layer + ": " + what + " (a decompression bomb?)",
              std::string("nothing was imported; if the image is genuine, raise ") + setting +
                  " in deepops.conf (man deepops-ctr)");
}

}  // namespace

struct LayerMerger::Entry {
  archive_entry* raw;
  std::string path;
  std::vector<std::string> parts;
  NodeType type;
  std::string hardlink;  // normalised target path, or empty
};

std::vector<std::string> split_layer_path(const std::string& path, const std::string& layer) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (part == "..")
      bad_layer(layer, "entry '" + path + "' has a '..' component, which could leave the root");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = slash + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

LayerMerger::LayerMerger(SquashfsWriter& writer, OwnerMapping owners, MergeLimits limits)
    : writer_(writer), owners_(owners), limits_(limits) {
  root_.type = NodeType::directory;
  root_.mode = 0755;
  provenance_[&root_] = {0, true};
}

void LayerMerger::read_entries(archive* tar, const std::function<bool(Entry&)>& each) {
  archive_entry* raw = nullptr;
  while (true) {
    int rc = archive_read_next_header(tar, &raw);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN)
      bad_layer(layer_name_, std::string("unreadable tar: ") + archive_error(tar));
    const char* path = entry_path(raw);
    if (!path) bad_layer(layer_name_, "an entry has no name");
    Entry e{raw, path, {}, node_type(archive_entry_filetype(raw)), {}};
    e.parts = split_layer_path(e.path, layer_name_);
    if (const char* link = archive_entry_hardlink(raw))
      e.hardlink = join_path(split_layer_path(link, layer_name_));
    check_entry(e);
    if (!each(e)) return;
  }
}

void LayerMerger::merge_layer(const Opener& open, const std::string& layer) {
  ++layer_;
  layer_name_ = layer;
  skipped_files_.clear();
  lost_links_.clear();
  Archive tar = open();
  read_entries(tar.get(), [&](Entry& e) {
    if (++stats_.entries > limits_.max_entries) {
      over_limit(layer_name_,
                 "the image has more than " + std::to_string(limits_.max_entries) + " entries",
                 "IMPORT_MAX_ENTRIES");
    }
    merge_entry(tar.get(), e);
    return true;
  });
  tar.reset();
  if (!lost_links_.empty()) recover_lost_links(open);
  apply_pending();
}

// Second pass over the layer for the files that same-layer hard links need
// but that were skipped as shadowed: their bytes were not read the first time.
void LayerMerger::recover_lost_links(const Opener& open) {
  Archive tar = open();
  read_entries(tar.get(), [&](Entry& e) {
    std::string path = join_path(e.parts);
    auto it = lost_links_.find(path);
    if (it == lost_links_.end() || e.type != NodeType::regular || !e.hardlink.empty()) return true;
    Node source;
    source.mode = archive_entry_perm(e.raw) & 01777;
    if (owners_ == OwnerMapping::keep) {
      source.uid = static_cast<uint32_t>(archive_entry_uid(e.raw));
      source.gid = static_cast<uint32_t>(archive_entry_gid(e.raw));
    }
    source.mtime = archive_entry_mtime(e.raw);
    source.type = NodeType::regular;
    source.content = write_data(tar.get(), e);
    waiting_links_[path] = std::move(it->second);
    resolve_waiting_links(path, source);
    lost_links_.erase(it);
    return !lost_links_.empty();
  });
  if (!lost_links_.empty()) {
    bad_layer(layer_name_, "hard link to '" + lost_links_.begin()->first +
                               "', which the layer does not contain");
  }
}

// Names the kernel could not hold: longer than PATH_MAX or NAME_MAX.
void LayerMerger::check_entry(const Entry& e) const {
  auto shown = [](const std::string& p) { return "'" + p.substr(0, 64) + "...'"; };
  if (e.path.size() > kMaxEntryPath) {
    bad_layer(layer_name_, "entry " + shown(e.path) + " has a path of " +
                               std::to_string(e.path.size()) + " bytes, over Linux's " +
                               std::to_string(kMaxEntryPath));
  }
  for (const auto& part : e.parts) {
    if (part.size() > kMaxEntryName) {
      bad_layer(layer_name_, "entry " + shown(e.path) + " has a name of " +
                                 std::to_string(part.size()) + " bytes, over Linux's " +
                                 std::to_string(kMaxEntryName));
    }
  }
  const char* target = archive_entry_symlink(e.raw);
  if (target && std::strlen(target) >= kMaxEntryPath) {
    bad_layer(layer_name_, "symlink " + shown(e.path) + " has a target of " +
                               std::to_string(std::strlen(target)) + " bytes, over Linux's " +
                               std::to_string(kMaxEntryPath - 1));
  }
}

// An entry below a symlink that its own layer made: unpacking the layer onto
// a disk would write through the link, possibly out of the root. No builder
// makes such a layer, so it is refused rather than silently dropped.
void LayerMerger::refuse_write_through_symlink(const Entry& e) const {
  const Node* node = &root_;
  for (size_t i = 0; i + 1 < e.parts.size(); ++i) {
    auto it = node->children.find(e.parts[i]);
    if (it == node->children.end()) return;
    node = it->second.get();
    if (node->type == NodeType::symlink && provenance_.at(node).layer == layer_) {
      std::vector<std::string> link(e.parts.begin(), e.parts.begin() + static_cast<long>(i) + 1);
      bad_layer(layer_name_, "entry '" + e.path + "' lies below '" + join_path(link) +
                                 "', a symlink (to '" + node->link_target +
                                 "') made by the same layer: unpacking it would write "
                                 "through the link");
    }
    if (!node->is_dir()) return;
  }
}

bool LayerMerger::handle_whiteout(const Entry& e) {
  if (e.parts.empty() || !e.parts.back().starts_with(kWhiteoutPrefix)) return false;
  std::vector<std::string> parent(e.parts.begin(), e.parts.end() - 1);
  ++stats_.whiteouts;
  if (e.parts.back() != kOpaqueMarker && e.parts.back().starts_with(".wh..wh.")) {
    return true;  // aufs bookkeeping (.wh..wh.plnk and the like), not a deletion
  }
  if (e.parts.back() == kOpaqueMarker) {
    if (!shadowed(e.parts)) parent_dir(e.parts);  // the marked directory exists in this layer
    pending_opaque_.push_back(join_path(parent));
    return true;
  }
  std::string name = e.parts.back().substr(kWhiteoutPrefix.size());
  if (name.empty() || name == "." || name == "..")
    bad_layer(layer_name_, "whiteout '" + e.path + "' names no entry of its folder");
  parent.push_back(name);
  pending_whiteouts_.push_back(join_path(parent));
  return true;
}

// Hidden by an upper layer: the path or an ancestor was whited out, an
// ancestor is an opaque directory, or an ancestor is not a directory.
bool LayerMerger::shadowed(const std::vector<std::string>& parts) const {
  std::string prefix;
  const Node* node = &root_;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (opaque_.count(prefix.empty() ? "/" : prefix)) return true;
    prefix += "/" + parts[i];
    if (whited_out_.count(prefix)) return true;
    if (i + 1 == parts.size()) break;
    if (node) {
      auto it = node->children.find(parts[i]);
      node = it == node->children.end() ? nullptr : it->second.get();
      if (node && !node->is_dir()) return true;
    }
  }
  return false;
}

Node* LayerMerger::find(const std::vector<std::string>& parts) const {
  const Node* node = &root_;
  for (const auto& p : parts) {
    auto it = node->children.find(p);
    if (it == node->children.end()) return nullptr;
    node = it->second.get();
  }
  return const_cast<Node*>(node);
}

// The directory that will hold parts.back(), creating missing ancestors as
// implicit directories (a tar may list a file before, or without, its parent).
Node& LayerMerger::parent_dir(const std::vector<std::string>& parts) {
  Node* node = &root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = node->children.find(parts[i]);
    if (it == node->children.end()) {
      auto dir = std::make_unique<Node>();
      dir->type = NodeType::directory;
      dir->mode = 0755;
      provenance_[dir.get()] = {layer_, true};
      it = node->children.emplace(parts[i], std::move(dir)).first;
    }
    node = it->second.get();
  }
  return *node;
}

void LayerMerger::place(Node& parent, const std::string& name, std::unique_ptr<Node> node) {
  provenance_[node.get()] = {layer_, false};
  auto it = parent.children.find(name);
  if (it != parent.children.end()) {
    provenance_.erase(it->second.get());
    it->second = std::move(node);
  } else {
    parent.children.emplace(name, std::move(node));
  }
}

std::shared_ptr<FileContent> LayerMerger::write_data(archive* tar, const Entry& e) {
  auto content = writer_.begin_file();
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  int64_t written = 0;
  // Bytes this file may still have, holes included, before the image's limit.
  const uint64_t room = limits_.max_bytes > stats_.bytes ? limits_.max_bytes - stats_.bytes : 0;
  while (true) {
    int rc = archive_read_data_block(tar, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      bad_layer(layer_name_, "reading '" + e.path + "': " + archive_error(tar));
    if (offset < written || static_cast<uint64_t>(offset) + size > room) {
      if (offset < written)
        bad_layer(layer_name_, "'" + e.path + "' has overlapping sparse data blocks");
      over_limit(layer_name_,
                 "the image unpacks to more than " + bytes_text(limits_.max_bytes) +
                     " of file data (at '" + e.path + "')",
                 "IMPORT_MAX_SIZE");
    }
    if (offset > written) {  // a sparse hole: write the zeros it stands for
      std::string zeros(static_cast<size_t>(std::min<int64_t>(offset - written, 1 << 20)), '\0');
      for (int64_t left = offset - written; left > 0; left -= static_cast<int64_t>(zeros.size())) {
        writer_.append(zeros.data(), static_cast<size_t>(std::min<int64_t>(
                                         left, static_cast<int64_t>(zeros.size()))));
      }
      written = offset;
    }
    writer_.append(block, size);
    written += static_cast<int64_t>(size);
  }
  writer_.end_file();
  ++stats_.files;
  stats_.bytes += static_cast<uint64_t>(written);
  return content;
}

void LayerMerger::merge_entry(archive* tar, Entry& e) {
  if (e.parts.empty()) return;  // "./" itself: the root keeps default metadata
  refuse_write_through_symlink(e);
  if (handle_whiteout(e)) return;
  std::string path = join_path(e.parts);

  if (e.type == NodeType::char_device || e.type == NodeType::block_device) {
    ++stats_.devices_dropped;
    return;
  }
  auto waiting = waiting_links_.find(path);
  bool is_shadowed = shadowed(e.parts);
  Node* existing = is_shadowed ? nullptr : find(e.parts);
  bool upper_has_it = existing && provenance_.at(existing).layer < layer_;
  bool adopt_implicit_dir = upper_has_it && existing->is_dir() &&
                            provenance_.at(existing).implicit && e.type == NodeType::directory &&
                            e.hardlink.empty();
  if ((is_shadowed || (upper_has_it && !adopt_implicit_dir)) && waiting == waiting_links_.end()) {
    if (e.type == NodeType::regular && e.hardlink.empty()) skipped_files_.insert(path);
    ++stats_.shadowed;
    return;
  }

  auto node = std::make_unique<Node>();
  node->type = e.type;
  mode_t mode = archive_entry_perm(e.raw);
  if (mode & (S_ISUID | S_ISGID)) ++stats_.setid_stripped;
  node->mode = mode & 01777;
  if (owners_ == OwnerMapping::keep) {
    node->uid = static_cast<uint32_t>(archive_entry_uid(e.raw));
    node->gid = static_cast<uint32_t>(archive_entry_gid(e.raw));
  }
  node->mtime = archive_entry_mtime(e.raw);
  archive_entry_xattr_reset(e.raw);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e.raw, &name, &value, &size) == ARCHIVE_OK) {
    // user.* only: security.capability would grant privilege, trusted.* is
    // the overlay's own namespace.
    if (std::string_view(name).starts_with("user.")) {
      node->xattrs[name] = std::string(static_cast<const char*>(value), size);
    } else {
      ++stats_.xattrs_dropped;
    }
  }

  if (!e.hardlink.empty()) {
    ++stats_.hardlinks;
    const Node* target = find(split_layer_path(e.hardlink, layer_name_));
    bool same_layer = target && provenance_.count(target) && provenance_.at(target).layer == layer_;
    if (same_layer && target->is_dir())
      bad_layer(layer_name_, "hard link '" + e.path + "' to '" + e.hardlink + "', a folder");
    if (same_layer && target->type == NodeType::regular && target->content) {
      *node = Node{target->type,
                   target->mode,
                   target->uid,
                   target->gid,
                   target->mtime,
                   target->xattrs,
                   {},
                   0,
                   0,
                   target->content,
                   {}};
    } else if (same_layer && target->type == NodeType::symlink) {
      node->type = NodeType::symlink;
      node->link_target = target->link_target;
    } else if (same_layer && target->type == NodeType::regular && join_wait_list_of(target, node)) {
      if (!is_shadowed && !(upper_has_it && !adopt_implicit_dir)) {
        place(parent_dir(e.parts), e.parts.back(), std::move(node));
      }
      return;
    } else {
      // The target's bytes come later: from a lower layer, or from a second
      // pass over this one if it was skipped as shadowed.
      std::vector<Node*> links;
      if (waiting != waiting_links_.end()) {  // upper links to this path follow it
        links = std::move(waiting->second);
        waiting_links_.erase(waiting);  // before any insertion: it may rehash
      }
      bool visible = !is_shadowed && !(upper_has_it && !adopt_implicit_dir);
      if (visible) {
        node->type = NodeType::regular;
        links.push_back(node.get());
        place(parent_dir(e.parts), e.parts.back(), std::move(node));
      } else {
        ++stats_.shadowed;
      }
      auto& list =
          skipped_files_.count(e.hardlink) ? lost_links_[e.hardlink] : waiting_links_[e.hardlink];
      list.insert(list.end(), links.begin(), links.end());
      return;
    }
  } else if (e.type == NodeType::regular) {
    node->content = write_data(tar, e);
  } else if (e.type == NodeType::symlink) {
    const char* target = archive_entry_symlink_utf8(e.raw);
    if (!target) target = archive_entry_symlink(e.raw);
    node->link_target = target ? target : "";
  }

  if (waiting != waiting_links_.end()) resolve_waiting_links(path, *node);
  if (is_shadowed || (upper_has_it && !adopt_implicit_dir)) {
    ++stats_.shadowed;
    return;
  }
  if (adopt_implicit_dir) {
    existing->mode = node->mode;
    existing->uid = node->uid;
    existing->gid = node->gid;
    existing->mtime = node->mtime;
    existing->xattrs = node->xattrs;
    provenance_.at(existing).implicit = false;
    return;
  }
  if (existing && existing->is_dir() && node->is_dir()) {
    node->children = std::move(existing->children);  // a repeated directory entry
  }
  place(parent_dir(e.parts), e.parts.back(), std::move(node));
}

// A link to a link that still waits for its bytes waits on the same target.
bool LayerMerger::join_wait_list_of(const Node* waiting_node, std::unique_ptr<Node>& node) {
  for (auto* lists : {&waiting_links_, &lost_links_}) {
    for (auto& [target, links] : *lists) {
      if (std::find(links.begin(), links.end(), waiting_node) == links.end()) continue;
      node->type = NodeType::regular;
      links.push_back(node.get());
      return true;
    }
  }
  return false;
}

void LayerMerger::resolve_waiting_links(const std::string& target, const Node& source) {
  auto it = waiting_links_.find(target);
  for (Node* link : it->second) {
    if (source.type == NodeType::regular && source.content) {
      link->mode = source.mode;
      link->uid = source.uid;
      link->gid = source.gid;
      link->mtime = source.mtime;
      link->xattrs = source.xattrs;
      link->content = source.content;
    } else if (source.type == NodeType::symlink) {
      link->type = NodeType::symlink;
      link->link_target = source.link_target;
    } else {
      bad_layer(layer_name_, "hard link to '" + target + "', which is not a file");
    }
  }
  waiting_links_.erase(it);
}

void LayerMerger::apply_pending() {
  for (auto& p : pending_whiteouts_) whited_out_.insert(std::move(p));
  for (auto& p : pending_opaque_) opaque_.insert(std::move(p));
  pending_whiteouts_.clear();
  pending_opaque_.clear();
}

void LayerMerger::finish() {
  if (waiting_links_.empty()) return;
  const auto& [target, links] = *waiting_links_.begin();
  throw Error(Errc::corrupt,
              "hard link to '" + target + "' has no target in its layer or any layer below (" +
                  std::to_string(waiting_links_.size()) +
                  (waiting_links_.size() == 1 ? " such link)" : " such links)"),
              "the image is malformed; nothing was imported");
}

}  // namespace deepops
