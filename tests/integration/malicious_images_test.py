#!/usr/bin/env python3
"""Imports every case of the malicious image corpus (tests/images/mkevil.py)
with deepops-ctr, as root, and checks for each:
  - the outcome its case states: a rejection whose message matches, or a safe
    import whose squashfs holds what a safe importer keeps;
  - a rejection leaves no cache entry and no scratch folder;
and after all of them that nothing was written outside the cache: no path
named like a payload (deepops-evil) appeared anywhere a write could land, the
canary /tmp/deepops-evil-canary does not exist, and no mount was added.

Usage: malicious_images_test.py DEEPOPS_CTR [CASE...]
Prints one PASS/FAIL line a case; exits 1 if any failed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MKEVIL = os.path.join(HERE, "..", "images", "mkevil.py")
CANARY = "/tmp/deepops-evil-canary"
WATCHED = ["/tmp", "/var/tmp", "/etc", "/root", "/home", "/run", "/dev/shm"]


def run(cmd, env=None, timeout=300):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", timeout=timeout)


def squashfs_listing(image):
    """{path: (mode string, symlink target or None)} from unsquashfs -lln."""
    out = run(["unsquashfs", "-lln", "-d", "", image]).stdout
    entries = {}
    for line in out.splitlines():
        m = re.match(r"^(\S{10}) \S+ +\d+ \S+ \S+ (.*)$", line)
        if not m:
            continue
        mode, rest = m.groups()
        target = None
        if mode.startswith("l") and " -> " in rest:
            rest, target = rest.split(" -> ", 1)
        entries[rest or "/"] = (mode, target)
    return entries


def mode_bits(mode):
    bits = 0
    for i, ch in enumerate(mode[1:]):
        if ch not in "-":
            bits |= 1 << (8 - i)
    return bits


KIND = {"d": "dir", "-": "file", "l": "symlink", "p": "fifo", "c": "chardev", "b": "blockdev", "s": "socket"}


def check_safe(image, want, scratch):
    """The problems with a safe import's image, as a list of strings."""
    listing = squashfs_listing(image)
    problems = []
    for path, kind in want.get("present", {}).items():
        got = listing.get(path)
        if not got or KIND.get(got[0][0]) != kind:
            problems.append(f"{path}: want {kind}, got {got}")
    for path in want.get("absent", []):
        if path in listing:
            problems.append(f"{path} must not be in the image")
    for path, target in want.get("symlink", {}).items():
        got = listing.get(path)
        if not got or got[1] != target:
            problems.append(f"{path}: want a symlink to {target}, got {got}")
    for path, mode in want.get("mode", {}).items():
        got = listing.get(path)
        if not got or mode_bits(got[0]) != int(mode, 8):
            problems.append(f"{path}: want mode {mode}, got {got}")
    for path, text in want.get("content", {}).items():
        got = run(["unsquashfs", "-cat", image, path]).stdout
        if got != text:
            problems.append(f"{path}: want content {text!r}, got {got[:80]!r}")
    for pattern, count in want.get("count_like", {}).items():
        n = sum(1 for p in listing if pattern in p)
        if n != count:
            problems.append(f"{n} paths contain {pattern!r}, want {count}")
    for path in want.get("no_xattrs", []):
        dest = os.path.join(scratch, "x")
        shutil.rmtree(dest, ignore_errors=True)
        run(["unsquashfs", "-q", "-d", dest, image, path])
        names = os.listxattr(dest + path, follow_symlinks=False)
        if names:
            problems.append(f"{path} kept xattrs {names}")
    # Whatever else the case holds: no device, no setuid/setgid anywhere.
    for path, (mode, _) in listing.items():
        if mode[0] in "cb" or mode[3] in "sS" or mode[6] in "sS":
            problems.append(f"{path}: {mode} (device or set-id) in the image")
    return problems


def payload_paths(since, skip):
    """Paths named like a payload, changed since `since`, outside `skip`."""
    found = []
    for top in WATCHED + ["/"]:
        depth = 1 if top == "/" else 6
        if not os.path.isdir(top):
            continue
        base_depth = top.rstrip("/").count("/")
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(skip)]
            if root.count("/") - base_depth >= depth:
                dirs[:] = []
            for name in dirs + files:
                path = os.path.join(root, name)
                if "deepops-evil" in name and os.lstat(path).st_mtime >= since:
                    found.append(path)
    return found


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ctr = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    work = tempfile.mkdtemp(prefix="malicious-images.")
    failures = 0
    try:
        corpus = os.path.join(work, "corpus")
        built = run([sys.executable, MKEVIL, corpus], timeout=600)
        if built.returncode != 0:
            sys.exit(f"FAIL building the corpus: {built.stderr}")
        cases = json.load(open(os.path.join(corpus, "cases.json")))
        print(f"corpus: {len(cases)} cases")
        if os.path.lexists(CANARY):
            sys.exit(f"FAIL {CANARY} exists before the test; remove it")
        since = time.time() - 1
        mounts_before = mounts()
        cache = os.path.join(work, "cache")
        for name, case in sorted(cases.items()):
            if only and name not in only:
                continue
            env = dict(os.environ, HOME=work, DEEPOPS_CACHE_PATH=cache, **case["env"])
            env.pop("DEEPOPS_SYSTEM_CACHE", None)
            layout = os.path.join(corpus, name)
            r = run([ctr, "import", "-q", f"oci:{layout}:latest"], env=env)
            listed = json.loads(run([ctr, "list", "--json"], env=env).stdout or "[]")
            refs = [i for i in listed if any(layout in ref for ref in i.get("references", []))]
            scratch_left = os.listdir(os.path.join(cache, "tmp")) if os.path.isdir(os.path.join(cache, "tmp")) else []
            want = case["expect"]
            message = (r.stderr.strip().splitlines() or [""])[0][:150]
            if "reject" in want:
                if r.returncode == 0:
                    problem = "imported, but must be rejected"
                elif not re.search(re.escape(want["reject"]), r.stderr):
                    problem = f"rejected, but the message lacks {want['reject']!r}: {r.stderr.strip()[:300]}"
                elif refs:
                    problem = "rejected, yet the cache lists it"
                elif "Traceback" in r.stderr or r.returncode not in (1, 2):
                    problem = f"exit {r.returncode}: {r.stderr[:300]}"
                else:
                    problem = None
            else:
                if r.returncode != 0:
                    problem = f"must import safely, failed: {r.stderr.strip()[:300]}"
                else:
                    found = check_safe(r.stdout.strip(), want["safe"], work)
                    problem = "; ".join(found) if found else None
                    message = "imported safely"
            if scratch_left:
                problem = (problem or "") + f" scratch left in the cache: {scratch_left}"
            if problem:
                failures += 1
                print(f"FAIL {name} ({case['threat']}): {problem}")
            else:
                print(f"PASS {name} ({case['threat']}): {message}")
        escaped = payload_paths(since, (work,))
        if os.path.lexists(CANARY):
            escaped.append(CANARY)
        if escaped:
            failures += 1
            print(f"FAIL written outside the cache: {escaped[:10]}")
        else:
            print("PASS nothing written outside the cache (no payload path, no canary)")
        if mounts() != mounts_before:
            failures += 1
            print("FAIL the mount table changed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"malicious images: {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
