#!/usr/bin/python3
"""Makes the two .torrent files the decode benchmark reads, with mktorrent (a real,
independent tool) over generated data:

  small.torrent  ~20 KiB: an album-like folder of 14 files of random data (~31 MiB),
                 32 KiB pieces (~980 pieces, 20 bytes of SHA-1 each).
  large.torrent  ~2 MiB: a dataset-like folder of 1,500 files in 30 subfolders (~3.1 GiB),
                 32 KiB pieces (~100,000 pieces). Its files are sparse (all zeros, no
                 disk space used), so making it costs only hashing time; the decoder sees
                 the same structure either way.

Usage: make_torrents.py OUTDIR
The payloads are deleted afterwards; only OUTDIR/small.torrent and OUTDIR/large.torrent stay.
"""
import os
import random
import shutil
import subprocess
import sys

PIECE_EXP = 15  # mktorrent 1.1 accepts 2^15 (32 KiB) at least
PIECE = 1 << PIECE_EXP
ANNOUNCE = "http://127.0.0.1:6969/announce"  # never contacted: torrents are only parsed


def mktorrent(src, out):
    if os.path.exists(out):
        os.remove(out)
    subprocess.run(["mktorrent", "-l", str(PIECE_EXP), "-a", ANNOUNCE, "-c", "shoal benchmark input",
                    "-o", out, src], check=True, stdout=subprocess.DEVNULL)


def split_sizes(rng, total, count):
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += total - sum(sizes)
    return sizes


def make_small(work, out):
    rng = random.Random(20)
    root = os.path.join(work, "Some Artist - Some Album (2024) [FLAC]")
    os.makedirs(root)
    total = 980 * PIECE - 12345  # ~980 pieces: 19.6 KB of hashes plus the file list
    for i, size in enumerate(split_sizes(rng, total, 14), 1):
        with open(os.path.join(root, f"{i:02d} - Track number {i:02d}.flac"), "wb") as f:
            left = size
            while left:
                chunk = min(left, 1 << 20)
                f.write(os.urandom(chunk))
                left -= chunk
    mktorrent(root, out)
    shutil.rmtree(root)


def make_large(work, out):
    rng = random.Random(2)
    root = os.path.join(work, "survey-dataset-2024")
    os.makedirs(root)
    total = 100_000 * PIECE
    sizes = split_sizes(rng, total, 1500)
    for i, size in enumerate(sizes):
        d = os.path.join(root, f"region-{i // 50:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"scan-{i:05d}.tif"), "wb") as f:
            f.truncate(size)
    mktorrent(root, out)
    shutil.rmtree(root)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = os.path.abspath(sys.argv[1])
    os.makedirs(outdir, exist_ok=True)
    work = os.path.join(outdir, "payload")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        make_small(work, os.path.join(outdir, "small.torrent"))
        make_large(work, os.path.join(outdir, "large.torrent"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in ("small.torrent", "large.torrent"):
        p = os.path.join(outdir, name)
        print(f"{name}: {os.path.getsize(p)} bytes")


if __name__ == "__main__":
    main()
