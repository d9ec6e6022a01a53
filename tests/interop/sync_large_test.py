#!/usr/bin/python3
"""`shoal sync` with a file past 2 GiB: offsets beyond 2^31 in the scan, the transfer and
an edit.

A holds a file of 2 GiB + 1 MiB + 12,345 bytes of random data (so neither the size nor its
last block is a round number); B joins with the read-write key and dials A. The file
arrives whole (SHA-256 equal). Then one byte past the 2 GiB mark and one in the first
block are changed on A: B's copy takes both, fetching two blocks (the rest is copied from
its old version), and the trees are equal again.

Usage: sync_large_test.py --shoal PATH
"""
import argparse
import hashlib
import json
import os
import subprocess

import harness as h

SIZE = (2 << 30) + (1 << 20) + 12345


def digest(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            c = f.read(8 << 20)
            if not c:
                return d.hexdigest()
            d.update(c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    args = ap.parse_args()
    run = h.Run(args.shoal, "sync-large")
    a, b = run.path("a"), run.path("b")
    big = os.path.join(a, "big.bin")
    h.write_random(big, SIZE, seed=23)
    keys = json.loads(subprocess.run([run.shoal, "sync", "init", a, "--json"], check=True, capture_output=True,
                                     text=True, timeout=300).stdout)
    subprocess.run([run.shoal, "sync", "join", b, "-"], input=keys["read_write_key"], check=True,
                   capture_output=True, text=True, timeout=60)
    pa = run.spawn([run.shoal, "sync", "run", a, "--port", "0", "--local", "--json"], "a.log")
    first = h.wait_for(lambda: next((json.loads(l) for l in open(pa.log, errors="replace").read().splitlines()
                                     if l.startswith("{") and '"listening"' in l), None), 60, step=0.1)
    if not run.check("A listens", bool(first)):
        return run.finish()
    pb = run.spawn([run.shoal, "sync", "run", b, "--port", "0", "--local", "--json", "--peer",
                    f"127.0.0.1:{first['port']}"], "b.log")

    def synced_lines():
        return [json.loads(l) for l in open(pb.log, errors="replace").read().splitlines()
                if l.startswith("{") and '"event":"sync"' in l and '"big.bin"' in l]

    got = h.wait_for(lambda: len(synced_lines()) >= 1, 600, step=0.5)
    copy = os.path.join(b, "big.bin")
    want = digest(big)
    run.check("a 2 GiB + 1 MiB + 12,345-byte file arrives whole",
              bool(got) and os.path.getsize(copy) == SIZE and digest(copy) == want, str(synced_lines()))

    # Two bytes: one past 2^31, one in the first block.
    fd = os.open(big, os.O_RDWR)
    for off in ((2 << 30) + 777, 100):
        old = os.pread(fd, 1, off)
        os.pwrite(fd, bytes([(old[0] + 1) & 0xff]), off)
    os.close(fd)
    want = digest(big)
    ok = h.wait_for(lambda: len(synced_lines()) >= 2 and digest(copy) == want, 300, step=1)
    lines = synced_lines()
    run.check("the edit past 2 GiB and the one in the first block arrive", bool(ok), str(lines))
    detail = lines[-1].get("detail", "") if lines else ""
    fetched = int(detail.split(",")[1].split()[0]) if "," in detail else -1
    run.check("... fetching two blocks, the rest copied from B's old version",
              0 < fetched <= 2 * (16 << 20) and fetched < SIZE // 8, detail)
    return run.finish()


if __name__ == "__main__":
    h.main_guard(main)
