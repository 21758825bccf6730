#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "image/fs_tree.hpp"

namespace deepops {

enum class SquashfsCompression { zstd, lz4, gzip, xz, none };

struct SquashfsOptions {
  SquashfsCompression compression = SquashfsCompression::zstd;
  // 0 = the measured default: zstd 1, gzip 6, xz the library's
  // (libsquashfs defaults to 15, too slow for an import on the job's path).
  // lz4 has no levels: any nonzero level selects LZ4 HC. none ignores it.
  int level = 0;
  uint32_t block_size = 128 * 1024;  // a power of two from 4 KiB to 1 MiB
  unsigned workers = 0;              // 0 = std::thread::hardware_concurrency()
};

// Parses "zstd", "lz4", "gzip", "xz", "none"; throws Error(invalid_argument)
// naming the valid values otherwise.
SquashfsCompression parse_compression(std::string_view name);

// Writes a squashfs 4.0 image in one pass: regular-file bytes are compressed
// (in parallel) and written as they stream in, and finish() writes the
// inodes, directories and tables for the tree the caller built meanwhile.
// Memory stays bounded by a backlog of blocks whatever the file sizes.
//
// Any failure throws Error and leaves the writer unusable: later calls throw
// the same Error again. The caller deletes the incomplete image.
namespace detail {
struct SquashfsWriterImpl;
}

class SquashfsWriter {
 public:
  // Creates or truncates `path`.
  SquashfsWriter(const std::filesystem::path& path, const SquashfsOptions& options);
  // Without finish(): releases everything, the image is left incomplete.
  ~SquashfsWriter();
  SquashfsWriter(const SquashfsWriter&) = delete;
  SquashfsWriter& operator=(const SquashfsWriter&) = delete;

  // One regular file: begin_file(), append() any number of times (any chunk
  // sizes, 0 bytes allowed), end_file(). One file is open at a time. The
  // result goes into Node::content; Nodes sharing it are hard links to one
  // inode.
  std::shared_ptr<FileContent> begin_file();
  void append(const void* data, size_t size);
  void end_file();

  // Writes every inode, directory, the id/xattr/fragment tables and the super
  // block for the tree under `root` (a directory), then syncs the file to
  // disk. The image is complete and valid when this returns. Call once, with
  // no file open; every regular Node must hold a FileContent of this writer.
  // A hard-linked inode takes its metadata (mode, owner, mtime, xattrs) from
  // one of its links, the same one for the same tree: give them all the same.
  void finish(const Node& root);

 private:
  std::unique_ptr<detail::SquashfsWriterImpl> impl_;
};

}  // namespace deepops
