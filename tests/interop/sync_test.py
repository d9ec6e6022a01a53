#!/usr/bin/python3
"""shoal sync run: three devices on loopback, one process each.

A inits the folder; B joins with the read-write key (--key-file), C with the read-only key
(standard input). A listens, B dials A, C dials A and B. Then:

- odd names (spaces, Unicode NFC and NFD, a 200-byte name), an empty file, permissions
  0600 and 0755, a symlink inside the folder: all three trees become identical (file
  lists, contents, modes, symlink targets; .shoal/ left out). A symlink pointing outside
  the folder is refused by the receivers (never made, never followed);
- rounds of random creates, edits, appends, truncates, deletes, renames and directory
  moves on A and B: after each round the three trees are identical;
- a rename of a 4 MiB file moves no data (the receivers log no fetch for it: they rename
  their copy, which keeps its inode, and archive nothing);
- concurrent edits: B is stopped, the same file is edited on A and on B, B restarts: both
  versions end up on every device, one as a .sync-conflict- copy;
- changes on the read-only C do not spread;
- a record signed by another key (sent by a test peer that holds the read-only key) is
  rejected and logged, never applied; a device that sends the share id without holding
  the key is refused ("peer does not hold this folder's key");
- kill -9 of B while it receives a 200 MB file: no partial file in its folder; after a
  restart the file arrives whole.

A second `sync run` of a running folder is refused. Every wait is for a condition (with a deadline), never a fixed sleep.

Usage: sync_test.py --shoal PATH [--big-mb N]
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata

import sync_peer


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    raise SystemExit(1)


def wait_until(cond, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def tree(folder, skip=()):
    """path -> (kind, mode, content hash or link target), .shoal/ left out."""
    out = {}
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        if rel_root == ".":
            dirs[:] = [d for d in dirs if d != ".shoal"]
        for n in dirs + files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, folder)
            if rel in skip:
                continue
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", 0, os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777, None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o7777, hashlib.sha256(f.read()).hexdigest())
    return out


class Device:
    def __init__(self, shoal, name, folder, logdir):
        self.shoal = shoal
        self.name = name
        self.folder = folder
        self.logdir = logdir
        self.proc = None
        self.lines = []
        self.port = None
        self.runs = 0

    def start(self, peers=(), port=0):
        self.runs += 1
        args = [self.shoal, "sync", "run", self.folder, "--local", "--json", "--port", str(port)]
        for p in peers:
            args += ["--peer", "127.0.0.1:%d" % p]
        err = open(os.path.join(self.logdir, "%s-%d.err" % (self.name, self.runs)), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ, SHOAL_LOCAL="1"))
        first = self.proc.stdout.readline()
        if not first:
            fail("%s: sync run printed nothing (see %s)" % (self.name, err.name))
        ev = json.loads(first)
        if ev.get("event") != "listening":
            fail("%s: first line %r" % (self.name, first))
        self.port = ev["port"]
        proc = self.proc

        def reader():
            for line in proc.stdout:
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    self.lines.append({"event": "?", "raw": line})

        threading.Thread(target=reader, daemon=True).start()
        return self.port

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.proc = None
        return rc

    def events(self, kind):
        return [e for e in list(self.lines) if e.get("event") == kind]

    def stderr(self):
        out = ""
        for i in range(1, self.runs + 1):
            p = os.path.join(self.logdir, "%s-%d.err" % (self.name, i))
            if os.path.exists(p):
                out += open(p, "rb").read().decode("utf-8", "replace")
        return out


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def same_trees(devs, skip=()):
    trees = [tree(d.folder, skip) for d in devs]
    return all(t == trees[0] for t in trees[1:])


def wait_same(devs, what, skip=(), timeout=180.0):
    def ok():
        return same_trees(devs, skip)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    trees = [tree(d.folder, skip) for d in devs]
    for d, t in zip(devs[1:], trees[1:]):
        only_a = sorted(set(trees[0].items()) - set(t.items()))[:10]
        only_d = sorted(set(t.items()) - set(trees[0].items()))[:10]
        print("%s vs %s: only in %s %r; only in %s %r" % (devs[0].name, d.name, devs[0].name, only_a, d.name, only_d),
              file=sys.stderr)
    for d in devs:
        print("--- %s stderr:\n%s" % (d.name, d.stderr()[-3000:]), file=sys.stderr)
    fail("trees differ after " + what)


def random_round(rng, folder, prefix, step):
    """A few random operations under folder/prefix: create, edit, append, truncate, delete,
    rename, directory move."""
    base = os.path.join(folder, prefix)
    os.makedirs(base, exist_ok=True)
    files = []
    for root, _, names in os.walk(base):
        for n in names:
            files.append(os.path.join(root, n))
    dirs = [os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
    for i in range(6):
        op = rng.choice(["create", "create", "edit", "append", "truncate", "delete", "rename", "dirmove"])
        if op == "create" or not files:
            d = os.path.join(base, "d%d" % rng.randrange(3))
            p = os.path.join(d, "f%d-%d.bin" % (step, i))
            write(p, rng.randbytes(rng.choice([0, 10, 5000, 200000, 700000])))
            files.append(p)
            continue
        p = rng.choice(files)
        if op == "edit":
            with open(p, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(rng.randrange(size) if size else 0)
                f.write(rng.randbytes(100))
        elif op == "append":
            with open(p, "ab") as f:
                f.write(rng.randbytes(rng.randrange(1, 300000)))
        elif op == "truncate":
            with open(p, "r+b") as f:
                f.truncate(os.fstat(f.fileno()).st_size // 2)
        elif op == "delete":
            os.unlink(p)
            files.remove(p)
        elif op == "rename":
            q = p + ".renamed"
            os.rename(p, q)
            files[files.index(p)] = q
        elif op == "dirmove" and dirs:
            d = rng.choice(dirs)
            q = os.path.join(base, "moved%d-%d" % (step, i))
            os.rename(d, q)
            dirs.remove(d)
            files = [f.replace(d + os.sep, q + os.sep) if f.startswith(d + os.sep) else f for f in files]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="shoal-sync-interop-")
    devs = []
    try:
        fa, fb, fc = (os.path.join(top, n) for n in ("A", "B", "C"))
        out = subprocess.run([args.shoal, "sync", "init", fa, "--json"], check=True, capture_output=True).stdout
        keys = json.loads(out)
        rw_file = os.path.join(top, "rw.key")
        write(rw_file, (keys["read_write_key"] + "\n").encode(), 0o600)
        subprocess.run([args.shoal, "sync", "join", fb, "--key-file", rw_file], check=True, capture_output=True)
        subprocess.run([args.shoal, "sync", "join", fc, "-"], input=keys["read_only_key"].encode(), check=True,
                       capture_output=True)
        for d in (fa, fb, fc):
            for root, _, names in os.walk(os.path.join(d, ".shoal")):
                for n in names:
                    body = open(os.path.join(root, n), "rb").read()
                    if n != "folder.key" and keys["read_write_key"].encode() in body:
                        fail("the read-write key is stored outside folder.key: " + n)

        A = Device(args.shoal, "A", fa, top)
        B = Device(args.shoal, "B", fb, top)
        C = Device(args.shoal, "C", fc, top)
        devs = [A, B, C]
        pa = A.start()
        pb = B.start([pa])
        C.start([pa, pb])
        for d in devs:
            if any(k in d.stderr() for k in (keys["read_write_key"], keys["read_only_key"])):
                fail(d.name + " logged a key")
        second = subprocess.run([args.shoal, "sync", "run", fa, "--local"], capture_output=True, timeout=30)
        if second.returncode != 1 or b"already being synced" not in second.stderr:
            fail("a second sync run of one folder: exit %d %r" % (second.returncode, second.stderr))

        # --- odd names, empty file, permissions, symlinks
        outside = os.path.join(top, "outside.txt")
        write(outside, b"outside the folder\n")
        nfc = unicodedata.normalize("NFC", "caf\u00e9 r\u00e9sum\u00e9.txt")
        nfd = unicodedata.normalize("NFD", "caf\u00e9 r\u00e9sum\u00e9.txt")
        assert nfc != nfd
        write(os.path.join(fa, "with spaces", "a file.txt"), b"spaces\n")
        write(os.path.join(fa, nfc), b"nfc\n")
        write(os.path.join(fa, nfd), b"nfd\n")
        write(os.path.join(fa, "x" * 200), b"long name\n")
        write(os.path.join(fa, "empty"), b"")
        write(os.path.join(fa, "private.txt"), b"secret\n", 0o600)
        write(os.path.join(fa, "tool.sh"), b"#!/bin/sh\necho hi\n", 0o755)
        write(os.path.join(fa, "sub", "target.txt"), b"target\n")
        os.symlink("sub/target.txt", os.path.join(fa, "link-inside"))
        os.symlink("../outside.txt", os.path.join(fa, "link-outside"))
        write(os.path.join(fa, "big4m.bin"), random.Random(4).randbytes(4 << 20))
        wait_same(devs, "odd names, modes and symlinks", skip={"link-outside"})
        for d in (B, C):
            if os.path.lexists(os.path.join(d.folder, "link-outside")):
                fail(d.name + " made a symlink that points outside the folder")
            wait_until(lambda: any(e.get("path") == "link-outside" for e in d.events("refused")),
                       d.name + " refusing link-outside")
        if open(outside, "rb").read() != b"outside the folder\n":
            fail("the file outside the folder changed")
        print("ok: odd names, empty file, modes, symlinks")

        # --- a rename moves no data: the receivers rename their copy (same inode), archive nothing
        inodes = {d.name: os.lstat(os.path.join(d.folder, "big4m.bin")).st_ino for d in (B, C)}
        os.rename(os.path.join(fa, "big4m.bin"), os.path.join(fa, "sub", "moved4m.bin"))
        wait_same(devs, "a rename", skip={"link-outside"})
        for d in (B, C):
            lines = [e for e in d.events("sync") if e.get("path") == "sub/moved4m.bin"]
            if not lines:
                fail(d.name + ": no sync line for the renamed file")
            # "SIZE bytes, N fetched": the old path renamed, nothing fetched.
            if not lines[-1].get("detail", "").endswith(" 0 fetched"):
                fail(d.name + " fetched data for a rename: %r" % lines[-1])
            if os.lstat(os.path.join(d.folder, "sub", "moved4m.bin")).st_ino != inodes[d.name]:
                fail(d.name + ": the renamed file was copied, not renamed")
            for _, _, names in os.walk(os.path.join(d.folder, ".shoal", "archive")):
                if any(n.startswith("big4m.bin") for n in names):
                    fail(d.name + ": the old path of a rename was archived")
        print("ok: rename moved no data (renamed on the receivers, same inode, nothing archived)")

        # --- random rounds on A and B
        rng = random.Random(1234)
        for step in range(6):
            random_round(rng, fa, "ra", step)
            random_round(rng, fb, "rb", step)
            wait_same(devs, "random round %d" % step, skip={"link-outside"})
        # B edits what A made, A moves a directory B made.
        victim = sorted(p for p in tree(fa) if p.startswith("ra/") and tree(fa)[p][0] == "file")[0]
        with open(os.path.join(fb, victim), "ab") as f:
            f.write(b"edited on B\n")
        rb_dirs = [p for p, v in tree(fa).items() if p.startswith("rb/") and v[0] == "dir" and p.count("/") == 1]
        if rb_dirs:
            os.rename(os.path.join(fa, rb_dirs[0]), os.path.join(fa, "rb", "moved-by-A"))
        wait_same(devs, "cross edits", skip={"link-outside"})
        print("ok: random rounds")

        # --- concurrent edits while B is cut off
        shared = os.path.join("conflict", "notes.txt")
        write(os.path.join(fa, shared), b"base\n")
        wait_same(devs, "the conflict base", skip={"link-outside"})
        if B.stop() != 0:
            fail("B did not exit 0 after SIGTERM")
        write(os.path.join(fb, shared), b"edited on B (older)\n")
        os.utime(os.path.join(fb, shared), (time.time() - 100, time.time() - 100))
        write(os.path.join(fa, shared), b"edited on A (newer)\n")
        wait_until(lambda: all(open(os.path.join(C.folder, shared), "rb").read() == b"edited on A (newer)\n"
                               for _ in [0]), "A's edit reaching C")
        B.start([pa], port=pb)
        wait_same(devs, "the conflict", skip={"link-outside"})
        names = sorted(os.listdir(os.path.join(fa, "conflict")))
        copies = [n for n in names if ".sync-conflict-" in n]
        if len(copies) != 1:
            fail("expected one conflict copy, found %r" % names)
        contents = {open(os.path.join(fa, "conflict", n), "rb").read() for n in names}
        if contents != {b"edited on A (newer)\n", b"edited on B (older)\n"}:
            fail("a version was lost: %r" % contents)
        if open(os.path.join(fa, shared), "rb").read() != b"edited on A (newer)\n":
            fail("the newer edit is not at the path")
        print("ok: conflict kept both versions as", copies[0])

        # --- the read-only device's changes stay there
        scans = len(C.events("scan"))
        write(os.path.join(fc, "from-C.txt"), b"C cannot share this\n")
        with open(os.path.join(fc, "private.txt"), "ab") as f:
            f.write(b"C's edit\n")
        wait_until(lambda: len(C.events("scan")) > scans, "C indexing its change")
        write(os.path.join(fa, "marker.txt"), b"after C's change\n")
        wait_until(lambda: all(os.path.exists(os.path.join(d.folder, "marker.txt")) for d in devs), "the marker")
        for d in (A, B):
            if os.path.exists(os.path.join(d.folder, "from-C.txt")):
                fail("C's new file reached " + d.name)
            if open(os.path.join(d.folder, "private.txt"), "rb").read() != b"secret\n":
                fail("C's edit reached " + d.name)
        wait_same([A, B], "A and B after C's change", skip={"link-outside"})
        print("ok: read-only device")

        # --- a forged record (signed by a key that is not the folder's) is rejected and logged;
        # a device that knows the share id but not the key is refused
        peer = sync_peer.Peer("127.0.0.1", A.port, keys["read_only_key"])
        canon = sync_peer.record("forged.txt", peer.id, b"forged\n")
        _, stranger_sk = sync_peer.sign_keypair()
        peer.send({"t": "index", "done": 1, "recs": [[canon, sync_peer.record_signature(stranger_sk, canon), 1]]})
        wait_until(lambda: ("rejected a record for forged.txt from " + peer.id) in A.stderr(),
                   "A logging the forged record")
        peer.close()
        other = json.loads(subprocess.run([args.shoal, "sync", "init", os.path.join(top, "other"), "--json"],
                                          check=True, capture_output=True).stdout)
        try:
            sync_peer.Peer("127.0.0.1", A.port, other["read_only_key"], claim_share=sync_peer.share_id(
                sync_peer.folder_public_key(keys["read_only_key"])))
            fail("a device without the folder key finished the handshake")
        except (RuntimeError, EOFError, OSError):
            pass
        wait_until(lambda: "peer does not hold this folder's key" in A.stderr(), "A logging the keyless device")
        write(os.path.join(fa, "marker2.txt"), b"after the forgery\n")
        wait_until(lambda: all(os.path.exists(os.path.join(d.folder, "marker2.txt")) for d in devs), "marker2")
        for d in devs:
            if os.path.exists(os.path.join(d.folder, "forged.txt")):
                fail("the forged record was applied on " + d.name)
            if other["read_only_key"] in d.stderr() or keys["read_only_key"] in d.stderr():
                fail(d.name + " logged a key")
        print("ok: forged record rejected, keyless device refused")

        # --- kill -9 while receiving a large file
        big = os.path.join(fa, "big.bin")
        with open(big, "wb") as f:
            r = random.Random(7)
            for _ in range(args.big_mb):
                f.write(r.randbytes(1 << 20))
        tmp = os.path.join(fb, ".shoal", "tmp")
        wait_until(lambda: os.path.isdir(tmp) and any(n.endswith(".part") for n in os.listdir(tmp)),
                   "B starting to receive the large file", timeout=120)
        B.stop(signal.SIGKILL)
        if os.path.exists(os.path.join(fb, "big.bin")):
            # It may have finished before the kill: then it must be whole.
            with open(os.path.join(fb, "big.bin"), "rb") as f, open(big, "rb") as g:
                if hashlib.sha256(f.read()).digest() != hashlib.sha256(g.read()).digest():
                    fail("a partial big.bin in B's folder after kill -9")
            print("note: B finished the large file before the kill")
        B.start([pa], port=pb)
        wait_same(devs, "the large file after a restart", skip={"link-outside", "from-C.txt", "private.txt"},
                  timeout=300)
        print("ok: kill -9 during a large file, then resumed")

        for d in devs:
            rc = d.stop()
            if rc != 0:
                fail("%s exited %d after SIGTERM" % (d.name, rc))
        print("PASS")
    finally:
        for d in devs:
            if d.proc is not None:
                d.proc.kill()
                d.proc.wait()
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
        else:
            print("kept", top)


if __name__ == "__main__":
    main()
