#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>
#include <sys/types.h>

extern "C" {  // squashfuse's headers are plain C
#include <squashfuse/ll.h>
}

namespace deepops {

// Who the image's root-owned files belong to in the mount: images keep root
// (0:0) as the owner of their files, and they belong to whoever mounts them,
// as its namespace maps it (root when remapped, else the user's own ids).
struct ImageOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The FUSE handlers of a squashfs image: libsquashfuse_ll's, except those
// that would keep state between requests. Several server processes answer
// one mount, each with its own copy of the library's state, and the kernel
// hands any request to any of them: an open may be answered by one process
// and the reads of that file by another. So nothing lives in a file handle
// (the library keeps a pointer to its own heap there): open, read, opendir
// and readdir find the inode again from its number, which the library
// derives from the inode's place in the image (64-bit FUSE inode numbers),
// the same in every process.
//
// Files and folders are opened with keep_cache and cache_readdir: the image
// is read-only, so the kernel's page cache of a file stays valid for as long
// as the mount lives, whoever opens the file next.
//
// Where the kernel supports zero-message opens (FUSE_CAP_NO_OPEN_SUPPORT
// and ..._NO_OPENDIR_SUPPORT, Linux 4.20+ for both), opens are answered
// ENOSYS, which tells the kernel to open without asking, with the same
// caching: no open or release request per file at all.
//
// An image that holds no extended attributes gets no xattr handlers, so
// the kernel stops asking after the first call.
//
// `owner`, and what INIT negotiates, are stored in the calling process: call
// it in the process that answers INIT, and fork the servers from it.
fuse_lowlevel_ops squashfs_ops(const sqfs_ll& ll, ImageOwner owner);

}  // namespace deepops
