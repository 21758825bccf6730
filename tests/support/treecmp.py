#!/usr/bin/env python3
"""Compares two directory trees file for file: path, type, permission bits,
owner, size, content hash, symlink target, user.* xattrs and hard-link
identity (which paths share an inode). Exits 0 when they match, 1 with a
list of differences otherwise.

The reference side is normalised the way deepops-ctr sanitises images, so an
unpack by another tool (umoci) can serve as the oracle: device nodes are
dropped, setuid/setgid bits cleared, xattrs outside user.* ignored.

With --owners=root, the reference's owners count as 0:0, as deepops-ctr
imports by default.

Usage: treecmp.py [--owners=root] REFERENCE_DIR CANDIDATE_DIR
"""
import hashlib
import os
import stat
import sys


def kind(mode):
    for test, name in ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
                       (stat.S_ISBLK, "blockdev")):
        if test(mode):
            return name
    return "unknown"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def user_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names if n.startswith("user.")}


def scan(root, sanitise, owners_root=False):
    entries, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(full, root)
            st = os.lstat(full)
            k = kind(st.st_mode)
            if sanitise and k in ("chardev", "blockdev"):
                continue
            perm = stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
            owner = "0:0" if owners_root else f"{st.st_uid}:{st.st_gid}"
            e = {"type": k, "mode": oct(perm), "owner": owner, "xattrs": user_xattrs(full)}
            if k == "file":
                e["size"] = st.st_size
                e["sha256"] = sha256(full)
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif k == "symlink":
                e["target"] = os.readlink(full)
            entries[rel] = e
    # Hard links as groups of paths, comparable across trees.
    groups = {frozenset(paths) for paths in inodes.values() if len(paths) > 1}
    return entries, groups


def main():
    args = sys.argv[1:]
    owners_root = "--owners=root" in args
    args = [a for a in args if a != "--owners=root"]
    if len(args) != 2:
        sys.exit(__doc__)
    ref, ref_links = scan(args[0], sanitise=True, owners_root=owners_root)
    got, got_links = scan(args[1], sanitise=False)
    problems = []
    for path in sorted(set(ref) - set(got)):
        problems.append(f"missing: {path} ({ref[path]['type']})")
    for path in sorted(set(got) - set(ref)):
        problems.append(f"unexpected: {path} ({got[path]['type']})")
    for path in sorted(set(ref) & set(got)):
        for key in sorted(set(ref[path]) | set(got[path])):
            if ref[path].get(key) != got[path].get(key):
                problems.append(f"{path}: {key} is {got[path].get(key)!r}, reference has {ref[path].get(key)!r}")
    for g in sorted(ref_links ^ got_links, key=sorted):
        side = "reference" if g in ref_links else "candidate"
        problems.append(f"hard-link group only in the {side}: {sorted(g)}")
    if problems:
        print(f"{len(problems)} differences ({len(ref)} reference entries, {len(got)} candidate entries):")
        for p in problems[:200]:
            print("  " + p)
        sys.exit(1)
    print(f"trees match: {len(got)} entries, {len(got_links)} hard-link groups")


if __name__ == "__main__":
    main()
