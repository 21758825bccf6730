#!/usr/bin/env python3
"""Builds the synthetic test images as OCI image layouts, byte for byte
deterministic: fixed mtimes and owners, sorted JSON, gzip without timestamps.

Every tar header is written explicitly (tarfile, not a filesystem walk), so the
layered image can hold what real registries serve but a builder rarely makes:
whiteouts, opaque directories, hard links across layers, type changes, xattrs,
device nodes. Each image also gets expected.json: paths that must and must not
exist after a correct layer merge, written by hand as an independent oracle
for the importer's tests.

Usage: mkimage.py OUTDIR NAME    (NAME: tiny, layered, zstd, multiarch)
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MTIME = 1700000000
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "true", "false", "env", "id", "hostname",
           "sleep", "mkdir", "test", "stat", "pwd", "uname", "readlink", "wc",
           "grep", "head", "sha256sum", "touch", "rm", "mount"]

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


class Layer:
    """One tar layer, entries appended in the order given."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, path, kind, mode, **kw):
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.mtime = kind, mode, MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti

    def dir(self, path, mode=0o755):
        self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode))
        return self

    def file(self, path, data, mode=0o644, xattrs=None):
        data = data.encode() if isinstance(data, str) else data
        ti = self._info(path, tarfile.REGTYPE, mode, size=len(data))
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))
        return self

    def symlink(self, path, target):
        self.tar.addfile(self._info(path, tarfile.SYMTYPE, 0o777, linkname=target))
        return self

    def hardlink(self, path, target):
        self.tar.addfile(self._info(path, tarfile.LNKTYPE, 0o644, linkname=target))
        return self

    def chardev(self, path, major, minor):
        self.tar.addfile(self._info(path, tarfile.CHRTYPE, 0o666, devmajor=major, devminor=minor))
        return self

    def fifo(self, path):
        self.tar.addfile(self._info(path, tarfile.FIFOTYPE, 0o644))
        return self

    def whiteout(self, path):
        head, _, name = path.rpartition("/")
        return self.file(f"{head}/.wh.{name}" if head else f".wh.{name}", b"", 0o600)

    def opaque(self, dirpath):
        return self.file(f"{dirpath}/.wh..wh..opq", b"", 0o600)

    def tar_bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def busybox_layer():
    layer = Layer().dir("bin").dir("etc").dir("tmp", 0o1777).dir("root", 0o700)
    with open(BUSYBOX, "rb") as f:
        layer.file("bin/busybox", f.read(), 0o755)
    for applet in APPLETS:
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    layer.file("etc/group", "root:x:0:\n")
    return layer


def compress(raw, how):
    if how == "gzip":
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw)
        return out.getvalue(), MT_GZIP
    if how == "zstd":
        zst = subprocess.run(["zstd", "-q", "-c", "-10", "--no-check"], input=raw,
                             stdout=subprocess.PIPE, check=True).stdout
        return zst, MT_ZSTD
    raise ValueError(how)


class Layout:
    """An OCI image layout being written to OUTDIR."""

    def __init__(self, outdir):
        self.outdir = outdir
        os.makedirs(os.path.join(outdir, "blobs", "sha256"), exist_ok=True)

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.outdir, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def json_blob(self, obj, media_type):
        return self.blob(canonical(obj), media_type)

    def image(self, layers, arch="amd64", compression="gzip", config_extra=None):
        descs, diff_ids = [], []
        for layer in layers:
            raw = layer.tar_bytes()
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            data, mt = compress(raw, compression)
            descs.append(self.blob(data, mt))
        config = {
            "architecture": arch, "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": ["/bin/sh"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"mkimage.py layer {i}"}
                        for i in range(len(layers))],
        }
        for k, v in (config_extra or {}).items():
            config["config"][k] = v
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": self.json_blob(config, MT_CONFIG), "layers": descs}
        return self.json_blob(manifest, MT_MANIFEST)

    def finish(self, top_desc, expected):
        top_desc = dict(top_desc, annotations={"org.opencontainers.image.ref.name": "latest"})
        with open(os.path.join(self.outdir, "index.json"), "wb") as f:
            f.write(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top_desc]}))
        with open(os.path.join(self.outdir, "oci-layout"), "wb") as f:
            f.write(canonical({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(self.outdir, "expected.json"), "wb") as f:
            f.write(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n")


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


BUSYBOX_PRESENT = {"/bin/busybox": "file", "/bin/sh": "symlink", "/etc/passwd": "file"}


def build_tiny(lay):
    desc = lay.image([busybox_layer()], config_extra={"Labels": {"org.deepops.test": "tiny"}})
    return desc, {"layers": 1, "present": BUSYBOX_PRESENT, "absent": []}


def build_zstd(lay):
    extra = Layer().dir("data").file("data/zstd.txt", "compressed with zstd\n")
    desc = lay.image([busybox_layer(), extra], compression="zstd")
    return desc, {"layers": 2, "compression": "zstd",
                  "present": dict(BUSYBOX_PRESENT, **{"/data/zstd.txt": "file"}), "absent": []}


def build_multiarch(lay):
    amd64 = lay.image([busybox_layer()], arch="amd64")
    arm64 = lay.image([Layer().dir("etc").file("etc/arch", "arm64\n")], arch="arm64")
    amd64["platform"] = {"architecture": "amd64", "os": "linux"}
    arm64["platform"] = {"architecture": "arm64", "os": "linux", "variant": "v8"}
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [amd64, arm64]}
    desc = lay.json_blob(index, MT_INDEX)
    return desc, {"platforms": ["linux/amd64", "linux/arm64/v8"],
                  "present": BUSYBOX_PRESENT, "absent": ["/etc/arch"]}


LONG_NAME = "n" * 200 + ".txt"  # > 100 bytes: needs a PAX path header
DEEP_DIR = "data/deep/" + "/".join(f"level{i:02d}-abcdefghij" for i in range(12))
UTF8_NAMES = ["données.txt", "日本語のファイル.txt", "émoji-🚀.txt"]


def build_layered(lay):
    # 1: the base, holding everything the upper layers change.
    l1 = busybox_layer()
    l1.dir("data").file("data/keep.txt", "from layer 1\n")
    l1.file("data/file-to-dir", "a file in layer 1\n")
    l1.dir("data/dir-to-file").file("data/dir-to-file/inner.txt", "inner\n")
    l1.file("data/whiteout-me.txt", "gone in layer 2\n")
    l1.dir("data/whiteout-dir").file("data/whiteout-dir/a.txt", "a\n").file("data/whiteout-dir/b.txt", "b\n")
    l1.dir("data/opaque").file("data/opaque/old1.txt", "old\n").file("data/opaque/old2.txt", "old\n")
    l1.dir("data/opaque/olddir").file("data/opaque/olddir/x.txt", "x\n")
    l1.file("data/hardlink-src.txt", "linked across layers\n")
    l1.file("data/motd", "version 1\n")
    # 2: whiteouts, hard links within a layer, symlinks.
    l2 = Layer().dir("data")
    l2.whiteout("data/whiteout-me.txt").whiteout("data/whiteout-dir")
    l2.dir("data/hl").file("data/hl/a", "hard-linked content\n").hardlink("data/hl/b", "data/hl/a")
    l2.dir("data/links")
    l2.symlink("data/links/rel", "../hl/a").symlink("data/links/abs", "/data/hl/a")
    l2.symlink("data/links/dangling", "/nonexistent/target")
    # 3: type changes and a hard link to a file of layer 1.
    l3 = Layer().dir("data")
    l3.dir("data/file-to-dir").file("data/file-to-dir/now-a-dir.txt", "dir now\n")
    l3.file("data/dir-to-file", "a file now\n")
    l3.hardlink("data/cross-link", "data/hardlink-src.txt")
    # 4: opaque directory, awkward names, xattrs, special files.
    l4 = Layer().dir("data")
    l4.dir("data/opaque").opaque("data/opaque").file("data/opaque/new.txt", "only this survives\n")
    l4.dir("data/names").file("data/names/" + LONG_NAME, "long\n")
    for name in UTF8_NAMES:
        l4.file("data/names/" + name, name + "\n")
    parts = DEEP_DIR.split("/")
    for i in range(2, len(parts) + 1):
        l4.dir("/".join(parts[:i]))
    l4.file(DEEP_DIR + "/deep.txt", "deep\n")
    l4.file("data/xattr.txt", "has xattrs\n", xattrs={"user.deepops.test": "hello"})
    l4.dir("data/special")
    l4.file("data/special/setuid-bin", "#!/bin/sh\necho setuid\n", mode=0o4755)
    l4.file("data/special/setgid-bin", "#!/bin/sh\necho setgid\n", mode=0o2755)
    l4.chardev("data/special/null", 1, 3)
    l4.fifo("data/special/fifo")
    # 5: a delta: modify, delete from a middle layer, add under a type change.
    l5 = Layer().dir("data")
    l5.file("data/motd", "version 5\n")
    l5.dir("data/hl").whiteout("data/hl/b")
    l5.dir("data/file-to-dir").file("data/file-to-dir/added-later.txt", "layer 5\n")
    desc = lay.image([l1, l2, l3, l4, l5], config_extra={
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEEPOPS_IMAGE=layered"],
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo layered"], "WorkingDir": "/data",
        "User": "0:0", "Labels": {"org.deepops.test": "layered"}})
    present = dict(BUSYBOX_PRESENT, **{
        "/data/keep.txt": "file", "/data/file-to-dir": "dir",
        "/data/file-to-dir/now-a-dir.txt": "file", "/data/file-to-dir/added-later.txt": "file",
        "/data/dir-to-file": "file", "/data/hl/a": "file", "/data/links/rel": "symlink",
        "/data/links/abs": "symlink", "/data/links/dangling": "symlink",
        "/data/cross-link": "file", "/data/hardlink-src.txt": "file", "/data/opaque": "dir",
        "/data/opaque/new.txt": "file", "/data/motd": "file", "/data/xattr.txt": "file",
        "/data/names/" + LONG_NAME: "file", "/" + DEEP_DIR + "/deep.txt": "file",
        "/data/special/setuid-bin": "file", "/data/special/fifo": "fifo"})
    for name in UTF8_NAMES:
        present["/data/names/" + name] = "file"
    absent = ["/data/whiteout-me.txt", "/data/whiteout-dir", "/data/dir-to-file/inner.txt",
              "/data/opaque/old1.txt", "/data/opaque/old2.txt", "/data/opaque/olddir",
              "/data/hl/b", "/data/.wh.whiteout-me.txt", "/data/opaque/.wh..wh..opq"]
    return desc, {"layers": 5, "present": present, "absent": absent,
                  "content": {"/data/motd": "version 5\n", "/data/cross-link": "linked across layers\n",
                              "/data/dir-to-file": "a file now\n"},
                  "hardlinked": [["/data/cross-link", "/data/hardlink-src.txt"]],
                  "xattrs": {"/data/xattr.txt": {"user.deepops.test": "hello"}},
                  "sanitized": {"/data/special/null": "device nodes are dropped",
                                "/data/special/setuid-bin": "setuid bit is cleared",
                                "/data/special/setgid-bin": "setgid bit is cleared"}}


BUILDERS = {"tiny": build_tiny, "layered": build_layered, "zstd": build_zstd,
            "multiarch": build_multiarch}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in BUILDERS:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR {{{','.join(BUILDERS)}}}")
    lay = Layout(sys.argv[1])
    desc, expected = BUILDERS[sys.argv[2]](lay)
    lay.finish(desc, expected)


if __name__ == "__main__":
    main()
