#pragma once

#include <filesystem>

#include "image/squashfs_writer.hpp"

namespace deepops {

// Writes the tree under `dir` (a container's merged root) into a squashfs at
// `out`, the way an import would have: every file owned by root, setuid and
// setgid bits cleared, device nodes left out, hard links kept. Symlinks are
// stored, never followed, and the walk never leaves `dir`'s mount.
void snapshot_to_squashfs(const std::filesystem::path& dir, const std::filesystem::path& out,
                          const SquashfsOptions& options);

}  // namespace deepops
