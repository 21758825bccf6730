#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace deepops {

enum class NodeType { directory, regular, symlink, fifo, socket, char_device, block_device };

// The data of one regular file as written to the image by SquashfsWriter
// (its block list and fragment). Shared by every hard link to the file: one
// FileContent is one inode.
class FileContent;

// One entry of the merged image tree that the importer builds in memory
// before SquashfsWriter serializes it. Only metadata lives here; file bytes
// went to the image as they streamed in.
struct Node {
  NodeType type = NodeType::directory;
  uint32_t mode = 0755;  // permission bits only (07777); the type is `type`
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;
  std::map<std::string, std::string> xattrs;                           // e.g. {"user.foo", "bar"}
  std::string link_target;                                             // symlink
  uint32_t rdev_major = 0, rdev_minor = 0;                             // char and block devices
  std::shared_ptr<FileContent> content;                                // regular: never null
  std::map<std::string, std::unique_ptr<Node>, std::less<>> children;  // directory

  bool is_dir() const { return type == NodeType::directory; }
};

}  // namespace deepops
