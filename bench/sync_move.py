#!/usr/bin/env python3
"""A moved file between two `shoal sync run` devices on loopback (issue 13: rename and move
detection), against the same content arriving under a new name without a move.

Two devices A and B (--local, B dials A). A has one file of --mib MiB of random data;
once B has it:
  move        A renames it into a new subdirectory; clock: from the rename until B has the
              new path and not the old one. B's copy must keep its inode (a rename there).
  copy+delete A copies it to another new directory, then deletes the original (a new
              inode, so A hashes the copy; B still renames its own copy, since the content is
              that of a file whose delete arrives with it).
  copy        A copies it beside itself (the original stays): B builds the copy from its
              local blocks (reads and writes every byte, fsync), which is what every move cost
              before moves were detected.
Each clock starts before the operation on A and includes shoal's 1 s debounce. Every wait
has a deadline.

Usage: bench/sync_move.py --shoal build/shoal [--mib 1024] [--runs 1] [--work DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time


def wait(cond, what, timeout=300.0):
    t = time.monotonic()
    while not cond():
        if time.monotonic() - t > timeout:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.01)


def run_device(shoal, folder, peers=()):
    args = [shoal, "sync", "run", folder, "--local", "--json", "--port", "0"]
    for p in peers:
        args += ["--peer", "127.0.0.1:%d" % p]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(folder + ".err", "wb"))
    port = json.loads(p.stdout.readline())["port"]
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, port


def one_run(shoal, top, mib):
    fa, fb = os.path.join(top, "A"), os.path.join(top, "B")
    os.makedirs(fa)
    with open(os.path.join(fa, "big.bin"), "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    keys = json.loads(subprocess.run([shoal, "sync", "init", fa, "--json"], check=True, capture_output=True).stdout)
    subprocess.run([shoal, "sync", "join", fb, "-"], input=keys["read_write_key"].encode(), check=True,
                   capture_output=True)
    procs = []
    try:
        pa, port = run_device(shoal, fa)
        procs.append(pa)
        procs.append(run_device(shoal, fb, [port])[0])
        wait(lambda: os.path.exists(os.path.join(fb, "big.bin")), "the first copy on B")
        # Quiet: no scan or apply still under way on either side.
        time.sleep(3)
        out = {}
        inode = os.lstat(os.path.join(fb, "big.bin")).st_ino
        os.makedirs(os.path.join(fa, "sub"))
        t = time.monotonic()
        os.rename(os.path.join(fa, "big.bin"), os.path.join(fa, "sub", "big.bin"))
        wait(lambda: os.path.exists(os.path.join(fb, "sub", "big.bin")) and
             not os.path.exists(os.path.join(fb, "big.bin")), "the move on B")
        out["move_s"] = round(time.monotonic() - t, 2)
        out["move_same_inode_on_b"] = os.lstat(os.path.join(fb, "sub", "big.bin")).st_ino == inode
        time.sleep(3)
        os.makedirs(os.path.join(fa, "other"))
        t = time.monotonic()
        shutil.copyfile(os.path.join(fa, "sub", "big.bin"), os.path.join(fa, "other", "big.bin"))
        os.unlink(os.path.join(fa, "sub", "big.bin"))
        wait(lambda: os.path.exists(os.path.join(fb, "other", "big.bin")) and
             not os.path.exists(os.path.join(fb, "sub", "big.bin")), "the copy+delete on B")
        out["copy_delete_s"] = round(time.monotonic() - t, 2)
        time.sleep(3)
        t = time.monotonic()
        shutil.copyfile(os.path.join(fa, "other", "big.bin"), os.path.join(fa, "other", "big2.bin"))
        wait(lambda: os.path.exists(os.path.join(fb, "other", "big2.bin")), "the copy on B")
        out["copy_s"] = round(time.monotonic() - t, 2)
        return out
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work", help="folder for the devices (default: a temporary one)")
    args = ap.parse_args()
    for i in range(args.runs):
        top = tempfile.mkdtemp(prefix="shoal-sync-move-", dir=args.work)
        try:
            print(json.dumps(dict(run=i + 1, mib=args.mib, **one_run(args.shoal, top, args.mib))), flush=True)
        finally:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
