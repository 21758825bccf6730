#!/usr/bin/env python3
"""Builds the malicious image corpus: one OCI image layout per case, each
holding one way an image can attack or break an importer. Every case states
its expected outcome in cases.json: "reject" (the import must fail, its error
matching a pattern) or "safe" (the import succeeds and the squashfs holds
exactly what a safe importer keeps: paths that must or must not be there,
contents, symlink targets, modes). tests/integration/malicious_images_test.py
imports each and checks the outcome, and that nothing was written outside the
cache. tests/README.md has the table of cases.

Payload paths all contain "deepops-evil", so that a write that escaped the
image would be found by name.

Usage: mkevil.py OUTDIR             build every case into OUTDIR/<case>/
       mkevil.py --seeds DIR        write the small cases' layers as seeds for
                                    the layer_merge fuzz target
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkimage import MT_CONFIG, MT_GZIP, MT_INDEX, MT_MANIFEST, MT_ZSTD, Layer, canonical  # noqa: E402

CANARY = "/tmp/deepops-evil-canary"  # must never exist on the host
MTIME = 1700000000
SEPARATOR = b"\n=LAYER=\n"  # tests/fuzz/fuzz_layer_merge.cpp splits seeds on it


def base():
    """A small ordinary layer for the attacks to sit on."""
    return Layer().dir("etc").file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n").dir("bin").file(
        "bin/tool", "#!/bin/sh\necho tool\n", 0o755)


def pax_file(layer, path, data, pax):
    ti = layer._info(path, tarfile.REGTYPE, 0o644, size=len(data))
    ti.pax_headers = pax
    layer.tar.addfile(ti, io.BytesIO(data))
    return layer


def gnu_sparse_layer(path, real_size, data=b"x" * 512):
    """A PAX 1.0 GNU sparse file: a map with one data block at the end of
    `real_size` bytes, all the rest a hole."""
    sparse_map = f"1\n{real_size - len(data)}\n{len(data)}\n".encode().ljust(512, b"\0")
    layer = Layer()
    ti = layer._info("GNUSparseFile.0/" + os.path.basename(path), tarfile.REGTYPE, 0o644,
                     size=len(sparse_map) + len(data))
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": path,
                      "GNU.sparse.realsize": str(real_size)}
    layer.tar.addfile(ti, io.BytesIO(sparse_map + data))
    return layer


class ZeroReader(io.RawIOBase):
    """`size` zero bytes, read in chunks: a bomb is never held in memory."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def streamed_bomb(path, size, how):
    """(compressed bytes, media type, diff_id) of a layer holding `size` zero
    bytes in one file, compressed as it is written."""
    hasher, out = hashlib.sha256(), io.BytesIO()

    class Tee(io.RawIOBase):
        def __init__(self, sink):
            self.sink = sink

        def writable(self):
            return True

        def write(self, b):
            hasher.update(b)
            self.sink.write(b)
            return len(b)

    if how == "gzip":
        sink = gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=9)
        finish = sink.close
    else:
        proc = subprocess.Popen(["zstd", "-q", "-c", "-3", "--no-check"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        sink = proc.stdin
        chunks = []
        reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))
        reader.start()

        def finish():
            proc.stdin.close()
            reader.join()
            proc.wait()
            out.write(chunks[0])

    with tarfile.open(fileobj=Tee(sink), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        ti = tarfile.TarInfo(path)
        ti.size, ti.mtime, ti.mode = size, MTIME, 0o644
        tar.addfile(ti, ZeroReader(size))
    finish()
    return out.getvalue(), (MT_GZIP if how == "gzip" else MT_ZSTD), "sha256:" + hasher.hexdigest()


class Case:
    """One OCI layout: blobs plus an index.json that may be hand-made."""

    def __init__(self, outdir):
        self.dir = outdir
        os.makedirs(os.path.join(outdir, "blobs", "sha256"), exist_ok=True)
        self.raw_layers = []  # uncompressed tars, for fuzz seeds

    def blob(self, data, media_type, name=None):
        digest = name or hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.dir, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def layer(self, layer):
        raw = layer.tar_bytes() if isinstance(layer, Layer) else layer
        self.raw_layers.append(raw)
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw)
        return self.blob(out.getvalue(), MT_GZIP), "sha256:" + hashlib.sha256(raw).hexdigest()

    def config(self, diff_ids):
        return self.blob(canonical({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/tool"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}), MT_CONFIG)

    def manifest(self, layer_descs, diff_ids, **override):
        m = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": self.config(diff_ids),
             "layers": layer_descs}
        m.update(override)
        return self.blob(canonical(m), MT_MANIFEST)

    def image(self, layers):
        """A well-formed manifest over `layers` (bottom first)."""
        built = [self.layer(layer) for layer in layers]
        return self.manifest([d for d, _ in built], [i for _, i in built])

    def finish(self, top):
        top = dict(top, annotations={"org.opencontainers.image.ref.name": "latest"})
        with open(os.path.join(self.dir, "index.json"), "wb") as f:
            f.write(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top]}))
        with open(os.path.join(self.dir, "oci-layout"), "wb") as f:
            f.write(canonical({"imageLayoutVersion": "1.0.0"}))


# ---- the cases. Each builder gets a Case and returns the top descriptor.
# CASES: name -> (threat, builder, expected outcome, environment for the import)

def tar_cases():
    c = {}

    def add(name, threat, layers, expect, env=None):
        c[name] = (threat, lambda case, layers=layers: case.image(layers()), expect, env or {})

    add("dotdot", "an entry named ../deepops-evil (leaves the root)",
        lambda: [base().file("../deepops-evil-dotdot", "x")], {"reject": "'..' component"})
    add("dotdot-inner", "an entry whose path climbs out through a folder (a/../../)",
        lambda: [base().file("etc/../../deepops-evil-inner", "x")], {"reject": "'..' component"})
    add("absolute-path", "an absolute entry path pointing at the host's /tmp",
        lambda: [base().dir("tmp").file(CANARY + "-abs", "x")],
        {"safe": {"present": {CANARY + "-abs": "file"}}})
    add("symlink-absolute-out", "a symlink to the host's /etc/shadow",
        lambda: [base().symlink("etc/deepops-evil-shadow", "/etc/shadow")],
        {"safe": {"symlink": {"/etc/deepops-evil-shadow": "/etc/shadow"}}})
    add("symlink-relative-out", "a symlink climbing far above the root",
        lambda: [base().symlink("deepops-evil-up", "../../../../../../etc")],
        {"safe": {"symlink": {"/deepops-evil-up": "../../../../../../etc"}}})
    add("symlink-write-through", "a symlink to a host folder, then a file written through it",
        lambda: [base().symlink("deepops-evil-link", CANARY).file("deepops-evil-link/pwned", "x")],
        {"reject": "write through the link"})
    add("symlink-write-through-deep", "a symlinked folder, then a file two levels below it",
        lambda: [base().symlink("etc/deepops-evil-link", "/").dir("etc/deepops-evil-link/tmp")
                 .file("etc/deepops-evil-link/tmp/pwned", "x")],
        {"reject": "write through the link"})
    add("symlink-across-layers", "a lower layer's symlink to a host folder, an upper layer's file below it",
        lambda: [base().symlink("deepops-evil-link", CANARY),
                 Layer().dir("deepops-evil-link").file("deepops-evil-link/pwned", "x")],
        {"safe": {"present": {"/deepops-evil-link/pwned": "file", "/deepops-evil-link": "dir"}}})
    add("hardlink-dotdot", "a hard link to ../../etc/passwd",
        lambda: [base().hardlink("deepops-evil-hl", "../../etc/passwd")], {"reject": "'..' component"})
    add("hardlink-absolute-out", "a hard link to the host's /etc/shadow, absent from the image",
        lambda: [base().hardlink("deepops-evil-hl", "/etc/shadow")], {"reject": "has no target"})
    add("hardlink-absolute-in", "a hard link by absolute path to a file of the image",
        lambda: [base().hardlink("deepops-evil-hl", "/etc/passwd")],
        {"safe": {"content": {"/deepops-evil-hl": "root:x:0:0:root:/root:/bin/sh\n"}}})
    add("hardlink-to-dir", "a hard link to a folder",
        lambda: [base().hardlink("deepops-evil-hl", "etc")], {"reject": "to '/etc', a folder"})
    add("hardlink-loop", "two hard links naming each other",
        lambda: [base().hardlink("deepops-evil-a", "deepops-evil-b").hardlink("deepops-evil-b", "deepops-evil-a")],
        {"reject": "hard link to '/deepops-evil-b' has no target"})
    add("whiteout-dotdot", "a whiteout of '..'",
        lambda: [base(), Layer().dir("etc").file("etc/.wh...", "")], {"reject": "names no entry"})
    add("whiteout-outside", "a whiteout placed above the root (../.wh.etc)",
        lambda: [base(), Layer().file("../.wh.etc", "")], {"reject": "'..' component"})
    add("whiteout-absolute", "an absolute whiteout path (/.wh.etc) hides only the image's /etc",
        lambda: [base(), Layer().file("/.wh.etc", "")], {"safe": {"absent": ["/etc", "/etc/passwd"],
                                                                  "present": {"/bin/tool": "file"}}})
    add("duplicate-entries", "the same file twice in one layer, with different contents",
        lambda: [base().file("deepops-evil-dup", "first\n").file("deepops-evil-dup", "second\n")],
        {"safe": {"content": {"/deepops-evil-dup": "second\n"}}})
    add("duplicate-type-change", "a folder, then a file of the same name, in one layer",
        lambda: [base().dir("deepops-evil-dup").file("deepops-evil-dup/inner", "x")
                 .file("deepops-evil-dup", "file now\n")],
        {"safe": {"content": {"/deepops-evil-dup": "file now\n"}, "absent": ["/deepops-evil-dup/inner"]}})
    add("long-name", "a 300-byte file name (over NAME_MAX)",
        lambda: [base().file("deepops-evil-" + "n" * 288, "x")], {"reject": "name of 301 bytes"})
    add("long-path", "an 8000-byte path (over PATH_MAX)",
        lambda: [base().file("/".join(["deepops-evil-" + "d" * 87] * 80), "x")], {"reject": "path of 8079 bytes"})
    add("deep-directories", "1000 nested folders (a 4000-byte path, within PATH_MAX)",
        lambda: [base().file("/".join(["dd"] * 1000) + "/deepops-evil-deep", "deep\n")],
        {"safe": {"content": {"/" + "/".join(["dd"] * 1000) + "/deepops-evil-deep": "deep\n"}}})
    add("huge-pax-header", "an 8 MiB PAX header (a 8 MiB user xattr)",
        lambda: [pax_file(base(), "deepops-evil-pax", b"x", {"SCHILY.xattr.user.big": "A" * (8 << 20)})],
        {"reject": "unreadable tar"})
    add("device-nodes", "character and block devices (a /dev/mem and a disk)",
        lambda: [base().chardev("deepops-evil-mem", 1, 1).dir("dev").chardev("dev/sda", 8, 0)],
        {"safe": {"absent": ["/deepops-evil-mem", "/dev/sda"]}})
    add("setuid-root", "a setuid and a setgid root program",
        lambda: [base().file("deepops-evil-suid", "#!/bin/sh\n", 0o4755).file("deepops-evil-sgid", "#!/bin/sh\n", 0o2755)],
        {"safe": {"mode": {"/deepops-evil-suid": "0755", "/deepops-evil-sgid": "0755"}}})
    add("capability-xattr", "a file with security.capability (file capabilities) and trusted.* xattrs",
        lambda: [pax_file(base(), "deepops-evil-cap", b"#!/bin/sh\n",
                          {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff\xff\xff\xff",
                           "SCHILY.xattr.trusted.overlay.opaque": "y"})],
        {"safe": {"present": {"/deepops-evil-cap": "file"}, "no_xattrs": ["/deepops-evil-cap"]}})
    add("sparse-terabyte", "a sparse file declaring 1 TiB (a bomb without compression)",
        lambda: [base(), gnu_sparse_layer("deepops-evil-sparse", 1 << 40)], {"reject": "IMPORT_MAX_SIZE"})
    add("entry-flood", "20000 empty files, over IMPORT_MAX_ENTRIES=10000",
        lambda: [entry_flood(20000)], {"reject": "IMPORT_MAX_ENTRIES"}, {"DEEPOPS_IMPORT_MAX_ENTRIES": "10000"})
    add("truncated-layer", "a layer cut off in the middle of an entry",
        lambda: [base().file("deepops-evil-big", "y" * 100000).tar_bytes()[:50000]],
        {"reject": "Truncated tar archive"})
    return c


def entry_flood(n):
    layer = Layer().dir("flood")
    for i in range(n):
        layer.file(f"flood/deepops-evil-{i}", b"")
    return layer


def invalid_utf8(case):
    layer = base()
    for name in [b"deepops-evil-\xff\xfe.txt", b"deepops-evil-\xc3\x28.txt"]:
        ti = layer._info("placeholder", tarfile.REGTYPE, 0o644, size=1)
        ti.name = name.decode("utf-8", "surrogateescape")
        layer.tar.addfile(ti, io.BytesIO(b"x"))
    return case.image([layer])


def bomb(how):
    def build(case):
        data, mt, diff_id = streamed_bomb("deepops-evil-bomb", 1 << 30, how)
        return case.manifest([case.blob(data, mt)], [diff_id])
    return build


def self_manifest(case):
    # Content addressing makes a true cycle impossible, so the attack lies
    # about its digest: a blob stored under digest D is an index naming D.
    fake = hashlib.sha256(b"deepops-evil-self").hexdigest()
    index = canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
        {"mediaType": MT_INDEX, "digest": "sha256:" + fake, "size": 200,
         "platform": {"architecture": "amd64", "os": "linux"}}]})
    index = index.ljust(200)
    desc = case.blob(index, MT_INDEX, name=fake)
    return desc


def nested_index(case):
    inner = case.image([base()])
    inner["platform"] = {"architecture": "amd64", "os": "linux"}
    idx1 = case.blob(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [inner]}), MT_INDEX)
    idx1["platform"] = {"architecture": "amd64", "os": "linux"}
    return case.blob(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [idx1]}), MT_INDEX)


def huge_size(case):
    d, diff = case.layer(base())
    d = dict(d, size=1 << 60)
    return case.manifest([d], [diff])


def understated_size(case):
    d, diff = case.layer(base().file("deepops-evil-more", "z" * 5000))
    d = dict(d, size=d["size"] // 2)
    return case.manifest([d], [diff])


def too_many_layers(case):
    d, diff = case.layer(base())
    return case.manifest([d] * 1001, [diff] * 1001)


def config_as_layer(case):
    cfg = case.config([])
    return case.manifest([dict(cfg, mediaType=MT_GZIP)], ["sha256:" + "0" * 64])


def not_a_tar(case):
    junk = gzip.compress(b"deepops-evil: this is not a tar archive\n" * 100, mtime=0)
    return case.manifest([case.blob(junk, MT_GZIP)], ["sha256:" + "0" * 64])


CASES = tar_cases()
CASES.update({
    "invalid-utf8": ("file names that are not UTF-8", invalid_utf8,
                     {"safe": {"present": {"/bin/tool": "file"}, "count_like": {"deepops-evil-": 2}}}, {}),
    "gzip-bomb": ("a 1 MiB gzip layer that inflates to 1 GiB of zeros, over IMPORT_MAX_SIZE=64M",
                  bomb("gzip"), {"reject": "IMPORT_MAX_SIZE"}, {"DEEPOPS_IMPORT_MAX_SIZE": "64M"}),
    "zstd-bomb": ("a 32 KiB zstd layer that inflates to 1 GiB, over IMPORT_MAX_SIZE=64M",
                  bomb("zstd"), {"reject": "IMPORT_MAX_SIZE"}, {"DEEPOPS_IMPORT_MAX_SIZE": "64M"}),
    "manifest-self": ("an index that names itself (its blob lies about its digest)", self_manifest,
                      {"reject": "does not match its descriptor"}, {}),
    "nested-index": ("an index whose entry is another index (a chain to follow)", nested_index,
                     {"reject": "an index points to another index"}, {}),
    "huge-declared-size": ("a layer declaring 2^60 bytes", huge_size,
                           {"reject": "more than any image blob"}, {}),
    "understated-size": ("a layer longer than its declared size", understated_size,
                         {"reject": "does not match its descriptor"}, {}),
    "too-many-layers": ("1001 layers", too_many_layers, {"reject": "more than any image has"}, {}),
    "config-as-layer": ("a layer descriptor pointing at the JSON config", config_as_layer,
                        {"reject": "invalid gzip data"}, {}),
    "not-a-tar": ("a gzip layer that holds no tar", not_a_tar, {"reject": "not a tar archive"}, {}),
})


def build_all(outdir):
    table = {}
    for name, (threat, builder, expect, env) in sorted(CASES.items()):
        case = Case(os.path.join(outdir, name))
        case.finish(builder(case))
        table[name] = {"threat": threat, "expect": expect, "env": env}
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)


def write_seeds(seed_dir):
    os.makedirs(seed_dir, exist_ok=True)
    for name, (_, builder, _, _) in sorted(CASES.items()):
        if name in ("gzip-bomb", "zstd-bomb"):
            continue
        tmp = Case(os.path.join("/tmp", "mkevil-seed-" + str(os.getpid())))
        try:
            builder(tmp)
        except Exception:
            continue
        layers = list(reversed(tmp.raw_layers))  # the fuzz target wants the top first
        data = SEPARATOR.join(layers)
        if layers and len(data) <= 65536:
            with open(os.path.join(seed_dir, name + ".tar"), "wb") as f:
                f.write(data)
        subprocess.run(["rm", "-rf", tmp.dir], check=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(sys.argv[2])
    elif len(sys.argv) == 2:
        build_all(sys.argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
