#!/usr/bin/python3
"""shoal sync: LAN discovery, the archive and restore, a large rename, with two devices.

A inits the folder, B joins it; both run `shoal sync run` with no --peer and without
--local, so they can only find each other by LAN multicast (on this host). Then:

- a file deleted on A goes to B's archive, a file overwritten on B has its old version in
  A's archive; `shoal sync restore --list` shows them, and `shoal sync restore` brings
  the deleted file back on B and the old version back on A, each as a local change that
  reaches the other device (the version it replaced is archived in turn);
- a 64 MiB file moved into a subdirectory and a directory of files moved on A (A's scans
  read none of them: their events count 4 moved): B renames its copies into place (each
  keeps its inode), fetches nothing and archives nothing;
- A's inotify watches follow a directory moved within the folder and are dropped for one
  moved out of it (counted in /proc/PID/fdinfo);
- a file moved on A while B (stopped) changed it: B keeps its change at the old path (it
  reaches A) and gets A's file at the new one, renaming nothing;
- C and D join and run with --local and a `shoal dht node` to bootstrap from (no LAN
  discovery): once C's announcement is on the node, D finds C through the DHT and gets its
  file.

Every wait is for a condition with a deadline.

Usage: sync_archive_test.py --shoal PATH
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    raise SystemExit(1)


def wait_until(cond, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inotify_watches(pid):
    """The number of inotify watches process pid holds (from /proc/PID/fdinfo)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:inotify":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                n += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            continue
    return n


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class Device:
    def __init__(self, shoal, name, folder, logdir, extra=()):
        self.shoal, self.name, self.folder = shoal, name, folder
        self.err_path = os.path.join(logdir, name + ".err")
        self.lines = []
        env = dict(os.environ)
        env.pop("SHOAL_LOCAL", None)
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([shoal, "sync", "run", folder, "--json", "--port", "0", *extra], stdout=subprocess.PIPE,
                                     stderr=err, env=env)
        first = json.loads(self.proc.stdout.readline() or b"{}")
        if first.get("event") != "listening":
            fail(name + ": no listening line")

        def reader():
            for line in self.proc.stdout:
                self.lines.append(json.loads(line))

        threading.Thread(target=reader, daemon=True).start()

    def events(self, kind, path=None):
        return [e for e in list(self.lines) if e.get("event") == kind and (path is None or e.get("path") == path)]

    def stderr(self):
        return open(self.err_path, "rb").read().decode("utf-8", "replace")

    def restore(self, *args):
        r = subprocess.run([self.shoal, "sync", "restore", self.folder, *args, "--json"], capture_output=True)
        if r.returncode != 0:
            fail("%s: sync restore %r: exit %d %s" % (self.name, args, r.returncode, r.stderr.decode()))
        return json.loads(r.stdout)

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="shoal-sync-archive-")
    devs = []
    try:
        fa, fb = os.path.join(top, "A"), os.path.join(top, "B")
        os.makedirs(fa)
        with open(os.path.join(fa, "gone.txt"), "wb") as f:
            f.write(b"deleted on A\n")
        with open(os.path.join(fa, "notes.txt"), "wb") as f:
            f.write(b"version 1\n")
        keys = json.loads(subprocess.run([args.shoal, "sync", "init", fa, "--json"], check=True,
                                         capture_output=True).stdout)
        subprocess.run([args.shoal, "sync", "join", fb, "-"], input=keys["read_write_key"].encode(), check=True,
                       capture_output=True)
        A = Device(args.shoal, "A", fa, top)
        B = Device(args.shoal, "B", fb, top)
        devs = [A, B]

        # --- found by LAN multicast alone
        wait_until(lambda: read(os.path.join(fb, "notes.txt")) == b"version 1\n", "B receiving A's files by "
                   "LAN discovery (no --peer)", timeout=60)
        if "on the LAN" not in B.stderr() and "on the LAN" not in A.stderr():
            fail("no device reported finding the other on the LAN")
        print("ok: the devices found each other by LAN multicast")

        # --- a delete on A, an overwrite on B
        os.unlink(os.path.join(fa, "gone.txt"))
        wait_until(lambda: not os.path.exists(os.path.join(fb, "gone.txt")), "the delete reaching B")
        with open(os.path.join(fb, "notes.txt"), "wb") as f:
            f.write(b"version 2 from B\n")
        wait_until(lambda: read(os.path.join(fa, "notes.txt")) == b"version 2 from B\n", "B's edit reaching A")
        listed_b = B.restore("gone.txt", "--list")["versions"]
        if [v["path"] for v in listed_b] != ["gone.txt"] or listed_b[0]["bytes"] != len(b"deleted on A\n"):
            fail("B's archive: %r" % listed_b)
        listed_a = A.restore("--list")["versions"]
        if "notes.txt" not in [v["path"] for v in listed_a]:
            fail("A's archive has no old notes.txt: %r" % listed_a)
        if A.restore("gone.txt", "--list")["versions"]:
            fail("A archived its own delete (it was the user's)")
        print("ok: B archived the deleted file, A the overwritten version")

        # --- restore on each; the restored versions reach the other device
        r = B.restore("gone.txt")
        if r.get("event") != "restored" or r.get("path") != "gone.txt":
            fail("restore on B: %r" % r)
        wait_until(lambda: read(os.path.join(fa, "gone.txt")) == b"deleted on A\n", "the restored file reaching A")
        version = [v["version"] for v in listed_a if v["path"] == "notes.txt"][-1]
        A.restore("notes.txt", "--version", version)
        if read(os.path.join(fa, "notes.txt")) != b"version 1\n":
            fail("A's restore did not bring version 1 back")
        wait_until(lambda: read(os.path.join(fb, "notes.txt")) == b"version 1\n", "the restored version reaching B")
        # What the restore replaced on A is archived there, and B archived version 2 on receipt.
        wait_until(lambda: any(v["path"] == "notes.txt" and v["bytes"] == len(b"version 2 from B\n")
                               for v in B.restore("--list")["versions"]), "B archiving version 2")
        if not any(v["path"] == "notes.txt" and v["bytes"] == len(b"version 2 from B\n")
                   for v in A.restore("--list")["versions"]):
            fail("A's restore did not archive the version it replaced")
        bad = subprocess.run([args.shoal, "sync", "restore", fa, "notes.txt", "--version", "20000101-000000"],
                             capture_output=True)
        if bad.returncode != 1 or b"no version" not in bad.stderr:
            fail("an unknown version: exit %d %r" % (bad.returncode, bad.stderr))
        print("ok: restored on each device, and synced")

        # --- a 64 MiB file moved into a subdirectory, and a directory of files moved: B renames
        # its copies (each keeps its inode), fetches nothing and archives nothing.
        big = os.path.join(fa, "big64.bin")
        with open(big, "wb") as f:
            f.write(random.Random(64).randbytes(64 << 20))
        photos = {"photos/p%d.jpg" % i: random.Random(100 + i).randbytes((1 << 20) + i) for i in range(3)}
        os.makedirs(os.path.join(fa, "photos"))
        for rel, data in photos.items():
            with open(os.path.join(fa, rel), "wb") as f:
                f.write(data)
        wait_until(lambda: B.events("sync", "big64.bin") and all(read(os.path.join(fb, rel)) == data
                                                               for rel, data in photos.items()),
                   "the 64 MiB file and photos/ reaching B", timeout=120)
        before = {rel: os.lstat(os.path.join(fb, rel)).st_ino for rel in ["big64.bin", *photos]}
        os.makedirs(os.path.join(fa, "sub", "deeper"))
        os.rename(big, os.path.join(fa, "sub", "deeper", "big64.bin"))
        os.makedirs(os.path.join(fa, "album"))
        os.rename(os.path.join(fa, "photos"), os.path.join(fa, "album", "2026"))
        moved = {"big64.bin": "sub/deeper/big64.bin"}
        moved.update({rel: "album/2026/" + rel.split("/")[1] for rel in photos})
        wait_until(lambda: all(os.path.exists(os.path.join(fb, new)) for new in moved.values()) and
                   not os.path.exists(os.path.join(fb, "big64.bin")) and
                   not os.path.exists(os.path.join(fb, "photos")), "the moves reaching B", timeout=120)
        # A's scans took the four over without reading them ("N moved (not read)").
        wait_until(lambda: sum(int(m.group(1)) for e in A.events("scan")
                               for m in [re.search(r"(\d+) moved", e.get("detail", ""))] if m) == 4,
                   "A's scans reporting 4 files moved (not read)")
        for old, new in moved.items():
            ino = os.lstat(os.path.join(fb, new)).st_ino
            if ino != before[old]:
                fail("B copied %s to %s instead of renaming it (inode %d, was %d)" % (old, new, ino, before[old]))
            detail = B.events("sync", new)[-1].get("detail", "")
            if not detail.endswith(" bytes, 0 fetched"):
                fail("B fetched data for the move of %s: %r" % (old, detail))
        if read(os.path.join(fb, "album", "2026", "p1.jpg")) != photos["photos/p1.jpg"]:
            fail("B's moved photos/p1.jpg has other content")
        archived = [v["path"] for v in B.restore("--list")["versions"]]
        if any(p in archived for p in moved):
            fail("B archived the old path of a move: %r" % archived)
        print("ok: a 64 MiB file and a directory moved on A were renamed on B (same inodes, 0 fetched, "
              "nothing archived)")

        # --- A's inotify watches follow directories: one moved within the folder is still
        # watched under its new name (a directory made in it gets a watch), one moved out of the
        # folder is no longer watched at all.
        base = inotify_watches(A.proc.pid)
        os.makedirs(os.path.join(fa, "w1", "x", "y"))
        wait_until(lambda: inotify_watches(A.proc.pid) == base + 3, "A watching w1/x/y")
        os.rename(os.path.join(fa, "w1"), os.path.join(fa, "w2"))
        os.makedirs(os.path.join(fa, "w2", "x", "y", "z"))
        wait_until(lambda: inotify_watches(A.proc.pid) == base + 4, "A watching w2/x/y/z (under the new name)")
        os.rename(os.path.join(fa, "w2"), os.path.join(top, "w2-outside"))
        wait_until(lambda: inotify_watches(A.proc.pid) == base, "A dropping the watches of a directory moved out")
        wait_until(lambda: not os.path.exists(os.path.join(fb, "w2")), "the moved-out directory leaving B")
        print("ok: watches follow a directory moved within the folder and are dropped for one moved out")

        # --- a move on A while B changed the old file (B is stopped meanwhile, so neither saw
        # the other's change first): B does not rename its changed copy; A's file arrives at the
        # new path (fetched, the old blocks being gone on B) and B's change stays at the old
        # path, from where it reaches A too. Nothing is lost.
        mine = random.Random(7).randbytes(300 * 1024)
        with open(os.path.join(fa, "draft.bin"), "wb") as f:
            f.write(mine)
        wait_until(lambda: read(os.path.join(fb, "draft.bin")) == mine, "draft.bin reaching B")
        old_ino = os.lstat(os.path.join(fb, "draft.bin")).st_ino
        B.proc.send_signal(signal.SIGSTOP)
        try:
            theirs = b"B's edit\n" + mine[:1000]
            with open(os.path.join(fb, "draft.bin"), "wb") as f:
                f.write(theirs)
            os.makedirs(os.path.join(fa, "drafts"))
            os.rename(os.path.join(fa, "draft.bin"), os.path.join(fa, "drafts", "draft.bin"))
            wait_until(lambda: any(re.search(r"\b1 moved", e.get("detail", "")) for e in A.events("scan")[-3:]),
                       "A's scan taking draft.bin's move")
        finally:
            B.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: read(os.path.join(fb, "drafts", "draft.bin")) == mine, "A's moved draft on B")
        wait_until(lambda: read(os.path.join(fa, "draft.bin")) == theirs, "B's edit of the old path reaching A")
        if read(os.path.join(fb, "draft.bin")) != theirs:
            fail("B lost its edit of draft.bin")
        if os.lstat(os.path.join(fb, "drafts", "draft.bin")).st_ino == old_ino:
            fail("B renamed its changed draft.bin into the moved path")
        print("ok: a move of a file changed meanwhile on B: both versions kept, nothing renamed")

        # --- the DHT alone: C and D join with --local (no LAN) and one DHT node to start from;
        # D is started once C's announcement is on that node, and finds C there.
        dht_port = free_udp_port()
        node = subprocess.Popen([args.shoal, "dht", "node", "--port", str(dht_port), "--local", "--no-ipv6"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            fc, fd = os.path.join(top, "C"), os.path.join(top, "D")
            for f in (fc, fd):
                subprocess.run([args.shoal, "sync", "join", f, "-"], input=keys["read_write_key"].encode(),
                               check=True, capture_output=True)
            with open(os.path.join(fc, "via-dht.txt"), "wb") as f:
                f.write(b"found through the DHT\n")
            boot = ["--local", "--dht-bootstrap", "127.0.0.1:%d" % dht_port]
            C = Device(args.shoal, "C", fc, top, boot)
            devs.append(C)
            dht_id = hashlib.sha1(b"shoal-sync-dht" + bytes.fromhex(keys["share_id"])).hexdigest()

            def announced():
                r = subprocess.run([args.shoal, "dht", "get-peers", dht_id, "--dht-bootstrap",
                                    "127.0.0.1:%d" % dht_port, "--local", "--no-ipv6", "--port", "0"],
                                   capture_output=True, timeout=60)
                return r.returncode == 0 and r.stdout.strip() != b""

            wait_until(announced, "C's announcement on the DHT node", timeout=90)
            D = Device(args.shoal, "D", fd, top, boot)
            devs.append(D)
            wait_until(lambda: read(os.path.join(fd, "via-dht.txt")) == b"found through the DHT\n",
                       "D receiving C's file through the DHT", timeout=90)
            if "on the LAN" in C.stderr() + D.stderr():
                fail("a --local device used LAN discovery")
            print("ok: found through the DHT alone (--local with a bootstrap node)")
        finally:
            node.terminate()
            node.wait(timeout=30)

        for d in devs:
            if d.stop() != 0:
                fail(d.name + " did not exit 0")
        devs = []
        print("PASS")
    finally:
        for d in devs:
            d.proc.kill()
            d.proc.wait()
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
