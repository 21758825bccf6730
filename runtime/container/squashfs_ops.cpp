#include "container/squashfs_ops.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

extern "C" {  // squashfuse's headers are plain C
#include <squashfuse/ll.h>
// Exported by libsquashfuse since its first releases, declared in a header
// that Debian does not install (fuseprivate.h): fills `st` from an inode.
sqfs_err sqfs_stat(sqfs* fs, sqfs_inode* inode, struct stat* st);
}

namespace deepops {
namespace {

// Set in the process that answers the kernel's INIT, before the servers
// are forked from it: each server has its own copy.
ImageOwner image_owner;
bool zero_message_open = false;

// The image is read-only: what the kernel caches never goes stale.
constexpr double kAttrTimeout = std::numeric_limits<double>::max();

bool translate_owner() { return image_owner.uid != 0 || image_owner.gid != 0; }

void give_to_owner(struct stat& st) {
  if (st.st_uid == 0) st.st_uid = image_owner.uid;
  if (st.st_gid == 0) st.st_gid = image_owner.gid;
}

// libsquashfuse_ll's getattr and lookup, with the owners given to the user:
// the only two replies that carry an owner. Kept to the library's public
// calls and sqfs_stat, in the library's order.
void getattr_as_owner(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;  // it has replied ENOENT
  struct stat st {};
  if (sqfs_stat(&lli.ll->fs, &lli.inode, &st) != SQFS_OK) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  st.st_ino = ino;
  give_to_owner(st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void lookup_as_owner(fuse_req_t req, fuse_ino_t parent, const char* name) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, parent) != SQFS_OK) return;
  if (!S_ISDIR(lli.inode.base.mode)) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  sqfs_name namebuf;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, namebuf);
  bool found = false;
  if (sqfs_dir_lookup(&lli.ll->fs, &lli.inode, name, std::strlen(name), &entry, &found) !=
      SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  if (!found) {
    // As the library answers: a zero inode is a miss the kernel may keep,
    // so Python's search of sys.path asks each missing name once.
    fuse_entry_param miss{};
    miss.attr_timeout = miss.entry_timeout = kAttrTimeout;
    fuse_reply_entry(req, &miss);
    return;
  }
  sqfs_inode inode;
  if (sqfs_inode_get(&lli.ll->fs, &inode, sqfs_dentry_inode(&entry)) != SQFS_OK) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  if (sqfs_stat(&lli.ll->fs, &inode, &e.attr) != SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  e.attr_timeout = e.entry_timeout = kAttrTimeout;
  e.ino = lli.ll->ino_register(lli.ll, &entry);
  e.attr.st_ino = e.ino;
  give_to_owner(e.attr);
  fuse_reply_entry(req, &e);
}

// Where the kernel supports it, an open costs no request at all: answering
// ENOSYS once tells the kernel that opens always succeed, and it then opens
// files with keep_cache and folders with cache_readdir by itself, and sends
// no release. The mount is read-only, so the kernel refuses writes itself.
void open_file(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (zero_message_open) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  if (fi->flags & (O_WRONLY | O_RDWR)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;
  if (!S_ISREG(lli.inode.base.mode)) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  fi->fh = 0;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

// One buffer per server process (each is single-threaded): a read is at
// most the kernel's max_read, 1 MiB with libfuse's defaults.
std::vector<char>& read_buffer(size_t size) {
  static std::vector<char> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

void read_file(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;
  std::vector<char>& buffer = read_buffer(size);
  sqfs_off_t got = static_cast<sqfs_off_t>(size);
  if (sqfs_read_range(&lli.ll->fs, &lli.inode, off, &got, buffer.data()) != SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_reply_buf(req, buffer.data(), static_cast<size_t>(got));
}

void release_nothing(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void open_folder(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (zero_message_open) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;
  if (!S_ISDIR(lli.inode.base.mode)) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  fi->fh = 0;
  fi->keep_cache = 1;
  fi->cache_readdir = 1;
  fuse_reply_open(req, fi);
}

// The library's readdir, finding the folder from its inode number: `off` is
// the offset the previous entry gave as its next. `add` writes one entry
// into the buffer and returns the space it needs (more than was left: it
// did not fit, and the listing goes on in the next request).
template <typename AddEntry>
void list_folder(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, AddEntry add) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;
  sqfs_dir dir;
  if (sqfs_dir_open(&lli.ll->fs, &lli.inode, &dir, off) != SQFS_OK) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  std::vector<char>& buffer = read_buffer(size);
  size_t used = 0;
  sqfs_name namebuf;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, namebuf);
  sqfs_err err = SQFS_OK;
  while (sqfs_dir_next(&lli.ll->fs, &dir, &entry, &err)) {
    const size_t need = add(lli.ll, entry, buffer.data() + used, size - used);
    if (need == 0) {
      err = SQFS_ERR;
      break;
    }
    if (need > size - used) break;
    used += need;
  }
  if (err != SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_reply_buf(req, buffer.data(), used);
}

void read_folder(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list_folder(req, ino, size, off,
              [req](sqfs_ll* ll, sqfs_dir_entry& entry, char* at, size_t left) {
                struct stat st {};
                st.st_ino = ll->ino_fuse_num(ll, &entry);
                st.st_mode = sqfs_dentry_mode(&entry);
                return fuse_add_direntry(req, at, left, sqfs_dentry_name(&entry), &st,
                                         static_cast<off_t>(sqfs_dentry_next_offset(&entry)));
              });
}

// A listing with each entry's attributes, as a lookup answers them: the
// kernel fills its dentry cache from it, so the opens and stats that follow
// a listing (find, Python's import of a package it has just listed) cost no
// lookup request each.
void read_folder_plus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  list_folder(req, ino, size, off,
              [req](sqfs_ll* ll, sqfs_dir_entry& entry, char* at, size_t left) {
                sqfs_inode inode;
                fuse_entry_param e{};
                if (sqfs_inode_get(&ll->fs, &inode, sqfs_dentry_inode(&entry)) != SQFS_OK ||
                    sqfs_stat(&ll->fs, &inode, &e.attr) != SQFS_OK) {
                  return size_t{0};
                }
                e.attr_timeout = e.entry_timeout = kAttrTimeout;
                e.ino = ll->ino_register(ll, &entry);
                e.attr.st_ino = e.ino;
                give_to_owner(e.attr);
                return fuse_add_direntry_plus(req, at, left, sqfs_dentry_name(&entry), &e,
                                              static_cast<off_t>(sqfs_dentry_next_offset(&entry)));
              });
}

// The kernel's readlink answers are kept too (an image's shared libraries
// are reached through chains of symlinks), and opens cost no request where
// the kernel allows it for both files and folders.
void negotiate(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  constexpr unsigned kNoOpens = FUSE_CAP_NO_OPEN_SUPPORT | FUSE_CAP_NO_OPENDIR_SUPPORT;
  zero_message_open = (conn->capable & kNoOpens) == kNoOpens;
}

}  // namespace

fuse_lowlevel_ops squashfs_ops(const sqfs_ll& ll, ImageOwner owner) {
  image_owner = owner;
  fuse_lowlevel_ops ops{};
  ops.lookup = translate_owner() ? lookup_as_owner : sqfs_ll_op_lookup;
  ops.forget = sqfs_ll_op_forget;
  ops.getattr = translate_owner() ? getattr_as_owner : sqfs_ll_op_getattr;
  ops.readlink = sqfs_ll_op_readlink;
  ops.open = open_file;
  ops.read = read_file;
  ops.release = release_nothing;
  ops.opendir = open_folder;
  ops.readdir = read_folder;
  ops.readdirplus = read_folder_plus;
  ops.releasedir = release_nothing;
  ops.statfs = stfs_ll_op_statfs;
  // An image without extended attributes leaves both out: libfuse answers
  // ENOSYS, after which the kernel answers every later call itself (as a
  // filesystem without xattrs does) instead of asking once per file, as
  // overlayfs does for user.overlay.metacopy on each file it looks up.
  if (static_cast<int64_t>(ll.fs.sb.xattr_id_table_start) != SQUASHFS_INVALID_BLK) {
    ops.listxattr = sqfs_ll_op_listxattr;
    ops.getxattr = sqfs_ll_op_getxattr;
  }
  ops.create = sqfs_ll_op_create;
  ops.init = negotiate;
  return ops;
}

}  // namespace deepops
